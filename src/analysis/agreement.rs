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
//! jobs ([`Shard`] `i/n` takes the jobs with `j % n == i`) in separate processes, write them
//! to pool files, and [`merge_pool`] gives exactly the members of an unsharded run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::kde::{gaussian_kde, linspace, silverman_bandwidth};
use super::recognition::test_sample;
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::data::{fraction_per_class, uniform_fractions, Dataset};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::report::plot::{BarChart, LineChart, Series};
use crate::report::summary::{arr, name, num, Summary, Table};
use crate::train::{evaluate, train, Control, RecordEval, StepContext, TrainConfig};
use serde_json::Value;

/// Format tag of pool files (safetensors metadata `format`).
pub const POOL_FORMAT: &str = "ddlens-agreement-pool";
/// Version of the pool-file layout.
pub const POOL_VERSION: u32 = 1;

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

/// The two pools of real-trained models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// A part of the pool jobs: `index/count` takes the jobs `j` with `j % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part (0-based).
    pub index: usize,
    /// Into how many parts the jobs are split.
    pub count: usize,
}

impl Shard {
    /// All jobs in one part.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether job `j` belongs to this shard.
    pub fn has(&self, j: usize) -> bool {
        j % self.count == self.index
    }

    /// The pool file name of this shard: `agreement-pool-<i>of<n>.safetensors`.
    pub fn file_name(&self) -> String {
        format!("agreement-pool-{}of{}.safetensors", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;
    /// Parses `I/N` (`0 <= I < N`), e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard> {
        let bad = |why: &str| {
            Error::invalid(
                "--shard",
                format!("`{s}` is not I/N with 0 <= I < N (e.g. 0/4): {why}"),
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad("I must be below N"));
        }
        Ok(Shard { index, count })
    }
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
    config.validate()?;
    if shard.count == 0 || shard.index >= shard.count {
        return Err(Error::invalid(
            "--shard",
            format!("`{shard}` is not a shard"),
        ));
    }
    let test = test_sample(real.test, config.test_images, config.seed)?;
    let fingerprint = fingerprint_of(model, real.train, &test, config);
    let mut members = Vec::new();
    for j in (0..config.jobs()).filter(|&j| shard.has(j)) {
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
                let e = evaluate(model, &out.params, &test)?;
                members.push(PoolMember {
                    job: j,
                    step: out.steps,
                    accuracy: e.accuracy,
                    predictions: e.predictions,
                });
            }
            Pool::B => {
                let tc = TrainConfig {
                    max_steps: config.pool_b_max_steps,
                    ..TrainConfig::p_real(config.pool_b_epochs, seed)
                };
                let mut record = RecordEval::new(&test, config.pool_b_every, true);
                train(
                    model,
                    model.init_params(seed),
                    real.train,
                    &tc,
                    &mut [&mut hook, &mut record],
                )?;
                members.extend(record.records.into_iter().map(|r| PoolMember {
                    job: j,
                    step: r.step,
                    accuracy: r.accuracy,
                    predictions: r.predictions,
                }));
            }
        }
    }
    Ok(PoolShard {
        shard,
        fingerprint,
        members,
    })
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

