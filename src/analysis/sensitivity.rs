//! `sensitivity` (paper §3): how much of a set's accuracy survives training setups other than
//! the standard evaluation it is usually reported with, beside a random real set of the same
//! per-class size. The standard evaluation comes first (the reference, exactly
//! [`crate::train::standard_evaluation`] with the same seed), then one variation at a time:
//! fewer or more epochs, another learning rate, another batch size, plain SGD without
//! momentum, and other architectures (bundles by name).
//!
//! `drop` is the mean accuracy of a setup minus the standard one's, so it is negative when the
//! setup hurts. Adam is not available: `ddlens::train` implements SGD only, so an `adam` entry
//! in `optimizers` is skipped with a note.

use serde::{Deserialize, Serialize};

use serde_json::{json, Value};

use super::sharded::{base_settings, run_all, Sharded};
use super::support::{baselines, check_sets, shortest_f64, test_sample, train_and_test, Baseline};
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::{resolve_bundle, Bundle};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::report::plot::Heatmap;
use crate::report::summary::{fixed, Summary, Table};
use crate::train::{content_hash, Schedule, StandardEval, TrainConfig};
use crate::verdict::{Claim, Side, Verdict};

/// Settings of [`sensitivity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivityConfig {
    /// Trainings per (set, setup); run `r` is seeded with `seed + r`.
    pub runs: usize,
    /// Epochs of the standard evaluation (300 in the protocol).
    pub epochs: usize,
    /// Variations of the epoch count, as factors of `epochs` (rounded, at least 1).
    pub epoch_factors: Vec<f64>,
    /// Variations of the learning rate, as factors of the set's rate (its learned rate, or
    /// 0.01).
    pub lr_factors: Vec<f64>,
    /// Variations of the minibatch size (the standard one is 256); 0 = full batch.
    pub batch_sizes: Vec<usize>,
    /// Other optimizers: `sgd` (plain SGD: momentum 0, same weight decay). `adam` is accepted
    /// and skipped with a note (ddlens trains with SGD only).
    pub optimizers: Vec<String>,
    /// Other architectures: bundle names or folders. `{shape}` stands for the data's input
    /// shape (`1x28x28`); a name with `{shape}` that matches no usable bundle is skipped with
    /// a note, any other name that does not resolve is an error.
    pub architectures: Vec<String>,
    /// Also evaluate a random real set with the same per-class counts as each set.
    pub baseline: bool,
    /// DSA strategy applied to every minibatch in every setup (as the standard evaluation of
    /// DSA-distilled sets does); `null` = none.
    pub augment: Option<String>,
    /// Test images the accuracy is measured on (a class-balanced sample); 0 = the whole split.
    pub test_images: usize,
    /// Seed of the baseline draw, the test sample and (plus the run index) every training.
    pub seed: u64,
}

impl SensitivityConfig {
    /// The defaults of a budget (the variations are the same in every budget; the budgets
    /// scale the runs, the epochs and the test sample):
    ///
    /// * paper: 5 runs of 300 epochs, the whole test split;
    /// * cpu: 1 run of 20 epochs, 1,000 test images (all setups together cost about 9x the
    ///   standard training per set, about 75 s per IPC-10 set for ConvNet-3 on 2 cores);
    /// * smoke: 1 run of 8 epochs, 300 test images.
    pub fn for_budget(budget: Budget, seed: u64) -> SensitivityConfig {
        let (runs, epochs, test_images) = match budget {
            Budget::Paper => (5, 300, 0),
            Budget::Cpu => (1, 20, 1_000),
            Budget::Smoke => (1, 8, 300),
        };
        SensitivityConfig {
            runs,
            epochs,
            epoch_factors: vec![0.3, 3.0],
            lr_factors: vec![0.1, 10.0],
            batch_sizes: vec![10, 0],
            optimizers: vec!["sgd".into()],
            architectures: vec!["convnettiny-{shape}".into(), "mlp-{shape}".into()],
            baseline: true,
            augment: None,
            test_images,
            seed,
        }
    }

    /// Rejects nonsensical settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.runs == 0 {
            return Err(Error::invalid("runs", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        for (field, values) in [
            ("epoch_factors", &self.epoch_factors),
            ("lr_factors", &self.lr_factors),
        ] {
            if let Some(f) = values.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                return Err(Error::invalid(
                    field,
                    format!("factors must be positive and finite, got {f}"),
                ));
            }
        }
        for o in &self.optimizers {
            if o != "sgd" && o != "adam" {
                return Err(Error::invalid(
                    "optimizers",
                    format!("unknown optimizer `{o}`; known: sgd (adam is not available)"),
                ));
            }
        }
        self.standard(0.01).validate()
    }

