//! MTT's expert trajectories as a job.

use std::path::Path;

use crate::augment::Dsa;
use crate::bundle::Bundle;
use crate::data::DatasetName;
use crate::distill::{ExpertConfig, ExpertDir, ExpertIndex};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shard::{Shard, ShardRun, UnitStore};
use crate::Dataset;

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
        crate::distill::generate_experts_into(
            dir,
            bundle,
            real,
            self.num_experts,
            &self.config,
            self.seed,
            progress,
        )
    }

    /// The experts of `shard` (expert `i` is unit `i`) into `dir`, a shared experts folder
    /// that is also their unit store ([`crate::distill::run_expert_shard`]); once every
    /// shard has run, [`crate::distill::gather_experts`] writes the index, and the folder
    /// holds what [`ExpertJob::run`] writes. `announce` sees the store before the first
    /// expert.
    pub fn run_shard(
        &self,
        dir: &Path,
        bundle: &Bundle,
        real: &Dataset,
        shard: Shard,
        announce: &dyn Fn(&UnitStore),
        progress: &mut dyn Progress,
    ) -> Result<(UnitStore, ShardRun)> {
        crate::distill::run_expert_shard(
            dir,
            bundle,
            real,
            self.num_experts,
            &self.config,
            self.seed,
            shard,
            announce,
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
