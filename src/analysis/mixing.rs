//! `mixing` (paper §3, "can distilled data replace real data?"): each set plus `k` real
//! images per class, trained with P_dist (full batch, SGD lr 0.01, momentum 0.9, no weight
//! decay), beside a random real set of the same per-class size plus the same extras.
//!
//! The extras are nested class-balanced real subsets drawn once from the seed: per class, one
//! random order of the real training images; the extras for `k` are the first `k` of every
//! class, so the `k = 2` images are among the `k = 10` ones, and every set gets the same
//! extras. A random baseline takes, per class, the images that follow the largest `k` in that
//! order, so it never shares an image with the extras. Run `r` of every (set, k) starts from
//! the same initialisation (seed `seed + r`), so differences between curves are not noise of
//! the initialisation. The published finding: a few real images *lower* the accuracy of
//! distilled sets, and all curves meet near `k = 250`.
//!
//! The baselines, the test sample and the training loop are shared with the other
//! training-based analyses (`support.rs`).

use serde::{Deserialize, Serialize};

use serde_json::{json, Value};

use super::sharded::{base_settings, run_all, Sharded};
use super::support::{
    baselines, check_sets, draw_per_class, shortest_f64, take_per_class, test_sample,
    train_and_test, Baseline,
};
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::report::plot::{LineChart, Series};
use crate::report::summary::{fixed, Summary, Table};
use crate::stats;
use crate::train::content_hash;
use crate::train::{EvalSummary, TrainConfig};
use crate::verdict::{Claim, Side, Verdict};

/// Settings of [`mixing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixingConfig {
    /// Real images per class added to each set, strictly increasing (`0` = the set alone).
    pub ks: Vec<usize>,
    /// Trainings per (set, k); run `r` is seeded with `seed + r`.
    pub runs: usize,
    /// P_dist steps (full batch).
    pub steps: usize,
    /// P_dist learning rate (a set's learned rate is not used: P_dist is one fixed protocol).
    pub lr: f32,
    /// Also train the random real baseline (same per-class counts as the set, plus extras).
    pub baseline: bool,
    /// Test images the accuracy is measured on (a class-balanced sample); 0 = the whole split.
    pub test_images: usize,
    /// Seed of the real draws, the test sample and (plus the run index) every training.
    pub seed: u64,
}

impl MixingConfig {
    /// The defaults of a budget.
    ///
    /// * paper: k in {0, 2, 10, 50, 250}, 5 runs of 300 steps, the whole test split;
    /// * cpu: k in {0, 2, 10}, 5 runs of 40 steps, 1,000 test images (5 runs: the verdict
    ///   needs a paired interval over runs, and one run gives none). Every full-batch step
    ///   costs in proportion to the set plus its extras (IPC 10 + k = 50 is 600 images, about
    ///   2.3 s per step for ConvNet-3 on 2 cores; k = 250 is 2,600), so the large ks are what
    ///   the CPU budget cannot afford; 40 steps reach within about a point of 100 steps on
    ///   IPC-10 Fashion-MNIST sets;
    /// * smoke: k in {0, 2, 5}, 3 runs of 10 steps, 300 test images.
    pub fn for_budget(budget: Budget, seed: u64) -> MixingConfig {
        let (ks, runs, steps, test_images) = match budget {
            Budget::Paper => (vec![0, 2, 10, 50, 250], 5, 300, 0),
            Budget::Cpu => (vec![0, 2, 10], 5, 40, 1_000),
            Budget::Smoke => (vec![0, 2, 5], 3, 10, 300),
        };
        MixingConfig {
            ks,
            runs,
            steps,
            lr: 0.01,
            baseline: true,
            test_images,
            seed,
        }
    }

    /// Rejects nonsensical settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.ks.is_empty() {
            return Err(Error::invalid("ks", "give at least one k"));
        }
        if self.ks.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "ks",
                format!("must be strictly increasing, got {:?}", self.ks),
            ));
        }
        if self.runs == 0 {
            return Err(Error::invalid("runs", "must be at least 1"));
        }
        if self.steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        Ok(())
    }

    /// The training configuration of run `run` (P_dist with this config's steps and lr).
    pub fn train_config(&self, run: usize) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            ..TrainConfig::p_dist(self.steps, self.seed.wrapping_add(run as u64))
        }
    }
}

