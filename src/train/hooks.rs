//! Per-step hooks: what the analyses attach to a training run (test predictions after every
//! step, parameter checkpoints, progress, cancellation).

use std::path::PathBuf;

use serde::Serialize;

use super::checkpoint::save_model;
use super::eval::evaluate_with_state;
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::Result;

/// What the trainer tells a hook after each update (or before the first, with `step == 0`).
pub struct StepContext<'a> {
    /// Updates done so far (0 = the initial parameters).
    pub step: usize,
    /// Total updates planned.
    pub total_steps: usize,
    /// Training loss of the minibatch of this update (NaN at step 0).
    pub loss: f32,
    /// Learning rate used by this update.
    pub lr: f32,
    /// Parameters after the update.
    pub params: &'a Params,
    /// State after the update (BatchNorm running statistics; empty for a bundle without).
    pub state: &'a Params,
    /// The model.
    pub bundle: &'a Bundle,
}

/// Whether training goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop now (cancellation, early stopping).
    Stop,
}

/// A callback run by the trainer at step 0 and after every update.
pub trait Hook {
    /// Called with the initial parameters (`step == 0`) and after each update.
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control>;
}

impl<F: FnMut(&StepContext<'_>) -> Result<Control>> Hook for F {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        self(ctx)
    }
}

/// One evaluation made by [`RecordEval`].
#[derive(Debug, Clone, Serialize)]
pub struct EvalRecord {
    /// Step at which it was taken.
    pub step: usize,
    /// Accuracy on the recorded dataset.
    pub accuracy: f64,
    /// Mean loss on the recorded dataset.
    pub loss: f64,
    /// Predictions (kept when `keep_predictions`).
    #[serde(skip)]
    pub predictions: Vec<u16>,
}

/// Evaluates on a dataset every `every` steps (and at step 0), keeping accuracy, loss and
/// optionally the predictions (the agreement analysis needs them).
pub struct RecordEval<'d> {
    data: &'d Dataset,
    every: usize,
    keep_predictions: bool,
    /// The records taken so far.
    pub records: Vec<EvalRecord>,
}

impl<'d> RecordEval<'d> {
    /// Records on `data` every `every` steps.
    pub fn new(data: &'d Dataset, every: usize, keep_predictions: bool) -> RecordEval<'d> {
        RecordEval {
            data,
            every: every.max(1),
            keep_predictions,
            records: Vec::new(),
        }
    }
}

impl Hook for RecordEval<'_> {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        if ctx.step.is_multiple_of(self.every) || ctx.step == ctx.total_steps {
            let e = evaluate_with_state(ctx.bundle, ctx.params, ctx.state, self.data)?;
            self.records.push(EvalRecord {
                step: ctx.step,
                accuracy: e.accuracy,
                loss: e.loss,
                predictions: if self.keep_predictions {
                    e.predictions
                } else {
                    Vec::new()
                },
            });
        }
        Ok(Control::Continue)
    }
}

/// Saves the parameters (and the state, if the bundle has one) every `every` steps to
/// `dir/step-000123.safetensors`.
pub struct SaveParams {
    dir: PathBuf,
    every: usize,
    /// Files written so far.
    pub files: Vec<PathBuf>,
}

impl SaveParams {
    /// Saves into `dir` (created if needed) every `every` steps.
    pub fn new(dir: impl Into<PathBuf>, every: usize) -> SaveParams {
        SaveParams {
            dir: dir.into(),
            every: every.max(1),
            files: Vec::new(),
        }
    }
}

impl Hook for SaveParams {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        if ctx.step.is_multiple_of(self.every) || ctx.step == ctx.total_steps {
            std::fs::create_dir_all(&self.dir).map_err(|e| crate::Error::io(&self.dir, e))?;
            let path = self.dir.join(format!("step-{:06}.safetensors", ctx.step));
            save_model(&path, ctx.bundle.manifest(), ctx.params, ctx.state)?;
            self.files.push(path);
        }
        Ok(Control::Continue)
    }
}