    /// The standard evaluation of a set whose learning rate is `lr`.
    pub fn standard(&self, lr: f32) -> StandardEval {
        StandardEval {
            runs: self.runs,
            epochs: self.epochs,
            lr,
            seed: self.seed,
            augment: self.augment.clone(),
        }
    }
}

/// A training setup (a column of the result).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupInfo {
    /// Short name (`standard`, `epochs x0.3`, `lr x10`, `batch 10`, `full batch`, `sgd`, a
    /// bundle name).
    pub name: String,
    /// What differs from the standard evaluation.
    pub description: String,
}

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// A set given by the caller.
    Distilled,
    /// A random real set with the same per-class counts.
    Baseline,
}

/// Accuracy of one (set, setup).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityCell {
    /// Setup name.
    pub setup: String,
    /// Test accuracy of each run (`null` for a run that diverged).
    #[serde(deserialize_with = "crate::stats::nan::vec")]
    pub accuracies: Vec<f64>,
    /// Mean over the runs that did not diverge (`null` when all did).
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub mean: f64,
    /// Sample standard deviation over those runs.
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub std: f64,
    /// `mean` minus the standard setup's mean (negative: the setup hurts).
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub drop: f64,
    /// Runs whose loss became non-finite.
    pub diverged_runs: usize,
    /// Updates per run.
    pub steps: usize,
    /// Why the cell reuses another setup's runs, when it does.
    pub note: Option<String>,
}

/// One set's accuracy under every setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityRow {
    /// Set name.
    pub name: String,
    /// A given set or a random baseline.
    pub kind: RowKind,
    /// Training-set size.
    pub train_size: usize,
    /// The set's learning rate (learned, or 0.01) that the setups scale.
    pub lr: f64,
    /// For a baseline: its real training images (indices into the real training split).
    pub indices: Option<Vec<usize>>,
    /// For a given set: the name of its random real baseline row (when baselines were
    /// evaluated).
    #[serde(default)]
    pub baseline: Option<String>,
    /// One cell per setup, in the order of `setups`.
    pub cells: Vec<SensitivityCell>,
}

/// The result as two matrices (rows = sets, columns = setups).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityTable {
    /// Row names.
    pub rows: Vec<String>,
    /// Column names (setups, `standard` first).
    pub setups: Vec<String>,
    /// Mean accuracy.
    #[serde(deserialize_with = "crate::stats::nan::vec2")]
    pub accuracy: Vec<Vec<f64>>,
    /// Mean accuracy minus the standard column.
    #[serde(deserialize_with = "crate::stats::nan::vec2")]
    pub drop: Vec<Vec<f64>>,
}

/// Result of [`sensitivity`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityResult {
    /// Runs per cell.
    pub runs: usize,
    /// Epochs of the standard setup.
    pub epochs: usize,
    /// Test images the accuracies are measured on.
    pub test_images: usize,
    /// Classes of the data (chance accuracy is `1 / classes`).
    #[serde(default)]
    pub classes: usize,
    /// The setups, `standard` first.
    pub setups: Vec<SetupInfo>,
    /// The given sets in order, then the baselines.
    pub rows: Vec<SensitivityRow>,
    /// The same numbers as matrices.
    pub table: SensitivityTable,
    /// Setups that were skipped, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Standard,
    Epochs(usize),
    Lr(f64),
    Batch(Option<usize>),
    PlainSgd,
    Arch(usize),
}

struct Setup {
    info: SetupInfo,
    kind: Kind,
}

