//! `ai.ddlens::InstanceNormBackward` and `ai.ddlens::ReluInstanceNormBackward`: the backward of
//! an instance norm (a group norm with one channel per group) over [N, C, H, W] activations,
//! the second with the ReLU after the norm folded in.
//!
//! `InstanceNormBackward`: inputs `dy`, `x` [N, C, H, W], `mean`, `rstd` [N, C] (the forward
//! pass's statistics), `gamma` [C]; outputs `dx` [N, C, H, W], `dgamma`, `dbeta` [C]. Per item
//! and channel over its M positions, with `x̂ = (x − mean)·rstd`:
//! `dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂))`, `dgamma = Σₙ Σ dy·x̂`, `dbeta = Σₙ Σ dy`.
//! `ReluInstanceNormBackward`: inputs `g`, `relu_out`, then as above; `dy` is
//! `where(relu_out <= 0, 0, g)`, applied while reading. (The bodies of the ONNX functions in
//! exporter/ddlens_exporter/fused.py compute the same.)

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorInput, OperatorOutput,
};
use ort::value::TensorElementType;

use super::{guarded, input, output};

/// The operator (its name, inputs and outputs) for ONNX Runtime; `relu`: the ReLU-folded form.
pub(super) struct InstanceNormBackward {
    pub relu: bool,
}

impl InstanceNormBackward {
    fn op_name(&self) -> &'static str {
        if self.relu {
            "ReluInstanceNormBackward"
        } else {
            "InstanceNormBackward"
        }
    }
}

impl Operator for InstanceNormBackward {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        self.op_name()
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        (0..5 + usize::from(self.relu)).map(|_| OperatorInput::required(TensorElementType::Float32))
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        (0..3).map(|_| OperatorOutput::required(TensorElementType::Float32))
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        let (name, relu) = (self.op_name(), self.relu);
        Ok(Box::new(move |ctx: &ComputeContext| {
            guarded(name, || compute(ctx, name, relu))
        }))
    }
}

fn compute(ctx: &ComputeContext, name: &str, relu: bool) -> ort::Result<()> {
    let k = usize::from(relu);
    let (dy_v, x_v, mean_v, rstd_v, gamma_v) = (
        input(ctx, name, 0)?,
        input(ctx, name, 1 + k)?,
        input(ctx, name, 2 + k)?,
        input(ctx, name, 3 + k)?,
        input(ctx, name, 4 + k)?,
    );
    let relu_v = if relu {
        Some(input(ctx, name, 1)?)
    } else {
        None
    };
    let relu_out = match &relu_v {
        Some(v) => Some(v.try_extract_tensor::<f32>()?),
        None => None,
    };
    let (shape, dy) = dy_v.try_extract_tensor::<f32>()?;
    let (x_shape, x) = x_v.try_extract_tensor::<f32>()?;
    let (_, mean) = mean_v.try_extract_tensor::<f32>()?;
    let (_, rstd) = rstd_v.try_extract_tensor::<f32>()?;
    let (_, gamma) = gamma_v.try_extract_tensor::<f32>()?;
    let dims = shape.to_vec();
    let (n, c) = match dims[..] {
        [n, c, _, _] if n >= 0 && c >= 0 => (n as usize, c as usize),
        _ => {
            return Err(ort::Error::new(format!(
                "InstanceNormBackward: dy has shape {dims:?}, expected [N, C, H, W]"
            )))
        }
    };
    let planes = n * c;
    let relu_ok = relu_out.as_ref().is_none_or(|(s, _)| s.to_vec() == dims);
    if x_shape.to_vec() != dims
        || !relu_ok
        || mean.len() != planes
        || rstd.len() != planes
        || gamma.len() != c
    {
        return Err(ort::Error::new(format!(
            "{name}: inconsistent shapes: dy {dims:?}, x {:?}, relu_out {:?}, mean {}, rstd {}, \
             gamma {}",
            x_shape.to_vec(),
            relu_out.as_ref().map(|(s, _)| s.to_vec()),
            mean.len(),
            rstd.len(),
            gamma.len()
        )));
    }
    let mut dx_v = output(ctx, name, 0, dims.clone())?;
    let mut dgamma_v = output(ctx, name, 1, vec![c as i64])?;
    let mut dbeta_v = output(ctx, name, 2, vec![c as i64])?;
    let (_, dx) = dx_v.try_extract_tensor_mut::<f32>()?;
    let (_, dgamma) = dgamma_v.try_extract_tensor_mut::<f32>()?;
    let (_, dbeta) = dbeta_v.try_extract_tensor_mut::<f32>()?;
    let stats = Stats { mean, rstd, gamma };
    let grads = Grads {
        dy,
        relu_out: relu_out.map(|(_, r)| r),
    };
    backward(&grads, x, &stats, c, dx, dgamma, dbeta);
    Ok(())
}

