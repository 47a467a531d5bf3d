//! Reading PyTorch files (`torch.save`) as a tree of tensors and plain containers.
//!
//! The parsing is pytorch-reader's (the Burn project's reader): it interprets the pickle
//! without executing anything, rebuilding tensors (strided and offset views included) from
//! their storages and leaving every other Python object as the name of its type. ddlens only
//! adds what its imports need on top: a root that is not a dictionary (MTT saves
//! `torch.save(tensor)`, which pytorch-reader's tensor listing refuses; see [`wrapped_copy`]),
//! a bound on the bytes materialised, and conversion to `f32` / `i64`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pytorch_reader::{DType, PickleValue, PytorchReader};

use super::data_err;
use crate::error::{Error, Result};

/// The Python type name pytorch-reader gives a tensor in a pickle's structure.
const TENSOR_TYPE: &str = "torch.Tensor";
/// The key under which a root that is not a dictionary is read (see [`wrapped_copy`]).
const ROOT_KEY: &str = "root";
/// Bytes of tensor data that may be materialised beyond the file's own size, as a multiple of
/// it: views of one storage each materialise their part, so a legitimate file can exceed its
/// size a little; a hostile one naming one storage a thousand times cannot exceed it a lot.
const MATERIALISE_FACTOR: u64 = 4;

/// One value of a PyTorch file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PtValue {
    /// A dense tensor, read.
    Tensor(PtTensor),
    /// A Python list or tuple.
    List(Vec<PtValue>),
    /// A dictionary with string keys.
    Dict(BTreeMap<String, PtValue>),
    /// A Python `int` or `float`.
    Number(f64),
    /// Anything else, by its Python type name (`str`, `None`, `__main__.Trajectory`,
    /// `numpy.core.multiarray.scalar`...). Nothing of it was run or built.
    Other(String),
}

/// A tensor's element type, shape and bytes (row-major, native-endian).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PtTensor {
    /// Dotted path in the file (`data.0.1`; `root` for the file's root).
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl PtValue {
    /// What the value is, for error messages: `tensor float32 [10, 3, 32, 32]`, `list of 2`,
    /// `dict with keys data, accs_all_exps`, `int`, `__main__.Foo`.
    pub fn describe(&self) -> String {
        match self {
            PtValue::Tensor(t) => format!("tensor {} {:?}", dtype_name(t.dtype), t.shape),
            PtValue::List(items) => format!("list of {}", items.len()),
            PtValue::Dict(map) => {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                format!("dict with keys {}", keys.join(", "))
            }
            PtValue::Number(_) => "number".into(),
            PtValue::Other(name) => name.clone(),
        }
    }
}

impl PtTensor {
    /// The values as `f32`: float32, float16, bfloat16 and float64 tensors.
    pub fn to_f32(&self) -> std::result::Result<Vec<f32>, String> {
        let b = &self.bytes;
        let two = |c: &[u8]| u16::from_ne_bytes([c[0], c[1]]);
        Ok(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes(c.try_into().expect("4")))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(two(c)).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(two(c)).to_f32())
                .collect(),
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes(c.try_into().expect("8")) as f32)
                .collect(),
            other => {
                return Err(format!(
                    "has dtype {}, expected a floating-point tensor",
                    dtype_name(other)
                ))
            }
        })
    }

    /// The values as `i64`: signed integer tensors and uint8.
    pub fn to_i64(&self) -> std::result::Result<Vec<i64>, String> {
        let b = &self.bytes;
        Ok(match self.dtype {
            DType::I64 => b
                .chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().expect("8")))
                .collect(),
            DType::I32 => b
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_ne_bytes(c.try_into().expect("4"))))
                .collect(),
            DType::I16 => b
                .chunks_exact(2)
                .map(|c| i64::from(i16::from_ne_bytes([c[0], c[1]])))
                .collect(),
            DType::I8 => b.iter().map(|&v| i64::from(v as i8)).collect(),
            DType::U8 => b.iter().map(|&v| i64::from(v)).collect(),
            other => {
                return Err(format!(
                    "has dtype {}, expected an integer tensor (convert with `.long()` in PyTorch)",
                    dtype_name(other)
                ))
            }
        })
    }
}

/// PyTorch's name of an element type.
pub(crate) fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F64 => "float64",
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::I16 => "int16",
        DType::I8 => "int8",
        DType::U64 => "uint64",
        DType::U32 => "uint32",
        DType::U16 => "uint16",
        DType::U8 => "uint8",
        DType::Bool => "bool",
    }
}

