//! Training checkpoints: what a [`train`](super::train) run needs to continue exactly where it
//! stopped, taken at the end of an epoch, in one safetensors file written atomically.
//!
//! A run over the whole Fashion-MNIST training set takes hours on a CPU core (the zoo's
//! full-data row: 6,690 s for 20 epochs on one shared thread), so an interrupted one must not
//! start over. Checkpoints are written at epoch ends only: there the minibatch order is
//! complete and the two random streams (shuffling, augmentation) sit at a position that is
//! stored exactly, so the resumed run computes the same numbers as an uninterrupted one, bit
//! for bit.
//!
//! Tensors: `params` and `velocity` (F32, flat, in manifest order; `velocity` absent before
//! momentum has a buffer), `state` (F32, flat, in manifest `state` order: the BatchNorm
//! running statistics of a bundle with state, absent otherwise), `order` (I64, the current
//! minibatch order), `losses`, `lrs` (F32) and `epochs` (I64), one per finished update.
//! Metadata: `format` = `ddlens-train-checkpoint`, `version` (2; version 1, written before
//! bundles had state, reads as a checkpoint without `state`), `epoch` (epochs finished), the
//! two streams' word positions, and `run`, the JSON fingerprint of the run compared on resume.

use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde_json::{json, Value};

use super::config::TrainConfig;
use super::trainer::StepLog;
use crate::bundle::{Bundle, ParamSpec, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::checkpoint::{self, f32s, i64s, require_checkpoint, require_same_settings};
use crate::io::checkpoint::{Decoded, OwnedTensor};

/// Value of the `format` metadata key.
pub const TRAIN_CHECKPOINT_FORMAT: &str = "ddlens-train-checkpoint";
const VERSION: &str = "2";
/// The version written before bundles had state: read as one without `state`.
const VERSION_WITHOUT_STATE: &str = "1";

/// Where and how often a training run checkpoints, and whether it resumes.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Write at the end of an epoch once this many seconds have passed since the last write
    /// (or the start); 0 writes after every epoch.
    pub every_secs: f64,
    /// Continue from `path` (which must exist and come from the same run) instead of starting.
    pub resume: bool,
}

/// The state of a training run after `epoch` whole epochs.
#[derive(Debug, Clone)]
pub struct TrainCheckpoint {
    /// Epochs finished.
    pub epoch: usize,
    /// The parameters after them.
    pub params: Params,
    /// The state after them (BatchNorm running statistics; empty for a bundle without).
    pub state: Params,
    /// SGD's momentum buffer, once it exists.
    pub velocity: Option<Params>,
    /// The minibatch order of the last epoch (each epoch reshuffles it in place).
    pub order: Vec<usize>,
    /// Word position of the shuffling stream.
    pub rng_pos: u128,
    /// Word position of the augmentation stream.
    pub aug_rng_pos: u128,
    /// Every update so far.
    pub log: Vec<StepLog>,
    /// The run's settings, compared on resume.
    pub fingerprint: Value,
}

/// Everything that must agree between a run and its resumption.
pub(crate) fn fingerprint(
    bundle: &Bundle,
    init: &Params,
    data: &Dataset,
    config: &TrainConfig,
) -> Value {
    let init_bytes: Vec<u8> = init
        .to_flat()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    json!({
        "model": bundle.name(),
        "init": fnv(&init_bytes),
        "data": { "name": data.name(), "len": data.len(), "content": super::content_hash(data, true) },
        "config": config,
    })
}

fn fnv(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

impl TrainCheckpoint {
    /// Writes the checkpoint to `path` through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint of a model with parameters `specs` and state `state_specs` (the
    /// manifest's `params` and `state`) over `data_len` examples; every problem is an error
    /// naming the file.
    pub fn read(
        path: &Path,
        specs: &[ParamSpec],
        state_specs: &[ParamSpec],
        data_len: usize,
    ) -> Result<TrainCheckpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        decode(&bytes, specs, state_specs, data_len).map_err(|m| Error::Data {
            origin: path.display().to_string(),
            message: format!("not a usable training checkpoint ({m}); delete it to start over"),
        })
    }

    /// The safetensors encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(self)
    }
}

fn encode(state: &TrainCheckpoint) -> Result<Vec<u8>> {
    let flat = |name: &str, p: &Params| OwnedTensor::f32(name, vec![p.numel()], p.to_flat());
    let n = state.log.len();
    let mut tensors = vec![
        flat("params", &state.params),
        OwnedTensor::i64(
            "order",
            vec![state.order.len()],
            state.order.iter().map(|&i| i as i64),
        ),
        OwnedTensor::f32("losses", vec![n], state.log.iter().map(|s| s.loss)),
        OwnedTensor::f32("lrs", vec![n], state.log.iter().map(|s| s.lr)),
        OwnedTensor::i64("epochs", vec![n], state.log.iter().map(|s| s.epoch as i64)),
    ];
    if let Some(v) = &state.velocity {
        tensors.push(flat("velocity", v));
    }
    if !state.state.is_empty() {
        tensors.push(flat("state", &state.state));
    }
    let meta = [
        ("format", TRAIN_CHECKPOINT_FORMAT.to_string()),
        ("version", VERSION.to_string()),
        ("epoch", state.epoch.to_string()),
        ("rng_pos", state.rng_pos.to_string()),
        ("aug_rng_pos", state.aug_rng_pos.to_string()),
        ("run", state.fingerprint.to_string()),
    ];
    checkpoint::encode(&tensors, &meta)
}

