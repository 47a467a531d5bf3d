//! The standard evaluation of a training set (protocols.md): N fresh models trained with the
//! standard recipe (300 epochs, or 1000 with DSA augmentation of every minibatch), test
//! accuracy as mean ± std.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::eval::evaluate_with_state;
use super::hooks::{Control, Hook, StepContext};
use super::trainer::train;
use crate::augment::Dsa;
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::stats;

/// Test accuracies of repeated standard evaluations.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The mean with its 95% Student-t interval over the runs (no interval for one run).
    #[serde(default = "stats::Interval::unknown")]
    pub interval: stats::Interval,
}

impl EvalSummary {
    /// Summarises per-run accuracies.
    pub fn from_runs(
        label: impl Into<String>,
        train_size: usize,
        accuracies: Vec<f64>,
    ) -> EvalSummary {
        EvalSummary {
            label: label.into(),
            train_size,
            mean: if accuracies.is_empty() {
                0.0
            } else {
                stats::mean(&accuracies)
            },
            std: stats::sample_std(&accuracies),
            interval: stats::t_interval(&accuracies),
            accuracies,
        }
    }
}

/// Epochs of the standard evaluation without augmentation (protocols.md).
pub const STANDARD_EPOCHS: usize = 300;

/// Epochs of the standard evaluation with DSA augmentation (protocols.md).
pub const STANDARD_EPOCHS_DSA: usize = 1000;

/// The settings of a standard evaluation: `runs` fresh models, each trained with
/// [`TrainConfig::standard_eval`] (SGD lr `lr`, momentum 0.9, weight decay 5e-4, batch 256,
/// `epochs` epochs, lr ×0.1 at `epochs / 2`), optionally with DSA augmentation of every
/// minibatch. Run `r` seeds its initialisation, shuffling and augmentation with `seed + r`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StandardEval {
    /// Number of fresh models.
    pub runs: usize,
    /// Epochs per run: [`STANDARD_EPOCHS`], or [`STANDARD_EPOCHS_DSA`] with augmentation.
    pub epochs: usize,
    /// Base learning rate (0.01, or a distilled set's learned rate).
    pub lr: f32,
    /// Seed of the first run.
    pub seed: u64,
    /// DSA strategy applied per image to every minibatch (see [`TrainConfig::augment`]);
    /// `None` trains on the plain images.
    pub augment: Option<String>,
}

impl Default for StandardEval {
    /// 5 runs of 300 epochs at lr 0.01 without augmentation, seed 0.
    fn default() -> Self {
        StandardEval::new(None)
    }
}

impl StandardEval {
    /// The protocol of protocols.md with augmentation `dsa` or none: 5 runs, lr 0.01, seed 0,
    /// and [`StandardEval::protocol_epochs`] epochs.
    pub fn new(dsa: Option<&Dsa>) -> StandardEval {
        StandardEval {
            runs: 5,
            epochs: StandardEval::protocol_epochs(dsa.is_some()),
            lr: 0.01,
            seed: 0,
            augment: dsa.map(Dsa::strategy),
        }
    }

    /// The protocol's epochs: 1000 with augmentation, 300 without.
    pub fn protocol_epochs(augmented: bool) -> usize {
        if augmented {
            STANDARD_EPOCHS_DSA
        } else {
            STANDARD_EPOCHS
        }
    }

    /// The training configuration of run `run` on a training set of `data_len` examples.
    pub fn train_config(&self, data_len: usize, run: usize) -> TrainConfig {
        TrainConfig {
            augment: self.augment.clone(),
            ..TrainConfig::standard_eval(
                self.epochs,
                self.lr,
                data_len,
                self.seed.wrapping_add(run as u64),
            )
        }
    }

    /// Rejects nonsensical settings before any training, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.runs == 0 {
            return Err(Error::invalid("runs", "must be at least 1"));
        }
        self.train_config(1, 0).validate()
    }
}

/// Trains `eval.runs` fresh models on `train_set` with the standard recipe (see
/// [`StandardEval`]) and evaluates each on `test` after its final epoch. `progress` sees one
/// count over all runs (`train`, step, runs × steps per run), before the first update and after
/// each, with the run as a note; an error it returns stops the protocol with that error.
pub fn standard_evaluation(
    bundle: &Bundle,
    train_set: &Dataset,
    test: &Dataset,
    label: &str,
    eval: &StandardEval,
    progress: &mut dyn Progress,
) -> Result<EvalSummary> {
    eval.validate()?;
    // `runs` comes from the caller (possibly absurd through the C ABI): no reservation for it.
    let mut accuracies = Vec::new();
    for run in 0..eval.runs {
        accuracies.push(standard_evaluation_run(
            bundle, train_set, test, eval, run, progress,
        )?);
    }
    Ok(EvalSummary::from_runs(label, train_set.len(), accuracies))
}

/// Run `run` of [`standard_evaluation`] alone: one fresh model trained on `train_set` with
/// the seed `eval.seed + run` (nothing else), and its test accuracy. Any subset of the runs,
/// in any order or process, gives the accuracies of the whole protocol. `progress` counts
/// this run's steps within all `eval.runs` runs, as [`standard_evaluation`] does.
pub fn standard_evaluation_run(
    bundle: &Bundle,
    train_set: &Dataset,
    test: &Dataset,
    eval: &StandardEval,
    run: usize,
    progress: &mut dyn Progress,
) -> Result<f64> {
    let config = eval.train_config(train_set.len(), run);
    let per_run = config.total_steps(train_set.len());
    let total = per_run.saturating_mul(eval.runs);
    progress.note(&format!("run {}/{}", run + 1, eval.runs));
    let mut run_hook = |ctx: &StepContext<'_>| {
        // Step 0 of a later run is the last step of the previous one: report it once.
        if run == 0 || ctx.step > 0 {
            progress.report(
                "train",
                run.saturating_mul(per_run).saturating_add(ctx.step),
                total,
            )?;
        }
        Ok(Control::Continue)
    };
    let hooks: &mut [&mut dyn Hook] = &mut [&mut run_hook];
    let out = train(
        bundle,
        bundle.init_params(config.seed),
        train_set,
        &config,
        hooks,
    )?;
    Ok(evaluate_with_state(bundle, &out.params, &out.state, test)?.accuracy)
}
