//! `curvature` (paper §4.3): the Hessian trace of the mean cross-entropy loss along one P_real
//! run, on real training data and on each distilled set. The paper finds that distilled-set
//! traces rise faster and peak near twice the real one around steps 60–100: distilled data
//! "sees" the sharp early directions of the loss landscape. Going further than the paper, the
//! top Hessian eigenvalues (Lanczos) and the eigenvalue density (stochastic Lanczos
//! quadrature) at chosen steps.
//!
//! Every measurement is taken inside the training hook at the step it belongs to, so the run
//! never stores more than the current parameters.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::hessian::{self, HessianOperator, TraceEstimate};
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::data::{fraction_per_class, Dataset};
use crate::error::{Error, Result};
use crate::report::plot::{LineChart, Series};
use crate::report::summary::{fixed_opt, Summary, Table};
use crate::stats::Interval;
use crate::train::{self, Control, Hook, StepContext, TrainConfig};
use crate::verdict::{Claim, Side, Verdict};

/// Settings of [`curvature`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvatureConfig {
    /// P_real steps at which the curvature is measured (0 = the initialisation).
    pub steps: Vec<usize>,
    /// Real training images (class-balanced sample) whose loss defines the real Hessian;
    /// 0 = the whole training set.
    pub train_images: usize,
    /// Examples per Hessian-vector-product graph call.
    pub batch: usize,
    /// Hutchinson probes at most per trace.
    pub max_probes: usize,
    /// Hutchinson stopping tolerance (relative change of the running mean; the paper's rule,
    /// used when `target_rel_se` is 0).
    pub tol: f64,
    /// When positive: probe until the trace's standard error is at most this fraction of its
    /// magnitude (or `max_probes`), instead of the `tol` rule.
    #[serde(default)]
    pub target_rel_se: f64,
    /// Steps at which the top eigenvalues and the density are computed (each must be in
    /// `steps`); empty = none.
    pub spectrum_steps: Vec<usize>,
    /// Top eigenvalues reported.
    pub top_k: usize,
    /// Lanczos steps for the top eigenvalues and per SLQ probe.
    pub lanczos_iters: usize,
    /// SLQ probes (Lanczos runs) for the density.
    pub slq_probes: usize,
    /// EMA smoothing factor of the plotted traces (the paper's 0.9).
    pub ema: f64,
    /// Seed of the P_real run, of the real sample and of every probe.
    pub seed: u64,
}

impl CurvatureConfig {
    /// The defaults of a budget. `paper`: every step 0..=300 on the whole training set, up to
    /// 100 probes at tol 1e-3 (the paper's rule). `cpu`: 7 steps up to 150, three of them in
    /// the paper's window 60-100, 512 real images, probes until the standard error is at most
    /// 10% of the trace (at most 32), spectrum at the last step only. `smoke`: 3 steps, 64
    /// real images, at most 6 probes towards the same 10%.
    pub fn for_budget(budget: Budget, seed: u64) -> CurvatureConfig {
        match budget {
            Budget::Paper => CurvatureConfig {
                steps: (0..=300).collect(),
                train_images: 0,
                batch: 256,
                max_probes: 100,
                tol: 1e-3,
                target_rel_se: 0.0,
                spectrum_steps: vec![0, 50, 100, 300],
                top_k: 10,
                lanczos_iters: 40,
                slq_probes: 5,
                ema: 0.9,
                seed,
            },
            Budget::Cpu => CurvatureConfig {
                steps: vec![0, 20, 40, 60, 80, 100, 150],
                train_images: 512,
                batch: 256,
                max_probes: 32,
                tol: 1e-3,
                target_rel_se: 0.1,
                spectrum_steps: vec![150],
                top_k: 3,
                lanczos_iters: 10,
                slq_probes: 1,
                ema: 0.5,
                seed,
            },
            Budget::Smoke => CurvatureConfig {
                steps: vec![0, 3, 6],
                train_images: 64,
                batch: 64,
                max_probes: 6,
                tol: 1e-3,
                target_rel_se: 0.1,
                spectrum_steps: vec![6],
                top_k: 2,
                lanczos_iters: 4,
                slq_probes: 1,
                ema: 0.5,
                seed,
            },
        }
    }

