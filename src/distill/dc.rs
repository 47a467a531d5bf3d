//! Gradient matching (DC, Zhao, Mopuri & Bilen, ICLR 2021) and, with augmentation, DSA
//! (Zhao & Bilen, ICML 2021).
//!
//! Each iteration draws a fresh network and alternates, `outer_loop` times: (1) for every
//! class `c`, the distance between the parameter gradient of the loss on a real batch of class
//! `c` and on the synthetic images of class `c` ([`gradient_distance`]) is differentiated with
//! respect to the synthetic images and they take one SGD step; (2) the network trains on the
//! synthetic set for `inner_loop` epochs. As in the reference `main.py`, the network is not
//! trained after the last image update, and its optimiser is recreated every iteration.
//!
//! # Gradient of the distance with respect to the images
//! With `g_s = ∇θ L(θ, x_s)` and `D = ∂dist/∂g_s` (computed here in closed form),
//! `∂dist/∂x_s = J_xᵀ D = ∂/∂x_s <∇θ L(θ, x_s), D>`: one `grad_vjp` call per class, whatever
//! the number of parameters, and no second-order graph of the distance itself.

use ndarray::{Array1, Array4, ArrayD, Axis};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::method::{IterContext, Method};
use super::synthetic::Synthetic;
use super::TensorSgd;
use crate::augment::{Augmentation, Dsa};
use crate::bundle::{Bundle, Params};
use crate::error::{Error, Result};
use crate::train::{Sgd, SgdConfig};

/// The reference's `1e-6` in the cosine denominator (`match_loss`, `dis_metric = 'ours'`).
const COSINE_EPS: f64 = 1e-6;

/// Settings of gradient matching. [`DcConfig::for_ipc`] gives the reference defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DcConfig {
    /// Image updates per iteration (the reference's `outer_loop`).
    pub outer_loop: usize,
    /// Epochs of network training on the synthetic set between image updates (`inner_loop`).
    pub inner_loop: usize,
    /// Image learning rate (reference `lr_img` 0.1).
    pub lr_img: f32,
    /// Image momentum (reference 0.5).
    pub momentum_img: f32,
    /// Network learning rate on the synthetic set (reference `lr_net` 0.01).
    pub lr_net: f32,
    /// Network momentum (reference `optimizer_net`, 0.5).
    pub momentum_net: f32,
    /// Real images per class and update (reference `batch_real` 256).
    pub batch_real: usize,
    /// Minibatch of the network training on the synthetic set (reference `batch_train` 256).
    pub batch_train: usize,
    /// Differentiable siamese augmentation (turns DC into DSA); `None` for plain DC.
    pub dsa: Option<Dsa>,
}

impl DcConfig {
    /// The settings recorded in a run's log (`ddlens distill` JSON, `ddl_distill`), with the
    /// augmentation as its strategy name (`none` without).
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "outer_loop": self.outer_loop,
            "inner_loop": self.inner_loop,
            "lr_img": self.lr_img,
            "momentum_img": self.momentum_img,
            "lr_net": self.lr_net,
            "momentum_net": self.momentum_net,
            "batch_real": self.batch_real,
            "batch_train": self.batch_train,
            "dsa": self.dsa.as_ref().map_or_else(|| "none".to_string(), Dsa::strategy),
        })
    }

    /// The reference settings for `ipc` images per class: `(outer_loop, inner_loop)` from the
    /// reference `get_loops` (1 → (1, 1), 10 → (10, 50), 20 → (20, 25), 30 → (30, 20),
    /// 40 → (40, 15), 50 → (50, 10)); other IPCs take the loops of the nearest listed one.
    pub fn for_ipc(ipc: usize) -> Result<DcConfig> {
        const LOOPS: [(usize, usize, usize); 6] = [
            (1, 1, 1),
            (10, 10, 50),
            (20, 20, 25),
            (30, 30, 20),
            (40, 40, 15),
            (50, 50, 10),
        ];
        if ipc == 0 {
            return Err(Error::invalid("ipc", "must be at least 1"));
        }
        let &(_, outer_loop, inner_loop) = LOOPS
            .iter()
            .min_by_key(|(i, _, _)| i.abs_diff(ipc))
            .expect("table is not empty");
        Ok(DcConfig {
            outer_loop,
            inner_loop,
            lr_img: 0.1,
            momentum_img: 0.5,
            lr_net: 0.01,
            momentum_net: 0.5,
            batch_real: 256,
            batch_train: 256,
            dsa: None,
        })
    }

    /// The same settings with DSA augmentation (the DSA method).
    pub fn with_dsa(self, dsa: Dsa) -> DcConfig {
        DcConfig {
            dsa: Some(dsa),
            ..self
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("outer_loop", self.outer_loop),
            ("batch_real", self.batch_real),
            ("batch_train", self.batch_train),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        for (name, v) in [("lr_img", self.lr_img), ("lr_net", self.lr_net)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, format!("must be positive, got {v}")));
            }
        }
        for (name, v) in [
            ("momentum_img", self.momentum_img),
            ("momentum_net", self.momentum_net),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::invalid(name, format!("must be in [0, 1), got {v}")));
            }
        }
        Ok(())
    }
}

