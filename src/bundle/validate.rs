//! Checking a bundle against its manifest: role names, tensor names, element types, shapes
//! and opset. Each message names the file, the role and the tensor at fault.

use std::path::Path;

use ort::session::Session;
use ort::value::TensorElementType;
use ort::value::ValueType;

use super::manifest::Manifest;
use super::role::{DType, Role, TensorSpec};
use crate::error::{Error, Result};

/// Checks the manifest's `graphs` table: known roles only, `forward` present, and the names
/// each role lists are exactly the ones the format prescribes.
pub fn check_graph_table(manifest: &Manifest, manifest_path: &Path) -> Result<Vec<Role>> {
    let mut roles = Vec::new();
    for (name, spec) in &manifest.graphs {
        let role = Role::from_name(name).ok_or_else(|| {
            let known: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
            Error::bundle(
                manifest_path,
                format!(
                    "unknown role `{name}` in `graphs`; known roles: {}",
                    known.join(", ")
                ),
            )
        })?;
        compare_names(
            manifest_path,
            role,
            "inputs",
            &spec.inputs,
            &role.inputs(manifest),
        )?;
        compare_names(
            manifest_path,
            role,
            "outputs",
            &spec.outputs,
            &role.outputs(manifest),
        )?;
        roles.push(role);
    }
    if !roles.contains(&Role::Forward) {
        return Err(Error::bundle(
            manifest_path,
            "`graphs` has no `forward` role, which every bundle needs",
        ));
    }
    Ok(roles)
}

fn compare_names(
    path: &Path,
    role: Role,
    field: &str,
    listed: &[String],
    expected: &[TensorSpec],
) -> Result<()> {
    let expected_names: Vec<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    if listed.len() != expected.len() {
        return Err(Error::bundle(
            path,
            format!(
                "graphs.{role}.{field} lists {} names, the format needs {}: {:?}",
                listed.len(),
                expected.len(),
                expected_names
            ),
        ));
    }
    for (i, (got, want)) in listed.iter().zip(&expected_names).enumerate() {
        if got != want {
            return Err(Error::bundle(
                path,
                format!("graphs.{role}.{field}[{i}] is `{got}`, expected `{want}`"),
            ));
        }
    }
    Ok(())
}

/// Checks a loaded graph's inputs, outputs and opset against the role's layout.
pub fn check_session(
    session: &Session,
    manifest: &Manifest,
    role: Role,
    file: &Path,
) -> Result<()> {
    match session.opset_for_domain("") {
        Some(opset) if opset != manifest.opset => {
            return Err(Error::bundle(
                file,
                format!(
                    "graph has opset {opset}, the manifest says {}",
                    manifest.opset
                ),
            ))
        }
        _ => {}
    }
    let inputs: Vec<(&str, &ValueType)> = session
        .inputs()
        .iter()
        .map(|o| (o.name(), o.dtype()))
        .collect();
    let outputs: Vec<(&str, &ValueType)> = session
        .outputs()
        .iter()
        .map(|o| (o.name(), o.dtype()))
        .collect();
    check_side(file, role, "input", &inputs, &role.inputs(manifest), true)?;
    check_side(
        file,
        role,
        "output",
        &outputs,
        &role.outputs(manifest),
        false,
    )
}

fn check_side(
    file: &Path,
    role: Role,
    side: &str,
    actual: &[(&str, &ValueType)],
    expected: &[TensorSpec],
    strict_shapes: bool,
) -> Result<()> {
    for spec in expected {
        let Some((_, ty)) = actual.iter().find(|(n, _)| *n == spec.name) else {
            let names: Vec<_> = actual.iter().map(|(n, _)| *n).collect();
            return Err(Error::bundle(
                file,
                format!(
                    "role `{role}`: the graph has no {side} `{}` (it has {names:?})",
                    spec.name
                ),
            ));
        };
        check_tensor(file, role, side, spec, ty, strict_shapes)?;
    }
    if let Some((extra, _)) = actual
        .iter()
        .find(|(n, _)| !expected.iter().any(|s| s.name == *n))
    {
        return Err(Error::bundle(
            file,
            format!("role `{role}`: unexpected {side} `{extra}` not described by the format"),
        ));
    }
    Ok(())
}

fn check_tensor(
    file: &Path,
    role: Role,
    side: &str,
    spec: &TensorSpec,
    ty: &ValueType,
    strict: bool,
) -> Result<()> {
    let fail = |m: String| {
        Err(Error::bundle(
            file,
            format!("role `{role}`, {side} `{}`: {m}", spec.name),
        ))
    };
    let ValueType::Tensor {
        ty: elem, shape, ..
    } = ty
    else {
        return fail(format!("is {ty:?}, expected a tensor"));
    };
    let want_elem = match spec.dtype {
        DType::F32 => TensorElementType::Float32,
        DType::I64 => TensorElementType::Int64,
    };
    if *elem != want_elem {
        return fail(format!("element type is {elem:?}, expected {want_elem:?}"));
    }
    let dims: Vec<i64> = shape.iter().copied().collect();
    // ONNX Runtime reports an unknown rank as an empty shape for outputs; only inputs must
    // carry their full static description.
    if !strict && dims.is_empty() && !spec.shape.is_empty() {
        return Ok(());
    }
    if dims.len() != spec.shape.len() {
        return fail(format!(
            "has rank {}, expected {} ({})",
            dims.len(),
            spec.shape.len(),
            describe(&spec.shape)
        ));
    }
    for (i, (&got, want)) in dims.iter().zip(&spec.shape).enumerate() {
        match want {
            None if strict && got >= 0 => {
                return fail(format!(
                    "dimension {i} is fixed to {got}; the batch dimension must be dynamic (re-export with a dynamic batch)"
                ))
            }
            Some(w) if got >= 0 && got as usize != *w => {
                return fail(format!("dimension {i} is {got}, expected {w} (shape {})", describe(&spec.shape)))
            }
            Some(_) if strict && got < 0 => {
                return fail(format!("dimension {i} is dynamic, expected a fixed size (shape {})", describe(&spec.shape)))
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("batch".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}