/// Reads a PyTorch file into a [`PtValue`] tree, every tensor read. Errors name the file.
pub(crate) fn read_pt(path: &Path) -> Result<PtValue> {
    let origin = path.display().to_string();
    let not_pt = |e: pytorch_reader::PytorchError| {
        data_err(&origin, format!("not a readable PyTorch file: {e}"))
    };
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let structure = PytorchReader::read_pickle_data(path, None).map_err(not_pt)?;
    let root_is_dict = matches!(structure, PickleValue::Dict(_));
    let mut tensors = if !holds_tensor(&structure) {
        HashMap::new()
    } else if root_is_dict {
        let reader = PytorchReader::new(path).map_err(not_pt)?;
        materialise(reader.into_tensors(), file_len, &origin)?
    } else {
        let copy = wrapped_copy(path)?;
        let read = PytorchReader::new(&copy).map_err(not_pt);
        let read = read.and_then(|r| materialise(r.into_tensors(), file_len, &origin));
        let _ = std::fs::remove_file(&copy);
        read?
    };
    let mut prefix = if root_is_dict {
        vec![]
    } else {
        vec![ROOT_KEY.to_string()]
    };
    build(structure, &mut prefix, &mut tensors, &origin)
}

/// Whether a structure holds a tensor anywhere.
fn holds_tensor(value: &PickleValue) -> bool {
    match value {
        PickleValue::Unsupported(name) => name == TENSOR_TYPE,
        PickleValue::List(items) => items.iter().any(holds_tensor),
        PickleValue::Dict(map) => map.values().any(holds_tensor),
        _ => false,
    }
}

/// Reads the tensors' bytes, refusing before any allocation a tensor (or all of them
/// together) larger than the file could hold (see [`MATERIALISE_FACTOR`]).
fn materialise(
    tensors: HashMap<String, pytorch_reader::Tensor>,
    file_len: u64,
    origin: &str,
) -> Result<HashMap<String, PtTensor>> {
    let budget = file_len.saturating_mul(MATERIALISE_FACTOR);
    let total: u64 = tensors.values().map(|t| t.byte_len() as u64).sum();
    if let Some((name, t)) = tensors.iter().find(|(_, t)| t.byte_len() as u64 > file_len) {
        return Err(data_err(
            origin,
            format!(
                "tensor `{name}` of shape {:?} would take {} bytes, more than the file's {file_len}",
                t.shape(),
                t.byte_len()
            ),
        ));
    }
    if total > budget {
        return Err(data_err(
            origin,
            format!(
                "the file's {} tensors would take {total} bytes, more than {MATERIALISE_FACTOR} \
                 times the file's {file_len}",
                tensors.len()
            ),
        ));
    }
    tensors
        .into_iter()
        .map(|(name, t)| {
            let bytes = t
                .read()
                .map_err(|e| data_err(origin, format!("tensor `{name}`: {e}")))?;
            let tensor = PtTensor {
                name: name.clone(),
                dtype: t.dtype(),
                shape: t.shape().to_vec(),
                bytes,
            };
            Ok((name, tensor))
        })
        .collect()
}

/// Turns pytorch-reader's structure into a [`PtValue`], each tensor taken from `tensors` by
/// its dotted path.
fn build(
    value: PickleValue,
    path: &mut Vec<String>,
    tensors: &mut HashMap<String, PtTensor>,
    origin: &str,
) -> Result<PtValue> {
    Ok(match value {
        PickleValue::Unsupported(name) if name == TENSOR_TYPE => {
            let key = path.join(".");
            let tensor = tensors.remove(&key).ok_or_else(|| {
                data_err(
                    origin,
                    format!("tensor `{key}` is in the pickle but could not be read"),
                )
            })?;
            PtValue::Tensor(tensor)
        }
        PickleValue::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(i.to_string());
                out.push(build(item, path, tensors, origin)?);
                path.pop();
            }
            PtValue::List(out)
        }
        PickleValue::Dict(map) => {
            let mut out = BTreeMap::new();
            for (key, item) in map {
                path.push(key.clone());
                out.insert(key, build(item, path, tensors, origin)?);
                path.pop();
            }
            PtValue::Dict(out)
        }
        PickleValue::Int(v) => PtValue::Number(v as f64),
        PickleValue::Float(v) => PtValue::Number(v),
        PickleValue::Bool(_) => PtValue::Other("bool".into()),
        PickleValue::None => PtValue::Other("None".into()),
        PickleValue::String(_) => PtValue::Other("str".into()),
        PickleValue::Bytes(_) => PtValue::Other("bytes".into()),
        PickleValue::Unsupported(name) => PtValue::Other(name),
    })
}

