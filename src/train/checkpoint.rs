//! Parameter files: safetensors with one tensor per manifest parameter (named as in the
//! manifest) and the model name in the metadata, written atomically. A model file of a bundle
//! with state ([`save_model`]) also holds one tensor per manifest `state` entry, under the
//! state's own name (`norm0.running_mean`: PyTorch's buffer name, so a PyTorch `state_dict`
//! saved as safetensors reads as is).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::bundle::{Manifest, ParamSpec, Params};
use crate::error::{Error, Result};

/// Writes `params` to `path` (via a temporary file and a rename, so a crash never leaves a
/// half-written file). Parameters only: a trained model of a bundle with state is saved
/// with [`save_model`].
pub fn save_params(path: &Path, manifest: &Manifest, params: &Params) -> Result<()> {
    save_model(path, manifest, params, &Params::empty())
}

/// Writes `params` and `state` (BatchNorm running statistics, manifest `state` order; empty
/// for parameters alone) to `path`, atomically.
pub fn save_model(path: &Path, manifest: &Manifest, params: &Params, state: &Params) -> Result<()> {
    if !state.is_empty() && state.len() != manifest.state.len() {
        return Err(Error::invalid(
            "state",
            format!(
                "{} tensors, model `{}` has {}",
                state.len(),
                manifest.name,
                manifest.state.len()
            ),
        ));
    }
    let tensors: Vec<_> = params.tensors().iter().chain(state.tensors()).collect();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = manifest
        .params
        .iter()
        .chain(&manifest.state)
        .zip(tensors)
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

/// Reads parameters saved by [`save_params`] or [`save_model`] (or by PyTorch with the same
/// names).
pub fn load_params(path: &Path, manifest: &Manifest) -> Result<Params> {
    let tensors = read_tensors(path, manifest, &manifest.params)?;
    Params::from_tensors(&manifest.params, tensors)
}

/// Reads the state saved by [`save_model`] (or PyTorch's buffers of the same names): empty
/// for a bundle without state; a missing tensor is an error naming it and the file.
pub fn load_state(path: &Path, manifest: &Manifest) -> Result<Params> {
    if manifest.state.is_empty() {
        return Ok(Params::empty());
    }
    let tensors = read_tensors(path, manifest, &manifest.state)?;
    Params::from_tensors(&manifest.state, tensors)
}

/// Reads a model file: the parameters, and the state when the file holds any of it (`None`
/// for a parameters-only file or a bundle without state; a partial or misshapen state is an
/// error naming the tensor).
pub fn load_model(path: &Path, manifest: &Manifest) -> Result<(Params, Option<Params>)> {
    let params = load_params(path, manifest)?;
    if manifest.state.is_empty() {
        return Ok((params, None));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bundle(path, format!("not a safetensors parameter file: {e}")))?;
    let any = manifest.state.iter().any(|s| st.tensor(&s.name).is_ok());
    Ok((params, any.then(|| load_state(path, manifest)).transpose()?))
}

/// The tensors named by `specs`, checked for dtype and shape.
fn read_tensors(path: &Path, manifest: &Manifest, specs: &[ParamSpec]) -> Result<Vec<ArrayD<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bundle(path, format!("not a safetensors parameter file: {e}")))?;
    specs
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
        .collect()
}
