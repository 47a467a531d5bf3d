//! The distillation job: every method's defaults in one place, validated and described, and
//! the run that the CLI (`ddlens distill`), the C ABI (`ddl_distill`) and the demo all call.
//!
//! A [`DistillJob`] holds the method, the images per class and every setting, `None` meaning
//! "the method's default" ([`MethodKind`] owns those). Front-ends only map their arguments
//! onto a job ([`DistillJob::check_applies`] refuses a setting the method does not use,
//! naming it), then call [`DistillJob::run`], which returns an [`Outcome`] that can be written
//! as a set, its PNG grid and its JSON log ([`Outcome::write`]). Expert trajectories for MTT
//! are a job too ([`ExpertJob`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde_json::{json, Value};

use super::{
    herding_set, random_set, Bptt, BpttConfig, Dc, DcConfig, Dm, DmConfig, ExpertConfig, ExpertDir,
    ExpertIndex, ExpertSource, Method, Mtt, MttConfig, RunConfig, RunLog, Synthetic,
};
use crate::augment::Dsa;
use crate::bundle::{Bundle, Params};
use crate::data::{DatasetName, DistilledMeta, DistilledSet, Normalizer};
use crate::error::{Error, Result};
use crate::progress::{Offset, Progress};
use crate::train::{self, Control, Hook, StepContext, TrainConfig};
use crate::Dataset;

/// A distillation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// Class-balanced random real images.
    Random,
    /// Greedy herding in the feature space of a real-trained model.
    Herding,
    /// Distribution matching.
    Dm,
    /// Gradient matching.
    Dc,
    /// Gradient matching with differentiable siamese augmentation.
    Dsa,
    /// Matching training trajectories.
    Mtt,
    /// Backpropagation through unrolled training (RaT-BPTT with a window).
    Bptt,
}

impl MethodKind {
    /// Every method, in the order the docs list them.
    pub const ALL: [MethodKind; 7] = [
        MethodKind::Random,
        MethodKind::Herding,
        MethodKind::Dm,
        MethodKind::Dc,
        MethodKind::Dsa,
        MethodKind::Mtt,
        MethodKind::Bptt,
    ];

    /// The methods that iterate (iterations, checkpoints, an image optimiser).
    pub const ITERATIVE: [MethodKind; 5] = [
        MethodKind::Dm,
        MethodKind::Dc,
        MethodKind::Dsa,
        MethodKind::Mtt,
        MethodKind::Bptt,
    ];

    /// The lowercase name (`dm`, `mtt`...).
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Random => "random",
            MethodKind::Herding => "herding",
            MethodKind::Dm => "dm",
            MethodKind::Dc => "dc",
            MethodKind::Dsa => "dsa",
            MethodKind::Mtt => "mtt",
            MethodKind::Bptt => "bptt",
        }
    }

    /// Whether the method iterates.
    pub fn is_iterative(self) -> bool {
        MethodKind::ITERATIVE.contains(&self)
    }

    /// Iterations when none are given: DM 1,000 (its full budget is 20,000, kept short for a
    /// first run), DC, DSA and BPTT 1,000, MTT 5,000; 0 for random and herding.
    pub fn default_iterations(self) -> usize {
        match self {
            MethodKind::Random | MethodKind::Herding => 0,
            MethodKind::Mtt => 5000,
            MethodKind::Dm | MethodKind::Dc | MethodKind::Dsa | MethodKind::Bptt => 1000,
        }
    }

    /// The image learning rate when none is given (protocols.md; BPTT: see [`BpttConfig`]).
    pub fn default_lr_img(self) -> f32 {
        match self {
            MethodKind::Dm => DmConfig::default().lr,
            MethodKind::Mtt => MttConfig::default().lr_img,
            MethodKind::Bptt => BpttConfig::default().lr_img,
            _ => 0.1,
        }
    }

    /// Inner steps when none are given: MTT's student steps, BPTT's unrolled steps.
    pub fn default_syn_steps(self) -> usize {
        match self {
            MethodKind::Mtt => MttConfig::default().syn_steps,
            _ => BpttConfig::default().steps,
        }
    }

    /// Every method's name, comma-separated (for error messages and help).
    pub fn names() -> String {
        MethodKind::ALL.map(MethodKind::name).join(", ")
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MethodKind {
    type Err = Error;

    /// Parses a method name, in any case; the error lists the known ones.
    fn from_str(s: &str) -> Result<MethodKind> {
        let lower = s.to_ascii_lowercase();
        MethodKind::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                Error::invalid(
                    "method",
                    format!("unknown method `{s}`; available: {}", MethodKind::names()),
                )
            })
    }
}