/// A copy of a zip-format PyTorch file whose pickle's root is put into a one-entry dictionary
/// `{"root": ...}`, in the temporary folder.
///
/// pytorch-reader lists tensors only below a root dictionary, and `torch.save(tensor)` (MTT's
/// `images_best.pt`) has a tensor at the root. Its pickle is `PROTO, <value>, STOP`; the copy
/// is `PROTO, EMPTY_DICT, BINUNICODE "root", <value>, SETITEM, STOP` (memo indices are
/// explicit in the opcodes, so inserting these shifts nothing), with every other entry (the
/// storages) copied unchanged. Still no code runs: the copy goes through the same reader.
fn wrapped_copy(path: &Path) -> Result<PathBuf> {
    let origin = path.display().to_string();
    let bad = |m: String| data_err(&origin, m);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        bad(format!(
            "not a PyTorch zip file (torch.save, PyTorch 1.6+): {e}"
        ))
    })?;
    let pickle_name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad("the zip file has no data.pkl".into()))?;
    let pickle = {
        let entry = archive
            .by_name(&pickle_name)
            .map_err(|e| bad(format!("{pickle_name}: {e}")))?;
        let declared = entry.size();
        if declared > pytorch_reader::MAX_PICKLE_SIZE {
            return Err(bad(format!("{pickle_name} declares {declared} bytes")));
        }
        let mut bytes = Vec::new();
        entry
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{pickle_name}: {e}")))?;
        if bytes.len() as u64 > declared {
            return Err(bad(format!(
                "{pickle_name} inflates beyond the {declared} bytes it declares"
            )));
        }
        bytes
    };
    let wrapped = wrap_pickle(&pickle).ok_or_else(|| {
        bad(format!(
            "{pickle_name} is not a pickle of protocol 2 or later ending in STOP"
        ))
    })?;
    let copy = scratch_file();
    let written = write_copy(&mut archive, &pickle_name, &wrapped, &copy);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&copy);
        return Err(bad(format!("cannot make a readable copy of the file: {e}")));
    }
    Ok(copy)
}

/// `PROTO n [FRAME len] <value> STOP` → the same value under key [`ROOT_KEY`] of a dict.
fn wrap_pickle(pickle: &[u8]) -> Option<Vec<u8>> {
    const PROTO: u8 = 0x80;
    const FRAME: u8 = 0x95;
    const STOP: u8 = b'.';
    if pickle.first() != Some(&PROTO) || pickle.len() < 3 || pickle.last() != Some(&STOP) {
        return None;
    }
    // pytorch-reader ignores frame lengths, so a frame may grow by our few bytes.
    let head = if pickle.get(2) == Some(&FRAME) { 11 } else { 2 };
    if pickle.len() < head + 1 {
        return None;
    }
    let mut out = Vec::with_capacity(pickle.len() + 16);
    out.extend_from_slice(&pickle[..head]);
    out.push(b'}'); // EMPTY_DICT
    out.push(b'X'); // BINUNICODE
    out.extend_from_slice(&(ROOT_KEY.len() as u32).to_le_bytes());
    out.extend_from_slice(ROOT_KEY.as_bytes());
    out.extend_from_slice(&pickle[head..pickle.len() - 1]);
    out.push(b's'); // SETITEM
    out.push(STOP);
    Some(out)
}

fn write_copy(
    archive: &mut zip::ZipArchive<File>,
    pickle_name: &str,
    pickle: &[u8],
    copy: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut writer = zip::ZipWriter::new(File::create(copy)?);
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i)?;
        if entry.name() == pickle_name {
            drop(entry);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            writer.start_file(pickle_name, options)?;
            writer.write_all(pickle)?;
        } else {
            writer.raw_copy_file(entry)?;
        }
    }
    writer.finish()?;
    Ok(())
}

/// A fresh file name in the temporary folder, unique to this process and call.
fn scratch_file() -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ddlens-pt-{}-{n}.pt", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_puts_the_value_under_root() {
        // PROTO 2, BININT1 7, STOP
        let wrapped = wrap_pickle(&[0x80, 2, b'K', 7, b'.']).unwrap();
        assert_eq!(
            wrapped,
            [
                &[0x80, 2, b'}', b'X', 4, 0, 0, 0][..],
                b"root",
                &[b'K', 7, b's', b'.']
            ]
            .concat()
        );
        assert_eq!(wrap_pickle(b"K\x07."), None);
        assert_eq!(wrap_pickle(&[0x80, 2, b'K', 7]), None);
    }
}
