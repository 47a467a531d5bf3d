//! Exact gradients through unrolled SGD training (the engine of MTT and BPTT), keeping only
//! the parameter iterates.
//!
//! # What is computed
//! The inner loop is PyTorch's SGD on minibatches of a synthetic set `x` (dampening 0, no
//! Nesterov), one minibatch `b_k` per step, images optionally mapped by a per-step
//! [`BatchTransform`] (augmentation):
//!
//! ```text
//! g_k     = ∇θ L(θ_k, T_k(x[b_k]), y[b_k]) + λ θ_k
//! v_{k+1} = μ v_k + g_k                       (v_0 = 0: PyTorch's first step uses g_0)
//! θ_{k+1} = θ_k − lr v_{k+1}
//! ```
//!
//! Given `a_N = dL/dθ_N` for an outer loss `L(θ_N)` (trajectory matching or a real-batch loss,
//! see [`trajectory_matching`] and [`real_batch_loss`]), [`Unrolled::adjoint`] returns the
//! exact `dL/dx`, `dL/dlr` and `dL/dθ_0` by running the adjoint of the recursion backwards.
//!
//! # Memory
//! Only the iterates `θ_0..θ_N` are stored, never activations:
//! `(N + 1)·|θ|·4` bytes (see [`Unrolled::iterate_bytes`]), plus a constant working set of four
//! parameter-sized buffers (adjoints, the graph's `H·a` output), one gradient of the synthetic
//! set (`|x|·4` bytes) and one graph evaluation's activations at the batch size. The working
//! set does not grow with `N`.
//!
//! # Cost
//! Forward: one `grad` evaluation per step. Backward: one `grad_vjp` evaluation per step (it
//! yields `H·a` and `J_xᵀa` together); the velocities and gradients that `dL/dlr` needs are
//! recovered from the stored iterates instead of re-evaluating `grad`.

use std::ops::Range;

use ndarray::{Array1, Array4, ArrayView1, ArrayView4, Axis, Zip};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::bundle::{Bundle, Params};
use crate::error::{Error, Result};

/// A per-step map applied to each minibatch of images before the graph call, with its exact
/// vector-Jacobian product (for example, differentiable siamese augmentation).
///
/// The adjoint pass calls [`forward`](BatchTransform::forward) again for each step, so it must
/// be a deterministic function of `(step, x)`: a random augmentation draws its parameters from
/// a seed derived from `step`, not from shared mutable state.
pub trait BatchTransform {
    /// The transformed batch `T_step(x)`, `x` being `[B, C, H, W]`.
    fn forward(&self, step: usize, x: ArrayView4<f32>) -> Result<Array4<f32>>;

    /// `(∂T_step(x)/∂x)ᵀ grad_out`: the gradient with respect to the untransformed batch,
    /// shaped like `x`.
    fn vjp(&self, step: usize, x: ArrayView4<f32>, grad_out: Array4<f32>) -> Result<Array4<f32>>;
}

/// The identity transform (no augmentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl BatchTransform for Identity {
    fn forward(&self, _step: usize, x: ArrayView4<f32>) -> Result<Array4<f32>> {
        Ok(x.to_owned())
    }

    fn vjp(&self, _step: usize, _x: ArrayView4<f32>, grad_out: Array4<f32>) -> Result<Array4<f32>> {
        Ok(grad_out)
    }
}

/// Hyper-parameters of the unrolled SGD (PyTorch's rule, as in [`crate::train::Sgd`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InnerSgd {
    /// Learning rate (differentiable; must be non-zero, see [`Unrolled::adjoint`]).
    pub lr: f32,
    /// Momentum μ (0 for MTT's plain SGD).
    pub momentum: f32,
    /// L2 weight decay λ added to the gradient.
    pub weight_decay: f32,
}

impl InnerSgd {
    /// Plain SGD (no momentum, no weight decay), as in MTT's student updates.
    pub fn plain(lr: f32) -> InnerSgd {
        InnerSgd {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }

    fn check(&self) -> Result<()> {
        // Zero is excluded because the adjoint recovers velocities as (θ_k − θ_{k+1}) / lr.
        if !self.lr.is_finite() || self.lr == 0.0 {
            return Err(Error::invalid(
                "lr",
                format!("{} (must be finite and non-zero)", self.lr),
            ));
        }
        for (name, v) in [
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(name, format!("{v} is not finite")));
            }
        }
        Ok(())
    }
}

