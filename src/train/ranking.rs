//! The evaluation metrics of DD-Ranking (Li et al., "DD-Ranking: Rethinking the Evaluation of
//! Dataset Distillation", 2025; NUS-HPC-AI-Lab/DD-Ranking), computed from the per-run test
//! accuracies of ddlens's standard evaluation:
//!
//! * hard-label recovery `HLR = acc(full real data) − acc(distilled)` (lower is better);
//! * improvement over random `IOR = acc(distilled) − acc(random real subset, same IPC)`;
//! * label-robust score `LRS = (e^α − e^−1) / (e − e^−1) · 100` with
//!   `α = w · IOR − (1 − w) · HLR`, `w = 0.5`;
//! * augmentation-robust score `ARS`, the same normalisation of
//!   `β = γ · (syn_aug − rnd_aug) + (1 − γ) · (syn_noaug − rnd_noaug)`, `γ = 0.5`.
//!
//! Accuracies are fractions (0..1), so `α` and `β` lie in [−1, 1] and the scores in [0, 100].
//! Like DD-Ranking, each score is computed per evaluation round (run `i` of the distilled set
//! beside run `i` of the random subset, which ddlens trains from the same initialisation) and
//! then averaged; unlike DD-Ranking, ddlens uses the final-epoch accuracy (DD-Ranking takes
//! the best test accuracy of the last 20% of epochs), the sample standard deviation (n − 1;
//! DD-Ranking: NumPy's population std), gives the 95% Student-t interval over the rounds, and
//! does not tune the learning rate per round (docs/evaluation.md).

use serde::{Deserialize, Serialize};

use super::protocol::EvalSummary;
use crate::error::{Error, Result};
use crate::stats::{self, Interval};

/// DD-Ranking's default weight of IOR against HLR in the label-robust score.
pub const LRS_WEIGHT: f64 = 0.5;
/// DD-Ranking's default weight of the augmented protocol in the augmentation-robust score.
pub const ARS_WEIGHT: f64 = 0.5;

/// Maps a difference of accuracies in [−1, 1] to a score in [0, 100]: `(e^x − e^−1) / (e −
/// e^−1) · 100` (0 at −1, 26.9 at 0, 100 at 1).
pub fn normalised_score(x: f64) -> f64 {
    let e = std::f64::consts::E;
    (x.exp() - (-1.0f64).exp()) / (e - (-1.0f64).exp()) * 100.0
}

/// One metric over the evaluation rounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    /// The value of each round.
    pub rounds: Vec<f64>,
    /// Mean over the rounds.
    pub mean: f64,
    /// Sample standard deviation over the rounds (0 for one round).
    pub std: f64,
    /// The mean with its 95% Student-t interval over the rounds.
    pub interval: Interval,
}

impl Metric {
    fn from_rounds(rounds: Vec<f64>) -> Metric {
        Metric {
            mean: stats::mean(&rounds),
            std: if rounds.len() > 1 {
                stats::sample_std(&rounds)
            } else {
                0.0
            },
            interval: stats::t_interval(&rounds),
            rounds,
        }
    }
}

/// The per-run test accuracies (fractions) of one protocol.
#[derive(Debug, Clone, Copy)]
pub struct Accuracies<'a> {
    /// The distilled set.
    pub distilled: &'a [f64],
    /// A random real subset with the same images per class.
    pub random: &'a [f64],
}

/// DD-Ranking's metrics of one distilled set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DdRanking {
    /// Hard-label recovery, `acc(full) − acc(distilled)`; absent without full-data accuracy.
    pub hlr: Option<Metric>,
    /// Improvement over random, `acc(distilled) − acc(random)`.
    pub ior: Metric,
    /// Label-robust score (0..100); absent without full-data accuracy.
    pub lrs: Option<Metric>,
    /// Augmentation-robust score (0..100); absent without the augmented protocol.
    pub ars: Option<Metric>,
    /// `w` of the label-robust score.
    pub lrs_weight: f64,
    /// `γ` of the augmentation-robust score.
    pub ars_weight: f64,
}

