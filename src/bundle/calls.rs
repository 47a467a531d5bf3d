//! One graph evaluation per role, on the whole batch it is given. Arguments are checked here
//! (shapes, label range) so errors name the argument instead of surfacing as ONNX Runtime
//! shape errors. The public calls (`chunk.rs`) split large batches before they get here.

use std::borrow::Cow;

use ndarray::{Array1, Array2, Array4, ArrayD, ArrayView1, ArrayView2, ArrayView4, Ix1, Ix2, Ix4};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use super::{Bundle, ParamSpec, Params, Role};
use crate::error::{Error, Result};

/// Output of the `forward` role.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// Logits `[B, K]`.
    pub logits: Array2<f32>,
    /// Penultimate-layer features `[B, F]`.
    pub features: Array2<f32>,
}

/// Output of the `grad` role.
#[derive(Debug, Clone)]
pub struct GradOutput {
    /// Weighted mean cross-entropy `(1/B) Σ w_i ce_i`.
    pub loss: f32,
    /// Gradient of `loss` per parameter.
    pub grad: Params,
    /// The updated state (BatchNorm running statistics after this batch, manifest `state`
    /// order); empty for a bundle without state.
    pub state: Params,
}

/// Output of the `grad_vjp` role.
#[derive(Debug, Clone)]
pub struct GradVjpOutput {
    /// `H·a`: the gradient of `<∇θ L, a>` with respect to the parameters.
    pub hv: Params,
    /// `J_xᵀ a`: the gradient of `<∇θ L, a>` with respect to the inputs `[B, C, H, W]`.
    pub x_grad: Array4<f32>,
}

type Inputs<'v> = Vec<(Cow<'static, str>, SessionInputValue<'v>)>;

impl Bundle {
    pub(super) fn forward_once(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
    ) -> Result<ForwardOutput> {
        self.check_x(&x, "x")?;
        let x = x.as_standard_layout();
        let mut inputs = self.param_inputs(params, "")?;
        inputs.extend(self.state_inputs(state)?);
        inputs.push(("x".into(), tensor(x.view(), "x")?));
        let mut out = self.run(Role::Forward, inputs, &["logits", "features"])?;
        let features = into_dim::<Ix2>(out.pop(), "features")?;
        let logits = into_dim::<Ix2>(out.pop(), "logits")?;
        Ok(ForwardOutput { logits, features })
    }

    pub(super) fn grad_once(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
    ) -> Result<GradOutput> {
        let mut out = self.run_labelled(Role::Grad, params, Some(state), x, y, w, None)?;
        let new_state = out.split_off(1 + self.manifest.params.len());
        let loss = out.remove(0);
        let loss = *loss
            .iter()
            .next()
            .ok_or_else(|| Error::ort("grad", "empty loss output"))?;
        Ok(GradOutput {
            loss,
            grad: Params::from_vec_unchecked(out),
            state: Params::from_vec_unchecked(new_state),
        })
    }

    pub(super) fn grad_vjp_once(
        &self,
        params: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
        a: &Params,
    ) -> Result<GradVjpOutput> {
        let mut out = self.run_labelled(Role::GradVjp, params, None, x, y, w, Some(a))?;
        let x_grad = into_dim::<Ix4>(out.pop(), "x_grad")?;
        Ok(GradVjpOutput {
            hv: Params::from_vec_unchecked(out),
            x_grad,
        })
    }

    pub(super) fn features_vjp_once(
        &self,
        params: &Params,
        x: ArrayView4<f32>,
        c: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let b = self.check_x(&x, "x")?;
        let f = self.manifest.feature_dim;
        if c.shape() != [b, f] {
            return Err(Error::invalid(
                "c",
                format!("shape {:?}, expected [{b}, {f}]", c.shape()),
            ));
        }
        let (x, c) = (x.as_standard_layout(), c.as_standard_layout());
        let mut inputs = self.param_inputs(params, "")?;
        inputs.push(("x".into(), tensor(x.view(), "x")?));
        inputs.push(("c".into(), tensor(c.view(), "c")?));
        let mut out = self.run(Role::FeaturesVjp, inputs, &["x_grad"])?;
        into_dim::<Ix4>(out.pop(), "x_grad")
    }

    pub(super) fn loss_jvp_once(
        &self,
        params: &Params,
        v: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
    ) -> Result<Array1<f32>> {
        let b = self.check_x(&x, "x")?;
        self.check_y(&y, b)?;
        let (x, y) = (x.as_standard_layout(), y.as_standard_layout());
        let mut inputs = self.param_inputs(params, "")?;
        inputs.extend(self.param_inputs(v, "v:")?);
        inputs.push(("x".into(), tensor(x.view(), "x")?));
        inputs.push(("y".into(), tensor(y.view(), "y")?));
        let mut out = self.run(Role::LossJvp, inputs, &["dloss"])?;
        into_dim::<Ix1>(out.pop(), "dloss")
    }

    #[allow(clippy::too_many_arguments)]
    fn run_labelled(
        &self,
        role: Role,
        params: &Params,
        state: Option<&Params>,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
        a: Option<&Params>,
    ) -> Result<Vec<ArrayD<f32>>> {
        let b = self.check_x(&x, "x")?;
        self.check_y(&y, b)?;
        let w = match w {
            Some(w) if w.len() != b => {
                return Err(Error::invalid(
                    "w",
                    format!("has {} weights for a batch of {b}", w.len()),
                ))
            }
            Some(w) => w.as_standard_layout().into_owned(),
            None => Array1::ones(b),
        };
        let (x, y) = (x.as_standard_layout(), y.as_standard_layout());
        let mut inputs = self.param_inputs(params, "")?;
        if let Some(state) = state {
            inputs.extend(self.state_inputs(state)?);
        }
        inputs.push(("x".into(), tensor(x.view(), "x")?));
        inputs.push(("y".into(), tensor(y.view(), "y")?));
        inputs.push(("w".into(), tensor(w.view(), "w")?));
        if let Some(a) = a {
            inputs.extend(self.param_inputs(a, "a:")?);
        }
        let names: Vec<String> = role
            .outputs(&self.manifest)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.run(role, inputs, &names)
    }