/// One inner training run to unroll: the model, the synthetic set, the minibatch schedule,
/// the optimiser and the image transform. Cheap to copy (it only borrows).
#[derive(Clone, Copy)]
pub struct InnerLoop<'a> {
    bundle: &'a Bundle,
    x: ArrayView4<'a, f32>,
    y: ArrayView1<'a, i64>,
    batches: &'a [Vec<usize>],
    sgd: InnerSgd,
    transform: &'a dyn BatchTransform,
}

impl<'a> InnerLoop<'a> {
    /// An inner loop over the synthetic set `(x [N, C, H, W], y [N])`, taking one step per
    /// entry of `batches` (indices into the set; see [`epoch_batches`]). No transform.
    pub fn new(
        bundle: &'a Bundle,
        x: ArrayView4<'a, f32>,
        y: ArrayView1<'a, i64>,
        batches: &'a [Vec<usize>],
        sgd: InnerSgd,
    ) -> Result<InnerLoop<'a>> {
        sgd.check()?;
        let [c, h, w] = bundle.manifest().input_shape;
        if x.shape()[1..] != [c, h, w] {
            return Err(Error::invalid(
                "x_syn",
                format!(
                    "shape {:?} does not match model `{}`, which takes [N, {c}, {h}, {w}]",
                    x.shape(),
                    bundle.name()
                ),
            ));
        }
        let n = x.len_of(Axis(0));
        if y.len() != n {
            return Err(Error::invalid(
                "y_syn",
                format!("has {} labels for {n} synthetic images", y.len()),
            ));
        }
        for (k, batch) in batches.iter().enumerate() {
            if batch.is_empty() {
                return Err(Error::invalid("batches", format!("step {k} is empty")));
            }
            if let Some(bad) = batch.iter().find(|&&i| i >= n) {
                return Err(Error::invalid(
                    "batches",
                    format!("step {k} uses image {bad}, the synthetic set has {n}"),
                ));
            }
        }
        Ok(InnerLoop {
            bundle,
            x,
            y,
            batches,
            sgd,
            transform: &Identity,
        })
    }

    /// The same loop with `transform` applied to every minibatch.
    pub fn with_transform(self, transform: &'a dyn BatchTransform) -> InnerLoop<'a> {
        InnerLoop { transform, ..self }
    }

    /// Number of SGD steps.
    pub fn steps(&self) -> usize {
        self.batches.len()
    }

    /// The optimiser settings.
    pub fn sgd(&self) -> InnerSgd {
        self.sgd
    }

    /// Runs the inner training from `theta0`, storing every iterate.
    pub fn unroll(&self, theta0: Params) -> Result<Unrolled<'a>> {
        let InnerSgd { lr, momentum, .. } = self.sgd;
        // No reservation: `steps` is the caller's, and the iterates fill memory as they run.
        let mut iterates = Vec::new();
        let mut velocity: Option<Params> = None;
        let mut theta = theta0;
        for k in 0..self.steps() {
            let g = self.gradient(k, &theta)?;
            let v = match velocity.take() {
                Some(mut v) if momentum != 0.0 => {
                    v.scale(momentum);
                    v.axpy(1.0, &g);
                    v
                }
                _ => g,
            };
            let mut next = theta.clone();
            next.axpy(-lr, &v);
            iterates.push(theta);
            theta = next;
            velocity = Some(v);
        }
        iterates.push(theta);
        Ok(Unrolled {
            inner: *self,
            iterates,
        })
    }

    /// Step `k`'s minibatch, before the transform.
    fn batch(&self, k: usize) -> (Array4<f32>, Array1<i64>) {
        let idx = &self.batches[k];
        (self.x.select(Axis(0), idx), self.y.select(Axis(0), idx))
    }

    /// `g_k = ∇θ L(θ, T_k(x[b_k])) + λ θ`.
    fn gradient(&self, k: usize, theta: &Params) -> Result<Params> {
        let (xb, yb) = self.batch(k);
        let xt = self.transform.forward(k, xb.view())?;
        let mut g = self.bundle.grad(theta, xt.view(), yb.view(), None)?.grad;
        if self.sgd.weight_decay != 0.0 {
            g.axpy(self.sgd.weight_decay, theta);
        }
        if !g.is_finite() {
            return Err(Error::invalid(
                "lr",
                format!(
                    "the inner training diverged: non-finite gradient at step {k} (lr {})",
                    self.sgd.lr
                ),
            ));
        }
        Ok(g)
    }
}

