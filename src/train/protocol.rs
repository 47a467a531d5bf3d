//! The standard evaluation of a training set (protocols.md): N fresh models trained with the
//! standard recipe, test accuracy as mean ± std.

use serde::Serialize;

use super::config::TrainConfig;
use super::eval::evaluate;
use super::hooks::{Control, Hook, StepContext};
use super::trainer::train;
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::Result;

/// Test accuracies of repeated standard evaluations.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSummary {
    /// What was evaluated (a file name, `random real subset`...).
    pub label: String,
    /// Number of training examples.
    pub train_size: usize,
    /// Test accuracy of each run.
    pub accuracies: Vec<f64>,
    /// Mean accuracy.
    pub mean: f64,
    /// Sample standard deviation (0 for a single run).
    pub std: f64,
}

impl EvalSummary {
    /// Summarises per-run accuracies.
    pub fn from_runs(
        label: impl Into<String>,
        train_size: usize,
        accuracies: Vec<f64>,
    ) -> EvalSummary {
        let n = accuracies.len() as f64;
        let mean = accuracies.iter().sum::<f64>() / n.max(1.0);
        let var = if accuracies.len() > 1 {
            accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        EvalSummary {
            label: label.into(),
            train_size,
            accuracies,
            mean,
            std: var.sqrt(),
        }
    }
}

/// Trains `runs` fresh models (initialisation and shuffling seeded by `seed + run`) on `train_set`
/// with the standard recipe (`epochs`, `lr`) and evaluates each on `test`. `progress` is called
/// after every update with (run, step, total steps of the run).
#[allow(clippy::too_many_arguments)]
pub fn standard_evaluation(
    bundle: &Bundle,
    train_set: &Dataset,
    test: &Dataset,
    label: &str,
    runs: usize,
    epochs: usize,
    lr: f32,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<EvalSummary> {
    let mut hook = |run: usize, ctx: &StepContext<'_>| {
        progress(run, ctx.step, ctx.total_steps);
        Ok(Control::Continue)
    };
    standard_evaluation_with_hook(
        bundle, train_set, test, label, runs, epochs, lr, seed, &mut hook,
    )
}

/// [`standard_evaluation`] with a hook that sees every step of every run as `(run, ctx)`; an
/// error from the hook (e.g. [`crate::Error::Cancelled`]) stops the whole protocol, and
/// `Control::Stop` ends the current run early.
#[allow(clippy::too_many_arguments)]
pub fn standard_evaluation_with_hook(
    bundle: &Bundle,
    train_set: &Dataset,
    test: &Dataset,
    label: &str,
    runs: usize,
    epochs: usize,
    lr: f32,
    seed: u64,
    hook: &mut dyn FnMut(usize, &StepContext<'_>) -> Result<Control>,
) -> Result<EvalSummary> {
    let mut accuracies = Vec::with_capacity(runs);
    for run in 0..runs {
        let run_seed = seed.wrapping_add(run as u64);
        let config = TrainConfig::standard_eval(epochs, lr, train_set.len(), run_seed);
        let mut run_hook = |ctx: &StepContext<'_>| hook(run, ctx);
        let hooks: &mut [&mut dyn Hook] = &mut [&mut run_hook];
        let out = train(
            bundle,
            bundle.init_params(run_seed),
            train_set,
            &config,
            hooks,
        )?;
        accuracies.push(evaluate(bundle, &out.params, test)?.accuracy);
    }
    Ok(EvalSummary::from_runs(label, train_set.len(), accuracies))
}