/// A setting of a [`DistillJob`], to check that it applies to the job's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `iterations`
    Iterations,
    /// `seed`
    Seed,
    /// `lr_img`
    LrImg,
    /// `momentum`
    Momentum,
    /// `batch_real`
    BatchReal,
    /// `dsa`
    Dsa,
    /// `syn_steps`
    SynSteps,
    /// `batch_syn`
    BatchSyn,
    /// `lr_lr`
    LrLr,
    /// `experts`
    Experts,
    /// `expert_epochs_ahead`
    ExpertEpochsAhead,
    /// `max_start_epoch`
    MaxStartEpoch,
    /// `window`
    Window,
    /// `learn_lr`
    LearnLr,
    /// `herding_params`
    HerdingParams,
    /// `checkpoint` (and how often it is written)
    Checkpoint,
    /// `resume`
    Resume,
}

impl Field {
    /// The setting's name in JSON, the C ABI and errors.
    pub fn name(self) -> &'static str {
        match self {
            Field::Iterations => "iterations",
            Field::Seed => "seed",
            Field::LrImg => "lr_img",
            Field::Momentum => "momentum",
            Field::BatchReal => "batch_real",
            Field::Dsa => "dsa",
            Field::SynSteps => "syn_steps",
            Field::BatchSyn => "batch_syn",
            Field::LrLr => "lr_lr",
            Field::Experts => "experts",
            Field::ExpertEpochsAhead => "expert_epochs_ahead",
            Field::MaxStartEpoch => "max_start_epoch",
            Field::Window => "window",
            Field::LearnLr => "learn_lr",
            Field::HerdingParams => "herding_params",
            Field::Checkpoint => "checkpoint",
            Field::Resume => "resume",
        }
    }

    /// The methods that use the setting.
    pub fn methods(self) -> &'static [MethodKind] {
        use MethodKind::*;
        match self {
            Field::Seed => &MethodKind::ALL,
            Field::Iterations
            | Field::LrImg
            | Field::Momentum
            | Field::Checkpoint
            | Field::Resume => &MethodKind::ITERATIVE,
            Field::BatchReal => &[Dm, Dc, Dsa, Bptt],
            Field::Dsa => &[Dm, Dsa, Mtt],
            Field::SynSteps | Field::BatchSyn | Field::LrLr => &[Mtt, Bptt],
            Field::Experts | Field::ExpertEpochsAhead | Field::MaxStartEpoch => &[Mtt],
            Field::Window | Field::LearnLr => &[Bptt],
            Field::HerdingParams => &[Herding],
        }
    }
}

/// Everything a distillation needs besides the model and the real data. `None` fields take
/// the method's default ([`MethodKind`]); [`DistillJob::new`] gives the defaults of every
/// other field.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillJob {
    /// The method.
    pub method: MethodKind,
    /// Images per class.
    pub ipc: usize,
    /// Iterations (a resumed run counts those already done, so a finished run can be extended).
    pub iterations: Option<usize>,
    /// Seed of the initial set, of every iteration's draws and of herding's feature model.
    pub seed: u64,
    /// Image learning rate.
    pub lr_img: Option<f32>,
    /// Image momentum (default 0.5).
    pub momentum: Option<f32>,
    /// Real images per class per iteration (dm, dc, dsa) or in bptt's outer loss batch.
    pub batch_real: usize,
    /// DSA augmentation in dm and mtt (dsa always augments; dc and bptt never do).
    pub dsa: bool,
    /// MTT's student steps / BPTT's unrolled steps.
    pub syn_steps: Option<usize>,
    /// Synthetic minibatch of MTT's student / BPTT's inner training (`None`: the whole set).
    pub batch_syn: Option<usize>,
    /// Learning rate of the learned lr (mtt; bptt with `learn_lr`).
    pub lr_lr: f32,
    /// MTT's expert trajectories (a folder written by [`ExpertJob`]).
    pub experts: Option<PathBuf>,
    /// MTT: expert epochs M between the student's start and its target.
    pub expert_epochs_ahead: usize,
    /// MTT: start epochs are drawn from `0..max_start_epoch`.
    pub max_start_epoch: usize,
    /// BPTT: RaT-BPTT truncation window.
    pub window: Option<usize>,
    /// BPTT: learn the inner lr too.
    pub learn_lr: bool,
    /// Herding: feature-model parameters (default: one epoch of P_real).
    pub herding_params: Option<PathBuf>,
    /// Checkpoint file of iterative methods.
    pub checkpoint: Option<PathBuf>,
    /// Write the checkpoint every this many iterations; 0 = only after the last one.
    pub checkpoint_every: usize,
    /// Continue from the checkpoint.
    pub resume: bool,
}