/// A finished inner run: the iterates `θ_0..θ_N` and the loop that produced them.
pub struct Unrolled<'a> {
    inner: InnerLoop<'a>,
    iterates: Vec<Params>,
}

/// Gradients of an outer loss through an unrolled run.
#[derive(Debug, Clone)]
pub struct UnrollGrads {
    /// `dL/dx` for the whole synthetic set (images used in several steps accumulate).
    pub x: Array4<f32>,
    /// `dL/dlr`, accumulated in f64.
    pub lr: f64,
    /// `dL/dθ` at the start of the differentiated window (`θ_0` for the full run).
    pub theta: Params,
    /// The steps differentiated, `[k0, k1)`.
    pub window: Range<usize>,
}

impl<'a> Unrolled<'a> {
    /// `θ_0..θ_N`: exactly `N + 1` parameter sets.
    pub fn iterates(&self) -> &[Params] {
        &self.iterates
    }

    /// `θ_N`, where the outer loss is evaluated.
    pub fn final_params(&self) -> &Params {
        self.iterates.last().expect("θ_0 is always stored")
    }

    /// Number of SGD steps `N`.
    pub fn steps(&self) -> usize {
        self.iterates.len() - 1
    }

    /// Bytes held by the stored iterates, `(N + 1)·|θ|·4`.
    pub fn iterate_bytes(&self) -> usize {
        self.iterates.len() * self.iterates[0].numel() * std::mem::size_of::<f32>()
    }