    fn param_inputs<'p>(&self, params: &'p Params, prefix: &str) -> Result<Inputs<'p>> {
        let arg = if prefix.is_empty() {
            "params"
        } else {
            prefix.trim_end_matches(':')
        };
        tensor_inputs(&self.manifest.params, params, prefix, arg)
    }

    /// The state inputs of `forward`/`grad` (nothing for a bundle without state).
    fn state_inputs<'p>(&self, state: &'p Params) -> Result<Inputs<'p>> {
        tensor_inputs(&self.manifest.state, state, "", "state")
    }

    /// Checks `x` against the bundle's input shape and returns the batch size.
    pub(super) fn check_x(&self, x: &ArrayView4<f32>, name: &str) -> Result<usize> {
        let [c, h, w] = self.manifest.input_shape;
        let s = x.shape();
        if s[0] == 0 {
            return Err(Error::invalid(name, "empty batch"));
        }
        if s[1..] != [c, h, w] {
            return Err(Error::invalid(
                name,
                format!(
                    "shape {:?} does not match model `{}`, which takes [batch, {c}, {h}, {w}]",
                    s, self.manifest.name
                ),
            ));
        }
        Ok(s[0])
    }

    pub(super) fn check_y(&self, y: &ArrayView1<i64>, batch: usize) -> Result<()> {
        if y.len() != batch {
            return Err(Error::invalid(
                "y",
                format!("has {} labels for a batch of {batch}", y.len()),
            ));
        }
        let k = self.manifest.num_classes as i64;
        if let Some(bad) = y.iter().find(|&&v| v < 0 || v >= k) {
            return Err(Error::invalid(
                "y",
                format!("label {bad} is outside [0, {k})"),
            ));
        }
        Ok(())
    }

    /// Runs a role on an idle session (loading another when every loaded one is busy) and
    /// copies the named float outputs out before the session goes back.
    fn run(&self, role: Role, inputs: Inputs<'_>, names: &[&str]) -> Result<Vec<ArrayD<f32>>> {
        let graph = self.graph(role)?;
        let ctx = || format!("{} / {role}", self.manifest.name);
        let idle = graph.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut session = match idle {
            Some(s) => s,
            None => self.runtime.load_graph(&graph.file, graph.intra_threads)?,
        };
        let result = copy_outputs(&mut session, inputs, names, ctx);
        graph
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        result
    }
}

fn copy_outputs(
    session: &mut Session,
    inputs: Inputs<'_>,
    names: &[&str],
    ctx: impl Fn() -> String,
) -> Result<Vec<ArrayD<f32>>> {
    let outputs = session.run(inputs).map_err(|e| Error::ort(ctx(), e))?;
    names
        .iter()
        .map(|name| {
            let value = outputs
                .get(*name)
                .ok_or_else(|| Error::ort(ctx(), format!("output `{name}` missing")))?;
            let view = value
                .try_extract_array::<f32>()
                .map_err(|e| Error::ort(ctx(), format!("output `{name}`: {e}")))?;
            Ok(view.to_owned())
        })
        .collect()
}

fn tensor<'v, T, D>(view: ndarray::ArrayView<'v, T, D>, name: &str) -> Result<SessionInputValue<'v>>
where
    T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
    D: ndarray::Dimension + 'static,
{
    TensorRef::from_array_view(view)
        .map(Into::into)
        .map_err(|e| Error::ort(format!("input `{name}`"), e))
}

fn into_dim<D: ndarray::Dimension>(
    a: Option<ArrayD<f32>>,
    name: &str,
) -> Result<ndarray::Array<f32, D>> {
    let a = a.ok_or_else(|| Error::ort(name.to_string(), "output missing"))?;
    let shape = a.shape().to_vec();
    a.into_dimensionality::<D>().map_err(|_| {
        Error::ort(
            name.to_string(),
            format!("unexpected output shape {shape:?}"),
        )
    })
}

/// One input per spec, named `{prefix}{name}`, after checking count and shapes (errors name
/// `arg` and the tensor).
fn tensor_inputs<'p>(
    specs: &[ParamSpec],
    tensors: &'p Params,
    prefix: &str,
    arg: &str,
) -> Result<Inputs<'p>> {
    if tensors.len() != specs.len() {
        return Err(Error::invalid(
            arg,
            format!("{} tensors, the model has {}", tensors.len(), specs.len()),
        ));
    }
    specs
        .iter()
        .zip(tensors.tensors())
        .map(|(spec, t)| {
            if t.shape() != spec.shape.as_slice() {
                return Err(Error::invalid(
                    arg,
                    format!(
                        "`{}` has shape {:?}, expected {:?}",
                        spec.name,
                        t.shape(),
                        spec.shape
                    ),
                ));
            }
            let slice = t
                .as_slice()
                .ok_or_else(|| Error::invalid(arg, format!("`{}` is not contiguous", spec.name)))?;
            let value = TensorRef::from_array_view((t.shape().to_vec(), slice))
                .map_err(|e| Error::ort("parameter tensor", e))?;
            Ok((Cow::Owned(format!("{prefix}{}", spec.name)), value.into()))
        })
        .collect()
}