/// What a curve is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurveKind {
    /// A set given by the caller.
    Distilled,
    /// A random real set with the same per-class counts.
    Baseline,
}

/// Accuracy of one (set, k).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixingPoint {
    /// Real images added per class.
    pub k: usize,
    /// Training-set size (set + k × classes).
    pub train_size: usize,
    /// Test accuracy of each run.
    #[serde(deserialize_with = "crate::stats::nan::vec")]
    pub accuracies: Vec<f64>,
    /// Mean accuracy.
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub mean: f64,
    /// Sample standard deviation over runs (0 for one run).
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub std: f64,
}

/// One set's accuracy against k.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixingCurve {
    /// Set name (the baseline: `random-ipc<n>`).
    pub name: String,
    /// A given set or a random baseline.
    pub kind: CurveKind,
    /// Images in the set itself.
    pub set_size: usize,
    /// Images per class in the set itself.
    pub class_counts: Vec<usize>,
    /// For a given set: the name of its baseline curve (when baselines were trained).
    pub baseline: Option<String>,
    /// For a baseline: its real training images (indices into the real training split).
    pub indices: Option<Vec<usize>>,
    /// One point per k, in the order of `ks`.
    pub points: Vec<MixingPoint>,
    /// Mean accuracy at each k minus the mean at the first k (negative: real images hurt).
    #[serde(deserialize_with = "crate::stats::nan::vec")]
    pub change_vs_first_k: Vec<f64>,
    /// For a given set: its mean accuracy minus its baseline's at each k.
    pub gap_to_baseline: Option<Vec<f64>>,
}

/// Result of [`mixing`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixingResult {
    /// Real images per class added.
    pub ks: Vec<usize>,
    /// Runs per (set, k).
    pub runs: usize,
    /// P_dist steps.
    pub steps: usize,
    /// P_dist learning rate.
    pub lr: f64,
    /// Test images the accuracies are measured on.
    pub test_images: usize,
    /// Per class, the real training images drawn (indices into the real training split) in
    /// draw order: the extras for `k` are the first `k` of every class.
    pub extras_per_class: Vec<Vec<usize>>,
    /// The given sets in order, then the baselines.
    pub curves: Vec<MixingCurve>,
}

/// The nested class-balanced extras: one index list (into `train`) per `k`, classes in
/// order, the first `k` of every class's draw. The list for a smaller `k` is, class by class,
/// a prefix of the list for a larger one. Same seed, same extras.
pub fn extras(train: &Dataset, ks: &[usize], seed: u64) -> Result<Vec<Vec<usize>>> {
    let largest = ks.iter().copied().max().unwrap_or(0);
    let per_class = draw_per_class(train, largest, seed)?;
    Ok(ks
        .iter()
        .map(|&k| take_per_class(&per_class, 0, k))
        .collect())
}

/// What a curve trains on: a given set or a baseline of the plan.
#[derive(Debug, Clone, Copy)]
enum Source {
    Set(usize),
    Baseline(usize),
}

/// One curve to train: a given set or a baseline.
struct CurvePlan {
    name: String,
    kind: CurveKind,
    source: Source,
    /// The name of a set's baseline curve.
    baseline: Option<String>,
    /// A baseline's real training indices.
    indices: Option<Vec<usize>>,
}

/// The set-up of [`mixing`]: the real extras, the baselines, the test sample and the curves.
/// Unit `u` is run `u % runs` of the `(u / runs) % ks`-th k of curve `u / (runs * ks)`
/// (the given sets in order, then the baselines).
pub struct MixingPlan<'a> {
    model: &'a Bundle,
    sets: &'a [NamedSet],
    config: &'a MixingConfig,
    per_class: Vec<Vec<usize>>,
    extra_sets: Vec<Dataset>,
    bases: Vec<Baseline>,
    test: Dataset,
    curves: Vec<CurvePlan>,
}