impl DistillJob {
    /// The defaults for `method` with `ipc` images per class (docs/distillation.md lists
    /// them); `ipc` 0 is an error naming `ipc`.
    pub fn new(method: MethodKind, ipc: usize) -> Result<DistillJob> {
        if ipc == 0 {
            return Err(Error::invalid("ipc", "must be at least 1"));
        }
        let mtt = MttConfig::default();
        Ok(DistillJob {
            method,
            ipc,
            iterations: None,
            seed: 0,
            lr_img: None,
            momentum: None,
            batch_real: DmConfig::default().batch_real,
            dsa: true,
            syn_steps: None,
            batch_syn: None,
            lr_lr: mtt.lr_lr,
            experts: None,
            expert_epochs_ahead: mtt.expert_epochs,
            max_start_epoch: mtt.max_start_epoch,
            window: None,
            learn_lr: false,
            herding_params: None,
            checkpoint: None,
            checkpoint_every: 0,
            resume: false,
        })
    }

    /// An error naming `field` when the job's method does not use it.
    pub fn check_applies(&self, field: Field) -> Result<()> {
        if field.methods().contains(&self.method) {
            return Ok(());
        }
        let users: Vec<&str> = field.methods().iter().map(|k| k.name()).collect();
        Err(Error::invalid(
            field.name(),
            format!(
                "does not apply to method `{}` (it applies to {})",
                self.method,
                users.join(", ")
            ),
        ))
    }

    /// Iterations, default resolved.
    pub fn iterations(&self) -> usize {
        self.iterations
            .unwrap_or_else(|| self.method.default_iterations())
    }

    /// Image learning rate, default resolved.
    pub fn lr_img(&self) -> f32 {
        self.lr_img.unwrap_or_else(|| self.method.default_lr_img())
    }

    /// Image momentum, default resolved.
    pub fn momentum(&self) -> f32 {
        self.momentum.unwrap_or(0.5)
    }

    /// Inner steps, default resolved.
    pub fn syn_steps(&self) -> usize {
        self.syn_steps
            .unwrap_or_else(|| self.method.default_syn_steps())
    }

    /// The augmentation of dm and mtt for `dataset`: none when switched off.
    fn dsa_for(&self, dataset: Option<DatasetName>) -> Option<Dsa> {
        self.dsa.then(|| Dsa::standard_for(dataset))
    }

    /// DM's configuration.
    pub fn dm(&self, dataset: Option<DatasetName>) -> DmConfig {
        DmConfig {
            batch_real: self.batch_real,
            lr: self.lr_img(),
            momentum: self.momentum(),
            dsa: self.dsa_for(dataset),
        }
    }

    /// DC's (and DSA's) configuration.
    pub fn dc(&self, dataset: Option<DatasetName>) -> Result<DcConfig> {
        let mut config = DcConfig::for_ipc(self.ipc)?;
        config.batch_real = self.batch_real;
        config.lr_img = self.lr_img();
        config.momentum_img = self.momentum();
        if self.method == MethodKind::Dsa {
            config = config.with_dsa(Dsa::standard_for(dataset));
        }
        Ok(config)
    }

