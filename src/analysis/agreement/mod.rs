//! `agreement` (paper §4): what do distilled sets teach? A model trained on a distilled set is
//! compared, by the agreement of its test predictions, with real-trained models of the same
//! test accuracy from two pools:
//!
//! * pool A: models trained to the end on small random real subsets (per-class fraction drawn
//!   uniformly from `[pool_a_fraction_min, pool_a_fraction_max]`, P_real);
//! * pool B: P_real runs on the whole real training set over one epoch, every recorded step
//!   a member (early-stopped models).
//!
//! Agreement(f, g) is the fraction of test points where f and g predict the same class. The
//! paper finds the distilled-trained model agrees more with accuracy-matched early-stopped
//! models (pool B) than with accuracy-matched models trained on little real data (pool A) for
//! every method (MTT 0.629 vs 0.570): distilled data carry early training dynamics.
//!
//! The distilled-trained models follow P_dist, the paper's protocol for training on a
//! distilled set (full batch, `distilled_steps` steps, SGD lr 0.01, momentum 0.9).
//!
//! The pools are embarrassingly parallel. Their members are jobs `0..pool_a_size` (pool A)
//! followed by `pool_b_runs` jobs (pool B), and every random draw of job `j` comes from
//! [`member_seed`]`(seed, pool, j)` alone, so [`train_pool_shard`] can train any subset of the
//! jobs ([`Shard`] `i/n` of [`crate::shard`] takes the jobs with `j % n == i`) in separate processes, write them
//! to pool files, and [`merge_pool`] gives exactly the members of an unsharded run.

//!
//! Files: `pool.rs` (the pools' jobs, seeds, shards and training), `pool_file.rs` (pool files
//! on disk and their merge); this file has the settings, the matching and the result.

use serde::{Deserialize, Serialize};

use super::kde::{gaussian_kde, linspace, silverman_bandwidth};
use super::support::test_sample;
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::report::plot::{BarChart, LineChart, Series};
use crate::report::summary::{fixed, Summary, Table};
use crate::stats::Interval;
use crate::train::{evaluate_with_state, train, Control, StepContext, TrainConfig};
use crate::verdict::{Claim, Side, Verdict};

mod pool;
mod pool_file;

pub use pool::{
    distilled_seed, member_seed, pool_fingerprint, train_pool_shard, train_pool_shard_into, Pool,
    PoolMember, PoolShard, Shard, POOL_FORMAT, POOL_VERSION,
};
pub use pool_file::{merge_pool, read_pool_files};

/// Settings of [`agreement`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementConfig {
    /// Test images (class-balanced sample, seeded by `seed`) on which predictions are
    /// compared; 0 = the whole test set.
    pub test_images: usize,
    /// Pool A: number of models trained on random real subsets.
    pub pool_a_size: usize,
    /// Pool A: smallest per-class fraction of the real training set.
    pub pool_a_fraction_min: f64,
    /// Pool A: largest per-class fraction.
    pub pool_a_fraction_max: f64,
    /// Pool A: P_real epochs over each subset.
    pub pool_a_epochs: usize,
    /// Pool A: stop each training after this many steps (`null`: all epochs).
    pub pool_a_max_steps: Option<usize>,
    /// Pool B: number of P_real runs on the whole training set.
    pub pool_b_runs: usize,
    /// Pool B: epochs per run.
    pub pool_b_epochs: usize,
    /// Pool B: stop each run after this many steps (`null`: all epochs).
    pub pool_b_max_steps: Option<usize>,
    /// Pool B: record the test predictions every this many steps (and at step 0 and the last
    /// step); every record is a member.
    pub pool_b_every: usize,
    /// P_dist steps of each distilled-trained model.
    pub distilled_steps: usize,
    /// Distilled-trained models per set (initialisation `r` is shared by every set).
    pub distilled_runs: usize,
    /// Pool members whose test accuracy is within this distance of the distilled-trained
    /// model's are its matches...
    pub match_tolerance: f64,
    /// ...unless fewer than `match_k` are: then the `match_k` nearest in accuracy.
    pub match_k: usize,
    /// Seed of every draw (test sample, subsets, initialisations, shuffles).
    pub seed: u64,
}