impl<'a> MixingPlan<'a> {
    /// Draws the extras, the baselines and the test sample of `config`.
    pub fn new(
        model: &'a Bundle,
        real: RealData<'_>,
        sets: &'a [NamedSet],
        config: &'a MixingConfig,
    ) -> Result<MixingPlan<'a>> {
        config.validate()?;
        if sets.is_empty() {
            return Err(Error::invalid(
                "sets",
                "give at least one set (the baseline copies its per-class counts)",
            ));
        }
        check_sets(real.train, sets)?;
        let largest = *config.ks.last().expect("validated non-empty");
        let per_class = draw_per_class(real.train, largest, config.seed)?;
        let extra_sets: Vec<Dataset> = config
            .ks
            .iter()
            .map(|&k| real.train.select(&take_per_class(&per_class, 0, k)))
            .collect::<Result<_>>()?;
        let (bases, base_of) = if config.baseline {
            baselines(real.train, sets, largest, config.seed)?
        } else {
            (Vec::new(), Vec::new())
        };
        let test = test_sample(real.test, config.test_images, config.seed)?;
        let mut curves: Vec<CurvePlan> = sets
            .iter()
            .enumerate()
            .map(|(i, s)| CurvePlan {
                name: s.name.clone(),
                kind: CurveKind::Distilled,
                source: Source::Set(i),
                baseline: base_of.get(i).map(|&b| bases[b].name.clone()),
                indices: None,
            })
            .collect();
        curves.extend(bases.iter().enumerate().map(|(i, b)| CurvePlan {
            name: b.name.clone(),
            kind: CurveKind::Baseline,
            source: Source::Baseline(i),
            baseline: None,
            indices: Some(b.indices.clone()),
        }));
        Ok(MixingPlan {
            model,
            sets,
            config,
            per_class,
            extra_sets,
            bases,
            test,
            curves,
        })
    }

    fn data(&self, curve: &CurvePlan) -> &Dataset {
        match curve.source {
            Source::Set(i) => &self.sets[i].data,
            Source::Baseline(i) => &self.bases[i].data,
        }
    }

    /// Number of units: curves × ks × runs (saturating).
    pub fn units(&self) -> usize {
        self.curves
            .len()
            .saturating_mul(self.config.ks.len())
            .saturating_mul(self.config.runs)
    }

    /// The curve, the index of k and the run of unit `u`.
    pub fn unit(&self, u: usize) -> (usize, usize, usize) {
        let (runs, ks) = (self.config.runs, self.config.ks.len());
        (u / (runs * ks), (u / runs) % ks, u % runs)
    }

    /// The test accuracy of unit `u` (seeded by its run only); `on_step` sees every update.
    pub fn run_unit(&self, u: usize, on_step: &mut dyn FnMut(usize) -> Result<()>) -> Result<f64> {
        let (c, ki, run) = self.unit(u);
        let data = self.data(&self.curves[c]);
        let mixed = if self.config.ks[ki] == 0 {
            data.clone()
        } else {
            data.concat(&self.extra_sets[ki])?
        };
        train_and_test(
            self.model,
            &mixed,
            &self.config.train_config(run),
            &self.test,
            on_step,
        )
    }

    /// The result from every unit's accuracy, in unit order.
    pub fn assemble(&self, accuracies: &[f64]) -> Result<MixingResult> {
        if accuracies.len() != self.units() {
            return Err(Error::Internal(format!(
                "{} accuracies for {} mixing units",
                accuracies.len(),
                self.units()
            )));
        }
        let config = self.config;
        let per_curve = config.ks.len() * config.runs;
        let mut curves = Vec::with_capacity(self.curves.len());
        for (c, plan) in self.curves.iter().enumerate() {
            let data = self.data(plan);
            let points: Vec<MixingPoint> = config
                .ks
                .iter()
                .enumerate()
                .map(|(ki, &k)| {
                    let from = c * per_curve + ki * config.runs;
                    let accs = accuracies[from..from + config.runs].to_vec();
                    let size = data.len() + self.extra_sets[ki].len();
                    let s = EvalSummary::from_runs(plan.name.as_str(), size, accs);
                    MixingPoint {
                        k,
                        train_size: s.train_size,
                        accuracies: s.accuracies,
                        mean: s.mean,
                        std: s.std,
                    }
                })
                .collect();
            let first = points[0].mean;
            curves.push(MixingCurve {
                name: plan.name.clone(),
                kind: plan.kind,
                set_size: data.len(),
                class_counts: data.class_counts(),
                baseline: plan.baseline.clone(),
                indices: plan.indices.clone(),
                change_vs_first_k: points.iter().map(|p| p.mean - first).collect(),
                points,
                gap_to_baseline: None,
            });
        }
        let means: Vec<(String, Vec<f64>)> = curves
            .iter()
            .map(|c| (c.name.clone(), c.points.iter().map(|p| p.mean).collect()))
            .collect();
        for c in &mut curves {
            let Some(base) = &c.baseline else { continue };
            if let Some((_, b)) = means.iter().find(|(n, _)| n == base) {
                c.gap_to_baseline = Some(c.points.iter().zip(b).map(|(p, b)| p.mean - b).collect());
            }
        }
        Ok(MixingResult {
            ks: config.ks.clone(),
            runs: config.runs,
            steps: config.steps,
            lr: shortest_f64(config.lr),
            test_images: self.test.len(),
            extras_per_class: self.per_class.clone(),
            curves,
        })
    }
}