/// The setups of `config` for data of `shape`, with the other architectures opened; skipped
/// setups go to `notes`.
fn plan_setups(
    model: &Bundle,
    real: &Dataset,
    config: &SensitivityConfig,
    notes: &mut Vec<String>,
) -> Result<(Vec<Setup>, Vec<Bundle>)> {
    let setup = |name: String, description: String, kind: Kind| Setup {
        info: SetupInfo { name, description },
        kind,
    };
    let mut out = vec![setup(
        "standard".into(),
        format!(
            "standard evaluation: {} epochs, batch 256, SGD momentum 0.9, weight decay 5e-4, \
             lr x0.1 at half",
            config.epochs
        ),
        Kind::Standard,
    )];
    for &f in &config.epoch_factors {
        let e = ((config.epochs as f64 * f).round() as usize).max(1);
        out.push(setup(
            format!("epochs x{f}"),
            format!("{e} epochs instead of {}", config.epochs),
            Kind::Epochs(e),
        ));
    }
    for &f in &config.lr_factors {
        out.push(setup(
            format!("lr x{f}"),
            format!("learning rate x{f}"),
            Kind::Lr(f),
        ));
    }
    for &b in &config.batch_sizes {
        let (name, kind) = if b == 0 {
            ("full batch".to_string(), Kind::Batch(None))
        } else {
            (format!("batch {b}"), Kind::Batch(Some(b)))
        };
        out.push(setup(
            name.clone(),
            format!("{name} instead of 256 (same epochs)"),
            kind,
        ));
    }
    for o in &config.optimizers {
        match o.as_str() {
            "sgd" => out.push(setup(
                "sgd".into(),
                "plain SGD: momentum 0 instead of 0.9".into(),
                Kind::PlainSgd,
            )),
            _ => notes.push(format!(
                "optimizer `{o}` skipped: ddlens::train implements SGD (with or without \
                 momentum) only"
            )),
        }
    }
    let [c, h, w] = real.input_shape();
    let shape = format!("{c}x{h}x{w}");
    let mut bundles = Vec::new();
    for name in &config.architectures {
        let templated = name.contains("{shape}");
        let resolved = name.replace("{shape}", &shape);
        let opened = resolve_bundle(&resolved)
            .and_then(Bundle::open)
            .and_then(|b| {
                let m = b.manifest();
                if m.input_shape != real.input_shape() || m.num_classes != real.num_classes() {
                    Err(Error::invalid(
                        "architectures",
                        format!(
                            "bundle `{}` takes {:?} images and {} classes, the data has {:?} \
                             and {}",
                            b.name(),
                            m.input_shape,
                            m.num_classes,
                            real.input_shape(),
                            real.num_classes()
                        ),
                    ))
                } else {
                    Ok(b)
                }
            });
        match opened {
            Ok(b) if b.name() == model.name() => notes.push(format!(
                "architecture `{resolved}` skipped: it is the model of the standard setup"
            )),
            Ok(b) => {
                out.push(setup(
                    b.name().to_string(),
                    format!("architecture {} instead of {}", b.name(), model.name()),
                    Kind::Arch(bundles.len()),
                ));
                bundles.push(b);
            }
            Err(e) if templated => {
                notes.push(format!("architecture `{resolved}` skipped: {e}"));
            }
            Err(e) => {
                return Err(Error::invalid(
                    "architectures",
                    format!("architecture `{resolved}`: {e}"),
                ))
            }
        }
    }
    Ok((out, bundles))
}

impl SensitivityConfig {
    /// The training configuration of run `run` of `kind` for a set of `n` images at rate `lr`.
    fn setup_config(&self, kind: Kind, n: usize, lr: f32, run: usize) -> TrainConfig {
        let standard = self.standard(lr).train_config(n, run);
        match kind {
            Kind::Standard | Kind::Arch(_) => standard,
            Kind::Epochs(e) => TrainConfig {
                augment: self.augment.clone(),
                ..TrainConfig::standard_eval(e, lr, n, standard.seed)
            },
            Kind::Lr(f) => TrainConfig {
                lr: (lr as f64 * f) as f32,
                ..standard
            },
            Kind::Batch(b) => {
                let mut c = TrainConfig {
                    batch_size: b,
                    ..standard
                };
                let milestone = self.epochs / 2 * c.steps_per_epoch(n);
                c.schedule = Schedule::Step {
                    milestones: vec![milestone],
                    gamma: 0.1,
                };
                c
            }
            Kind::PlainSgd => {
                let mut c = standard;
                c.sgd.momentum = 0.0;
                c
            }
        }
    }
}

/// `config` with a batch at least as large as the data written as full batch, so that two
/// configurations that train identically compare equal.
fn effective(mut config: TrainConfig, n: usize) -> TrainConfig {
    if config.batch_size.is_some_and(|b| b >= n) {
        config.batch_size = None;
    }
    config
}

/// Whether `e` is the divergence error of [`crate::train::train`].
fn diverged(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { name, message } if name == "lr" && message.contains("diverged"))
}

