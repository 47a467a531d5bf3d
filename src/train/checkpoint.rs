//! Parameter files: safetensors with one tensor per manifest parameter (named as in the
//! manifest) and the model name in the metadata, written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::bundle::{Manifest, Params};
use crate::error::{Error, Result};

/// Writes `params` to `path` (via a temporary file and a rename, so a crash never leaves a
/// half-written file).
pub fn save_params(path: &Path, manifest: &Manifest, params: &Params) -> Result<()> {
    let bytes: Vec<Vec<u8>> = params
        .tensors()
        .iter()
        .map(|t| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = manifest
        .params
        .iter()
        .zip(params.tensors())
        .zip(&bytes)
        .map(|((spec, t), b)| {
            let view = TensorView::new(Dtype::F32, t.shape().to_vec(), b).expect("sizes agree");
            (spec.name.clone(), view)
        })
        .collect();
    let meta: BTreeMap<String, String> = [
        ("format".to_string(), "ddlens-params".to_string()),
        ("model".to_string(), manifest.name.clone()),
    ]
    .into();
    let data = crate::io::serialize_safetensors(views, &meta)
        .map_err(|e| Error::invalid("params", e.to_string()))?;
    crate::io::write_atomic(path, &data)
}

/// Reads parameters saved by [`save_params`] (or by PyTorch with the same names).
pub fn load_params(path: &Path, manifest: &Manifest) -> Result<Params> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bundle(path, format!("not a safetensors parameter file: {e}")))?;
    let tensors = manifest
        .params
        .iter()
        .map(|spec| {
            let t = st.tensor(&spec.name).map_err(|_| {
                Error::bundle(
                    path,
                    format!("has no tensor `{}` (model `{}`)", spec.name, manifest.name),
                )
            })?;
            if t.dtype() != Dtype::F32 || t.shape() != spec.shape.as_slice() {
                return Err(Error::bundle(
                    path,
                    format!(
                        "tensor `{}` is {:?} {:?}, expected F32 {:?}",
                        spec.name,
                        t.dtype(),
                        t.shape(),
                        spec.shape
                    ),
                ));
            }
            let values: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(ArrayD::from_shape_vec(IxDyn(&spec.shape), values).expect("shape checked"))
        })
        .collect::<Result<Vec<_>>>()?;
    Params::from_tensors(&manifest.params, tensors)
}