/// The gradient-matching distance and its gradient with respect to the synthetic gradient.
#[derive(Debug, Clone)]
pub struct GradientDistance {
    /// `Σ_tensors Σ_rows (1 − cos(g_real_row, g_syn_row))` over tensors of rank ≥ 2.
    pub value: f64,
    /// `∂value/∂g_syn`, zero for ignored (rank-1) tensors.
    pub d_syn: Params,
}

/// The reference `match_loss` with `dis_metric = 'ours'` (`distance_wb`): every tensor of rank
/// at least 2 is flattened to `[out_channels, rest]` and contributes
/// `Σ_rows 1 − <r, s> / (|r| |s| + 1e-6)`; rank-1 tensors (biases, norm parameters) are
/// skipped, as the reference returns 0 for them.
pub fn gradient_distance(g_syn: &Params, g_real: &Params) -> Result<GradientDistance> {
    if g_syn.len() != g_real.len()
        || g_syn
            .tensors()
            .iter()
            .zip(g_real.tensors())
            .any(|(a, b)| a.shape() != b.shape())
    {
        return Err(Error::invalid(
            "g_real",
            "does not have the shapes of the synthetic gradient",
        ));
    }
    let mut value = 0.0;
    let mut d_syn = g_syn.zeros_like();
    for ((s, r), d) in g_syn
        .tensors()
        .iter()
        .zip(g_real.tensors())
        .zip(d_syn.tensors_mut())
    {
        if s.ndim() < 2 {
            continue;
        }
        let rows = s.shape()[0];
        let cols = s.len() / rows.max(1);
        let (s, r) = (s.as_standard_layout(), r.as_standard_layout());
        let (s, r) = (
            s.as_slice().expect("standard layout"),
            r.as_slice().expect("standard layout"),
        );
        let d = d.as_slice_mut().expect("fresh zeros are contiguous");
        for row in 0..rows {
            let span = row * cols..(row + 1) * cols;
            let (dist, grad) = cosine_distance(&s[span.clone()], &r[span.clone()]);
            value += dist;
            for (o, g) in d[span].iter_mut().zip(grad) {
                *o = g as f32;
            }
        }
    }
    Ok(GradientDistance { value, d_syn })
}

/// `1 − <r, s> / (|r| |s| + ε)` and its gradient with respect to `s`, in f64:
/// with `n = <r, s>` and `q = |r| |s| + ε`,
/// `∂/∂s = −r / q + n |r| s / (|s| q²)` (the second term vanishes with `s`, where `n = 0`).
fn cosine_distance(s: &[f32], r: &[f32]) -> (f64, Vec<f64>) {
    let (mut n, mut ss, mut rr) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in s.iter().zip(r) {
        let (a, b) = (a as f64, b as f64);
        n += a * b;
        ss += a * a;
        rr += b * b;
    }
    let (ns, nr) = (ss.sqrt(), rr.sqrt());
    let q = nr * ns + COSINE_EPS;
    let coef_s = if ns > 0.0 { n * nr / (ns * q * q) } else { 0.0 };
    let grad = s
        .iter()
        .zip(r)
        .map(|(&a, &b)| -(b as f64) / q + coef_s * a as f64)
        .collect();
    (1.0 - n / q, grad)
}