/// The checkpoint at `path` for a run with `fingerprint` over `data_len` examples and
/// `bundle`'s parameters; any mismatch or damage is an error naming the file.
pub(crate) fn load_for_resume(
    path: &Path,
    fingerprint: &Value,
    bundle: &Bundle,
    data_len: usize,
) -> Result<TrainCheckpoint> {
    require_checkpoint(path)?;
    let m = bundle.manifest();
    let ckpt = TrainCheckpoint::read(path, &m.params, &m.state, data_len)?;
    require_same_settings(path, &ckpt.fingerprint, fingerprint)?;
    Ok(ckpt)
}

/// Decodes [`encode`]'s bytes; the error says what is wrong (without the file name).
fn decode(
    bytes: &[u8],
    specs: &[ParamSpec],
    state_specs: &[ParamSpec],
    data_len: usize,
) -> std::result::Result<TrainCheckpoint, String> {
    let d = Decoded::new(bytes, TRAIN_CHECKPOINT_FORMAT)?;
    let (st, key) = (&d.st, |k: &str| d.key(k));
    let version = key("version")?;
    if version != VERSION && version != VERSION_WITHOUT_STATE {
        return Err(format!(
            "version {version} (this build reads {VERSION_WITHOUT_STATE} and {VERSION})"
        ));
    }
    let number = |k: &str| -> std::result::Result<u128, String> {
        key(k)?
            .parse()
            .map_err(|_| format!("metadata `{k}` is not a count"))
    };
    let fingerprint = d.fingerprint()?;
    let tensor = |name: &str, dtype: Dtype| -> std::result::Result<Option<Vec<u8>>, String> {
        match st.tensor(name) {
            Ok(t) if t.dtype() == dtype && t.shape().len() == 1 => Ok(Some(t.data().to_vec())),
            Ok(t) => Err(format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} rank 1",
                t.dtype(),
                t.shape()
            )),
            Err(_) => Ok(None),
        }
    };
    let needed =
        |name: &str, dtype| tensor(name, dtype)?.ok_or(format!("tensor `{name}` is missing"));
    let params_of = |v: Vec<f32>, name: &str| {
        Params::from_flat(specs, &v).map_err(|e| format!("tensor `{name}`: {e}"))
    };
    let params = params_of(f32s(&needed("params", Dtype::F32)?), "params")?;
    let velocity = tensor("velocity", Dtype::F32)?
        .map(|b| params_of(f32s(&b), "velocity"))
        .transpose()?;
    let state = match tensor("state", Dtype::F32)? {
        Some(_) if version == VERSION_WITHOUT_STATE => {
            return Err(format!("version {version} has no tensor `state`"))
        }
        Some(_) if state_specs.is_empty() => {
            return Err("tensor `state` for a model without state".into())
        }
        Some(b) => {
            Params::from_flat(state_specs, &f32s(&b)).map_err(|e| format!("tensor `state`: {e}"))?
        }
        None if state_specs.is_empty() => Params::empty(),
        None => return Err("tensor `state` (the BatchNorm running statistics) is missing".into()),
    };
    let order = i64s(&needed("order", Dtype::I64)?);
    let mut seen = vec![false; data_len];
    for &i in &order {
        match usize::try_from(i).ok().filter(|&i| i < data_len) {
            Some(i) if !seen[i] => seen[i] = true,
            _ => {
                return Err(format!(
                    "`order` is not a permutation of the {data_len} examples"
                ))
            }
        }
    }
    if order.len() != data_len {
        return Err(format!(
            "`order` has {} entries for {data_len} examples",
            order.len()
        ));
    }
    let (losses, lrs) = (
        f32s(&needed("losses", Dtype::F32)?),
        f32s(&needed("lrs", Dtype::F32)?),
    );
    let epochs = i64s(&needed("epochs", Dtype::I64)?);
    if lrs.len() != losses.len() || epochs.len() != losses.len() {
        return Err("`losses`, `lrs` and `epochs` differ in length".into());
    }
    let log = losses
        .iter()
        .zip(&lrs)
        .zip(&epochs)
        .enumerate()
        .map(|(i, ((&loss, &lr), &epoch))| StepLog {
            step: i + 1,
            epoch: epoch.max(0) as usize,
            loss,
            lr,
        })
        .collect();
    let epoch = usize::try_from(number("epoch")?).map_err(|_| "metadata `epoch` is too large")?;
    Ok(TrainCheckpoint {
        epoch,
        params,
        state,
        velocity,
        order: order.into_iter().map(|i| i as usize).collect(),
        rng_pos: number("rng_pos")?,
        aug_rng_pos: number("aug_rng_pos")?,
        log,
        fingerprint,
    })
}
