//! Expert trajectories for trajectory matching (MTT, Cazenavette et al., CVPR 2022): SGD runs
//! on the real data whose parameters are saved after every epoch, generated as the reference
//! `buffer.py` does (lr 0.01, no momentum, no weight decay, batch 256, DSA augmentation drawn
//! per image), stored on disk and read back one checkpoint at a time.
//!
//! # On disk
//! ```text
//! dir/experts.json                         index (format, model, settings, counts)
//! dir/expert-0000/epoch-0000.safetensors   initial parameters
//! dir/expert-0000/epoch-0001.safetensors   after epoch 1 ...
//! ```
//! Parameter files are [`train::save_params`](crate::train::save_params) files. The index is
//! written last, atomically, so a folder without one is an unfinished generation.

use std::path::{Path, PathBuf};

use ndarray::Axis;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::Dsa;
use crate::bundle::{Bundle, Manifest, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::progress::{Offset, Progress};
use crate::train::{load_params, save_params, Sgd, SgdConfig};

/// The `format` field of `experts.json`.
pub const EXPERTS_FORMAT: &str = "ddlens-experts";
const INDEX_FILE: &str = "experts.json";

/// How experts are trained (reference `buffer.py` defaults from [`ExpertConfig::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertConfig {
    /// Epochs per expert (reference `train_epochs` 50).
    pub epochs: usize,
    /// Learning rate (reference `lr_teacher` 0.01).
    pub lr: f32,
    /// Momentum (reference `mom` 0).
    pub momentum: f32,
    /// Minibatch size (reference `batch_train` 256).
    pub batch: usize,
    /// Augmentation, drawn per image for every minibatch (reference: DSA on); `None` trains
    /// on the plain images.
    pub dsa: Option<Dsa>,
}