/// Trains every set (and its random baseline) plus `k` real images per class for every `k`
/// of `config.ks`, `config.runs` times with P_dist, and measures test accuracy. The same
/// units as the sharded job ([`Sharded`]), in one process.
pub fn mixing(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &MixingConfig,
    progress: &mut dyn Progress,
) -> Result<MixingResult> {
    run_all::<Mixing>(model, real, sets, config, progress)
}

/// One mixing training: its test accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixingUnit {
    /// Test accuracy.
    pub accuracy: f64,
}

impl Sharded for Mixing {
    type Plan<'a> = MixingPlan<'a>;
    type Unit = MixingUnit;

    fn plan<'a>(
        model: &'a Bundle,
        real: RealData<'a>,
        sets: &'a [NamedSet],
        config: &'a MixingConfig,
    ) -> Result<MixingPlan<'a>> {
        MixingPlan::new(model, real, sets, config)
    }

    fn units(plan: &MixingPlan<'_>) -> usize {
        plan.units()
    }

    fn settings(plan: &MixingPlan<'_>) -> Result<Value> {
        let mut settings = base_settings(plan.model, plan.sets, plan.config);
        let extras = plan.extra_sets.last().expect("validated non-empty");
        settings["extras"] = json!({ "len": extras.len(), "content": content_hash(extras, true) });
        settings["baselines"] = plan
            .bases
            .iter()
            .map(|b| json!({ "name": b.name, "content": content_hash(&b.data, true) }))
            .collect();
        settings["test"] =
            json!({ "len": plan.test.len(), "content": content_hash(&plan.test, false) });
        Ok(settings)
    }

    fn cost(plan: &MixingPlan<'_>, _u: usize) -> usize {
        plan.config.steps
    }

    fn total_cost(plan: &MixingPlan<'_>) -> usize {
        plan.units().saturating_mul(plan.config.steps)
    }

    fn run_unit(
        plan: &MixingPlan<'_>,
        u: usize,
        progress: &mut dyn Progress,
    ) -> Result<MixingUnit> {
        let steps = plan.config.steps;
        let accuracy = plan.run_unit(u, &mut |step| progress.report(Mixing::NAME, step, steps))?;
        Ok(MixingUnit { accuracy })
    }

    fn assemble(
        plan: &MixingPlan<'_>,
        units: Vec<MixingUnit>,
        _progress: &mut dyn Progress,
    ) -> Result<MixingResult> {
        let accuracies: Vec<f64> = units.iter().map(|u| u.accuracy).collect();
        plan.assemble(&accuracies)
    }
}

impl MixingResult {
    /// Mean test accuracy against `k + 1` (log axis, so that k = 0 shows), one curve per set
    /// and per baseline.
    pub fn chart(&self) -> LineChart {
        LineChart {
            title: format!(
                "Distilled + k real images per class (P_dist {} steps, {} run{})",
                self.steps,
                self.runs,
                if self.runs == 1 { "" } else { "s" }
            ),
            x_label: "k + 1 (k = real images added per class; log scale)".into(),
            y_label: "test accuracy".into(),
            series: self
                .curves
                .iter()
                .map(|c| {
                    let pts = c.points.iter().map(|p| ((p.k + 1) as f64, p.mean));
                    let name = match c.kind {
                        CurveKind::Distilled => c.name.clone(),
                        CurveKind::Baseline => format!("{} (baseline)", c.name),
                    };
                    Series::new(name, pts.collect())
                })
                .collect(),
            log_x: true,
            markers: true,
            log_y: false,
            integer_x: false,
        }
    }
}