/// One class's matching term and its gradient with respect to the synthetic images.
#[derive(Debug, Clone)]
pub struct ClassMatch {
    /// The distance between the real and the synthetic gradient.
    pub distance: f64,
    /// `∂distance/∂x_syn`, shaped like `x_syn`.
    pub x_grad: Array4<f32>,
}

/// The gradient-matching term of one class at `params`: the distance between the gradients of
/// the mean loss on `(x_real, y_real)` and on `(x_syn, y_syn)`, both passed through `aug` when
/// given (the same sampled augmentation, DSA's Siamese mode), and its exact gradient with
/// respect to `x_syn` (before augmentation). Two `grad` calls and one `grad_vjp` call.
pub fn class_match(
    bundle: &Bundle,
    params: &Params,
    real: (Array4<f32>, Array1<i64>),
    syn: (&Array4<f32>, &Array1<i64>),
    aug: Option<&Augmentation>,
) -> Result<ClassMatch> {
    let (x_real, y_real) = real;
    let (x_syn, y_syn) = syn;
    let (x_real, x_syn_t) = match aug {
        Some(a) => (a.apply(x_real.view())?, a.apply(x_syn.view())?),
        None => (x_real, x_syn.clone()),
    };
    let g_real = bundle
        .grad(params, x_real.view(), y_real.view(), None)?
        .grad;
    let g_syn = bundle
        .grad(params, x_syn_t.view(), y_syn.view(), None)?
        .grad;
    let dist = gradient_distance(&g_syn, &g_real)?;
    let out = bundle.grad_vjp(params, x_syn_t.view(), y_syn.view(), None, &dist.d_syn)?;
    let x_grad = match aug {
        Some(a) => a.vjp(out.x_grad.view())?,
        None => out.x_grad,
    };
    Ok(ClassMatch {
        distance: dist.value,
        x_grad,
    })
}

/// The DC / DSA method (see the module documentation).
#[derive(Debug, Clone)]
pub struct Dc {
    config: DcConfig,
    image_opt: TensorSgd,
}