impl AgreementConfig {
    /// The defaults of a budget (docs/analyses.md has the table and the costs).
    pub fn for_budget(budget: Budget, seed: u64) -> AgreementConfig {
        let paper = AgreementConfig {
            test_images: 0,
            pool_a_size: 100,
            pool_a_fraction_min: 0.005,
            pool_a_fraction_max: 0.05,
            pool_a_epochs: 100,
            pool_a_max_steps: None,
            pool_b_runs: 5,
            pool_b_epochs: 1,
            pool_b_max_steps: None,
            pool_b_every: 1,
            distilled_steps: 300,
            distilled_runs: 5,
            match_tolerance: 0.01,
            match_k: 5,
            seed,
        };
        match budget {
            Budget::Paper => paper,
            Budget::Cpu => AgreementConfig {
                test_images: 1_000,
                pool_a_size: 3,
                pool_a_max_steps: Some(40),
                pool_b_runs: 1,
                pool_b_max_steps: Some(60),
                pool_b_every: 3,
                distilled_steps: 100,
                distilled_runs: 1,
                match_tolerance: 0.02,
                match_k: 2,
                ..paper
            },
            Budget::Smoke => AgreementConfig {
                test_images: 500,
                pool_a_size: 2,
                pool_a_epochs: 2,
                pool_a_max_steps: Some(10),
                pool_b_runs: 2,
                pool_b_max_steps: Some(10),
                pool_b_every: 2,
                distilled_steps: 20,
                distilled_runs: 1,
                match_tolerance: 0.05,
                match_k: 1,
                ..paper
            },
        }
    }

    /// Number of pool jobs: pool A members, then pool B runs.
    pub fn jobs(&self) -> usize {
        self.pool_a_size + self.pool_b_runs
    }

    /// The pool and the index within it of job `j`.
    pub fn job(&self, j: usize) -> (Pool, usize) {
        if j < self.pool_a_size {
            (Pool::A, j)
        } else {
            (Pool::B, j - self.pool_a_size)
        }
    }

    /// Rejects nonsensical settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("pool_a_size", self.pool_a_size),
            ("pool_a_epochs", self.pool_a_epochs),
            ("pool_b_runs", self.pool_b_runs),
            ("pool_b_epochs", self.pool_b_epochs),
            ("pool_b_every", self.pool_b_every),
            ("distilled_steps", self.distilled_steps),
            ("distilled_runs", self.distilled_runs),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        for (name, v) in [
            ("pool_a_max_steps", self.pool_a_max_steps),
            ("pool_b_max_steps", self.pool_b_max_steps),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(name, "must be at least 1 (or null)"));
            }
        }
        let (lo, hi) = (self.pool_a_fraction_min, self.pool_a_fraction_max);
        if !(0.0 < lo && lo <= hi && hi <= 1.0) {
            return Err(Error::invalid(
                "pool_a_fraction_min",
                format!(
                    "need 0 < pool_a_fraction_min <= pool_a_fraction_max <= 1, got [{lo}, {hi}]"
                ),
            ));
        }
        if !(self.match_tolerance >= 0.0 && self.match_tolerance.is_finite()) {
            return Err(Error::invalid("match_tolerance", "must be finite and >= 0"));
        }
        Ok(())
    }
}

/// Agreement of two prediction vectors: the fraction of positions where they are equal.
pub fn agreement_score(a: &[u16], b: &[u16]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::invalid(
            "predictions",
            format!(
                "agreement needs two non-empty prediction vectors of the same length, got {} and {}",
                a.len(),
                b.len()
            ),
        ));
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    Ok(same as f64 / a.len() as f64)
}

/// The members matched to a model of accuracy `target`: all with `|accuracy - target| <=
/// tolerance` (up to 1e-12 of rounding), or, when fewer than `k` are, the `k` nearest (ties:
/// lower index first). Indices ascending.
pub fn match_members(accuracies: &[f64], target: f64, tolerance: f64, k: usize) -> Vec<usize> {
    let dist = |i: usize| (accuracies[i] - target).abs();
    let mut order: Vec<usize> = (0..accuracies.len()).collect();
    order.sort_by(|&i, &j| dist(i).total_cmp(&dist(j)).then(i.cmp(&j)));
    let within = order
        .iter()
        .take_while(|&&i| dist(i) <= tolerance + 1e-12)
        .count();
    order.truncate(within.max(k.min(accuracies.len())));
    order.sort_unstable();
    order
}

/// Summary of one pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolSummary {
    /// What the pool is.
    pub description: String,
    /// Number of members.
    pub members: usize,
    /// Member labels (`a<j>` for pool A, `b<run>@<step>` for pool B), in member order.
    pub labels: Vec<String>,
    /// Test accuracy of each member.
    pub accuracies: Vec<f64>,
}

