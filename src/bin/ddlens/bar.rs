//! The command line's progress bars (drawn on stderr, hidden automatically when it is not a
//! terminal, so `--json` output and logs stay clean): the terminal side of the library's
//! [`Progress`] contract.

use ddlens::progress::Progress;
use ddlens::train::{Control, StepContext};
use ddlens::Result;
use indicatif::{ProgressBar, ProgressStyle};

/// A labelled progress bar; as a [`Progress`] it follows the stage, count and note it hears.
pub(crate) struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar of `total` steps labelled `label`.
    pub(crate) fn new(label: &str, total: u64) -> Bar {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:32}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Bar { bar }
    }

    /// Moves to `pos` with a short message (e.g. the current loss).
    pub(crate) fn set(&self, pos: u64, msg: impl Into<String>) {
        self.bar.set_position(pos);
        self.bar.set_message(msg.into());
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for &Bar {
    fn report(&mut self, stage: &str, done: usize, total: usize) -> Result<()> {
        if self.bar.prefix() != stage {
            self.bar.set_prefix(stage.to_string());
        }
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        Ok(())
    }

    fn note(&mut self, detail: &str) {
        self.bar.set_message(detail.to_string());
    }
}

/// A hook that drives a progress bar and shows the running loss.
pub(crate) fn progress_hook(bar: &Bar) -> impl FnMut(&StepContext<'_>) -> Result<Control> + '_ {
    move |ctx| {
        if ctx.step > 0 {
            bar.set(ctx.step as u64, format!("loss {:.4}", ctx.loss));
        }
        Ok(Control::Continue)
    }
}

impl Progress for Bar {
    fn report(&mut self, stage: &str, done: usize, total: usize) -> Result<()> {
        (&*self).report(stage, done, total)
    }

    fn note(&mut self, detail: &str) {
        (&*self).note(detail);
    }
}
