//! The pools of real-trained models: their jobs, every job's seed, shards of the jobs, and
//! training a shard.

use std::path::Path;

use serde::Serialize;

use super::AgreementConfig;
use crate::analysis::support::test_sample;
use crate::analysis::{Progress, RealData};
use crate::bundle::Bundle;
use crate::data::{fraction_per_class, uniform_fractions, Dataset};
use crate::error::{Error, Result};
pub use crate::shard::Shard;
use crate::train::{evaluate_with_state, train, Control, RecordEval, StepContext, TrainConfig};

/// Format tag of pool files (safetensors metadata `format`).
pub const POOL_FORMAT: &str = "ddlens-agreement-pool";
/// Version of the pool-file layout.
pub const POOL_VERSION: u32 = 1;

/// The two pools of real-trained models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Pool {
    /// Models trained to the end on random real subsets.
    A,
    /// Early-stopped models: every recorded step of P_real runs on all the real data.
    B,
}

impl Pool {
    fn tag(self) -> u64 {
        match self {
            Pool::A => 0xA,
            Pool::B => 0xB,
        }
    }
}

/// The stream of the distilled-trained models in [`member_seed`].
const DISTILLED_TAG: u64 = 0xD;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed_of(seed: u64, tag: u64, index: usize) -> u64 {
    splitmix64(splitmix64(seed ^ splitmix64(tag)) ^ index as u64)
}

/// The seed of member `index` of `pool`: a function of `(seed, pool, index)` only, so a
/// member is the same whichever shard trains it. Pool A member `j` draws its fractions from
/// `member_seed ^ 1` and its subset from `member_seed ^ 2`, and is initialised and shuffled
/// with `member_seed`; pool B run `r` is initialised and shuffled with `member_seed`.
pub fn member_seed(seed: u64, pool: Pool, index: usize) -> u64 {
    seed_of(seed, pool.tag(), index)
}

/// The seed (initialisation) of distilled-trained model `run`, the same for every set.
pub fn distilled_seed(seed: u64, run: usize) -> u64 {
    seed_of(seed, DISTILLED_TAG, run)
}

/// One pool member: a real-trained model's test predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMember {
    /// Global job index (pool A members first, then pool B runs).
    pub job: usize,
    /// Training steps the model had taken.
    pub step: usize,
    /// Accuracy on the test sample.
    pub accuracy: f64,
    /// Arg-max class of every test-sample image.
    pub predictions: Vec<u16>,
}

/// The members one shard trained, as written to and read from a pool file.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolShard {
    /// Which jobs.
    pub shard: Shard,
    /// [`pool_fingerprint`] of the settings and data the members come from.
    pub fingerprint: String,
    /// The members, by job then step.
    pub members: Vec<PoolMember>,
}

/// What a pool depends on: the model, the data and the pool settings, as a JSON string.
/// Pool files are only merged with each other and used for a result when these agree.
pub fn pool_fingerprint(
    model: &Bundle,
    real: RealData<'_>,
    config: &AgreementConfig,
) -> Result<String> {
    let test = test_sample(real.test, config.test_images, config.seed)?;
    Ok(fingerprint_of(model, real.train, &test, config))
}