    fn validate(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Err(Error::invalid("steps", "give at least one step"));
        }
        if self.steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid("steps", "must be strictly increasing"));
        }
        if let Some(s) = self.spectrum_steps.iter().find(|s| !self.steps.contains(s)) {
            return Err(Error::invalid(
                "spectrum_steps",
                format!("step {s} is not one of `steps`"),
            ));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(Error::invalid("ema", "must be in [0, 1)"));
        }
        if !self.spectrum_steps.is_empty() && (self.top_k == 0 || self.lanczos_iters == 0) {
            return Err(Error::invalid(
                "top_k",
                "top_k and lanczos_iters must be at least 1 when spectrum_steps is given",
            ));
        }
        Ok(())
    }
}

/// The spectrum of one set's Hessian at one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spectrum {
    /// The P_real step.
    pub step: usize,
    /// Largest eigenvalues, descending.
    pub top_eigenvalues: Vec<f64>,
    /// Eigenvalue grid of the density.
    pub grid: Vec<f64>,
    /// SLQ density on the grid (Gaussian-broadened).
    pub density: Vec<f64>,
}

/// One set's curvature along the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetCurvature {
    /// `real` for the real training sample, else the set's name.
    pub name: String,
    /// Examples whose mean loss defines the Hessian.
    pub examples: usize,
    /// Trace estimate at every measured step.
    pub traces: Vec<TraceEstimate>,
    /// EMA-smoothed traces (what the figure shows).
    pub ema: Vec<f64>,
    /// Spectra at `spectrum_steps`.
    pub spectra: Vec<Spectrum>,
}

/// Result of [`curvature`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvatureResult {
    /// Measured steps.
    pub steps: Vec<usize>,
    /// The real sample first, then each set in the order given.
    pub sets: Vec<SetCurvature>,
    /// Step of each set's largest smoothed trace (the paper compares where they peak).
    pub peak_steps: Vec<usize>,
    /// The standard-error target of the traces (0: the paper's `tol` rule was used).
    #[serde(default)]
    pub target_rel_se: f64,
}

/// Hessian traces (and spectra) along one P_real run on real data and on each set.
pub fn curvature(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &CurvatureConfig,
    progress: &mut dyn Progress,
) -> Result<CurvatureResult> {
    config.validate()?;
    let sample = real_sample(real.train, config)?;
    let mut targets: Vec<(&str, &Dataset)> = vec![("real", &sample)];
    targets.extend(sets.iter().map(|s| (s.name.as_str(), &s.data)));
    for (name, d) in &targets {
        d.check_against(model.manifest())
            .map_err(|e| Error::invalid("sets", format!("set `{name}`: {e}")))?;
    }
    let last = *config.steps.last().expect("validated non-empty");
    let per_epoch = TrainConfig::p_real(1, config.seed).steps_per_epoch(real.train.len());
    let mut train_config = TrainConfig::p_real(last.div_ceil(per_epoch).max(1), config.seed);
    train_config.max_steps = Some(last);
    let mut hook = Measure {
        config,
        targets: &targets,
        rows: vec![Vec::new(); targets.len()],
        spectra: vec![Vec::new(); targets.len()],
        progress,
    };
    progress_start(&mut hook)?;
    train::train_at(
        model,
        config.seed,
        real.train,
        &train_config,
        &config.steps,
        &mut [&mut hook],
    )?;
    let measured = hook.rows[0].len();
    if measured != config.steps.len() {
        return Err(Error::invalid(
            "steps",
            format!(
                "the run measured {measured} of {} steps (is the training set large enough?)",
                config.steps.len()
            ),
        ));
    }
    let sets: Vec<SetCurvature> = targets
        .iter()
        .zip(hook.rows)
        .zip(hook.spectra)
        .map(|(((name, d), traces), spectra)| SetCurvature {
            name: name.to_string(),
            examples: d.len(),
            ema: ema(traces.iter().map(|t| t.trace), config.ema),
            traces,
            spectra,
        })
        .collect();
    let peak_steps = sets
        .iter()
        .map(|s| {
            let k = (0..s.ema.len())
                .max_by(|&a, &b| s.ema[a].total_cmp(&s.ema[b]))
                .unwrap_or(0);
            config.steps[k]
        })
        .collect();
    Ok(CurvatureResult {
        steps: config.steps.clone(),
        sets,
        peak_steps,
        target_rel_se: config.target_rel_se,
    })
}