/// The forward pass's statistics and the affine scale.
pub(super) struct Stats<'a> {
    pub mean: &'a [f32],
    pub rstd: &'a [f32],
    pub gamma: &'a [f32],
}

/// The incoming gradient: `dy` itself, or `g` masked by `relu_out <= 0`.
pub(super) struct Grads<'a> {
    pub dy: &'a [f32],
    pub relu_out: Option<&'a [f32]>,
}

/// The computation on flat slices: `dy`, `x`, `dx` hold `mean.len()` planes of equal size, the
/// plane `p` belonging to channel `p % channels`. Sums accumulate in f64.
pub(super) fn backward(
    grads: &Grads,
    x: &[f32],
    s: &Stats,
    channels: usize,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let planes = s.mean.len();
    let m = grads.dy.len().checked_div(planes).unwrap_or(0);
    let mut sum_dgamma = vec![0f64; channels];
    let mut sum_dbeta = vec![0f64; channels];
    let mut masked = vec![0f32; if grads.relu_out.is_some() { m } else { 0 }];
    for p in 0..planes {
        let range = p * m..(p + 1) * m;
        let dy = match grads.relu_out {
            // The plane's masked gradient, in a buffer that stays in cache for both passes.
            Some(relu_out) => {
                let (g, r) = (&grads.dy[range.clone()], &relu_out[range.clone()]);
                for ((o, &g), &r) in masked.iter_mut().zip(g).zip(r) {
                    *o = if r <= 0.0 { 0.0 } else { g };
                }
                &masked[..]
            }
            None => &grads.dy[range.clone()],
        };
        let (x, dx) = (&x[range.clone()], &mut dx[range]);
        let (mu, r) = (s.mean[p], s.rstd[p]);
        let (sum_dy, sum_dy_xc) = plane_sums(dy, x, mu);
        let ch = p % channels;
        // Σ dy·x̂ = rstd · Σ dy·(x − mean)
        sum_dgamma[ch] += f64::from(r) * sum_dy_xc;
        sum_dbeta[ch] += sum_dy;
        let inv_m = 1.0 / m.max(1) as f64;
        let mean_dy = (sum_dy * inv_m) as f32;
        // x̂·mean(dy·x̂) = (x − mean) · rstd² · mean(dy·(x − mean))
        let coef = (f64::from(r) * f64::from(r) * sum_dy_xc * inv_m) as f32;
        let k = s.gamma[ch] * r;
        for ((o, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
            *o = k * (g - mean_dy - (v - mu) * coef);
        }
    }
    for (o, v) in dgamma.iter_mut().zip(&sum_dgamma) {
        *o = *v as f32;
    }
    for (o, v) in dbeta.iter_mut().zip(&sum_dbeta) {
        *o = *v as f32;
    }
}

/// `(Σ dy, Σ dy·(x − mu))` over one plane, in f64.
fn plane_sums(dy: &[f32], x: &[f32], mu: f32) -> (f64, f64) {
    // Eight f32 lanes per block (vectorised), each block's sums added into f64.
    let (mut sum_dy, mut sum_dy_xc) = (0f64, 0f64);
    let mut dy_blocks = dy.chunks_exact(8);
    let mut x_blocks = x.chunks_exact(8);
    for (g, v) in (&mut dy_blocks).zip(&mut x_blocks) {
        let (mut a, mut b) = (0f32, 0f32);
        for i in 0..8 {
            a += g[i];
            b += g[i] * (v[i] - mu);
        }
        sum_dy += f64::from(a);
        sum_dy_xc += f64::from(b);
    }
    for (&g, &v) in dy_blocks.remainder().iter().zip(x_blocks.remainder()) {
        sum_dy += f64::from(g);
        sum_dy_xc += f64::from(g * (v - mu));
    }
    (sum_dy, sum_dy_xc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula written out in f64, element by element.
    fn reference(
        dy: &[f64],
        x: &[f64],
        mean: &[f64],
        rstd: &[f64],
        gamma: &[f64],
        c: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let planes = mean.len();
        let m = dy.len() / planes;
        let (mut dx, mut dg, mut db) = (vec![0.0; dy.len()], vec![0.0; c], vec![0.0; c]);
        for p in 0..planes {
            let xs = &x[p * m..(p + 1) * m];
            let gs = &dy[p * m..(p + 1) * m];
            let xhat: Vec<f64> = xs.iter().map(|v| (v - mean[p]) * rstd[p]).collect();
            let mdb = gs.iter().sum::<f64>() / m as f64;
            let mds = gs.iter().zip(&xhat).map(|(g, h)| g * h).sum::<f64>() / m as f64;
            for i in 0..m {
                dx[p * m + i] = gamma[p % c] * rstd[p] * (gs[i] - mdb - xhat[i] * mds);
            }
            dg[p % c] += mds * m as f64;
            db[p % c] += mdb * m as f64;
        }
        (dx, dg, db)
    }

    #[test]
    fn matches_the_formula() {
        // 2 items, 3 channels, 5 x 3 positions (not a multiple of the 8-lane blocks).
        let (n, c, m) = (2, 3, 15);
        let f = |i: usize, a: f64| ((i as f64 * a).sin() * 2.0) as f32;
        let dy: Vec<f32> = (0..n * c * m).map(|i| f(i, 0.37)).collect();
        let x: Vec<f32> = (0..n * c * m).map(|i| f(i, 0.91) + 0.5).collect();
        let mean: Vec<f32> = (0..n * c).map(|i| f(i, 1.3) * 0.1).collect();
        let rstd: Vec<f32> = (0..n * c).map(|i| 0.5 + f(i, 0.7).abs()).collect();
        let gamma: Vec<f32> = (0..c).map(|i| 1.0 + f(i, 2.1) * 0.3).collect();
        let (mut dx, mut dg, mut db) = (vec![0f32; dy.len()], vec![0f32; c], vec![0f32; c]);
        let s = Stats {
            mean: &mean,
            rstd: &rstd,
            gamma: &gamma,
        };
        let w = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<_>>();
        let close = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(&a, &b)| (f64::from(a) - b).abs() <= 1e-5 * (1.0 + b.abs()))
        };
        // With the ReLU folded in: relu_out <= 0 (about half of them) zeroes the gradient.
        let relu_out: Vec<f32> = (0..n * c * m).map(|i| f(i, 1.7).max(0.0)).collect();
        let g = Grads {
            dy: &dy,
            relu_out: Some(&relu_out),
        };
        backward(&g, &x, &s, c, &mut dx, &mut dg, &mut db);
        let masked: Vec<f32> = dy
            .iter()
            .zip(&relu_out)
            .map(|(&g, &r)| if r <= 0.0 { 0.0 } else { g })
            .collect();
        assert!(masked.iter().filter(|&&v| v == 0.0).count() > masked.len() / 4);
        let (rdx, rdg, rdb) = reference(&w(&masked), &w(&x), &w(&mean), &w(&rstd), &w(&gamma), c);
        assert!(
            close(&dx, &rdx) && close(&dg, &rdg) && close(&db, &rdb),
            "relu-folded form"
        );
        // Without.
        let g = Grads {
            dy: &dy,
            relu_out: None,
        };
        backward(&g, &x, &s, c, &mut dx, &mut dg, &mut db);
        let (rdx, rdg, rdb) = reference(&w(&dy), &w(&x), &w(&mean), &w(&rstd), &w(&gamma), c);
        assert!(close(&dx, &rdx), "dx {dx:?} vs {rdx:?}");
        assert!(close(&dg, &rdg), "dgamma {dg:?} vs {rdg:?}");
        assert!(close(&db, &rdb), "dbeta {db:?} vs {rdb:?}");
    }
}
