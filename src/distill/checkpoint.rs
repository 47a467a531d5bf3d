//! Distillation checkpoints: everything a run needs to continue exactly where it stopped
//! (synthetic set, method state, iteration count, loss log) plus a fingerprint of the run's
//! settings, in one safetensors file written atomically.
//!
//! Tensors: `syn.images` (F32, rank 4), `syn.labels` (I64), optional `syn.lr` (F32, `[]`),
//! `losses` (F32, one per finished iteration) and `state.<name>` per method state tensor.
//! Metadata: `format` = `ddlens-distill-checkpoint`, `version`, `iteration`, `num_classes`,
//! and `run`, the JSON fingerprint compared on resume. Values are stored bit for bit (f32
//! little endian), so a resumed run continues from exactly the same numbers.

use std::path::Path;

use ndarray::{Array1, Array4, ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::synthetic::Synthetic;
use crate::data::MAX_CLASSES;
use crate::error::{Error, Result};
use crate::io::checkpoint::{encode, f32s, i64s, Decoded, OwnedTensor};
use crate::io::write_atomic;

/// Value of the `format` metadata key.
pub const CHECKPOINT_FORMAT: &str = "ddlens-distill-checkpoint";
/// Value of the `version` metadata key this build reads and writes.
pub const CHECKPOINT_VERSION: &str = "1";

const STATE_PREFIX: &str = "state.";

/// The state of a distillation run after `iteration` iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Iterations finished.
    pub iteration: usize,
    /// The synthetic set after those iterations.
    pub synthetic: Synthetic,
    /// The method's state ([`Method::state`](super::Method::state)).
    pub state: Vec<(String, ArrayD<f32>)>,
    /// Loss of every finished iteration.
    pub losses: Vec<f32>,
    /// The run's settings, compared on resume so that a run is never continued with other
    /// settings than the ones it started with.
    pub fingerprint: serde_json::Value,
}

impl Checkpoint {
    /// Writes the checkpoint to `path` through a temporary file and a rename, so an
    /// interrupted write never replaces a good checkpoint with a broken one.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// The safetensors encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let syn = &self.synthetic;
        let labels = syn.labels.len();
        let mut tensors = vec![
            OwnedTensor::f32(
                "syn.images",
                syn.images.shape().to_vec(),
                syn.images.iter().copied(),
            ),
            OwnedTensor::i64("syn.labels", vec![labels], syn.labels.iter().copied()),
            OwnedTensor::f32(
                "losses",
                vec![self.losses.len()],
                self.losses.iter().copied(),
            ),
        ];
        if let Some(lr) = syn.lr {
            tensors.push(OwnedTensor::f32("syn.lr", vec![], [lr]));
        }
        for (name, t) in &self.state {
            let name = format!("{STATE_PREFIX}{name}");
            tensors.push(OwnedTensor::f32(
                name,
                t.shape().to_vec(),
                t.iter().copied(),
            ));
        }
        let meta = [
            ("format", CHECKPOINT_FORMAT.to_string()),
            ("version", CHECKPOINT_VERSION.to_string()),
            ("iteration", self.iteration.to_string()),
            ("num_classes", syn.num_classes.to_string()),
            ("run", self.fingerprint.to_string()),
        ];
        encode(&tensors, &meta)
    }

    /// Reads a checkpoint; every problem is an error naming the file.
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(&bytes).map_err(|message| Error::Data {
            origin: path.display().to_string(),
            message: format!(
                "not a usable distillation checkpoint ({message}); delete it to start over"
            ),
        })
    }

    /// Decodes [`Checkpoint::to_bytes`]; the error says what is wrong (without the file name).
    fn from_bytes(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        let d = Decoded::new(bytes, CHECKPOINT_FORMAT)?;
        let (st, key) = (&d.st, |k: &str| d.key(k));
        let version = key("version")?;
        if version != CHECKPOINT_VERSION {
            return Err(format!(
                "version {version}, this build reads version {CHECKPOINT_VERSION}"
            ));
        }
        let iteration: usize = parse(&key("iteration")?, "iteration")?;
        let num_classes: usize = parse(&key("num_classes")?, "num_classes")?;
        // Per-class tables are allocated from it on resume.
        if !(1..=MAX_CLASSES).contains(&num_classes) {
            return Err(format!(
                "metadata `num_classes` is {num_classes}, expected 1..={MAX_CLASSES}"
            ));
        }
        let fingerprint = d.fingerprint()?;

        let images = f32_tensor(st, "syn.images")?;
        let images: Array4<f32> = images
            .into_dimensionality()
            .map_err(|_| "tensor `syn.images` is not rank 4".to_string())?;
        let labels = i64_tensor(st, "syn.labels")?;
        if labels.len() != images.dim().0 {
            return Err("`syn.labels` and `syn.images` differ in length".into());
        }
        if labels.iter().any(|&y| y < 0 || y as usize >= num_classes) {
            return Err(format!("a label is outside [0, {num_classes})"));
        }
        let lr = match st.names().contains(&"syn.lr") {
            true => f32_tensor(st, "syn.lr")?.iter().next().copied(),
            false => None,
        };
        let losses = f32_tensor(st, "losses")?.into_iter().collect::<Vec<_>>();
        if losses.len() != iteration {
            return Err(format!(
                "{} losses logged for {iteration} iterations",
                losses.len()
            ));
        }
        let mut names: Vec<&str> = st.names().into_iter().collect();
        names.sort_unstable();
        let state = names
            .into_iter()
            .filter_map(|n| n.strip_prefix(STATE_PREFIX).map(|short| (n, short)))
            .map(|(n, short)| Ok((short.to_string(), f32_tensor(st, n)?)))
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Checkpoint {
            iteration,
            synthetic: Synthetic {
                images,
                labels,
                num_classes,
                lr,
            },
            state,
            losses,
            fingerprint,
        })
    }
}

fn parse<T: std::str::FromStr>(s: &str, key: &str) -> std::result::Result<T, String> {
    s.parse()
        .map_err(|_| format!("metadata `{key}` is `{s}`, not a number"))
}

fn tensor<'a>(
    st: &SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
) -> std::result::Result<TensorView<'a>, String> {
    let t = st
        .tensor(name)
        .map_err(|_| format!("tensor `{name}` is missing"))?;
    if t.dtype() != dtype {
        return Err(format!(
            "tensor `{name}` is {:?}, expected {dtype:?}",
            t.dtype()
        ));
    }
    Ok(t)
}

fn f32_tensor(st: &SafeTensors, name: &str) -> std::result::Result<ArrayD<f32>, String> {
    let t = tensor(st, name, Dtype::F32)?;
    ArrayD::from_shape_vec(IxDyn(t.shape()), f32s(t.data()))
        .map_err(|e| format!("tensor `{name}`: {e}"))
}

fn i64_tensor(st: &SafeTensors, name: &str) -> std::result::Result<Array1<i64>, String> {
    let t = tensor(st, name, Dtype::I64)?;
    if t.shape().len() != 1 {
        return Err(format!("tensor `{name}` is not rank 1"));
    }
    Ok(Array1::from(i64s(t.data())))
}