impl Dc {
    /// The method with `config` (checked here, naming the bad field).
    pub fn new(config: DcConfig) -> Result<Dc> {
        config.validate()?;
        Ok(Dc {
            image_opt: TensorSgd::new(config.lr_img, config.momentum_img),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &DcConfig {
        &self.config
    }

    /// Trains `params` for `inner_loop` epochs on the synthetic set (reference `epoch('train',
    /// ...)` with a shuffled loader of `batch_train`), per-image augmentation when DSA is on
    /// (the reference calls `DiffAugment` without a seed there).
    fn train_net(
        &self,
        bundle: &Bundle,
        params: &mut Params,
        sgd: &mut Sgd,
        syn: &Synthetic,
        rng: &mut ChaCha8Rng,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..syn.len()).collect();
        for _ in 0..self.config.inner_loop {
            order.shuffle(rng);
            for chunk in order.chunks(self.config.batch_train) {
                let mut x = syn.images.select(Axis(0), chunk);
                let y = syn.labels.select(Axis(0), chunk);
                if let Some(dsa) = &self.config.dsa {
                    x = dsa.sample(chunk.len(), rng).apply(x.view())?;
                }
                let g = bundle.grad(params, x.view(), y.view(), None)?;
                if !g.loss.is_finite() {
                    return Err(Error::invalid(
                        "lr_net",
                        format!(
                            "network training on the synthetic set diverged (loss {})",
                            g.loss
                        ),
                    ));
                }
                sgd.step(params, g.grad, self.config.lr_net);
            }
        }
        Ok(())
    }
}

impl Method for Dc {
    fn name(&self) -> &'static str {
        if self.config.dsa.is_some() {
            "dsa"
        } else {
            "dc"
        }
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32> {
        let bundle = ctx.bundle;
        let mut params = bundle.init_params(ctx.rng.random());
        let mut sgd = Sgd::new(SgdConfig {
            momentum: self.config.momentum_net,
            weight_decay: 0.0,
        });
        let by_class = syn.class_indices();
        let mut total = 0.0;
        for ol in 0..self.config.outer_loop {
            let mut grad = Array4::<f32>::zeros(syn.images.raw_dim());
            for (c, idx) in by_class.iter().enumerate() {
                if idx.is_empty() {
                    continue;
                }
                let real_idx = ctx.real_by_class.get(c).filter(|v| !v.is_empty());
                let real_idx = real_idx.ok_or_else(|| {
                    Error::invalid(
                        "real",
                        format!("has no image of class {c}, which the synthetic set has"),
                    )
                })?;
                // The reference `get_images`: a random subset of the class, without replacement.
                let picked: Vec<usize> = real_idx
                    .choose_multiple(&mut ctx.rng, self.config.batch_real)
                    .copied()
                    .collect();
                let x_real = ctx.real.images().select(Axis(0), &picked);
                let y_real = ctx.real.labels().select(Axis(0), &picked);
                let x_syn = syn.images.select(Axis(0), idx);
                let y_syn = syn.labels.select(Axis(0), idx);
                let aug = self
                    .config
                    .dsa
                    .as_ref()
                    .map(|d| d.sample_shared(&mut ctx.rng));
                let m = class_match(
                    bundle,
                    &params,
                    (x_real, y_real),
                    (&x_syn, &y_syn),
                    aug.as_ref(),
                )?;
                total += m.distance;
                for (j, &i) in idx.iter().enumerate() {
                    grad.index_axis_mut(Axis(0), i)
                        .assign(&m.x_grad.index_axis(Axis(0), j));
                }
            }
            // The reference sums the class terms into one loss and takes one image step.
            step_images(&mut self.image_opt, &mut syn.images, grad)?;
            if ol + 1 == self.config.outer_loop {
                break;
            }
            self.train_net(bundle, &mut params, &mut sgd, syn, &mut ctx.rng)?;
        }
        // The reference reports loss_avg / (num_classes * outer_loop).
        Ok((total / (syn.num_classes * self.config.outer_loop) as f64) as f32)
    }

    fn state(&self) -> Vec<(String, ArrayD<f32>)> {
        velocity_state("image_velocity", &self.image_opt)
    }

    fn load_state(&mut self, state: Vec<(String, ArrayD<f32>)>) -> Result<()> {
        load_velocities(state, &mut [("image_velocity", &mut self.image_opt)])
    }
}

/// One optimiser step on the images with gradient `grad`, failing (and changing nothing) on a
/// non-finite gradient.
pub(crate) fn step_images(
    opt: &mut TensorSgd,
    images: &mut Array4<f32>,
    grad: Array4<f32>,
) -> Result<()> {
    if grad.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "images",
            "the gradient with respect to the synthetic images is not finite",
        ));
    }
    if let Some(v) = opt.velocity() {
        if v.shape() != grad.shape() {
            return Err(Error::invalid(
                "state",
                format!(
                    "momentum buffer has shape {:?}, the images {:?}",
                    v.shape(),
                    grad.shape()
                ),
            ));
        }
    }
    let mut x = std::mem::take(images).into_dyn();
    opt.step(&mut x, grad.into_dyn().view());
    *images = x
        .into_dimensionality()
        .expect("the optimiser keeps the shape");
    Ok(())
}

/// `[(name, velocity)]` when the optimiser has one.
pub(crate) fn velocity_state(name: &str, opt: &TensorSgd) -> Vec<(String, ArrayD<f32>)> {
    opt.velocity()
        .map(|v| vec![(name.to_string(), v.clone())])
        .unwrap_or_default()
}

/// Restores momentum buffers by name; names not in `state` are reset (no step taken yet), and
/// unknown names are an error naming them.
pub(crate) fn load_velocities(
    state: Vec<(String, ArrayD<f32>)>,
    opts: &mut [(&str, &mut TensorSgd)],
) -> Result<()> {
    for (_, opt) in opts.iter_mut() {
        opt.set_velocity(None);
    }
    let known: Vec<String> = opts.iter().map(|(n, _)| n.to_string()).collect();
    for (name, value) in state {
        let opt = opts.iter_mut().find(|(n, _)| *n == name).ok_or_else(|| {
            Error::invalid(
                "state",
                format!("unknown tensor `{name}` (expected {})", known.join(", ")),
            )
        })?;
        opt.1.set_velocity(Some(value));
    }
    Ok(())
}