fn fingerprint_of(
    model: &Bundle,
    train: &Dataset,
    test: &Dataset,
    config: &AgreementConfig,
) -> String {
    // FNV-1a over the labels: catches a different test sample or training split cheaply.
    let fnv = |d: &Dataset| {
        d.labels().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &y| {
            (h ^ y as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    serde_json::json!({
        "version": POOL_VERSION,
        "model": model.name(),
        "parameters": model.manifest().num_parameters(),
        "train": { "name": train.name(), "len": train.len(), "labels_fnv": format!("{:016x}", fnv(train)) },
        "test": { "name": test.name(), "len": test.len(), "labels_fnv": format!("{:016x}", fnv(test)) },
        "seed": config.seed,
        "test_images": config.test_images,
        "pool_a_size": config.pool_a_size,
        "pool_a_fraction_min": config.pool_a_fraction_min,
        "pool_a_fraction_max": config.pool_a_fraction_max,
        "pool_a_epochs": config.pool_a_epochs,
        "pool_a_max_steps": config.pool_a_max_steps,
        "pool_b_runs": config.pool_b_runs,
        "pool_b_epochs": config.pool_b_epochs,
        "pool_b_max_steps": config.pool_b_max_steps,
        "pool_b_every": config.pool_b_every,
    })
    .to_string()
}

/// Trains the pool jobs of `shard` and records their test predictions.
pub fn train_pool_shard(
    model: &Bundle,
    real: RealData<'_>,
    config: &AgreementConfig,
    shard: Shard,
    progress: &mut dyn Progress,
) -> Result<PoolShard> {
    train_pool_shard_with(model, real, config, shard, None, progress)
}

/// [`train_pool_shard`], keeping its pool file at `path` up to date after every job (written
/// atomically), and continuing from it: when `path` already holds members of this shard from
/// these settings (a pre-empted or requeued task), their jobs are skipped. The file at the
/// end is the one an uninterrupted run writes. A file from other settings or another shard
/// is an error naming it, never overwritten.
pub fn train_pool_shard_into(
    model: &Bundle,
    real: RealData<'_>,
    config: &AgreementConfig,
    shard: Shard,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<PoolShard> {
    train_pool_shard_with(model, real, config, shard, Some(path), progress)
}

fn train_pool_shard_with(
    model: &Bundle,
    real: RealData<'_>,
    config: &AgreementConfig,
    shard: Shard,
    path: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<PoolShard> {
    config.validate()?;
    if shard.count == 0 || shard.index >= shard.count {
        return Err(Error::invalid(
            "--shard",
            format!("`{shard}` is not a shard"),
        ));
    }
    let test = test_sample(real.test, config.test_images, config.seed)?;
    let fingerprint = fingerprint_of(model, real.train, &test, config);
    let mut pool = PoolShard {
        shard,
        fingerprint,
        members: Vec::new(),
    };
    if let Some(p) = path.filter(|p| p.exists()) {
        pool.members = earlier_members(p, &pool)?;
    }
    let done: std::collections::BTreeSet<usize> = pool.members.iter().map(|m| m.job).collect();
    for j in (0..config.jobs()).filter(|&j| shard.has(j)) {
        if done.contains(&j) {
            progress.note(&format!("pool job {j}: already in the pool file"));
            continue;
        }
        pool.members
            .extend(train_job(model, real, config, &test, j, progress)?);
        // By job, then step: the order of an uninterrupted run, whatever was resumed.
        pool.members.sort_by_key(|m| (m.job, m.step));
        if let Some(p) = path {
            pool.write(p)?;
        }
    }
    Ok(pool)
}

/// The members an earlier run of the same shard wrote to `path`.
fn earlier_members(path: &Path, pool: &PoolShard) -> Result<Vec<PoolMember>> {
    let earlier = PoolShard::read(path)?;
    let why = if earlier.fingerprint != pool.fingerprint {
        "other settings, data or model"
    } else if earlier.shard != pool.shard {
        "another shard"
    } else {
        return Ok(earlier.members);
    };
    Err(Error::Data {
        origin: path.display().to_string(),
        message: format!(
            "holds pool members from {why} than shard {} now; give another output folder, or \
             delete the file to start that shard over",
            pool.shard
        ),
    })
}

/// Trains pool job `j` (a pool A member, or a pool B run recorded every
/// `pool_b_every` steps) and returns its members.
fn train_job(
    model: &Bundle,
    real: RealData<'_>,
    config: &AgreementConfig,
    test: &Dataset,
    j: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<PoolMember>> {
    let (pool, index) = config.job(j);
    let seed = member_seed(config.seed, pool, index);
    let stage = match pool {
        Pool::A => format!("pool A member {}/{}", index + 1, config.pool_a_size),
        Pool::B => format!("pool B run {}/{}", index + 1, config.pool_b_runs),
    };
    let mut hook = |ctx: &StepContext<'_>| {
        progress.report(&stage, ctx.step, ctx.total_steps)?;
        Ok(Control::Continue)
    };
    match pool {
        Pool::A => {
            let subset = pool_a_subset(real.train, config, seed)?;
            let tc = TrainConfig {
                max_steps: config.pool_a_max_steps,
                ..TrainConfig::p_real(config.pool_a_epochs, seed)
            };
            let out = train(
                model,
                model.init_params(seed),
                &subset,
                &tc,
                &mut [&mut hook],
            )?;
            let e = evaluate_with_state(model, &out.params, &out.state, test)?;
            Ok(vec![PoolMember {
                job: j,
                step: out.steps,
                accuracy: e.accuracy,
                predictions: e.predictions,
            }])
        }
        Pool::B => {
            let tc = TrainConfig {
                max_steps: config.pool_b_max_steps,
                ..TrainConfig::p_real(config.pool_b_epochs, seed)
            };
            let mut record = RecordEval::new(test, config.pool_b_every, true);
            train(
                model,
                model.init_params(seed),
                real.train,
                &tc,
                &mut [&mut hook, &mut record],
            )?;
            Ok(record
                .records
                .into_iter()
                .map(|r| PoolMember {
                    job: j,
                    step: r.step,
                    accuracy: r.accuracy,
                    predictions: r.predictions,
                })
                .collect())
        }
    }
}

/// The random real subset of pool A member with seed `seed`: per-class fractions uniform in
/// `[pool_a_fraction_min, pool_a_fraction_max]`, at least one image per class.
fn pool_a_subset(train: &Dataset, config: &AgreementConfig, seed: u64) -> Result<Dataset> {
    let mut fractions = uniform_fractions(
        train.num_classes(),
        config.pool_a_fraction_min,
        config.pool_a_fraction_max,
        seed ^ 1,
    )?;
    for (f, n) in fractions.iter_mut().zip(train.class_counts()) {
        if n > 0 {
            *f = f.max(1.0 / n as f64).min(1.0);
        }
    }
    let idx = fraction_per_class(train, &fractions, seed ^ 2)?;
    train.select(&idx)
}
