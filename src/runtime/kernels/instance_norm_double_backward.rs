//! `ai.ddlens::InstanceNormDoubleBackward`: the derivative of an instance norm's backward
//! (`InstanceNormBackward`), the second-order block of every instance norm in `grad_vjp`.
//!
//! Inputs `dy`, `x` [N, C, H, W], `mean`, `rstd` [N, C], `gamma` [C] (the backward's inputs),
//! then the cotangents of the backward's outputs: `u` [N, C, H, W] (of `dx`), `ggamma`,
//! `gbeta` [C]. Outputs the cotangents of `dy`, `x` (through the statistics too) and
//! `gamma`. Per item and channel over its M positions, with `r = rstd`, `x̂ = (x − mean)·r`,
//! the projection `P(v) = v − mean(v) − x̂·mean(v·x̂)` (the backward is `dx = γ·r·P(dy)`),
//! `a = mean(dy)`, `b = mean(dy·x̂)`, `t = mean(u·x̂)`, `m = mean(u·(dy − a))`:
//!
//! ```text
//! d_dy    = γ·r·P(u) + ggamma·x̂ + gbeta
//! d_x     = γ·r²·(x̂·(b·t − m) − t·P(dy) − b·P(u)) + ggamma·r·P(dy)
//! d_gamma = Σₙ Σ r·u·P(dy)
//! ```
//!
//! Two passes over each plane (sums, then outputs) instead of the ~40 elementwise passes and
//! reductions that autograd traces through the norm written as reductions. (The ONNX
//! function's body in exporter/ddlens_exporter/fused.py computes the same; the tests check
//! this kernel against finite differences of the backward.)

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorInput, OperatorOutput,
};
use ort::value::TensorElementType;

use super::{guarded, input, output};

/// The operator for ONNX Runtime.
pub(super) struct InstanceNormDoubleBackward;

const NAME: &str = "InstanceNormDoubleBackward";

impl Operator for InstanceNormDoubleBackward {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        (0..8).map(|_| OperatorInput::required(TensorElementType::Float32))
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        (0..3).map(|_| OperatorOutput::required(TensorElementType::Float32))
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        Ok(Box::new(|ctx: &ComputeContext| {
            guarded(NAME, || compute(ctx))
        }))
    }
}

fn compute(ctx: &ComputeContext) -> ort::Result<()> {
    let values = (0..8)
        .map(|i| input(ctx, NAME, i))
        .collect::<ort::Result<Vec<_>>>()?;
    let tensors = values
        .iter()
        .map(|v| v.try_extract_tensor::<f32>())
        .collect::<ort::Result<Vec<_>>>()?;
    let dims = tensors[0].0.to_vec();
    let (n, c) = match dims[..] {
        [n, c, _, _] if n >= 0 && c >= 0 => (n as usize, c as usize),
        _ => {
            return Err(ort::Error::new(format!(
                "{NAME}: dy has shape {dims:?}, expected [N, C, H, W]"
            )))
        }
    };
    let lens: Vec<usize> = tensors.iter().map(|(_, t)| t.len()).collect();
    let (full, planes) = (tensors[0].1.len(), n * c);
    let want = [full, full, planes, planes, c, full, c, c];
    if tensors[1].0.to_vec() != dims || tensors[5].0.to_vec() != dims || lens != want {
        return Err(ort::Error::new(format!(
            "{NAME}: inconsistent inputs: dy {dims:?}, x {:?}, u {:?}; element counts of (dy, x, \
             mean, rstd, gamma, u, ggamma, gbeta) {lens:?}, expected {want:?}",
            tensors[1].0.to_vec(),
            tensors[5].0.to_vec()
        )));
    }
    let t = |i: usize| tensors[i].1;
    let inputs = Inputs {
        dy: t(0),
        x: t(1),
        mean: t(2),
        rstd: t(3),
        gamma: t(4),
        u: t(5),
        ggamma: t(6),
        gbeta: t(7),
    };
    let mut d_dy_v = output(ctx, NAME, 0, dims.clone())?;
    let mut d_x_v = output(ctx, NAME, 1, dims.clone())?;
    let mut d_gamma_v = output(ctx, NAME, 2, vec![c as i64])?;
    let (_, d_dy) = d_dy_v.try_extract_tensor_mut::<f32>()?;
    let (_, d_x) = d_x_v.try_extract_tensor_mut::<f32>()?;
    let (_, d_gamma) = d_gamma_v.try_extract_tensor_mut::<f32>()?;
    double_backward(&inputs, d_dy, d_x, d_gamma);
    Ok(())
}

/// The kernel's inputs as flat slices: `dy`, `x`, `u` hold `mean.len()` planes of equal size,
/// the plane `p` belonging to channel `p % gamma.len()`.
pub(super) struct Inputs<'a> {
    pub dy: &'a [f32],
    pub x: &'a [f32],
    pub mean: &'a [f32],
    pub rstd: &'a [f32],
    pub gamma: &'a [f32],
    pub u: &'a [f32],
    pub ggamma: &'a [f32],
    pub gbeta: &'a [f32],
}

