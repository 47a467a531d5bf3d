//! ddlens's own kernels for the fused ops of the `ai.ddlens` domain.
//!
//! The exporter writes some blocks of a backward pass (a norm's backward: a dozen elementwise
//! passes and reductions in standard ONNX; that backward's own derivative in `grad_vjp`:
//! about forty; the im2col of a weight gradient: a Pad, nine Slices and a Concat) as one
//! node calling a model-local ONNX function of the `ai.ddlens` domain
//! (exporter/ddlens_exporter/fused.py). The function's body is standard ONNX, so a bundle
//! stays a plain ONNX file: any ONNX Runtime inlines the body and runs it. ddlens registers a
//! kernel under the function's name on its CPU sessions, and ONNX Runtime then runs the
//! kernel instead of inlining the body (checked on 1.31.1: a registered kernel takes
//! precedence over a local function of the same domain and name). The norm's kernels (the
//! backward and its derivative) read each activation once per pass and keep a channel's
//! plane in cache between their two passes; the im2col kernel writes its matrix in one pass
//! of row copies.
//!
//! Not registered on CUDA sessions (the kernels run on the CPU; the inlined body runs on the
//! GPU), nor with `DDLENS_FUSED_KERNELS=0` (for measuring the difference, or ruling the
//! kernels out when a result looks wrong).

mod domain_table;
mod im2col;
mod instance_norm_backward;
mod instance_norm_double_backward;

pub(crate) use domain_table::create_session;

use ort::operator::{ComputeContext, OperatorDomain};
use ort::session::builder::SessionBuilder;
use ort::value::{ValueRef, ValueRefMut};

use crate::error::{Error, Result};

/// The domain of the fused ops, as the exporter writes it.
pub const DOMAIN: &str = "ai.ddlens";

/// Environment variable that turns the kernels off when set to `0`.
pub const KERNELS_ENV: &str = "DDLENS_FUSED_KERNELS";

/// Whether sessions get the kernels (`DDLENS_FUSED_KERNELS` is not `0`).
pub fn enabled() -> bool {
    std::env::var(KERNELS_ENV).map_or(true, |v| v.trim() != "0")
}

/// Registers the `ai.ddlens` kernels on a CPU session builder.
pub fn register(builder: SessionBuilder) -> Result<SessionBuilder> {
    let ctx = |e: ort::Error| Error::ort("registering ddlens's fused kernels", e.to_string());
    let domain = OperatorDomain::new(DOMAIN)
        .map_err(ctx)?
        .add(instance_norm_backward::InstanceNormBackward { relu: false })
        .map_err(ctx)?
        .add(instance_norm_backward::InstanceNormBackward { relu: true })
        .map_err(ctx)?
        .add(instance_norm_double_backward::InstanceNormDoubleBackward)
        .map_err(ctx)?
        .add(im2col::Im2Col)
        .map_err(ctx)?;
    builder
        .with_operators(domain)
        .map_err(|e| ctx(ort::Error::new(e.to_string())))
}

/// Input `i` of a kernel's node, or an error naming the kernel.
fn input<'a>(ctx: &'a ComputeContext, name: &str, i: usize) -> ort::Result<ValueRef<'a>> {
    ctx.input(i)?
        .ok_or_else(|| ort::Error::new(format!("{name}: input {i} is missing")))
}

/// Output `i` of a kernel's node, allocated with `shape`, or an error naming the kernel.
fn output<'a>(
    ctx: &'a ComputeContext,
    name: &str,
    i: usize,
    shape: Vec<i64>,
) -> ort::Result<ValueRefMut<'a>> {
    ctx.output(i, shape)?
        .ok_or_else(|| ort::Error::new(format!("{name}: output {i} was not allocated")))
}

/// Runs a kernel body, turning a panic into an ONNX Runtime error: ONNX Runtime calls kernels
/// through a C callback, which a panic must not cross.
fn guarded(name: &str, body: impl FnOnce() -> ort::Result<()>) -> ort::Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => Err(ort::Error::new(format!(
            "ddlens kernel {name}: internal error (panic)"
        ))),
    }
}