fn progress_start(hook: &mut Measure<'_, '_, '_>) -> Result<()> {
    hook.progress
        .report("curvature", 0, hook.config.steps.len())
}

fn real_sample(train: &Dataset, config: &CurvatureConfig) -> Result<Dataset> {
    if config.train_images == 0 || config.train_images >= train.len() {
        return Ok(train.clone());
    }
    let fraction = config.train_images as f64 / train.len() as f64;
    let idx = fraction_per_class(train, &vec![fraction; train.num_classes()], config.seed)?;
    train.select(&idx)
}

/// `s_0 = x_0`, `s_t = a·s_{t−1} + (1 − a)·x_t` (the paper's plotting smoothing).
pub fn ema(values: impl Iterator<Item = f64>, a: f64) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for v in values {
        let s = match out.last() {
            Some(&prev) => a * prev + (1.0 - a) * v,
            None => v,
        };
        out.push(s);
    }
    out
}

/// The training hook that measures at the configured steps.
struct Measure<'c, 't, 'p> {
    config: &'c CurvatureConfig,
    targets: &'t [(&'t str, &'t Dataset)],
    rows: Vec<Vec<TraceEstimate>>,
    spectra: Vec<Vec<Spectrum>>,
    progress: &'p mut dyn Progress,
}

impl Measure<'_, '_, '_> {
    fn measure(&mut self, ctx: &StepContext<'_>) -> Result<()> {
        let step = ctx.step;
        for (k, (_, data)) in self.targets.iter().enumerate() {
            let op = HessianOperator::new(ctx.bundle, ctx.params, data, self.config.batch)?;
            let mut rng = probe_rng(self.config.seed, step, k, 0);
            let c = self.config;
            let t = if c.target_rel_se > 0.0 {
                hessian::hutchinson_trace_to(&op, c.max_probes, c.target_rel_se, &mut rng)?
            } else {
                hessian::hutchinson_trace(&op, c.max_probes, c.tol, &mut rng)?
            };
            self.rows[k].push(t);
            if self.config.spectrum_steps.contains(&step) {
                let s = spectrum(&op, self.config, step, k)?;
                self.spectra[k].push(s);
            }
        }
        Ok(())
    }
}

impl Hook for Measure<'_, '_, '_> {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        if self.config.steps.binary_search(&ctx.step).is_ok() {
            self.measure(ctx)?;
            self.progress
                .report("curvature", self.rows[0].len(), self.config.steps.len())?;
        }
        Ok(Control::Continue)
    }
}

/// Independent probe streams per (step, set, purpose), so adding a set or a step never
/// changes the probes of another.
fn probe_rng(seed: u64, step: usize, set: usize, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((step as u64) << 24) ^ ((set as u64) << 4) ^ purpose);
    rng
}

fn spectrum(
    op: &HessianOperator<'_>,
    c: &CurvatureConfig,
    step: usize,
    set: usize,
) -> Result<Spectrum> {
    let mut rng = probe_rng(c.seed, step, set, 1);
    let top = hessian::top_eigenvalues(op, c.top_k, c.lanczos_iters, &mut rng)?;
    let mut rng = probe_rng(c.seed, step, set, 2);
    let density = hessian::spectral_density(op, c.slq_probes, c.lanczos_iters, &mut rng)?;
    let lo = density.nodes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = density
        .nodes
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-6);
    let (lo, hi) = (lo - 0.05 * span, hi + 0.05 * span);
    let grid: Vec<f64> = (0..200)
        .map(|i| lo + (hi - lo) * i as f64 / 199.0)
        .collect();
    // PyHessian-style broadening: a width of about 1% of the spectrum's span.
    let values = density.smoothed(&grid, 0.01 * span);
    Ok(Spectrum {
        step,
        top_eigenvalues: top,
        grid,
        density: values,
    })
}

impl CurvatureResult {
    /// EMA-smoothed Hessian trace against the P_real step, one curve per set.
    pub fn trace_chart(&self) -> LineChart {
        LineChart {
            title: "Hessian trace along P_real training".into(),
            x_label: "training step".into(),
            y_label: "trace of the Hessian (EMA-smoothed)".into(),
            series: self
                .sets
                .iter()
                .map(|s| {
                    let pts = self
                        .steps
                        .iter()
                        .map(|&t| t as f64)
                        .zip(s.ema.iter().copied());
                    Series::new(s.name.clone(), pts.collect())
                })
                .collect(),
            log_x: false,
            markers: self.steps.len() <= 30,
            log_y: false,
            integer_x: true,
        }
    }