impl PoolShard {
    /// Writes the shard as safetensors: `predictions` (U16, members x test images),
    /// `accuracy` (F64), `job` and `step` (I64), and one metadata entry
    /// `ddlens-agreement-pool`, a JSON object with `format`, `version`, `shard` and
    /// `fingerprint`. Atomic; the same pool gives the same bytes.
    pub fn write(&self, path: &Path) -> Result<()> {
        let m = self.members.len();
        let n = self.members.first().map_or(0, |p| p.predictions.len());
        let preds: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| p.predictions.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let acc: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| p.accuracy.to_le_bytes())
            .collect();
        let job: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| (p.job as i64).to_le_bytes())
            .collect();
        let step: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| (p.step as i64).to_le_bytes())
            .collect();
        let bad = |e: safetensors::SafeTensorError| Error::invalid("pool", e.to_string());
        let views = vec![
            (
                "accuracy",
                TensorView::new(Dtype::F64, vec![m], &acc).map_err(bad)?,
            ),
            (
                "job",
                TensorView::new(Dtype::I64, vec![m], &job).map_err(bad)?,
            ),
            (
                "predictions",
                TensorView::new(Dtype::U16, vec![m, n], &preds).map_err(bad)?,
            ),
            (
                "step",
                TensorView::new(Dtype::I64, vec![m], &step).map_err(bad)?,
            ),
        ];
        // One metadata entry: safetensors writes its metadata map in hash order, so several
        // entries would make the bytes of identical pools differ between processes.
        let header = serde_json::json!({
            "format": POOL_FORMAT,
            "version": POOL_VERSION,
            "shard": self.shard.to_string(),
            "fingerprint": self.fingerprint,
        });
        let meta: std::collections::BTreeMap<String, String> =
            [(POOL_FORMAT.to_string(), header.to_string())].into();
        let bytes = crate::io::serialize_safetensors(views, &meta).map_err(bad)?;
        write_atomic(path, &bytes)
    }

    /// Reads a pool file written by [`PoolShard::write`]; errors name the file.
    pub fn read(path: &Path) -> Result<PoolShard> {
        let bad = |why: String| Error::Data {
            origin: path.display().to_string(),
            message: why,
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a pool file (safetensors): {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let text = meta
            .get(POOL_FORMAT)
            .ok_or_else(|| bad(format!("not a `{POOL_FORMAT}` file")))?;
        let meta: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("unreadable `{POOL_FORMAT}` metadata: {e}")))?;
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| bad(format!("no `{key}` in the metadata")))
        };
        if field("format")?.as_str() != Some(POOL_FORMAT) {
            return Err(bad(format!("not a `{POOL_FORMAT}` file")));
        }
        if field("version")?.as_u64() != Some(POOL_VERSION as u64) {
            return Err(bad(format!(
                "pool-file version {}, this build reads {POOL_VERSION}",
                field("version")?
            )));
        }
        let shard: Shard = field("shard")?
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: Error| bad(e.to_string()))?;
        let fingerprint = field("fingerprint")?
            .as_str()
            .ok_or_else(|| bad("`fingerprint` is not a string".into()))?
            .to_string();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a pool file (safetensors): {e}")))?;
        let tensor = |name: &str, dtype: Dtype| {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("has no tensor `{name}`")))?;
            if t.dtype() != dtype {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}, expected {dtype:?}",
                    t.dtype()
                )));
            }
            Ok(t)
        };
        let acc: Vec<f64> = tensor("accuracy", Dtype::F64)?
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let ints = |name: &str| -> Result<Vec<usize>> {
            Ok(tensor(name, Dtype::I64)?
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
                .collect())
        };
        let (job, step) = (ints("job")?, ints("step")?);
        let p = tensor("predictions", Dtype::U16)?;
        let m = acc.len();
        if p.shape().len() != 2 || p.shape()[0] != m || job.len() != m || step.len() != m {
            return Err(bad(format!(
                "inconsistent tensor shapes: predictions {:?}, {m} accuracies, {} jobs, {} steps",
                p.shape(),
                job.len(),
                step.len()
            )));
        }
        let n = p.shape()[1];
        let preds: Vec<u16> = p
            .data()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let members = (0..m)
            .map(|i| PoolMember {
                job: job[i],
                step: step[i],
                accuracy: acc[i],
                predictions: preds[i * n..(i + 1) * n].to_vec(),
            })
            .collect();
        Ok(PoolShard {
            shard,
            fingerprint,
            members,
        })
    }
}

/// Reads pool files: each path is a pool file or a folder whose `agreement-pool-*.safetensors`
/// files are all read (in name order).
pub fn read_pool_files(paths: &[PathBuf]) -> Result<Vec<PoolShard>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("agreement-pool-") && n.ends_with(".safetensors")
                    })
                })
                .collect();
            if found.is_empty() {
                return Err(Error::invalid(
                    "--merge",
                    format!(
                        "folder {} has no agreement-pool-*.safetensors files",
                        p.display()
                    ),
                ));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    files.iter().map(|f| PoolShard::read(f)).collect()
}