/// Agreement of a set's distilled-trained models with their matches in one pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchedAgreement {
    /// Matched (distilled model, member) pairs over all runs.
    pub matched: usize,
    /// Mean agreement over the pairs (`null` when nothing matched).
    pub mean: Option<f64>,
    /// Standard deviation over the pairs.
    pub std: Option<f64>,
    /// Mean |member accuracy - distilled accuracy| over the pairs: how well matched.
    pub mean_accuracy_gap: Option<f64>,
    /// Agreement of each pair.
    pub agreements: Vec<f64>,
    /// The member of each pair (labels as in [`PoolSummary::labels`]).
    pub members: Vec<String>,
}

/// One set's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAgreement {
    /// Set name.
    pub name: String,
    /// Number of images.
    pub images: usize,
    /// Test accuracy of each distilled-trained model.
    pub run_accuracies: Vec<f64>,
    /// Their mean.
    pub test_accuracy: f64,
    /// Agreement with accuracy-matched pool A members (random real subsets).
    pub pool_a: MatchedAgreement,
    /// Agreement with accuracy-matched pool B members (early-stopped).
    pub pool_b: MatchedAgreement,
    /// Mean agreement with pool B minus with pool A, with its bootstrap interval over the
    /// test images (`None` when either pool had no accuracy-matched member).
    #[serde(default)]
    pub b_minus_a: Option<Interval>,
}

/// Result of [`agreement`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgreementResult {
    /// Test images the predictions cover.
    pub test_images: usize,
    /// How the distilled-trained models were trained.
    pub distilled_protocol: String,
    /// Pool A (random real subsets).
    pub pool_a: PoolSummary,
    /// Pool B (early-stopped).
    pub pool_b: PoolSummary,
    /// The sets, in the order given.
    pub sets: Vec<SetAgreement>,
}

fn member_label(config: &AgreementConfig, m: &PoolMember) -> String {
    match config.job(m.job) {
        (Pool::A, i) => format!("a{i}"),
        (Pool::B, r) => format!("b{r}@{}", m.step),
    }
}