    /// Eigenvalue densities at the last spectrum step, one curve per set.
    pub fn spectrum_chart(&self) -> Option<LineChart> {
        let step = self.sets.first()?.spectra.last()?.step;
        Some(LineChart {
            title: format!("Hessian eigenvalue density at step {step} (SLQ)"),
            x_label: "eigenvalue".into(),
            y_label: "density".into(),
            series: {
                let spectra: Vec<(&str, &Spectrum)> = self
                    .sets
                    .iter()
                    .filter_map(|s| Some((s.name.as_str(), s.spectra.last()?)))
                    .collect();
                // Fit the x range to where the densities hold their mass (0.5%-99.5% of each,
                // widest over the sets), so that an outlying tail does not squeeze the rest.
                let (lo, hi) =
                    spectra
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |acc, (_, sp)| {
                            let (a, b) = mass_range(sp, 0.005);
                            (acc.0.min(a), acc.1.max(b))
                        });
                let pad = 0.05 * (hi - lo).max(1e-9);
                spectra
                    .iter()
                    .map(|(name, sp)| {
                        let pts = sp
                            .grid
                            .iter()
                            .copied()
                            .zip(sp.density.iter().copied())
                            .filter(|&(x, _)| x >= lo - pad && x <= hi + pad);
                        Series::new(name.to_string(), pts.collect())
                    })
                    .collect()
            },
            log_x: false,
            markers: false,
            log_y: false,
            integer_x: false,
        })
    }
}

/// The grid values between which a density holds all but `tail` of its mass on each side.
fn mass_range(sp: &Spectrum, tail: f64) -> (f64, f64) {
    let total: f64 = sp.density.iter().sum();
    if total.is_nan() || total <= 0.0 || sp.grid.is_empty() {
        let lo = sp.grid.first().copied().unwrap_or(0.0);
        return (lo, sp.grid.last().copied().unwrap_or(lo));
    }
    let mut cum = 0.0;
    let (mut lo, mut hi) = (sp.grid[0], sp.grid[sp.grid.len() - 1]);
    let mut found_lo = false;
    for (&x, &d) in sp.grid.iter().zip(&sp.density) {
        cum += d / total;
        if !found_lo && cum >= tail {
            lo = x;
            found_lo = true;
        }
        if cum <= 1.0 - tail {
            hi = x;
        }
    }
    (lo, hi)
}

/// [`curvature`] as an [`Analysis`].
pub struct Curvature;

impl Analysis for Curvature {
    const NAME: &'static str = "curvature";
    const ABOUT: &'static str = "Hessian trace (Hutchinson), top eigenvalues (Lanczos) and eigenvalue density (SLQ) along one P_real run, on real data and on each set.";
    type Config = CurvatureConfig;
    type Output = CurvatureResult;

    fn config(budget: Budget, seed: u64) -> CurvatureConfig {
        CurvatureConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &CurvatureConfig,
        progress: &mut dyn Progress,
    ) -> Result<CurvatureResult> {
        curvature(model, real, sets, config, progress)
    }