    /// MTT's configuration, the student starting at the experts' lr `lr_init`.
    pub fn mtt(&self, dataset: Option<DatasetName>, lr_init: f32) -> MttConfig {
        MttConfig {
            syn_steps: self.syn_steps(),
            expert_epochs: self.expert_epochs_ahead,
            max_start_epoch: self.max_start_epoch,
            batch_syn: self.batch_syn,
            lr_img: self.lr_img(),
            lr_lr: self.lr_lr,
            lr_init,
            momentum: self.momentum(),
            dsa: self.dsa_for(dataset),
        }
    }

    /// BPTT's configuration.
    pub fn bptt(&self) -> BpttConfig {
        BpttConfig {
            steps: self.syn_steps(),
            batch_syn: self.batch_syn,
            learn_lr: self.learn_lr,
            lr_lr: self.lr_lr,
            lr_img: self.lr_img(),
            momentum_img: self.momentum(),
            batch_real: self.batch_real,
            window: self.window,
            ..BpttConfig::default()
        }
    }

    /// Checks the combination (e.g. a BPTT window longer than the unroll, dsa switched off
    /// for the dsa method) by building the method as [`DistillJob::run`] will; MTT without
    /// its experts, which are read at the run.
    pub fn validate(&self) -> Result<()> {
        if self.ipc == 0 {
            return Err(Error::invalid("ipc", "must be at least 1"));
        }
        if self.method == MethodKind::Dsa && !self.dsa {
            return Err(Error::invalid(
                "dsa",
                "dsa without augmentation is dc; use method dc",
            ));
        }
        if self.iterations == Some(0) {
            return Err(Error::invalid("iterations", "must be at least 1"));
        }
        match self.method {
            MethodKind::Random | MethodKind::Herding => {}
            MethodKind::Dm => {
                Dm::new(self.dm(None))?;
            }
            MethodKind::Dc | MethodKind::Dsa => {
                Dc::new(self.dc(None)?)?;
            }
            MethodKind::Mtt => {
                let lr_init = MttConfig::default().lr_init;
                Mtt::new(self.mtt(None, lr_init), Box::new(Unbounded))?;
            }
            MethodKind::Bptt => {
                Bptt::new(self.bptt())?;
            }
        }
        Ok(())
    }

    /// The effective settings, defaults resolved: `method`, `ipc`, `seed` and every setting
    /// the method uses.
    pub fn describe(&self) -> Value {
        let mut j = json!({ "method": self.method.name(), "ipc": self.ipc, "seed": self.seed });
        let values = [
            (Field::Iterations, json!(self.iterations())),
            (Field::LrImg, json!(self.lr_img())),
            (Field::Momentum, json!(self.momentum())),
            (Field::Checkpoint, json!(self.checkpoint)),
            (Field::Resume, json!(self.resume)),
            (Field::BatchReal, json!(self.batch_real)),
            (Field::Dsa, json!(self.dsa)),
            (Field::SynSteps, json!(self.syn_steps())),
            (Field::BatchSyn, json!(self.batch_syn)),
            (Field::LrLr, json!(self.lr_lr)),
            (Field::Experts, json!(self.experts)),
            (Field::ExpertEpochsAhead, json!(self.expert_epochs_ahead)),
            (Field::MaxStartEpoch, json!(self.max_start_epoch)),
            (Field::Window, json!(self.window)),
            (Field::LearnLr, json!(self.learn_lr)),
            (Field::HerdingParams, json!(self.herding_params)),
        ];
        for (field, value) in values {
            if field.methods().contains(&self.method) {
                j[field.name()] = value;
            }
        }
        if self.method.is_iterative() {
            j["checkpoint_every"] = json!(self.checkpoint_every);
        }
        j
    }