    /// The loop that produced this run.
    pub fn inner(&self) -> &InnerLoop<'a> {
        &self.inner
    }

    /// Exact `dL/dx`, `dL/dlr` and `dL/dθ_0` given `outer_grad = dL/dθ_N`, through every step.
    ///
    /// Velocities are recovered from the iterates as `v_{k+1} = (θ_k − θ_{k+1}) / lr`, with
    /// the subtraction done in f64 (exact for float32 inputs), so the only error is the
    /// float32 rounding of the forward update `θ_{k+1} = fl(θ_k − lr v_{k+1})`: at most half an
    /// ulp of `θ` per element, i.e. a relative error `~6e-8·|θ|/(lr·|v|)` per element, with
    /// random signs that average out in `dL/dlr`. That is far below the noise of a
    /// minibatch gradient for any useful learning rate, and it saves a `grad` evaluation per
    /// step or a second stored trajectory.
    pub fn adjoint(&self, outer_grad: &Params) -> Result<UnrollGrads> {
        self.adjoint_window(outer_grad, 0..self.steps())
    }

    /// Like [`adjoint`](Unrolled::adjoint), but images and lr only receive gradient from the
    /// steps in `window = [k0, k1)`, and `θ_{k0}` (and its velocity) are held constant, as
    /// in truncated BPTT. Steps after the window still carry the adjoint back to it (costing
    /// one `grad_vjp` each); RaT-BPTT's window is a suffix `[N − M, N)`, which costs `M`.
    /// `theta` in the result is `dL/dθ_{k0}`; an empty window returns zero image and lr
    /// gradients.
    pub fn adjoint_window(&self, outer_grad: &Params, window: Range<usize>) -> Result<UnrollGrads> {
        self.check_adjoint_args(outer_grad, &window)?;
        let inner = &self.inner;
        let InnerSgd {
            lr,
            momentum,
            weight_decay,
        } = inner.sgd;
        let mut grads = UnrollGrads {
            x: Array4::zeros(inner.x.raw_dim()),
            lr: 0.0,
            theta: outer_grad.clone(),
            window: window.clone(),
        };
        // `grads.theta` is a_θ = dL/dθ_{k+1} at the top of each iteration; `a_v` is
        // dL/dv_{k+1} (zero at N: the outer loss ignores the velocity).
        let mut a_v: Option<Params> = None;
        for k in (window.start..self.steps()).rev() {
            let w = velocity_adjoint(&grads.theta, a_v.as_ref(), lr);
            let in_window = k < window.end;
            if in_window {
                grads.lr -=
                    dot_with_difference(&grads.theta, &self.iterates[k], &self.iterates[k + 1])
                        / lr as f64;
            }
            let (xb, yb) = inner.batch(k);
            let xt = inner.transform.forward(k, xb.view())?;
            let out = inner
                .bundle
                .grad_vjp(&self.iterates[k], xt.view(), yb.view(), None, &w)?;
            if in_window {
                let gx = inner.transform.vjp(k, xb.view(), out.x_grad)?;
                scatter_add(&mut grads.x, &inner.batches[k], &gx, k)?;
            }
            grads.theta.axpy(1.0, &out.hv);
            if weight_decay != 0.0 {
                grads.theta.axpy(weight_decay, &w);
            }
            a_v = (momentum != 0.0).then(|| {
                let mut w = w;
                w.scale(momentum);
                w
            });
        }
        Ok(grads)
    }

    fn check_adjoint_args(&self, outer_grad: &Params, window: &Range<usize>) -> Result<()> {
        check_same_shapes("outer_grad", outer_grad, &self.iterates[0])?;
        if window.start > window.end || window.end > self.steps() {
            return Err(Error::invalid(
                "window",
                format!(
                    "{}..{} is not a range of steps within 0..{}",
                    window.start,
                    window.end,
                    self.steps()
                ),
            ));
        }
        Ok(())
    }
}

// The adjoint recursion, derived once here.
//
// State after step k: (θ_k, v_k). One step maps it to
//     v_{k+1} = μ v_k + g(θ_k, x_k),   g(θ, x) = ∇θ L(θ, x) + λ θ
//     θ_{k+1} = θ_k − lr v_{k+1}.
// Write aθ_k = dL/dθ_k and av_k = dL/dv_k (total derivatives of the outer loss, which only
// sees θ_N, so aθ_N = outer_grad and av_N = 0). v_{k+1} reaches L directly and through θ_{k+1},
// so its total adjoint is
//     w_{k+1} = av_{k+1} − lr aθ_{k+1}.
// v_{k+1} depends on v_k through μ and on θ_k through g; θ_{k+1} depends on θ_k directly:
//     aθ_k = aθ_{k+1} + (H(θ_k, x_k) + λ I) w_{k+1}
//     av_k = μ w_{k+1}
//     dL/dx_k  += J_x(θ_k, x_k)ᵀ w_{k+1}          (J_x = ∂g/∂x: grad_vjp's x_grad)
//     dL/dlr   += −<aθ_{k+1}, v_{k+1}>             (the explicit lr in θ_{k+1})
// With μ = 0 we get av = 0, w = −lr aθ_{k+1}, hence the plain-SGD recursion of MTT:
//     aθ_k = aθ_{k+1} − lr (H + λ) aθ_{k+1},  dL/dx_k += −lr J_xᵀ aθ_{k+1},
//     dL/dlr += −<aθ_{k+1}, g_k>.
// H·w and J_xᵀ w are linear in w, so one grad_vjp call with a = w gives both.

/// An error naming `what` unless `p` has the shapes of `like` (Params arithmetic would panic).
fn check_same_shapes(what: &str, p: &Params, like: &Params) -> Result<()> {
    let same = p.len() == like.len()
        && p.tensors()
            .iter()
            .zip(like.tensors())
            .all(|(a, b)| a.shape() == b.shape());
    if same {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            "does not have the model's parameter shapes",
        ))
    }
}

