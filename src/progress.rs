//! One progress-and-cancel contract for every long call of the library.
//!
//! Training, evaluation, distillation, expert generation and the analyses all take a
//! `&mut dyn Progress`. They call [`Progress::report`] once before the first unit of work and
//! after every unit, with one continuous count per call (`done` of `total`, starting at 0 or at
//! the resumed position), and stop with the error it returns: that is how a caller cancels.
//! [`Progress::note`] carries a short human-readable detail (the current loss, which run of
//! several) that front-ends may show and everything else ignores.
//!
//! Front-ends adapt to it: the CLI draws an indicatif bar (`src/bin/ddlens/bar.rs`), the C ABI
//! forwards `(done, total)` to the caller's callback and turns a nonzero answer into
//! [`crate::Error::Cancelled`] (`src/ffi/progress.rs`). Any closure
//! `FnMut(&str, usize, usize) -> Result<()>` is a `Progress`; [`Silent`] ignores everything.

use crate::error::Result;

/// Receives progress reports of long work and may cancel it.
pub trait Progress {
    /// `done` of `total` units of `stage` are finished. An error (normally
    /// [`crate::Error::Cancelled`]) stops the work, which returns that error; work that
    /// checkpoints has written every checkpoint due by then.
    fn report(&mut self, stage: &str, done: usize, total: usize) -> Result<()>;

    /// A short detail about the latest unit, e.g. `loss 0.4210` or `run 2/5`. Ignored unless a
    /// front-end shows it.
    fn note(&mut self, _detail: &str) {}
}

impl<F: FnMut(&str, usize, usize) -> Result<()>> Progress for F {
    fn report(&mut self, stage: &str, done: usize, total: usize) -> Result<()> {
        self(stage, done, total)
    }
}

/// Progress that ignores every report and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn report(&mut self, _stage: &str, _done: usize, _total: usize) -> Result<()> {
        Ok(())
    }
}

/// Reports of a sub-task, shifted into the parent's continuous count: `done` becomes
/// `offset + done` of `total`. Used where one call runs several phases (herding's feature
/// model, then the herding itself) but promises its caller one count.
pub struct Offset<'a> {
    /// The parent's progress.
    pub inner: &'a mut dyn Progress,
    /// Units done before this phase.
    pub offset: usize,
    /// The parent's total.
    pub total: usize,
}

impl Progress for Offset<'_> {
    fn report(&mut self, stage: &str, done: usize, _total: usize) -> Result<()> {
        self.inner.report(stage, self.offset + done, self.total)
    }

    fn note(&mut self, detail: &str) {
        self.inner.note(detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn closures_report_and_cancel_and_offsets_shift() {
        let mut seen = Vec::new();
        let mut p = |stage: &str, done: usize, total: usize| {
            seen.push((stage.to_string(), done, total));
            if done == 7 {
                Err(Error::Cancelled("stop".into()))
            } else {
                Ok(())
            }
        };
        {
            let mut off = Offset {
                inner: &mut p,
                offset: 5,
                total: 10,
            };
            off.report("b", 1, 3).unwrap();
            assert!(matches!(off.report("b", 2, 3), Err(Error::Cancelled(_))));
        }
        assert_eq!(seen, vec![("b".into(), 6, 10), ("b".into(), 7, 10)]);
        Silent.report("x", 0, 0).unwrap();
    }
}