/// What a row trains on: a given set or a baseline of the plan.
#[derive(Debug, Clone, Copy)]
enum Source {
    Set(usize),
    Baseline(usize),
}

/// One row to evaluate: a given set or a baseline.
struct RowPlan {
    name: String,
    kind: RowKind,
    baseline: Option<String>,
    source: Source,
    /// The rate the setups scale (learned, or 0.01).
    lr: f32,
    /// A baseline's real training indices.
    indices: Option<Vec<usize>>,
}

/// The set-up of [`sensitivity`]: the setups (other architectures opened), the baselines,
/// the test sample, the rows, and the units: one per (row, setup, run) that trains, in that
/// order (a setup that trains exactly like the standard one reuses its runs and has none):
/// unit `u` is run `u % runs` of the `u / runs`-th cell that trains.
pub struct SensitivityPlan<'a> {
    model: &'a Bundle,
    real: RealData<'a>,
    sets: &'a [NamedSet],
    config: &'a SensitivityConfig,
    notes: Vec<String>,
    setups: Vec<Setup>,
    bundles: Vec<Bundle>,
    bases: Vec<Baseline>,
    test: Dataset,
    rows: Vec<RowPlan>,
    /// `(row, setup)` of each cell that trains, in order.
    cells: Vec<(usize, usize)>,
}