/// `w_{k+1} = av_{k+1} − lr·aθ_{k+1}`, the total adjoint of `v_{k+1}`.
fn velocity_adjoint(a_theta: &Params, a_v: Option<&Params>, lr: f32) -> Params {
    let mut w = a_theta.clone();
    w.scale(-lr);
    if let Some(a_v) = a_v {
        w.axpy(1.0, a_v);
    }
    w
}

/// `<a, θ_k − θ_{k+1}>` with the difference taken in f64, where it is exact (no cancellation
/// error on top of the forward pass's own rounding).
fn dot_with_difference(a: &Params, before: &Params, after: &Params) -> f64 {
    a.tensors()
        .iter()
        .zip(before.tensors())
        .zip(after.tensors())
        .map(|((a, b), c)| {
            Zip::from(a).and(b).and(c).fold(0.0f64, |acc, &a, &b, &c| {
                acc + a as f64 * (b as f64 - c as f64)
            })
        })
        .sum()
}

/// Adds a batch gradient into the whole set's gradient (repeated indices accumulate).
fn scatter_add(
    total: &mut Array4<f32>,
    indices: &[usize],
    batch_grad: &Array4<f32>,
    step: usize,
) -> Result<()> {
    let expected = (indices.len(), total.dim().1, total.dim().2, total.dim().3);
    if batch_grad.dim() != expected {
        return Err(Error::invalid(
            "transform",
            format!(
                "vjp at step {step} returned shape {:?}, expected {expected:?}",
                batch_grad.shape()
            ),
        ));
    }
    for (j, &i) in indices.iter().enumerate() {
        let mut row = total.index_axis_mut(Axis(0), i);
        row += &batch_grad.index_axis(Axis(0), j);
    }
    Ok(())
}

/// An outer loss value and its gradient with respect to `θ_N`.
#[derive(Debug, Clone)]
pub struct OuterLoss {
    /// The loss.
    pub value: f64,
    /// `dL/dθ_N`, to pass to [`Unrolled::adjoint`].
    pub grad: Params,
}

/// MTT's normalised parameter distance `|θ_N − θ*|² / |θ_start − θ*|²` and its gradient
/// `2 (θ_N − θ*) / |θ_start − θ*|²`, where `θ_start` is the expert checkpoint the student
/// started from and `θ*` the expert checkpoint M epochs later.
pub fn trajectory_matching(student: &Params, start: &Params, target: &Params) -> Result<OuterLoss> {
    check_same_shapes("start", start, student)?;
    check_same_shapes("target", target, student)?;
    let mut span = start.clone();
    span.axpy(-1.0, target);
    let denom = span.dot(&span);
    if denom == 0.0 || !denom.is_finite() {
        return Err(Error::invalid(
            "target",
            format!(
                "expert start and target are {denom} apart in squared distance; they must differ"
            ),
        ));
    }
    let mut diff = student.clone();
    diff.axpy(-1.0, target);
    let value = diff.dot(&diff) / denom;
    diff.scale((2.0 / denom) as f32);
    Ok(OuterLoss { value, grad: diff })
}

/// BPTT's outer loss: the mean cross-entropy of a real batch at `θ_N`, and its gradient.
pub fn real_batch_loss(
    bundle: &Bundle,
    theta: &Params,
    x: ArrayView4<f32>,
    y: ArrayView1<i64>,
) -> Result<OuterLoss> {
    let out = bundle.grad(theta, x, y, None)?;
    Ok(OuterLoss {
        value: out.loss as f64,
        grad: out.grad,
    })
}

/// MTT's minibatch schedule: `steps` minibatches of `batch` indices into a set of `n`
/// images, drawn by shuffling the set every epoch and cutting it in order (the last chunk
/// of an epoch may be smaller), seeded.
pub fn epoch_batches(n: usize, batch: usize, steps: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if n == 0 || batch == 0 {
        return Err(Error::invalid(
            "batch",
            format!("cannot draw batches of {batch} from {n} images"),
        ));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new(); // `steps` is the caller's: no reservation
    while out.len() < steps {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        out.extend(order.chunks(batch).map(<[usize]>::to_vec));
    }
    out.truncate(steps);
    Ok(out)
}