/// The agreement analysis with an already trained pool (all of it, e.g. from
/// [`merge_pool`]): trains `distilled_runs` P_dist models per set and compares them with
/// their accuracy-matched pool members.
pub fn agreement_from_pool(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &AgreementConfig,
    pool: &[PoolMember],
    progress: &mut dyn Progress,
) -> Result<AgreementResult> {
    config.validate()?;
    let test = test_sample(real.test, config.test_images, config.seed)?;
    if let Some(m) = pool.iter().find(|m| m.predictions.len() != test.len()) {
        return Err(Error::invalid(
            "pool",
            format!(
                "member of job {} has {} predictions for {} test images",
                m.job,
                m.predictions.len(),
                test.len()
            ),
        ));
    }
    for s in sets {
        s.data.check_against(model.manifest())?;
    }
    let split = |p: Pool| -> Vec<&PoolMember> {
        pool.iter().filter(|m| config.job(m.job).0 == p).collect()
    };
    let (a, b) = (split(Pool::A), split(Pool::B));
    if a.is_empty() || b.is_empty() {
        return Err(Error::invalid(
            "pool",
            format!(
                "pool A has {} members and pool B {}; both need some",
                a.len(),
                b.len()
            ),
        ));
    }
    let summary = |members: &[&PoolMember], description: String| PoolSummary {
        description,
        members: members.len(),
        labels: members.iter().map(|m| member_label(config, m)).collect(),
        accuracies: members.iter().map(|m| m.accuracy).collect(),
    };
    let pool_a = summary(
        &a,
        format!(
            "{} models trained with P_real ({} epochs{}) on random real subsets, per-class fraction uniform in [{}, {}]",
            config.pool_a_size,
            config.pool_a_epochs,
            config.pool_a_max_steps.map_or(String::new(), |s| format!(", at most {s} steps")),
            config.pool_a_fraction_min,
            config.pool_a_fraction_max
        ),
    );
    let pool_b = summary(
        &b,
        format!(
            "{} P_real runs on the whole training set ({} epoch(s){}), test predictions every {} step(s)",
            config.pool_b_runs,
            config.pool_b_epochs,
            config.pool_b_max_steps.map_or(String::new(), |s| format!(", at most {s} steps")),
            config.pool_b_every
        ),
    );
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let mut runs = Vec::new(); // the count is the caller's: no reservation
        for r in 0..config.distilled_runs {
            let seed = distilled_seed(config.seed, r);
            let tc = TrainConfig::p_dist(config.distilled_steps, seed);
            let stage = format!(
                "P_dist on {} (run {}/{})",
                set.name,
                r + 1,
                config.distilled_runs
            );
            let mut hook = |ctx: &StepContext<'_>| {
                progress.report(&stage, ctx.step, ctx.total_steps)?;
                Ok(Control::Continue)
            };
            let trained = train(
                model,
                model.init_params(seed),
                &set.data,
                &tc,
                &mut [&mut hook],
            )?;
            runs.push(evaluate_with_state(
                model,
                &trained.params,
                &trained.state,
                &test,
            )?);
        }
        // Per test image, the fraction of matched pairs that predict it alike.
        let matched = |members: &[&PoolMember]| -> Result<(MatchedAgreement, Vec<f64>)> {
            let accs: Vec<f64> = members.iter().map(|m| m.accuracy).collect();
            let (mut agreements, mut labels, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
            let mut per_image = vec![0.0f64; test.len()];
            for run in &runs {
                for i in match_members(&accs, run.accuracy, config.match_tolerance, config.match_k)
                {
                    agreements.push(agreement_score(&run.predictions, &members[i].predictions)?);
                    labels.push(member_label(config, members[i]));
                    gaps.push((members[i].accuracy - run.accuracy).abs());
                    for ((p, x), y) in per_image
                        .iter_mut()
                        .zip(&run.predictions)
                        .zip(&members[i].predictions)
                    {
                        *p += f64::from(u8::from(x == y));
                    }
                }
            }
            let pairs = agreements.len().max(1) as f64;
            per_image.iter_mut().for_each(|p| *p /= pairs);
            let mean = |v: &[f64]| (!v.is_empty()).then(|| crate::stats::mean(v));
            let m = mean(&agreements);
            let std = m.map(|_| crate::stats::sample_std(&agreements));
            let matched = MatchedAgreement {
                matched: agreements.len(),
                mean: m,
                std,
                mean_accuracy_gap: mean(&gaps),
                agreements,
                members: labels,
            };
            Ok((matched, per_image))
        };
        let run_accuracies: Vec<f64> = runs.iter().map(|e| e.accuracy).collect();
        let ((pool_a, per_a), (pool_b, per_b)) = (matched(&a)?, matched(&b)?);
        let b_minus_a = (pool_a.matched > 0 && pool_b.matched > 0).then(|| {
            let diff: Vec<f64> = per_b.iter().zip(&per_a).map(|(b, a)| b - a).collect();
            let seed = config.seed.wrapping_add(out.len() as u64);
            crate::stats::bootstrap_mean(&diff, crate::stats::BOOTSTRAP_RESAMPLES, seed)
        });
        out.push(SetAgreement {
            name: set.name.clone(),
            images: set.data.len(),
            test_accuracy: run_accuracies.iter().sum::<f64>() / run_accuracies.len() as f64,
            run_accuracies,
            pool_a,
            pool_b,
            b_minus_a,
        });
    }
    progress.report("agreement", sets.len(), sets.len())?;
    Ok(AgreementResult {
        test_images: test.len(),
        distilled_protocol: format!(
            "P_dist: full batch on the set, {} steps, SGD lr 0.01, momentum 0.9, no weight decay; {} run(s) per set",
            config.distilled_steps, config.distilled_runs
        ),
        pool_a,
        pool_b,
        sets: out,
    })
}

/// The whole analysis in one process: trains both pools ([`train_pool_shard`] with
/// [`Shard::WHOLE`]), then [`agreement_from_pool`].
pub fn agreement(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &AgreementConfig,
    progress: &mut dyn Progress,
) -> Result<AgreementResult> {
    let shard = train_pool_shard(model, real, config, Shard::WHOLE, progress)?;
    let pool = merge_pool(std::slice::from_ref(&shard), &shard.fingerprint, config)?;
    agreement_from_pool(model, real, sets, config, &pool, progress)
}

