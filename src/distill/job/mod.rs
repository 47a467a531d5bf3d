//! The distillation job: every method's defaults in one place, validated and described, and
//! the run that the CLI (`ddlens distill`), the C ABI (`ddl_distill`) and the demo all call.
//!
//! A [`DistillJob`] holds the method, the images per class and every setting, `None` meaning
//! "the method's default" ([`MethodKind`] owns those). Front-ends only map their arguments
//! onto a job ([`DistillJob::check_applies`] refuses a setting the method does not use,
//! naming it), then call [`DistillJob::run`], which returns an [`Outcome`] that can be written
//! as a set, its PNG grid and its JSON log ([`Outcome::write`]). Expert trajectories for MTT
//! are a job too ([`ExpertJob`]).

//!
//! Files: `kind.rs` (the methods by name, and which settings each uses), this file (the job:
//! defaults, validation, description, the run), `outcome.rs` (the result and its files),
//! `experts.rs` (MTT's experts as a job).

mod experts;
mod kind;
mod outcome;

pub use experts::ExpertJob;
pub use kind::{Field, MethodKind};
pub use outcome::{Outcome, Written};

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use super::{
    herding_set, random_set, Bptt, BpttConfig, Dc, DcConfig, Dm, DmConfig, ExpertDir, ExpertSource,
    Method, Mtt, MttConfig, RunConfig, RunLog, Synthetic,
};
use crate::augment::Dsa;
use crate::bundle::{Bundle, Params};
use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::progress::{Offset, Progress};
use crate::train::{self, Control, Hook, StepContext, TrainConfig};
use crate::Dataset;

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