impl ExpertConfig {
    /// The reference settings for `epochs` epochs, with the standard DSA strategy.
    pub fn new(epochs: usize) -> ExpertConfig {
        ExpertConfig {
            epochs,
            lr: 0.01,
            momentum: 0.0,
            batch: 256,
            dsa: Some(Dsa::default()),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::invalid("batch", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("must be positive, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// One expert: parameters at the start and after every epoch (`epochs + 1` sets).
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// `checkpoints[e]` = parameters after `e` epochs (`checkpoints[0]` is the initialisation).
    pub checkpoints: Vec<Params>,
}

impl Trajectory {
    /// Number of epochs covered (checkpoints − 1).
    pub fn epochs(&self) -> usize {
        self.checkpoints.len().saturating_sub(1)
    }
}

/// Trains `n_experts` experts on `real`. Expert `i` draws its initialisation, shuffles and
/// augmentations from stream `i` of a ChaCha8 generator seeded with `seed`, so each expert is
/// reproducible on its own and the set does not depend on how many are generated.
/// `progress` counts epochs over all experts (`experts`, done, `n_experts * epochs`); an error
/// it returns stops the generation with that error.
pub fn generate_experts(
    bundle: &Bundle,
    real: &Dataset,
    n_experts: usize,
    config: &ExpertConfig,
    seed: u64,
    progress: &mut dyn Progress,
) -> Result<Vec<Trajectory>> {
    let total = n_experts.saturating_mul(config.epochs);
    progress.report("experts", 0, total)?;
    let mut experts = Vec::new(); // `n_experts` is the caller's: no reservation
    for i in 0..n_experts {
        let mut shifted = Offset {
            inner: &mut *progress,
            offset: i * config.epochs,
            total,
        };
        experts.push(generate_expert(
            bundle,
            real,
            config,
            seed,
            i,
            &mut shifted,
        )?);
    }
    Ok(experts)
}

/// Expert number `index` of [`generate_experts`] alone; `progress` hears (`experts`, epochs
/// done, epochs) after every epoch and may stop it.
pub fn generate_expert(
    bundle: &Bundle,
    real: &Dataset,
    config: &ExpertConfig,
    seed: u64,
    index: usize,
    progress: &mut dyn Progress,
) -> Result<Trajectory> {
    check_inputs(bundle, real, config)?;
    let mut run = ExpertRun::start(bundle, config, seed, index);
    let mut checkpoints = vec![run.params.clone()];
    while run.epoch < config.epochs {
        run.train_epoch(bundle, real, config)?;
        checkpoints.push(run.params.clone());
        progress.report("experts", run.epoch, config.epochs)?;
    }
    Ok(Trajectory { checkpoints })
}

/// Rejects bad settings and data before any training.
pub(super) fn check_inputs(bundle: &Bundle, real: &Dataset, config: &ExpertConfig) -> Result<()> {
    config.validate()?;
    real.check_against(bundle.manifest())?;
    if real.is_empty() {
        return Err(Error::invalid("real", "the real training set is empty"));
    }
    Ok(())
}

/// One expert in training: everything needed to continue it, so that it can stop after any
/// epoch and resume bit-identically (see `expert_store`).
pub(super) struct ExpertRun {
    /// Expert number (its random stream).
    pub index: usize,
    /// Epochs done.
    pub epoch: usize,
    /// Current parameters.
    pub params: Params,
    /// Optimiser (its velocity is the only state besides the parameters).
    pub sgd: Sgd,
    /// Stream `index` of ChaCha8 seeded with the generation seed; its position is the rest
    /// of the state.
    pub rng: ChaCha8Rng,
}

impl ExpertRun {
    /// The untrained expert `index`: its initialisation is the first draw of its stream.
    pub fn start(bundle: &Bundle, config: &ExpertConfig, seed: u64, index: usize) -> ExpertRun {
        let mut rng = expert_rng(seed, index);
        let params = bundle.init_params(rng.next_u64());
        ExpertRun {
            index,
            epoch: 0,
            params,
            sgd: expert_sgd(config),
            rng,
        }
    }

    /// Trains one epoch: a fresh shuffle, minibatches of `config.batch`, DSA per image.
    pub fn train_epoch(
        &mut self,
        bundle: &Bundle,
        real: &Dataset,
        config: &ExpertConfig,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..real.len()).collect();
        order.shuffle(&mut self.rng);
        for chunk in order.chunks(config.batch) {
            let mut x = real.images().select(Axis(0), chunk);
            let y = real.labels().select(Axis(0), chunk);
            if let Some(dsa) = &config.dsa {
                x = dsa.sample(chunk.len(), &mut self.rng).apply(x.view())?;
            }
            let g = bundle.grad(&self.params, x.view(), y.view(), None)?;
            if !g.loss.is_finite() {
                return Err(Error::invalid(
                    "lr",
                    format!(
                        "expert {} diverged in epoch {} (loss {})",
                        self.index,
                        self.epoch + 1,
                        g.loss
                    ),
                ));
            }
            self.sgd.step(&mut self.params, g.grad, config.lr);
        }
        self.epoch += 1;
        Ok(())
    }
}

/// The optimiser of an expert: SGD without weight decay (reference `buffer.py`).
pub(super) fn expert_sgd(config: &ExpertConfig) -> Sgd {
    Sgd::new(SgdConfig {
        momentum: config.momentum,
        weight_decay: 0.0,
    })
}

/// The random stream of expert `index`.
pub(super) fn expert_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// The index of an expert folder (`experts.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertIndex {
    /// Always [`EXPERTS_FORMAT`].
    pub format: String,
    /// Model name from the bundle manifest.
    pub model: String,
    /// Number of experts.
    pub experts: usize,
    /// Epochs per expert (each has `epochs + 1` checkpoints).
    pub epochs: usize,
    /// Learning rate they were trained with.
    pub lr: f32,
    /// Momentum they were trained with.
    pub momentum: f32,
    /// Minibatch size.
    pub batch: usize,
    /// DSA strategy (`none` without augmentation).
    pub augment: String,
    /// Generation seed.
    pub seed: u64,
}

/// Where a checkpoint lives in an expert folder.
pub fn checkpoint_path(dir: &Path, expert: usize, epoch: usize) -> PathBuf {
    dir.join(format!("expert-{expert:04}"))
        .join(format!("epoch-{epoch:04}.safetensors"))
}

/// Writes trajectories to `dir` (created if needed) with their index, written last.
pub fn save_experts(
    dir: &Path,
    manifest: &Manifest,
    trajectories: &[Trajectory],
    config: &ExpertConfig,
    seed: u64,
) -> Result<ExpertIndex> {
    let epochs = trajectories
        .first()
        .map_or(config.epochs, Trajectory::epochs);
    if let Some((i, _)) = trajectories
        .iter()
        .enumerate()
        .find(|(_, t)| t.epochs() != epochs)
    {
        return Err(Error::invalid(
            "trajectories",
            format!("expert {i} has a different number of epochs than expert 0 ({epochs})"),
        ));
    }
    for (i, t) in trajectories.iter().enumerate() {
        save_expert(dir, manifest, i, t)?;
    }
    write_expert_index(dir, manifest, trajectories.len(), epochs, config, seed)
}

/// Writes the checkpoints of expert number `index` to `dir` (created if needed), without the
/// index: generate and save experts one at a time, then call [`write_expert_index`].
pub fn save_expert(
    dir: &Path,
    manifest: &Manifest,
    index: usize,
    trajectory: &Trajectory,
) -> Result<()> {
    let sub = dir.join(format!("expert-{index:04}"));
    std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
    for (e, p) in trajectory.checkpoints.iter().enumerate() {
        save_params(&checkpoint_path(dir, index, e), manifest, p)?;
    }
    Ok(())
}

/// Writes (atomically) the index of `experts` experts of `epochs` epochs each, saved with
/// [`save_expert`]; it is what makes the folder readable by [`ExpertDir::open`].
pub fn write_expert_index(
    dir: &Path,
    manifest: &Manifest,
    experts: usize,
    epochs: usize,
    config: &ExpertConfig,
    seed: u64,
) -> Result<ExpertIndex> {
    let index = expert_index(manifest, experts, epochs, config, seed);
    write_index(dir, &index)?;
    Ok(index)
}

/// The index of `experts` experts of `epochs` epochs trained with `config` and `seed`.
pub(super) fn expert_index(
    manifest: &Manifest,
    experts: usize,
    epochs: usize,
    config: &ExpertConfig,
    seed: u64,
) -> ExpertIndex {
    ExpertIndex {
        format: EXPERTS_FORMAT.to_string(),
        model: manifest.name.clone(),
        experts,
        epochs,
        lr: config.lr,
        momentum: config.momentum,
        batch: config.batch,
        augment: config
            .dsa
            .as_ref()
            .map_or_else(|| "none".to_string(), Dsa::strategy),
        seed,
    }
}

/// Writes `index` as `dir/experts.json` (atomically, `dir` created if needed).
pub(super) fn write_index(dir: &Path, index: &ExpertIndex) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let json =
        serde_json::to_vec_pretty(index).map_err(|e| Error::invalid("experts", e.to_string()))?;
    write_atomic(&dir.join(INDEX_FILE), &json)
}

/// Where MTT reads expert checkpoints from.
pub trait ExpertSource: Send + Sync {
    /// Number of experts.
    fn experts(&self) -> usize;
    /// Epochs per expert (checkpoints `0..=epochs`).
    fn epochs(&self) -> usize;
    /// Expert `expert`'s parameters after `epoch` epochs.
    fn checkpoint(&self, expert: usize, epoch: usize) -> Result<Params>;
}

impl ExpertSource for Vec<Trajectory> {
    fn experts(&self) -> usize {
        self.len()
    }

