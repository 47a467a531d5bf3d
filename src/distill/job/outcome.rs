//! What a distillation produced, and writing it as a set, a picture and a log.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::MethodKind;
use crate::data::{DistilledMeta, DistilledSet, Normalizer};
use crate::distill::{RunLog, Synthetic};
use crate::error::{Error, Result};

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
            &format!("{stem}: distilled images, one row per class"),
            crate::data::DatasetName::class_names_of(&self.dataset),
        )?;
        let text = serde_json::to_string_pretty(&self.log_json(&files))
            .map_err(|e| Error::Internal(format!("distillation log: {e}")))?;
        crate::io::write_atomic(&files.log, text.as_bytes())?;
        Ok(files)
    }
}