impl<'a> SensitivityPlan<'a> {
    /// Plans the setups, draws the baselines and the test sample of `config`.
    pub fn new(
        model: &'a Bundle,
        real: RealData<'a>,
        sets: &'a [NamedSet],
        config: &'a SensitivityConfig,
    ) -> Result<SensitivityPlan<'a>> {
        config.validate()?;
        if sets.is_empty() {
            return Err(Error::invalid(
                "sets",
                "give at least one set (the baseline copies its per-class counts)",
            ));
        }
        check_sets(real.train, sets)?;
        let mut notes = Vec::new();
        let (setups, bundles) = plan_setups(model, real.train, config, &mut notes)?;
        let (bases, base_of) = if config.baseline {
            baselines(real.train, sets, 0, config.seed)?
        } else {
            (Vec::new(), Vec::new())
        };
        let test = test_sample(real.test, config.test_images, config.seed)?;
        let mut rows: Vec<RowPlan> = sets
            .iter()
            .enumerate()
            .map(|(i, s)| RowPlan {
                name: s.name.clone(),
                kind: RowKind::Distilled,
                baseline: base_of.get(i).map(|&b| bases[b].name.clone()),
                source: Source::Set(i),
                lr: s.lr.unwrap_or(0.01),
                indices: None,
            })
            .collect();
        rows.extend(bases.iter().enumerate().map(|(i, b)| RowPlan {
            name: b.name.clone(),
            kind: RowKind::Baseline,
            baseline: None,
            source: Source::Baseline(i),
            lr: 0.01,
            indices: Some(b.indices.clone()),
        }));
        let mut plan = SensitivityPlan {
            model,
            real,
            sets,
            config,
            notes,
            setups,
            bundles,
            bases,
            test,
            rows,
            cells: Vec::new(),
        };
        plan.cells = plan.training_cells();
        Ok(plan)
    }

    fn data(&self, row: &RowPlan) -> &Dataset {
        match row.source {
            Source::Set(i) => &self.sets[i].data,
            Source::Baseline(i) => &self.bases[i].data,
        }
    }

    /// Whether the cell of `kind` reuses the standard runs: same model and an identical
    /// training.
    fn reuses(&self, kind: Kind, n: usize, lr: f32) -> bool {
        let config = self.config;
        !matches!(kind, Kind::Standard | Kind::Arch(_))
            && effective(config.setup_config(kind, n, lr, 0), n)
                == effective(config.setup_config(Kind::Standard, n, lr, 0), n)
    }

    fn training_cells(&self) -> Vec<(usize, usize)> {
        let mut cells = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            let n = self.data(row).len();
            for (s, setup) in self.setups.iter().enumerate() {
                if !self.reuses(setup.kind, n, row.lr) {
                    cells.push((r, s));
                }
            }
        }
        cells
    }

    /// Number of units: cells that train × runs (saturating).
    pub fn units(&self) -> usize {
        self.cells.len().saturating_mul(self.config.runs)
    }

    /// The row, the setup and the run of unit `u`.
    pub fn unit(&self, u: usize) -> (usize, usize, usize) {
        let (r, s) = self.cells[u / self.config.runs];
        (r, s, u % self.config.runs)
    }

    /// Updates of every run of the cell of `(row, setup)`.
    fn cell_steps(&self, r: usize, s: usize) -> usize {
        let row = &self.rows[r];
        let n = self.data(row).len();
        self.config
            .setup_config(self.setups[s].kind, n, row.lr, 0)
            .total_steps(n)
    }

    /// The test accuracy of unit `u` (seeded by its run only), `None` when its loss
    /// diverged; `on_step` sees every update.
    pub fn run_unit(
        &self,
        u: usize,
        on_step: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<Option<f64>> {
        let (r, s, run) = self.unit(u);
        let row = &self.rows[r];
        let data = self.data(row);
        let kind = self.setups[s].kind;
        let bundle = match kind {
            Kind::Arch(i) => &self.bundles[i],
            _ => self.model,
        };
        let tc = self.config.setup_config(kind, data.len(), row.lr, run);
        match train_and_test(bundle, data, &tc, &self.test, on_step) {
            Ok(a) => Ok(Some(a)),
            Err(e) if diverged(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The result from every unit's accuracy (`None`: diverged), in unit order.
    pub fn assemble(&self, accuracies: &[Option<f64>]) -> Result<SensitivityResult> {
        if accuracies.len() != self.units() {
            return Err(Error::Internal(format!(
                "{} accuracies for {} sensitivity units",
                accuracies.len(),
                self.units()
            )));
        }
        let mut next = accuracies.iter();
        let mut rows = Vec::with_capacity(self.rows.len());
        for plan in &self.rows {
            let n = self.data(plan).len();
            let mut cells: Vec<SensitivityCell> = Vec::with_capacity(self.setups.len());
            for s in &self.setups {
                let steps = self
                    .config
                    .setup_config(s.kind, n, plan.lr, 0)
                    .total_steps(n);
                if self.reuses(s.kind, n, plan.lr) {
                    let standard = &cells[0];
                    cells.push(SensitivityCell {
                        setup: s.info.name.clone(),
                        note: Some(format!(
                            "trains exactly like the standard setup on {n} images; its runs are reused"
                        )),
                        steps,
                        ..standard.clone()
                    });
                    continue;
                }
                let runs: Vec<Option<f64>> =
                    next.by_ref().take(self.config.runs).copied().collect();
                let diverged_runs = runs.iter().filter(|a| a.is_none()).count();
                let accuracies: Vec<f64> = runs.iter().map(|a| a.unwrap_or(f64::NAN)).collect();
                let (mean, std) = crate::stats::mean_std_finite(&accuracies);
                cells.push(SensitivityCell {
                    setup: s.info.name.clone(),
                    accuracies,
                    mean,
                    std,
                    drop: 0.0,
                    diverged_runs,
                    steps,
                    note: None,
                });
            }
            let standard = cells[0].mean;
            for c in &mut cells {
                c.drop = c.mean - standard;
            }
            rows.push(SensitivityRow {
                name: plan.name.clone(),
                kind: plan.kind,
                train_size: n,
                lr: shortest_f64(plan.lr),
                indices: plan.indices.clone(),
                baseline: plan.baseline.clone(),
                cells,
            });
        }
        let table = SensitivityTable {
            rows: rows.iter().map(|r| r.name.clone()).collect(),
            setups: self.setups.iter().map(|s| s.info.name.clone()).collect(),
            accuracy: rows
                .iter()
                .map(|r| r.cells.iter().map(|c| c.mean).collect())
                .collect(),
            drop: rows
                .iter()
                .map(|r| r.cells.iter().map(|c| c.drop).collect())
                .collect(),
        };
        Ok(SensitivityResult {
            runs: self.config.runs,
            epochs: self.config.epochs,
            test_images: self.test.len(),
            classes: self.real.train.num_classes(),
            setups: self.setups.iter().map(|s| s.info.clone()).collect(),
            rows,
            table,
            notes: self.notes.clone(),
        })
    }
}

/// Evaluates every set (and its random baseline) under the standard evaluation and under each
/// variation of `config`, `config.runs` times. The same units as the sharded job
/// ([`Sharded`]), in one process.
pub fn sensitivity(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &SensitivityConfig,
    progress: &mut dyn Progress,
) -> Result<SensitivityResult> {
    run_all::<Sensitivity>(model, real, sets, config, progress)
}

/// One sensitivity training: its test accuracy, `null` when its loss diverged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityUnit {
    /// Test accuracy (`None`: diverged).
    pub accuracy: Option<f64>,
}

impl Sharded for Sensitivity {
    type Plan<'a> = SensitivityPlan<'a>;
    type Unit = SensitivityUnit;

    fn plan<'a>(
        model: &'a Bundle,
        real: RealData<'a>,
        sets: &'a [NamedSet],
        config: &'a SensitivityConfig,
    ) -> Result<SensitivityPlan<'a>> {
        SensitivityPlan::new(model, real, sets, config)
    }

    fn units(plan: &SensitivityPlan<'_>) -> usize {
        plan.units()
    }

    fn settings(plan: &SensitivityPlan<'_>) -> Result<Value> {
        let mut settings = base_settings(plan.model, plan.sets, plan.config);
        settings["setups"] = plan
            .setups
            .iter()
            .map(|s| json!({ "name": s.info.name, "description": s.info.description }))
            .collect();
        settings["architectures"] = plan
            .bundles
            .iter()
            .map(|b| json!({ "name": b.name(), "parameters": b.manifest().num_parameters() }))
            .collect();
        settings["rows"] = plan
            .rows
            .iter()
            .map(|r| {
                let d = plan.data(r);
                json!({ "name": r.name, "lr": r.lr, "content": content_hash(d, true) })
            })
            .collect();
        settings["test"] =
            json!({ "len": plan.test.len(), "content": content_hash(&plan.test, false) });
        Ok(settings)
    }

    fn cost(plan: &SensitivityPlan<'_>, u: usize) -> usize {
        let (r, s, _) = plan.unit(u);
        plan.cell_steps(r, s)
    }

    fn total_cost(plan: &SensitivityPlan<'_>) -> usize {
        plan.cells.iter().fold(0, |t: usize, &(r, s)| {
            t.saturating_add(plan.cell_steps(r, s).saturating_mul(plan.config.runs))
        })
    }

    fn run_unit(
        plan: &SensitivityPlan<'_>,
        u: usize,
        progress: &mut dyn Progress,
    ) -> Result<SensitivityUnit> {
        let steps = Self::cost(plan, u);
        let accuracy = plan.run_unit(u, &mut |step| {
            progress.report(Sensitivity::NAME, step, steps)
        })?;
        Ok(SensitivityUnit { accuracy })
    }

    fn assemble(
        plan: &SensitivityPlan<'_>,
        units: Vec<SensitivityUnit>,
        _progress: &mut dyn Progress,
    ) -> Result<SensitivityResult> {
        let accuracies: Vec<Option<f64>> = units.iter().map(|u| u.accuracy).collect();
        plan.assemble(&accuracies)
    }
}

