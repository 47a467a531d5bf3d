//! Model parameters owned by Rust: one `f32` tensor per manifest entry, plus the vector-space
//! operations that optimisers, adjoint passes and Hessian analyses need.

use ndarray::{ArrayD, IxDyn, Zip};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use super::manifest::{Init, ParamSpec};
use crate::error::{Error, Result};

/// A list of parameter tensors in manifest order (also used for gradients, Hessian-vector
/// products and adjoints, which have the same structure).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    tensors: Vec<ArrayD<f32>>,
}

impl Params {
    /// Wraps tensors, checking them against the specs (count and shapes).
    pub fn from_tensors(specs: &[ParamSpec], tensors: Vec<ArrayD<f32>>) -> Result<Params> {
        if tensors.len() != specs.len() {
            return Err(Error::invalid(
                "params",
                format!("expected {} tensors, got {}", specs.len(), tensors.len()),
            ));
        }
        for (spec, t) in specs.iter().zip(&tensors) {
            if t.shape() != spec.shape.as_slice() {
                return Err(Error::invalid(
                    "params",
                    format!(
                        "`{}` has shape {:?}, expected {:?}",
                        spec.name,
                        t.shape(),
                        spec.shape
                    ),
                ));
            }
        }
        Ok(Params { tensors })
    }

    /// No tensors: the state of a bundle without state.
    pub fn empty() -> Params {
        Params {
            tensors: Vec::new(),
        }
    }

    /// Tensors without any check (for results built by the library itself).
    pub(crate) fn from_vec_unchecked(tensors: Vec<ArrayD<f32>>) -> Params {
        Params { tensors }
    }

    /// Builds parameters from one flat vector, split in manifest order.
    pub fn from_flat(specs: &[ParamSpec], flat: &[f32]) -> Result<Params> {
        let total: usize = specs
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        if flat.len() != total {
            return Err(Error::invalid(
                "params",
                format!(
                    "flat vector has {} values, the model has {total}",
                    flat.len()
                ),
            ));
        }
        let mut offset = 0;
        let tensors = specs
            .iter()
            .map(|s| {
                let n: usize = s.shape.iter().product();
                let t = ArrayD::from_shape_vec(IxDyn(&s.shape), flat[offset..offset + n].to_vec())
                    .expect("length checked");
                offset += n;
                t
            })
            .collect();
        Ok(Params { tensors })
    }

    /// Draws a fresh initialisation from each spec's distribution.
    pub fn init<R: Rng + ?Sized>(specs: &[ParamSpec], rng: &mut R) -> Params {
        let tensors = specs
            .iter()
            .map(|s| {
                let n: usize = s.shape.iter().product();
                let data: Vec<f32> = match s.init {
                    Init::Constant { value } => vec![value; n],
                    Init::Uniform { low, high } => {
                        let d = Uniform::new(low, high).expect("manifest checks low < high");
                        (0..n).map(|_| d.sample(rng)).collect()
                    }
                    Init::Normal { mean, std } => {
                        let d = Normal::new(mean, std.abs()).expect("finite std");
                        (0..n).map(|_| d.sample(rng)).collect()
                    }
                };
                ArrayD::from_shape_vec(IxDyn(&s.shape), data).expect("shape product")
            })
            .collect();
        Params { tensors }
    }

    /// All-zero tensors with the same shapes.
    pub fn zeros_like(&self) -> Params {
        Params {
            tensors: self
                .tensors
                .iter()
                .map(|t| ArrayD::zeros(t.raw_dim()))
                .collect(),
        }
    }

    /// The tensors in manifest order.
    pub fn tensors(&self) -> &[ArrayD<f32>] {
        &self.tensors
    }

    /// Mutable access to the tensors (shapes must not change).
    pub fn tensors_mut(&mut self) -> &mut [ArrayD<f32>] {
        &mut self.tensors
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.len()).sum()
    }

    /// All values concatenated in manifest order.
    pub fn to_flat(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.numel());
        for t in &self.tensors {
            out.extend(t.iter().copied());
        }
        out
    }

    /// `self += alpha * other`.
    pub fn axpy(&mut self, alpha: f32, other: &Params) {
        for (a, b) in self.tensors.iter_mut().zip(&other.tensors) {
            Zip::from(a).and(b).for_each(|a, &b| *a += alpha * b);
        }
    }

    /// `self *= alpha`.
    pub fn scale(&mut self, alpha: f32) {
        for t in &mut self.tensors {
            t.mapv_inplace(|v| v * alpha);
        }
    }

    /// Inner product, accumulated in f64 so long vectors keep their precision.
    pub fn dot(&self, other: &Params) -> f64 {
        self.tensors
            .iter()
            .zip(&other.tensors)
            .map(|(a, b)| {
                Zip::from(a)
                    .and(b)
                    .fold(0.0f64, |acc, &x, &y| acc + x as f64 * y as f64)
            })
            .sum()
    }

    /// Euclidean norm.
    pub fn norm(&self) -> f64 {
        self.dot(self).sqrt()
    }

    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.tensors.iter().all(|t| t.iter().all(|v| v.is_finite()))
    }
}