/// Gathers shards into the whole pool, ordered by job then step, checking that they come
/// from the same settings and data (`fingerprint`, see [`pool_fingerprint`]) and that every
/// shard `0/n..n-1/n` is there exactly once.
pub fn merge_pool(
    shards: &[PoolShard],
    fingerprint: &str,
    config: &AgreementConfig,
) -> Result<Vec<PoolMember>> {
    let first = shards
        .first()
        .ok_or_else(|| Error::invalid("--merge", "no pool files to merge"))?;
    let count = first.shard.count;
    let mut seen = vec![false; count];
    for s in shards {
        if s.shard.count != count {
            return Err(Error::invalid(
                "--merge",
                format!(
                    "shards of different splits: {} and {}",
                    first.shard, s.shard
                ),
            ));
        }
        if std::mem::replace(&mut seen[s.shard.index], true) {
            return Err(Error::invalid(
                "--merge",
                format!("shard {} is given twice", s.shard),
            ));
        }
        if s.fingerprint != fingerprint {
            return Err(Error::invalid(
                "--merge",
                format!(
                    "shard {} was trained with other settings or data: {}",
                    s.shard,
                    fingerprint_diff(&s.fingerprint, fingerprint)
                ),
            ));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| !seen[i])
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "--merge",
            format!("missing shards: {}", missing.join(", ")),
        ));
    }
    let mut members: Vec<PoolMember> = shards.iter().flat_map(|s| s.members.clone()).collect();
    members.sort_by_key(|m| (m.job, m.step));
    for j in 0..config.jobs() {
        if !members.iter().any(|m| m.job == j) {
            return Err(Error::invalid(
                "--merge",
                format!("pool job {j} has no members"),
            ));
        }
    }
    Ok(members)
}

/// Which fingerprint fields differ, as `key: file value ≠ current value`.
fn fingerprint_diff(file: &str, now: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s);
    match (parse(file), parse(now)) {
        (Ok(a), Ok(b)) => {
            let diffs: Vec<String> = b
                .iter()
                .filter(|(k, v)| a.get(*k) != Some(v))
                .map(|(k, v)| {
                    format!(
                        "{k}: {} in the file, {v} now",
                        a.get(k).map_or("absent".to_string(), |x| x.to_string())
                    )
                })
                .collect();
            diffs.join("; ")
        }
        _ => "unreadable fingerprint".to_string(),
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
}

/// Result of [`agreement`].
#[derive(Debug, Clone, Serialize)]
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
        let mut runs = Vec::with_capacity(config.distilled_runs);
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
            runs.push(evaluate(model, &trained.params, &test)?);
        }
        let matched = |members: &[&PoolMember]| -> Result<MatchedAgreement> {
            let accs: Vec<f64> = members.iter().map(|m| m.accuracy).collect();
            let (mut agreements, mut labels, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
            for run in &runs {
                for i in match_members(&accs, run.accuracy, config.match_tolerance, config.match_k)
                {
                    agreements.push(agreement_score(&run.predictions, &members[i].predictions)?);
                    labels.push(member_label(config, members[i]));
                    gaps.push((members[i].accuracy - run.accuracy).abs());
                }
            }
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let m = mean(&agreements);
            let std = m.map(|m| {
                (agreements.iter().map(|x| (x - m).powi(2)).sum::<f64>() / agreements.len() as f64)
                    .sqrt()
            });
            Ok(MatchedAgreement {
                matched: agreements.len(),
                mean: m,
                std,
                mean_accuracy_gap: mean(&gaps),
                agreements,
                members: labels,
            })
        };
        let run_accuracies: Vec<f64> = runs.iter().map(|e| e.accuracy).collect();
        out.push(SetAgreement {
            name: set.name.clone(),
            images: set.data.len(),
            test_accuracy: run_accuracies.iter().sum::<f64>() / run_accuracies.len() as f64,
            run_accuracies,
            pool_a: matched(&a)?,
            pool_b: matched(&b)?,
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

    fn summary(result: &serde_json::Value) -> Summary {
        summary(result)
    }
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &Value) -> Summary {
    let mut t = Table {
        header: [
            "set",
            "test accuracy",
            "agreement, pool A (subsets)",
            "agreement, pool B (early-stopped)",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    let mut verdicts = Vec::new();
    for s in arr(&r["sets"]) {
        let (a, b) = (&s["pool_a"]["mean"], &s["pool_b"]["mean"]);
        t.rows.push(vec![
            name(s),
            num(&s["test_accuracy"], 3),
            num(a, 3),
            num(b, 3),
        ]);
        if let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) {
            verdicts.push(format!(
                "{}: {b:.3} with early-stopped vs {a:.3} with subset-trained models ({})",
                name(s),
                if b > a {
                    "higher with early-stopped, as in the paper"
                } else {
                    "not higher"
                }
            ));
        }
    }
    Summary {
        title: "Prediction agreement".into(),
        question: "What does distilled data capture? Agreement of the distilled-trained model's \
                   test predictions with accuracy-matched models trained on random real subsets \
                   (pool A) and with early-stopped real runs (pool B). Paper: higher with \
                   early-stopped models for every method."
            .into(),
        finding: (!verdicts.is_empty()).then(|| verdicts.join("; ")),
        tables: vec![t],
    }
}
