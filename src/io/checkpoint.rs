//! What every checkpoint file shares, whatever it checkpoints (a distillation, a training run):
//! tensors and metadata in one deterministic safetensors encoding, a `format`/`version`/`run`
//! header read back with errors that say what is wrong, and the two checks made before a run
//! continues from one (the file is there; it was written with the same settings, each
//! differing setting named).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde_json::Value;

use crate::error::{Error, Result};

/// A tensor to encode: its name, dtype, shape and little-endian bytes.
pub(crate) struct OwnedTensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedTensor {
    /// An F32 tensor of `shape` from `values` (row-major).
    pub(crate) fn f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: impl IntoIterator<Item = f32>,
    ) -> OwnedTensor {
        let bytes = values.into_iter().flat_map(f32::to_le_bytes).collect();
        OwnedTensor {
            name: name.into(),
            dtype: Dtype::F32,
            shape,
            bytes,
        }
    }

    /// An I64 tensor of `shape` from `values` (row-major).
    pub(crate) fn i64(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: impl IntoIterator<Item = i64>,
    ) -> OwnedTensor {
        let bytes = values.into_iter().flat_map(i64::to_le_bytes).collect();
        OwnedTensor {
            name: name.into(),
            dtype: Dtype::I64,
            shape,
            bytes,
        }
    }
}

/// The safetensors bytes of `tensors` with `meta` as metadata (deterministic: the same
/// checkpoint always gives the same bytes).
pub(crate) fn encode(tensors: &[OwnedTensor], meta: &[(&str, String)]) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid("checkpoint", format!("tensor `{}`: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta: BTreeMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    super::serialize_safetensors(views, &meta)
        .map_err(|e| Error::invalid("checkpoint", format!("cannot encode: {e}")))
}

/// A checkpoint file's contents being decoded: its tensors and metadata. Errors are plain
/// messages; the reader wraps them with the file's name.
pub(crate) struct Decoded<'a> {
    /// The tensors.
    pub(crate) st: SafeTensors<'a>,
    meta: HashMap<String, String>,
}

impl<'a> Decoded<'a> {
    /// Parses `bytes` and checks that metadata `format` is `format`.
    pub(crate) fn new(bytes: &'a [u8], format: &str) -> std::result::Result<Self, String> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let meta = header.metadata().clone().unwrap_or_default();
        let decoded = Decoded { st, meta };
        if decoded.key("format")? != format {
            return Err(format!("format is not `{format}`"));
        }
        Ok(decoded)
    }

    /// Metadata value `k`.
    pub(crate) fn key(&self, k: &str) -> std::result::Result<String, String> {
        self.meta
            .get(k)
            .cloned()
            .ok_or_else(|| format!("metadata key `{k}` is missing"))
    }

    /// The run's fingerprint (metadata `run`, JSON).
    pub(crate) fn fingerprint(&self) -> std::result::Result<Value, String> {
        serde_json::from_str(&self.key("run")?).map_err(|e| format!("metadata `run`: {e}"))
    }
}

/// Little-endian f32 values of `bytes`.
pub(crate) fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// Little-endian i64 values of `bytes`.
pub(crate) fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// An error unless `path` holds a checkpoint to resume from.
pub(crate) fn require_checkpoint(path: &Path) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    Err(Error::invalid(
        "resume",
        format!(
            "no checkpoint at {}; run without --resume to start",
            path.display()
        ),
    ))
}

/// An error naming every setting in which `stored`, the fingerprint of the checkpoint at
/// `path`, differs from `current`, this run's.
pub(crate) fn require_same_settings(path: &Path, stored: &Value, current: &Value) -> Result<()> {
    let diffs = differences(stored, current, "");
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::Data {
        origin: path.display().to_string(),
        message: format!(
            "was written by a run with other settings ({}); resume with the same settings, \
             or delete the checkpoint to start over",
            diffs.join("; ")
        ),
    })
}

/// `key: checkpoint X, now Y` for every differing leaf of two JSON objects.
pub(crate) fn differences(old: &Value, new: &Value, prefix: &str) -> Vec<String> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let null = Value::Null;
                    differences(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), &name)
                })
                .collect()
        }
        _ if old == new => Vec::new(),
        _ => vec![format!("{prefix}: checkpoint {old}, now {new}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_every_differing_leaf_and_only_those() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "gone": true});
        let new = json!({"a": 1, "b": {"c": 5, "d": 3}, "added": "x"});
        assert_eq!(
            differences(&old, &new, ""),
            vec![
                "added: checkpoint null, now \"x\"".to_string(),
                "b.c: checkpoint 2, now 5".to_string(),
                "gone: checkpoint true, now null".to_string(),
            ]
        );
        assert!(differences(&old, &old, "").is_empty());
    }

    #[test]
    fn encoded_tensors_and_metadata_decode_to_the_same_values() {
        let tensors = [
            OwnedTensor::f32("x", vec![2, 2], [1.0, -2.5, f32::MIN_POSITIVE, 0.0]),
            OwnedTensor::i64("y", vec![3], [7, -1, i64::MAX]),
        ];
        let meta = [
            ("format", "f".to_string()),
            ("run", "{\"k\":1}".to_string()),
        ];
        let bytes = encode(&tensors, &meta).unwrap();
        assert_eq!(bytes, encode(&tensors, &meta).unwrap(), "deterministic");
        let d = Decoded::new(&bytes, "f").unwrap();
        assert_eq!(
            f32s(d.st.tensor("x").unwrap().data()),
            [1.0, -2.5, f32::MIN_POSITIVE, 0.0]
        );
        assert_eq!(i64s(d.st.tensor("y").unwrap().data()), [7, -1, i64::MAX]);
        assert_eq!(d.fingerprint().unwrap(), json!({"k": 1}));
        assert_eq!(d.key("nope").unwrap_err(), "metadata key `nope` is missing");
        let e = Decoded::new(&bytes, "other").err().unwrap();
        assert_eq!(e, "format is not `other`");
    }
}