/// The computation (see the module doc); sums accumulate in f64.
pub(super) fn double_backward(s: &Inputs, d_dy: &mut [f32], d_x: &mut [f32], d_gamma: &mut [f32]) {
    let (planes, channels) = (s.mean.len(), s.gamma.len());
    let m = s.dy.len().checked_div(planes).unwrap_or(0);
    let inv_m = 1.0 / m.max(1) as f64;
    let mut sum_d_gamma = vec![0f64; channels];
    for p in 0..planes {
        let range = p * m..(p + 1) * m;
        let (dy, x, u) = (
            &s.dy[range.clone()],
            &s.x[range.clone()],
            &s.u[range.clone()],
        );
        let (mu_x, r, ch) = (s.mean[p], s.rstd[p], p % channels);
        let sums = plane_sums(dy, x, u, mu_x);
        let rf = f64::from(r);
        let a = sums.dy * inv_m;
        let mean_u = sums.u * inv_m;
        let (b, t) = (rf * sums.dy_xc * inv_m, rf * sums.u_xc * inv_m);
        let mm = sums.u_dy * inv_m - a * mean_u;
        let (a, mean_u, b, t) = (a as f32, mean_u as f32, b as f32, t as f32);
        let coef_xhat = (b * t) - mm as f32;
        let (g, gg, gb) = (s.gamma[ch], s.ggamma[ch], s.gbeta[ch]);
        let (gr, grr, ggr) = (g * r, g * r * r, gg * r);
        let (o_dy, o_x) = (&mut d_dy[range.clone()], &mut d_x[range]);
        let mut sum_u_pdy = 0f64;
        let blocks = o_dy.chunks_mut(8).zip(o_x.chunks_mut(8));
        for (((o_dy, o_x), dy), (x, u)) in
            blocks.zip(dy.chunks(8)).zip(x.chunks(8).zip(u.chunks(8)))
        {
            let mut acc = 0f32;
            for i in 0..o_dy.len() {
                let xh = (x[i] - mu_x) * r;
                let pu = u[i] - mean_u - xh * t;
                let pdy = dy[i] - a - xh * b;
                o_dy[i] = gr * pu + gg * xh + gb;
                o_x[i] = grr * (xh * coef_xhat - t * pdy - b * pu) + ggr * pdy;
                acc += u[i] * pdy;
            }
            sum_u_pdy += f64::from(acc);
        }
        sum_d_gamma[ch] += rf * sum_u_pdy;
    }
    for (o, v) in d_gamma.iter_mut().zip(&sum_d_gamma) {
        *o = *v as f32;
    }
}

/// One plane's sums, in f64.
#[derive(Default)]
struct Sums {
    dy: f64,
    dy_xc: f64,
    u: f64,
    u_xc: f64,
    u_dy: f64,
}