    /// Distils `real` for the model of `bundle`. `progress` sees one count: the iterations
    /// (from the checkpoint's count when resuming), herding's feature-model steps plus one per
    /// class, or 1 for random; its error cancels, after any checkpoint due was written.
    pub fn run(
        &self,
        bundle: &Bundle,
        real: &Dataset,
        progress: &mut dyn Progress,
    ) -> Result<Outcome> {
        self.validate()?;
        real.check_against(bundle.manifest())?;
        let start = Instant::now();
        let dataset = DatasetName::of_split(real.name());
        let (syn, log, settings) = match self.method {
            MethodKind::Random => {
                progress.report("random", 0, 1)?;
                let syn = random_set(real, self.ipc, self.seed)?;
                progress.report("random", 1, 1)?;
                (syn, None, json!({}))
            }
            MethodKind::Herding => self.herding(bundle, real, progress)?,
            MethodKind::Dm => {
                let config = self.dm(dataset);
                let settings = serde_json::to_value(&config)
                    .map_err(|e| Error::Internal(format!("DM settings: {e}")))?;
                self.iterate(bundle, real, &mut Dm::new(config)?, settings, progress)?
            }
            MethodKind::Dc | MethodKind::Dsa => {
                let config = self.dc(dataset)?;
                let settings = config.settings();
                self.iterate(bundle, real, &mut Dc::new(config)?, settings, progress)?
            }
            MethodKind::Mtt => {
                let experts = self.open_experts(bundle)?;
                let config = self.mtt(dataset, experts.index().lr);
                let mut settings = config.settings();
                settings["experts"] = json!(experts.index());
                let mut mtt = Mtt::new(config, Box::new(experts))?;
                self.iterate(bundle, real, &mut mtt, settings, progress)?
            }
            MethodKind::Bptt => {
                let config = self.bptt();
                let settings = config.settings();
                self.iterate(bundle, real, &mut Bptt::new(config)?, settings, progress)?
            }
        };
        Ok(Outcome {
            method: self.method,
            ipc: self.ipc,
            seed: self.seed,
            dataset: dataset.map_or_else(|| real.name().to_string(), |d| d.as_str().into()),
            model: bundle.name().to_string(),
            syn,
            checkpoint: log.as_ref().and(self.checkpoint.clone()),
            log,
            settings,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn open_experts(&self, bundle: &Bundle) -> Result<ExpertDir> {
        let dir = self.experts.as_ref().ok_or_else(|| {
            Error::invalid(
                "experts",
                "mtt needs expert trajectories: give their folder (make one with \
                 `ddlens experts` or ddl_generate_experts)",
            )
        })?;
        ExpertDir::open(dir, bundle.manifest())
    }

    /// Runs an iterative method from the seeded real initialisation.
    fn iterate(
        &self,
        bundle: &Bundle,
        real: &Dataset,
        method: &mut dyn Method,
        settings: Value,
        progress: &mut dyn Progress,
    ) -> Result<(Synthetic, Option<RunLog>, Value)> {
        if self.resume {
            match &self.checkpoint {
                None => {
                    return Err(Error::invalid(
                        "resume",
                        "resuming needs a checkpoint file (set `checkpoint`)",
                    ))
                }
                Some(path) if !path.is_file() => {
                    return Err(Error::io(
                        path,
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no checkpoint to resume from; run without resume to start",
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let config = RunConfig {
            iterations: self.iterations(),
            seed: self.seed,
            checkpoint_every: self
                .checkpoint
                .as_ref()
                .map(|_| match self.checkpoint_every {
                    0 => usize::MAX,
                    n => n,
                }),
            checkpoint: self.checkpoint.clone(),
            settings: settings.clone(),
        };
        let mut syn = Synthetic::from_real(real, self.ipc, self.seed)?;
        let log = super::run(
            method,
            &mut syn,
            bundle,
            real,
            &config,
            self.resume,
            progress,
        )?;
        Ok((syn, Some(log), settings))
    }

    /// Herding in the feature space of `herding_params`, or of a model trained for one epoch
    /// of P_real (whose steps the progress count includes).
    fn herding(
        &self,
        bundle: &Bundle,
        real: &Dataset,
        progress: &mut dyn Progress,
    ) -> Result<(Synthetic, Option<RunLog>, Value)> {
        let classes = real.num_classes();
        let (params, offset): (Params, usize) = match &self.herding_params {
            Some(path) => {
                progress.report("herding", 0, classes)?;
                (train::load_params(path, bundle.manifest())?, 0)
            }
            None => {
                let config = TrainConfig::p_real(1, self.seed);
                let steps = config.total_steps(real.len());
                let mut hook = |ctx: &StepContext<'_>| {
                    progress.report("features", ctx.step, steps + classes)?;
                    Ok(Control::Continue)
                };
                let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
                let out =
                    train::train(bundle, bundle.init_params(self.seed), real, &config, hooks)?;
                (out.params, steps)
            }
        };
        let mut shifted = Offset {
            inner: progress,
            offset,
            total: offset + classes,
        };
        let syn = herding_set(bundle, &params, real, self.ipc, &mut shifted)?;
        let source = match &self.herding_params {
            Some(p) => p.display().to_string(),
            None => "P_real, 1 epoch".to_string(),
        };
        Ok((syn, None, json!({ "feature_model": source })))
    }
}

/// An expert source that only lets [`Mtt::new`] check the settings.
struct Unbounded;

impl ExpertSource for Unbounded {
    fn experts(&self) -> usize {
        1
    }

    fn epochs(&self) -> usize {
        usize::MAX
    }

    fn checkpoint(&self, _expert: usize, _epoch: usize) -> Result<Params> {
        Err(Error::invalid("experts", "no expert trajectories"))
    }
}

/// What a distillation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The method.
    pub method: MethodKind,
    /// Images per class.
    pub ipc: usize,
    /// The run's seed.
    pub seed: u64,
    /// The benchmark the real data came from (`fashion-mnist`...), else the dataset's name.
    pub dataset: String,
    /// The model bundle's name.
    pub model: String,
    /// The distilled images, labels and learned lr.
    pub syn: Synthetic,
    /// Iterative methods: losses, resume point, wall time of the loop.
    pub log: Option<RunLog>,
    /// The method's settings as recorded in the log and the checkpoint.
    pub settings: Value,
    /// The checkpoint file, for iterative methods that wrote one.
    pub checkpoint: Option<PathBuf>,
    /// Wall time of the whole job, in seconds.
    pub seconds: f64,
}

/// The files [`Outcome::write`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The set (safetensors, docs/distilled-format.md).
    pub set: PathBuf,
    /// One row of images per class.
    pub png: PathBuf,
    /// The JSON log ([`Outcome::report`] plus the file names).
    pub log: PathBuf,
}

impl Outcome {
    /// The set's metadata.
    pub fn meta(&self) -> DistilledMeta {
        DistilledMeta {
            method: self.method.name().to_string(),
            ipc: self.ipc,
            dataset: self.dataset.clone(),
            model: self.model.clone(),
            seed: Some(self.seed),
            extra: Default::default(),
        }
    }

    /// The distilled set, with its metadata and learned lr.
    pub fn to_distilled(&self) -> Result<DistilledSet> {
        self.syn.to_distilled(self.meta())
    }

    /// The run's log: `method`, `ipc`, `dataset`, `model`, `seed`, `settings`,
    /// `iterations`, `resumed_from`, `wall_seconds`, `final_loss`, `loss_per_iteration`,
    /// `checkpoint`.
    pub fn report(&self) -> Value {
        let losses = self
            .log
            .as_ref()
            .map(|l| l.losses.clone())
            .unwrap_or_default();
        json!({
            "method": self.method.name(),
            "ipc": self.ipc,
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "settings": self.settings,
            "iterations": losses.len(),
            "resumed_from": self.log.as_ref().map(|l| l.resumed_from),
            "wall_seconds": self.seconds,
            "final_loss": losses.last(),
            "loss_per_iteration": losses,
            "checkpoint": self.checkpoint,
        })
    }

    /// The JSON log written beside the set: [`Outcome::report`] with a `files` entry.
    pub fn log_json(&self, files: &Written) -> Value {
        let mut report = self.report();
        report["files"] = json!({
            "set": files.set, "png": files.png, "log": files.log, "checkpoint": self.checkpoint,
        });
        report
    }

    /// Writes `DIR/STEM.safetensors`, `DIR/STEM.png` and `DIR/STEM.json` (the report with a
    /// `files` entry), each atomically; creates `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<Written> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let files = Written {
            set: dir.join(format!("{stem}.safetensors")),
            png: dir.join(format!("{stem}.png")),
            log: dir.join(format!("{stem}.json")),
        };
        self.to_distilled()?.write(&files.set)?;
        let normalizer = Normalizer::for_dataset(&self.dataset)
            .unwrap_or_else(|| Normalizer::identity(self.syn.images.dim().1));
        let labels = self.syn.labels.to_vec();
        crate::report::write_grid_png(
            &files.png,
            self.syn.images.view(),
            &labels,
            self.syn.num_classes,
            &normalizer,
        )?;
        let text = serde_json::to_string_pretty(&self.log_json(&files))
            .map_err(|e| Error::Internal(format!("distillation log: {e}")))?;
        crate::io::write_atomic(&files.log, text.as_bytes())?;
        Ok(files)
    }
}

/// Expert trajectories for MTT: `num_experts` SGD runs on real data, parameters saved after
/// every epoch into `dir`, resumable (`ddlens experts`, `ddl_generate_experts`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertJob {
    /// Number of experts.
    pub num_experts: usize,
    /// Training settings of every expert (epochs, lr, batch, augmentation).
    pub config: ExpertConfig,
    /// Expert `i` draws from stream `i` of this seed.
    pub seed: u64,
}

impl ExpertJob {
    /// `num_experts` experts of `epochs` epochs with the reference settings (lr 0.01, no
    /// momentum, batch 256) and, with `dsa`, per-image DSA for `dataset`.
    pub fn new(
        num_experts: usize,
        epochs: usize,
        dsa: bool,
        dataset: Option<DatasetName>,
    ) -> ExpertJob {
        ExpertJob {
            num_experts,
            config: ExpertConfig {
                dsa: dsa.then(|| Dsa::standard_for(dataset)),
                ..ExpertConfig::new(epochs)
            },
            seed: 0,
        }
    }

    /// Trains the experts into `dir`, continuing an interrupted generation with the same
    /// settings. `progress` counts epochs over all experts.
    pub fn run(
        &self,
        dir: &Path,
        bundle: &Bundle,
        real: &Dataset,
        progress: &mut dyn Progress,
    ) -> Result<ExpertIndex> {
        if self.num_experts == 0 {
            return Err(Error::invalid("num_experts", "must be at least 1"));
        }
        super::generate_experts_into(
            dir,
            bundle,
            real,
            self.num_experts,
            &self.config,
            self.seed,
            progress,
        )
    }

    /// The experts in `dir` when they were made with these settings, else freshly generated
    /// there (continuing an interrupted generation).
    pub fn open_or_generate(
        &self,
        dir: &Path,
        bundle: &Bundle,
        real: &Dataset,
        progress: &mut dyn Progress,
    ) -> Result<ExpertDir> {
        if let Ok(found) = ExpertDir::open(dir, bundle.manifest()) {
            let i = found.index();
            let strategy = self
                .config
                .dsa
                .as_ref()
                .map_or_else(|| "none".to_string(), Dsa::strategy);
            if i.experts == self.num_experts
                && i.epochs == self.config.epochs
                && i.seed == self.seed
                && i.augment == strategy
            {
                return Ok(found);
            }
        }
        self.run(dir, bundle, real, progress)?;
        ExpertDir::open(dir, bundle.manifest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_errors_list_them() {
        for k in MethodKind::ALL {
            assert_eq!(k.name().to_uppercase().parse::<MethodKind>().unwrap(), k);
        }
        let e = "kip".parse::<MethodKind>().unwrap_err().to_string();
        assert!(e.contains("method") && e.contains("random, herding, dm, dc, dsa, mtt, bptt"));
    }

    #[test]
    fn defaults_live_here_and_settings_apply_only_to_their_methods() {
        let j = DistillJob::new(MethodKind::Mtt, 10).unwrap();
        assert_eq!(
            (j.iterations(), j.lr_img(), j.syn_steps()),
            (5000, 1000.0, 20)
        );
        let d = j.describe();
        assert_eq!(d["expert_epochs_ahead"], 2);
        assert!(d.get("window").is_none() && d.get("batch_real").is_none());
        let e = j.check_applies(Field::Window).unwrap_err().to_string();
        assert!(e.contains("window") && e.contains("bptt"), "{e}");
        assert!(DistillJob::new(MethodKind::Dm, 0).is_err());
        let mut dsa = DistillJob::new(MethodKind::Dsa, 1).unwrap();
        dsa.dsa = false;
        assert!(dsa.validate().unwrap_err().to_string().contains("dsa"));
        let mut bptt = DistillJob::new(MethodKind::Bptt, 1).unwrap();
        bptt.window = Some(1000);
        assert!(bptt.validate().is_err());
    }
}