impl SensitivityResult {
    /// Rows = sets (with their standard accuracy), columns = the setups other than the
    /// standard one, value = accuracy change in points (NaN, drawn grey, where every run
    /// diverged). The standard column itself is shown only when there is no other.
    pub fn heatmap(&self) -> Heatmap {
        // With no variation left, show the (all-zero) standard column rather than nothing.
        let skip = usize::from(self.setups.len() > 1);
        Heatmap {
            title: format!(
                "Accuracy change vs standard evaluation ({} epochs, {} run{})",
                self.epochs,
                self.runs,
                if self.runs == 1 { "" } else { "s" }
            ),
            rows: self
                .rows
                .iter()
                .map(|r| format!("{} ({:.1}%)", r.name, 100.0 * r.cells[0].mean))
                .collect(),
            cols: self
                .setups
                .iter()
                .skip(skip)
                .map(|s| short(&s.name))
                .collect(),
            values: self
                .rows
                .iter()
                .map(|r| r.cells.iter().skip(skip).map(|c| 100.0 * c.drop).collect())
                .collect(),
            value_label: "points; rows: standard accuracy".into(),
        }
    }
}

/// A column label without the `-CxHxW` suffix of bundle names.
fn short(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((stem, shape))
            if shape.split('x').count() == 3
                && shape.split('x').all(|p| p.parse::<usize>().is_ok()) =>
        {
            stem.to_string()
        }
        _ => name.to_string(),
    }
}

/// [`sensitivity`] as an [`Analysis`].
pub struct Sensitivity;