/// Computes DD-Ranking's metrics from the standard evaluation without augmentation (`plain`),
/// optionally with augmentation (`augmented`, for ARS) and the full-data accuracy of each run
/// (`full`, for HLR and LRS; fewer runs than the sets' are reused in turn, one value being a
/// constant). Rounds pair run `i` of every list, so the lists of a protocol must have the same
/// length.
pub fn dd_ranking(
    plain: Accuracies<'_>,
    augmented: Option<Accuracies<'_>>,
    full: Option<&[f64]>,
) -> Result<DdRanking> {
    let n = check_protocol("plain", plain)?;
    if let Some(a) = augmented {
        if check_protocol("augmented", a)? != n {
            return Err(Error::invalid(
                "augmented",
                format!(
                    "{} runs with augmentation but {n} without",
                    a.distilled.len()
                ),
            ));
        }
    }
    if let Some(f) = full {
        check_accuracies("full", f)?;
    }
    let rounds = |f: &dyn Fn(usize) -> f64| Metric::from_rounds((0..n).map(f).collect());
    let ior = rounds(&|i| plain.distilled[i] - plain.random[i]);
    let full_at = |f: &[f64], i: usize| f[i % f.len()];
    let hlr = full.map(|f| rounds(&|i| full_at(f, i) - plain.distilled[i]));
    let lrs = full.map(|f| {
        rounds(&|i| {
            let ior = plain.distilled[i] - plain.random[i];
            let hlr = full_at(f, i) - plain.distilled[i];
            normalised_score(LRS_WEIGHT * ior - (1.0 - LRS_WEIGHT) * hlr)
        })
    });
    let ars = augmented.map(|a| {
        rounds(&|i| {
            let aug = a.distilled[i] - a.random[i];
            let noaug = plain.distilled[i] - plain.random[i];
            normalised_score(ARS_WEIGHT * aug + (1.0 - ARS_WEIGHT) * noaug)
        })
    });
    Ok(DdRanking {
        hlr,
        ior,
        lrs,
        ars,
        lrs_weight: LRS_WEIGHT,
        ars_weight: ARS_WEIGHT,
    })
}

/// The number of rounds of a protocol: both lists non-empty, the same length, fractions.
fn check_protocol(name: &str, a: Accuracies<'_>) -> Result<usize> {
    check_accuracies(name, a.distilled)?;
    check_accuracies(name, a.random)?;
    if a.distilled.len() != a.random.len() {
        return Err(Error::invalid(
            name,
            format!(
                "{} runs of the distilled set but {} of the random subset: DD-Ranking pairs \
                 them run by run",
                a.distilled.len(),
                a.random.len()
            ),
        ));
    }
    Ok(a.distilled.len())
}

fn check_accuracies(name: &str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::invalid(name, "no runs"));
    }
    if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(
            name,
            format!("accuracy {v} is not a fraction in [0, 1]"),
        ));
    }
    Ok(())
}

/// [`dd_ranking`] from standard evaluations: in each protocol's summaries, the distilled set
/// first and the random real subset second (as `ddlens eval` orders them).
pub fn dd_ranking_of(
    plain: &[EvalSummary],
    augmented: Option<&[EvalSummary]>,
    full: Option<&[f64]>,
) -> Result<DdRanking> {
    let pair = |name: &str, s: &'_ [EvalSummary]| -> Result<(Vec<f64>, Vec<f64>)> {
        match s {
            [set, random] => Ok((set.accuracies.clone(), random.accuracies.clone())),
            _ => Err(Error::invalid(
                name,
                format!(
                    "{} evaluated sets; DD-Ranking needs the distilled set and the random real \
                     subset",
                    s.len()
                ),
            )),
        }
    };
    let (p_set, p_rnd) = pair("plain", plain)?;
    let aug = augmented.map(|a| pair("augmented", a)).transpose()?;
    dd_ranking(
        Accuracies {
            distilled: &p_set,
            random: &p_rnd,
        },
        aug.as_ref().map(|(d, r)| Accuracies {
            distilled: d,
            random: r,
        }),
        full,
    )
}
