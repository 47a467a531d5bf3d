//! Progress bars for long work (drawn on stderr, hidden automatically when it is not a
//! terminal, so `--json` output and logs stay clean).

use indicatif::{ProgressBar, ProgressStyle};

/// A labelled progress bar over a known number of steps.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` steps labelled `label`.
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:32}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Progress { bar }
    }

    /// Moves to `pos` with a short message (e.g. the current loss).
    pub fn set(&self, pos: u64, msg: impl Into<String>) {
        self.bar.set_position(pos);
        self.bar.set_message(msg.into());
    }

    /// Resets for another pass with a new label and length.
    pub fn restart(&self, label: &str, total: u64) {
        self.bar.set_prefix(label.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