impl AgreementResult {
    /// Kernel density (Gaussian, Silverman bandwidth) of the matched agreements, one curve per
    /// set and pool.
    pub fn kde_chart(&self) -> LineChart {
        let mut curves: Vec<(String, &[f64])> = Vec::new();
        for s in &self.sets {
            curves.push((
                format!("{} vs A (random subsets)", s.name),
                &s.pool_a.agreements,
            ));
            curves.push((
                format!("{} vs B (early-stopped)", s.name),
                &s.pool_b.agreements,
            ));
        }
        let floor = 0.005;
        let hs: Vec<f64> = curves
            .iter()
            .map(|(_, v)| silverman_bandwidth(v, floor))
            .collect();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for ((_, v), h) in curves.iter().zip(&hs) {
            for x in v.iter() {
                lo = lo.min(x - 3.0 * h);
                hi = hi.max(x + 3.0 * h);
            }
        }
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
            (lo, hi) = (0.0, 1.0);
        }
        let grid = linspace(lo.max(0.0), hi.min(1.0), 300);
        LineChart {
            title: "Agreement with accuracy-matched real-trained models".into(),
            x_label: "agreement (fraction of test points predicted alike)".into(),
            y_label: "density".into(),
            series: curves
                .iter()
                .zip(&hs)
                .filter(|((_, v), _)| !v.is_empty())
                .map(|((name, v), &h)| {
                    let d = gaussian_kde(v, h, &grid);
                    Series::new(name.clone(), grid.iter().copied().zip(d).collect())
                })
                .collect(),
            log_x: false,
            markers: false,
            log_y: false,
            integer_x: false,
        }
    }

    /// Mean agreement per set with each pool.
    pub fn means_chart(&self) -> BarChart {
        let values = |f: fn(&SetAgreement) -> Option<f64>| {
            self.sets.iter().map(|s| f(s).unwrap_or(f64::NAN)).collect()
        };
        BarChart {
            title: "Mean agreement with accuracy-matched models".into(),
            y_label: "agreement".into(),
            categories: self
                .sets
                .iter()
                .map(|s| format!("{} (acc {:.2})", s.name, s.test_accuracy))
                .collect(),
            groups: vec![
                ("A: random real subsets".into(), values(|s| s.pool_a.mean)),
                ("B: early-stopped".into(), values(|s| s.pool_b.mean)),
            ],
        }
    }
}

/// [`agreement`] as an [`Analysis`].
pub struct Agreement;

impl Analysis for Agreement {
    const NAME: &'static str = "agreement";
    const ABOUT: &'static str = "Agreement of distilled-trained models' test predictions with accuracy-matched models trained on random real subsets (pool A) and early-stopped real runs (pool B).";
    type Config = AgreementConfig;
    type Output = AgreementResult;

    fn config(budget: Budget, seed: u64) -> AgreementConfig {
        AgreementConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &AgreementConfig,
        progress: &mut dyn Progress,
    ) -> Result<AgreementResult> {
        agreement(model, real, sets, config, progress)
    }

    fn figures(output: &AgreementResult) -> Result<Vec<(String, Figure)>> {
        Ok(vec![
            (String::new(), Figure::Lines(output.kde_chart())),
            ("means".to_string(), Figure::Bars(output.means_chart())),
        ])
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`agreement`] tests.
pub const CLAIM: Claim = Claim {
    finding: "distilled data behaves like early-stopped real training",
    claim: "A model trained on distilled data agrees more with early-stopped models of real \
            training (pool B) than with models trained to the same accuracy on random real \
            subsets (pool A), for every method (paper, CIFAR-10 IPC 10, MTT: 0.629 vs 0.570).",
    effect: "mean agreement with accuracy-matched pool B members minus with pool A members; \
             bootstrap interval over the test images (the pools' members themselves are not \
             resampled)",
    null: 0.0,
    side: Side::Above,
};

/// The verdict of a result: each set's agreement with pool B minus with pool A.
pub fn verdict(r: &AgreementResult) -> Verdict {
    let sets = r
        .sets
        .iter()
        .map(|s| match s.b_minus_a {
            Some(d) => CLAIM.judge(&s.name, d),
            None => CLAIM.unmeasured(
                &s.name,
                format!(
                    "no accuracy-matched member in pool {} (its models' accuracies do not reach \
                     the set's {:.3}; widen match_tolerance or train the pools longer)",
                    if s.pool_a.matched == 0 { "A" } else { "B" },
                    s.test_accuracy
                ),
            ),
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &AgreementResult) -> Summary {
    let mut t = Table {
        header: [
            "set",
            "P_dist test accuracy (runs)",
            "agreement, pool A (subsets)",
            "agreement, pool B (early-stopped)",
            "B − A [95% interval] (n test images)",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for s in &r.sets {
        let pool = |m: &MatchedAgreement| match m.mean {
            Some(mean) => format!("{mean:.3} ({} pairs)", m.matched),
            None => "no match".into(),
        };
        t.rows.push(vec![
            s.name.clone(),
            format!("{} ({})", fixed(s.test_accuracy, 3), s.run_accuracies.len()),
            pool(&s.pool_a),
            pool(&s.pool_b),
            s.b_minus_a.map_or_else(|| "–".into(), |d| d.display(3)),
        ]);
    }
    Summary {
        title: "Prediction agreement".into(),
        question: format!(
            "What does distilled data capture? Agreement of the distilled-trained model's \
             predictions on {} test images with accuracy-matched models trained on random real \
             subsets (pool A) and with early-stopped real runs (pool B). Distilled-trained \
             models: {}. Paper: higher with early-stopped models for every method.",
            r.test_images, r.distilled_protocol
        ),
        finding: None,
        tables: vec![t],
        ..Summary::default()
    }
}