    fn figures(output: &CurvatureResult) -> Result<Vec<(String, Figure)>> {
        let mut figures = vec![(String::new(), Figure::Lines(output.trace_chart()))];
        if let Some(chart) = output.spectrum_chart() {
            figures.push(("spectrum".into(), Figure::Lines(chart)));
        }
        Ok(figures)
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`curvature`] tests.
pub const CLAIM: Claim = Claim {
    finding: "training on distilled data is sharper",
    claim: "Along real training, the Hessian trace of the loss on a distilled set rises faster \
            than on real data and peaks near 2x the real one around steps 60-100 (paper, \
            CIFAR-10 IPC 10).",
    effect: "trace on the set minus trace on the real sample, mean over the measured steps in \
             60-100; normal interval from the Hutchinson standard errors (n = probes)",
    null: 0.0,
    side: Side::Above,
};

/// The paper's window of steps.
pub const WINDOW: std::ops::RangeInclusive<usize> = 60..=100;

/// Each set's trace minus the real one over the steps in [`WINDOW`], with its normal
/// interval; `None` when no measured step is in the window.
pub fn window_difference(r: &CurvatureResult, set: usize) -> Option<(Interval, f64)> {
    let at: Vec<usize> = (0..r.steps.len())
        .filter(|&i| WINDOW.contains(&r.steps[i]))
        .collect();
    if at.is_empty() || set == 0 {
        return None;
    }
    let (real, s) = (&r.sets[0].traces, &r.sets[set].traces);
    // Fewer traces than steps only come from a damaged result file.
    if at.iter().any(|&i| i >= real.len() || i >= s.len()) {
        return None;
    }
    let m = at.len() as f64;
    let diff = at.iter().map(|&i| s[i].trace - real[i].trace).sum::<f64>() / m;
    let var: f64 = at
        .iter()
        .map(|&i| s[i].std_error.powi(2) + real[i].std_error.powi(2))
        .sum();
    let probes = at.iter().map(|&i| s[i].probes + real[i].probes).sum();
    let ratio = at.iter().map(|&i| s[i].trace).sum::<f64>()
        / at.iter().map(|&i| real[i].trace).sum::<f64>();
    Some((Interval::normal(diff, var.sqrt() / m, probes), ratio))
}

/// The verdict of a result: each set's trace against the real one in the paper's window.
pub fn verdict(r: &CurvatureResult) -> Verdict {
    let sets = (1..r.sets.len())
        .map(|k| {
            let name = &r.sets[k].name;
            match window_difference(r, k) {
                Some((d, ratio)) => {
                    let mut v = CLAIM.judge(name, d);
                    v.reason =
                        format!("{:.2}x the real trace in steps 60-100; {}", ratio, v.reason);
                    v
                }
                None => CLAIM.unmeasured(
                    name,
                    format!(
                        "no measured step in the paper's window 60-100 (steps {:?})",
                        r.steps
                    ),
                ),
            }
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved): the raw traces with
/// their 95% intervals at every step (the figure shows their EMA), then the peaks of the EMA
/// curve and the top eigenvalue.
pub fn summary(r: &CurvatureResult) -> Summary {
    let mut raw = Table {
        header: std::iter::once("set (raw trace ± 1.96 SE, probes)".to_string())
            .chain(r.steps.iter().map(|s| format!("step {s}")))
            .collect(),
        rows: Vec::new(),
    };
    let mut missed = 0usize;
    for s in &r.sets {
        let mut row = vec![s.name.clone()];
        for t in &s.traces {
            let reached = t.std_error <= r.target_rel_se * t.trace.abs();
            if r.target_rel_se > 0.0 && !reached {
                missed += 1;
            }
            row.push(format!(
                "{} ± {} ({})",
                crate::report::summary::fixed(t.trace, 1),
                crate::report::summary::fixed(1.959964 * t.std_error, 1),
                t.probes
            ));
        }
        raw.rows.push(row);
    }
    let mut peaks = Table {
        header: [
            "set",
            "examples",
            "EMA peak step",
            "EMA peak trace",
            "top eigenvalue (last spectrum)",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for (k, s) in r.sets.iter().enumerate() {
        let peak = s.ema.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let top = s
            .spectra
            .last()
            .and_then(|sp| sp.top_eigenvalues.first().copied());
        peaks.rows.push(vec![
            s.name.clone(),
            s.examples.to_string(),
            r.peak_steps.get(k).map_or("–".into(), |p| p.to_string()),
            format!("{peak:.2}"),
            fixed_opt(top, 2),
        ]);
    }
    let total: usize = r.sets.iter().map(|s| s.traces.len()).sum();
    let finding = (r.target_rel_se > 0.0).then(|| {
        if missed == 0 {
            format!(
                "Every trace reached a standard error of at most {:.0}% of its magnitude.",
                100.0 * r.target_rel_se
            )
        } else {
            format!(
                "{missed} of {total} traces did not reach a standard error of {:.0}% of their \
                 magnitude within max_probes (traces near zero rarely can).",
                100.0 * r.target_rel_se
            )
        }
    });
    Summary {
        title: "Curvature along training".into(),
        question: "What does distilled data capture? The Hessian trace of the mean loss along \
                   one real-data training run (P_real), on a real training sample and on each \
                   distilled set. The table gives the raw Hutchinson estimates; the figure \
                   shows them EMA-smoothed, as the paper plots them."
            .into(),
        finding,
        tables: vec![raw, peaks],
        ..Summary::default()
    }
}