    fn epochs(&self) -> usize {
        self.iter().map(Trajectory::epochs).min().unwrap_or(0)
    }

    fn checkpoint(&self, expert: usize, epoch: usize) -> Result<Params> {
        self.get(expert)
            .and_then(|t| t.checkpoints.get(epoch))
            .cloned()
            .ok_or_else(|| {
                Error::invalid(
                    "expert",
                    format!("no checkpoint for expert {expert}, epoch {epoch}"),
                )
            })
    }
}

/// An expert folder written by [`save_experts`], read lazily (one checkpoint per call), so
/// that a buffer of many experts never has to fit in memory.
#[derive(Debug, Clone)]
pub struct ExpertDir {
    dir: PathBuf,
    manifest: Manifest,
    index: ExpertIndex,
}

impl ExpertDir {
    /// Opens `dir` for the model of `manifest`, checking the index (format, model name) and
    /// that every checkpoint file exists.
    pub fn open(dir: &Path, manifest: &Manifest) -> Result<ExpertDir> {
        let path = dir.join(INDEX_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let index: ExpertIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bundle(&path, format!("not an expert index: {e}")))?;
        if index.format != EXPERTS_FORMAT {
            return Err(Error::bundle(
                &path,
                format!("format is `{}`, expected `{EXPERTS_FORMAT}`", index.format),
            ));
        }
        if index.model != manifest.name {
            return Err(Error::bundle(
                &path,
                format!(
                    "experts were trained for model `{}`, not `{}`",
                    index.model, manifest.name
                ),
            ));
        }
        for i in 0..index.experts {
            for e in 0..=index.epochs {
                let p = checkpoint_path(dir, i, e);
                if !p.is_file() {
                    return Err(Error::bundle(&p, "expert checkpoint missing"));
                }
            }
        }
        Ok(ExpertDir {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
            index,
        })
    }

    /// The index.
    pub fn index(&self) -> &ExpertIndex {
        &self.index
    }

    /// Reads every trajectory into memory.
    pub fn load_all(&self) -> Result<Vec<Trajectory>> {
        (0..self.index.experts)
            .map(|i| {
                let checkpoints = (0..=self.index.epochs)
                    .map(|e| self.checkpoint(i, e))
                    .collect::<Result<_>>()?;
                Ok(Trajectory { checkpoints })
            })
            .collect()
    }
}

impl ExpertSource for ExpertDir {
    fn experts(&self) -> usize {
        self.index.experts
    }

    fn epochs(&self) -> usize {
        self.index.epochs
    }

    fn checkpoint(&self, expert: usize, epoch: usize) -> Result<Params> {
        if expert >= self.index.experts || epoch > self.index.epochs {
            return Err(Error::invalid(
                "expert",
                format!(
                    "no checkpoint for expert {expert}, epoch {epoch} ({} experts of {} epochs)",
                    self.index.experts, self.index.epochs
                ),
            ));
        }
        load_params(&checkpoint_path(&self.dir, expert, epoch), &self.manifest)
    }
}