/// [`mixing`] as an [`Analysis`].
pub struct Mixing;

impl Analysis for Mixing {
    const NAME: &'static str = "mixing";
    const ABOUT: &'static str = "Each set plus k real images per class (nested real extras), trained with P_dist, beside a random real set of the same size plus the same extras: accuracy against k.";
    const OWN_BASELINE: bool = true;
    type Config = MixingConfig;
    type Output = MixingResult;

    fn config(budget: Budget, seed: u64) -> MixingConfig {
        MixingConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &MixingConfig,
        progress: &mut dyn Progress,
    ) -> Result<MixingResult> {
        mixing(model, real, sets, config, progress)
    }

    fn figures(output: &MixingResult) -> Result<Vec<(String, Figure)>> {
        Ok(vec![(String::new(), Figure::Lines(output.chart()))])
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`mixing`] tests.
pub const CLAIM: Claim = Claim {
    finding: "a few real images lower a distilled set's accuracy",
    claim: "Adding a few real images per class (k up to 10) to a distilled set lowers its P_dist \
            accuracy (paper, CIFAR-10 IPC 10, BPTT: 0.587 at k = 0, 0.498 at k = 10); all \
            curves meet near k = 250.",
    effect: "accuracy at the largest k in 1..=10 minus at k = 0, paired by run (each run \
             starts every k from the same initialisation); Student-t interval over runs",
    null: 0.0,
    side: Side::Below,
};

/// The verdict of a result: for each given set, the paired change of accuracy from k = 0 to
/// the largest k in 1..=10.
pub fn verdict(r: &MixingResult) -> Verdict {
    let zero = r.ks.iter().position(|&k| k == 0);
    let few = r.ks.iter().rposition(|&k| (1..=10).contains(&k));
    let sets = r
        .curves
        .iter()
        .filter(|c| c.kind == CurveKind::Distilled)
        .map(|c| match (zero, few) {
            // A curve with fewer points than `ks` only comes from a damaged result file.
            (Some(z), Some(f)) if f.max(z) < c.points.len() => {
                let paired: Vec<f64> = c.points[f]
                    .accuracies
                    .iter()
                    .zip(&c.points[z].accuracies)
                    .map(|(a, b)| a - b)
                    .collect();
                let mut v = CLAIM.judge(&c.name, stats::t_interval(&paired));
                v.reason = format!("k = {} vs k = 0: {}", r.ks[f], v.reason);
                v
            }
            (Some(_), Some(_)) => CLAIM.unmeasured(
                &c.name,
                format!("{} points for ks {:?}", c.points.len(), r.ks),
            ),
            _ => CLAIM.unmeasured(
                &c.name,
                format!(
                    "ks {:?} do not include both 0 and a k between 1 and 10",
                    r.ks
                ),
            ),
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved): mean accuracy with
/// its 95% interval over runs for every (set, k).
pub fn summary(r: &MixingResult) -> Summary {
    let mut header = vec!["set".to_string()];
    header.extend(r.ks.iter().map(|k| format!("k = {k}")));
    let mut t = Table {
        header,
        rows: Vec::new(),
    };
    for c in &r.curves {
        let mut row = vec![match c.kind {
            CurveKind::Distilled => c.name.clone(),
            CurveKind::Baseline => format!("{} (random real baseline)", c.name),
        }];
        row.extend(
            c.points
                .iter()
                .map(|p| stats::t_interval(&p.accuracies).display(3)),
        );
        t.rows.push(row);
    }
    Summary {
        title: "Mixing distilled and real images".into(),
        question: format!(
            "Can distilled data replace real data? Each set plus k real images per class \
             (nested subsets), trained with P_dist ({} full-batch steps, SGD lr {}, momentum \
             0.9), beside a random real set of the same size plus the same extras. Test \
             accuracy on {} images: mean [95% interval] (n runs). Paper: a few real images \
             lower the accuracy of distilled sets; all curves meet near k = 250.",
            r.steps,
            fixed(r.lr, 3),
            r.test_images
        ),
        finding: None,
        tables: vec![t],
        ..Summary::default()
    }
}