impl Analysis for Sensitivity {
    const NAME: &'static str = "sensitivity";
    const ABOUT: &'static str = "Each set and a random baseline under other training setups (epochs, lr, batch size, plain SGD, other architectures): accuracy change against the standard evaluation.";
    const OWN_BASELINE: bool = true;
    type Config = SensitivityConfig;
    type Output = SensitivityResult;

    fn config(budget: Budget, seed: u64) -> SensitivityConfig {
        SensitivityConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &SensitivityConfig,
        progress: &mut dyn Progress,
    ) -> Result<SensitivityResult> {
        sensitivity(model, real, sets, config, progress)
    }

    fn figures(output: &SensitivityResult) -> Result<Vec<(String, Figure)>> {
        Ok(vec![(String::new(), Figure::Heatmap(output.heatmap()))])
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`sensitivity`] tests.
pub const CLAIM: Claim = Claim {
    finding: "distilled data is sensitive to the training setup",
    claim: "Distilled data cannot replace real data under other training setups: away from the \
            setup it was distilled for (other epochs, learning rate, batch size, optimizer, \
            architecture) a distilled set keeps less of its accuracy than a random real set of \
            the same size.",
    effect: "per setup, the fraction of its above-chance standard accuracy the set keeps minus \
             the fraction its random real baseline keeps (negative: the set is more \
             sensitive); Student-t interval over the setups",
    null: 0.0,
    side: Side::Below,
};

/// The fraction of the above-chance standard accuracy that each setup keeps (`NaN` where the
/// setup diverged on every run).
fn kept(row: &SensitivityRow, chance: f64) -> Vec<f64> {
    let standard = row.cells[0].mean - chance;
    row.cells[1..]
        .iter()
        .map(|c| (c.mean - chance) / standard)
        .collect()
}

/// The verdict of a result: each set's kept fraction against its baseline's, over setups.
pub fn verdict(r: &SensitivityResult) -> Verdict {
    let chance = if r.classes > 0 {
        1.0 / r.classes as f64
    } else {
        0.0
    };
    let sets = r
        .rows
        .iter()
        .filter(|row| row.kind == RowKind::Distilled)
        .map(|row| {
            let base = row
                .baseline
                .as_ref()
                .and_then(|b| r.rows.iter().find(|x| &x.name == b));
            let Some(base) = base else {
                return CLAIM.unmeasured(&row.name, "no random real baseline was evaluated");
            };
            if r.setups.len() < 3 {
                return CLAIM.unmeasured(&row.name, "fewer than two setups besides the standard");
            }
            let diffs: Vec<f64> = kept(row, chance)
                .into_iter()
                .zip(kept(base, chance))
                .map(|(a, b)| a - b)
                .filter(|d| d.is_finite())
                .collect();
            let mut v = CLAIM.judge(&row.name, crate::stats::t_interval(&diffs));
            v.reason = format!(
                "against {}, over {} setups: {}",
                base.name,
                diffs.len(),
                v.reason
            );
            v
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &SensitivityResult) -> Summary {
    let mut header = vec!["set".to_string()];
    header.extend(r.setups.iter().map(|s| short(&s.name)));
    let mut t = Table {
        header,
        rows: Vec::new(),
    };
    for row in &r.rows {
        let mut cells = vec![match row.kind {
            RowKind::Distilled => row.name.clone(),
            RowKind::Baseline => format!("{} (random real baseline)", row.name),
        }];
        for (j, c) in row.cells.iter().enumerate() {
            let finite: Vec<f64> = c
                .accuracies
                .iter()
                .copied()
                .filter(|a| a.is_finite())
                .collect();
            let ci = crate::stats::t_interval(&finite);
            let half = if ci.hi.is_finite() {
                format!(" ± {:.3}", ci.half_width())
            } else {
                String::new()
            };
            cells.push(if j == 0 {
                format!("{}{half}", fixed(c.mean, 3))
            } else {
                format!("{}{half} ({:+.1})", fixed(c.mean, 3), 100.0 * c.drop)
            });
        }
        t.rows.push(cells);
    }
    Summary {
        title: "Sensitivity to the training setup".into(),
        question: format!(
            "Can distilled data replace real data under other training setups? Test accuracy \
             on {} images under each setup, mean ± 95% half-interval over {} run(s), with the \
             change from the standard evaluation ({} epochs) in points.",
            r.test_images, r.runs, r.epochs
        ),
        finding: (!r.notes.is_empty()).then(|| r.notes.join(" ")),
        tables: vec![t],
        ..Summary::default()
    }
}