/// `Σ dy`, `Σ dy·(x − mu)`, `Σ u`, `Σ u·(x − mu)`, `Σ u·dy` over one plane: eight f32 lanes
/// per block (vectorised), each block's sums added into f64.
fn plane_sums(dy: &[f32], x: &[f32], u: &[f32], mu: f32) -> Sums {
    let mut s = Sums::default();
    for ((dy, x), u) in dy.chunks(8).zip(x.chunks(8)).zip(u.chunks(8)) {
        let mut acc = [0f32; 5];
        for i in 0..dy.len() {
            let xc = x[i] - mu;
            acc[0] += dy[i];
            acc[1] += dy[i] * xc;
            acc[2] += u[i];
            acc[3] += u[i] * xc;
            acc[4] += u[i] * dy[i];
        }
        s.dy += f64::from(acc[0]);
        s.dy_xc += f64::from(acc[1]);
        s.u += f64::from(acc[2]);
        s.u_xc += f64::from(acc[3]);
        s.u_dy += f64::from(acc[4]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-5;

    /// The instance norm's backward in f64 with its statistics computed from `x`:
    /// (dx, dgamma, dbeta).
    fn backward(dy: &[f64], x: &[f64], gamma: &[f64], planes: usize) -> [Vec<f64>; 3] {
        let (c, m) = (gamma.len(), dy.len() / planes);
        let (mut dx, mut dg, mut db) = (vec![0.0; dy.len()], vec![0.0; c], vec![0.0; c]);
        for p in 0..planes {
            let (xs, gs) = (&x[p * m..(p + 1) * m], &dy[p * m..(p + 1) * m]);
            let (mean, r) = stats(xs);
            let xhat: Vec<f64> = xs.iter().map(|v| (v - mean) * r).collect();
            let mdb = gs.iter().sum::<f64>() / m as f64;
            let mds = gs.iter().zip(&xhat).map(|(g, h)| g * h).sum::<f64>() / m as f64;
            for i in 0..m {
                dx[p * m + i] = gamma[p % c] * r * (gs[i] - mdb - xhat[i] * mds);
            }
            dg[p % c] += mds * m as f64;
            db[p % c] += mdb * m as f64;
        }
        [dx, dg, db]
    }

    /// (mean, 1/sqrt(var + eps)) of one plane.
    fn stats(xs: &[f64]) -> (f64, f64) {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / xs.len() as f64;
        (mean, 1.0 / (var + EPS).sqrt())
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    fn abs_dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| (a * b).abs()).sum()
    }

    /// Checks the kernel against central differences of `⟨u, dx⟩ + ⟨ggamma, dgamma⟩ +
    /// ⟨gbeta, dbeta⟩` of the f64 backward, along pseudo-random directions in `dy`, `x` and
    /// `gamma`; `spread` scales `x` (small: the variance near `eps`, which then matters).
    fn check(n: usize, c: usize, m: usize, spread: f64) {
        let f = |i: usize, a: f64| (i as f64 * a).sin();
        let full = n * c * m;
        let dy: Vec<f64> = (0..full).map(|i| f(i, 0.37) * 2.0).collect();
        let x: Vec<f64> = (0..full)
            .map(|i| f(i, 0.91) * spread + 0.5 + f(i / m, 3.1))
            .collect();
        let gamma: Vec<f64> = (0..c).map(|i| 1.0 + f(i, 2.1) * 0.3).collect();
        let u: Vec<f64> = (0..full).map(|i| f(i, 1.13)).collect();
        let gg: Vec<f64> = (0..c).map(|i| f(i, 0.53) - 0.2).collect();
        let gb: Vec<f64> = (0..c).map(|i| f(i, 1.77) + 0.1).collect();
        let objective = |dy: &[f64], x: &[f64], gamma: &[f64]| {
            let [dx, dg, db] = backward(dy, x, gamma, n * c);
            dot(&u, &dx) + dot(&gg, &dg) + dot(&gb, &db)
        };
        // The kernel, on f32 copies with the statistics it is given.
        let planes: Vec<(f64, f64)> = x.chunks(m).map(stats).collect();
        let w = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (mean, rstd): (Vec<f64>, Vec<f64>) = planes.into_iter().unzip();
        let (dy32, x32, u32_) = (w(&dy), w(&x), w(&u));
        let (mean32, rstd32, gamma32, gg32, gb32) = (w(&mean), w(&rstd), w(&gamma), w(&gg), w(&gb));
        let inputs = Inputs {
            dy: &dy32,
            x: &x32,
            mean: &mean32,
            rstd: &rstd32,
            gamma: &gamma32,
            u: &u32_,
            ggamma: &gg32,
            gbeta: &gb32,
        };
        let (mut o_dy, mut o_x, mut o_g) = (vec![0f32; full], vec![0f32; full], vec![0f32; c]);
        double_backward(&inputs, &mut o_dy, &mut o_x, &mut o_g);
        let wide = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
        let (o_dy, o_x, o_g) = (wide(&o_dy), wide(&o_x), wide(&o_g));
        for k in 0..3 {
            let h = |len: usize, a: f64| (0..len).map(|i| f(i + 7 * k, a)).collect::<Vec<f64>>();
            let (h_dy, h_x, h_g) = (h(full, 0.29), h(full, 0.61), h(c, 0.83));
            let shift = |v: &[f64], h: &[f64], e: f64| {
                v.iter()
                    .zip(h)
                    .map(|(v, h)| v + e * h)
                    .collect::<Vec<f64>>()
            };
            let e = 1e-6 * spread.min(1.0);
            let fd = |which: usize| {
                let at = |e: f64| match which {
                    0 => objective(&shift(&dy, &h_dy, e), &x, &gamma),
                    1 => objective(&dy, &shift(&x, &h_x, e), &gamma),
                    _ => objective(&dy, &x, &shift(&gamma, &h_g, e)),
                };
                (at(e) - at(-e)) / (2.0 * e)
            };
            let got = [dot(&o_dy, &h_dy), dot(&o_x, &h_x), dot(&o_g, &h_g)];
            // The scale of each product: what a wrong term would be measured against.
            let scale = [
                abs_dot(&o_dy, &h_dy),
                abs_dot(&o_x, &h_x),
                abs_dot(&o_g, &h_g),
            ];
            for (which, name) in ["dy", "x", "gamma"].iter().enumerate() {
                let want = fd(which);
                assert!(
                    (got[which] - want).abs() <= 1e-4 * (1.0 + scale[which]),
                    "d_{name} (n {n}, c {c}, m {m}, spread {spread}, direction {k}): kernel \
                     {} vs finite differences {want}",
                    got[which]
                );
            }
        }
    }

    #[test]
    fn matches_finite_differences_of_the_backward() {
        // 15 positions: not a multiple of the 8-lane blocks.
        check(2, 3, 15, 1.0);
        check(1, 2, 64, 1.0);
    }

    #[test]
    fn matches_finite_differences_when_eps_matters() {
        // Variance ~1e-5 (as eps): the statistics' eps enters every term.
        check(2, 2, 12, 3e-3);
    }
}
