//! Graph roles and the exact input/output layout each one has (docs/bundle-format.md).

use std::fmt;

use super::manifest::{Manifest, ParamSpec};

/// Element type of a graph tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit signed integer (labels).
    I64,
}

/// One expected graph tensor: its name, element type and shape (`None` = the dynamic batch dim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions; `None` marks the dynamic batch dimension.
    pub shape: Vec<Option<usize>>,
}

/// The graph roles a bundle may provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// params, (state), x -> logits, features.
    Forward,
    /// params, (state), x, y, w -> loss, gradient per parameter, (updated state).
    Grad,
    /// params, x, y, w, a -> H·a per parameter, J_xᵀa.
    GradVjp,
    /// params, x, c -> d<features, c>/dx.
    FeaturesVjp,
    /// params, v, x, y -> per-sample directional derivative of the loss along v.
    LossJvp,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 5] = [
        Role::Forward,
        Role::Grad,
        Role::GradVjp,
        Role::FeaturesVjp,
        Role::LossJvp,
    ];

    /// The role's name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Role::Forward => "forward",
            Role::Grad => "grad",
            Role::GradVjp => "grad_vjp",
            Role::FeaturesVjp => "features_vjp",
            Role::LossJvp => "loss_jvp",
        }
    }

    /// Parses a manifest role name.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the role takes the manifest's `state` after the parameters (`forward` reads
    /// the running statistics, `grad` updates them); the other roles never do.
    pub fn takes_state(self) -> bool {
        matches!(self, Role::Forward | Role::Grad)
    }

    /// The inputs this role must take, in order.
    pub fn inputs(self, m: &Manifest) -> Vec<TensorSpec> {
        let params = |prefix: &str| fixed(&m.params, prefix);
        let [c, h, w] = m.input_shape;
        let x = batched("x", DType::F32, &[c, h, w]);
        let y = batched("y", DType::I64, &[]);
        let weights = batched("w", DType::F32, &[]);
        let mut out = params("");
        if self.takes_state() {
            out.extend(fixed(&m.state, ""));
        }
        match self {
            Role::Forward => out.push(x),
            Role::Grad => out.extend([x, y, weights]),
            Role::GradVjp => {
                out.extend([x, y, weights]);
                out.extend(params("a:"));
            }
            Role::FeaturesVjp => out.extend([x, batched("c", DType::F32, &[m.feature_dim])]),
            Role::LossJvp => {
                out.extend(params("v:"));
                out.extend([x, y]);
            }
        }
        out
    }

    /// The outputs this role must produce, in order.
    pub fn outputs(self, m: &Manifest) -> Vec<TensorSpec> {
        let params = |prefix: &str| fixed(&m.params, prefix);
        let [c, h, w] = m.input_shape;
        let x_grad = batched("x_grad", DType::F32, &[c, h, w]);
        match self {
            Role::Forward => vec![
                batched("logits", DType::F32, &[m.num_classes]),
                batched("features", DType::F32, &[m.feature_dim]),
            ],
            Role::Grad => {
                let mut out = vec![TensorSpec {
                    name: "loss".into(),
                    dtype: DType::F32,
                    shape: vec![],
                }];
                out.extend(params("g:"));
                out.extend(fixed(&m.state, STATE_OUTPUT_PREFIX));
                out
            }
            Role::GradVjp => {
                let mut out = params("hv:");
                out.push(x_grad);
                out
            }
            Role::FeaturesVjp => vec![x_grad],
            Role::LossJvp => vec![batched("dloss", DType::F32, &[])],
        }
    }
}

/// Prefix of `grad`'s updated-state outputs (`new:norm0.running_mean`).
pub const STATE_OUTPUT_PREFIX: &str = "new:";

/// One fixed-shape f32 tensor per spec, named `{prefix}{name}`.
fn fixed(specs: &[ParamSpec], prefix: &str) -> Vec<TensorSpec> {
    specs
        .iter()
        .map(|p| TensorSpec {
            name: format!("{prefix}{}", p.name),
            dtype: DType::F32,
            shape: p.shape.iter().map(|&d| Some(d)).collect(),
        })
        .collect()
}

fn batched(name: &str, dtype: DType, rest: &[usize]) -> TensorSpec {
    let mut shape = vec![None];
    shape.extend(rest.iter().map(|&d| Some(d)));
    TensorSpec {
        name: name.into(),
        dtype,
        shape,
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
