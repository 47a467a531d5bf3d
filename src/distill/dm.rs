//! DM, distribution matching (Zhao & Bilen, 2023): match the mean embedding of real and
//! synthetic images of each class under freshly drawn random networks.
//!
//! Each iteration draws a new network; for every class `c`, a real batch (256 images of
//! class `c`) and the synthetic images of `c` go through the same sampled DSA augmentation,
//! and the loss is `‖mean emb(real) − mean emb(syn)‖²` with `emb` the penultimate features.
//! Its gradient w.r.t. synthetic image `i` is the features VJP with cotangent
//! `−2 (mean_r − mean_s) / n_s`, carried back through the augmentation. The per-class losses
//! are summed; the images take one momentum-SGD step (protocols.md: lr 1.0, momentum 0.5).

use ndarray::{Array2, Array4, ArrayD, ArrayView4, Axis};
use rand::seq::index;
use rand::RngCore;
use serde::Serialize;

use super::image_sgd::TensorSgd;
use super::method::{IterContext, Method};
use super::synthetic::Synthetic;
use crate::augment::{Augmentation, Dsa};
use crate::bundle::{Bundle, Params};
use crate::error::{Error, Result};

/// DM hyperparameters (defaults: protocols.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmConfig {
    /// Real images per class per iteration.
    pub batch_real: usize,
    /// Image learning rate.
    pub lr: f32,
    /// Image momentum.
    pub momentum: f32,
    /// Siamese augmentation strategy, `None` for none.
    #[serde(serialize_with = "strategy_name")]
    pub dsa: Option<Dsa>,
}

impl Default for DmConfig {
    fn default() -> Self {
        DmConfig {
            batch_real: 256,
            lr: 1.0,
            momentum: 0.5,
            dsa: Some(Dsa::default()),
        }
    }
}

fn strategy_name<S: serde::Serializer>(
    dsa: &Option<Dsa>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(
        &dsa.as_ref()
            .map_or_else(|| "none".to_string(), Dsa::strategy),
    )
}

/// The DM method: its configuration and the momentum buffer of the images.
#[derive(Debug, Clone)]
pub struct Dm {
    config: DmConfig,
    opt: TensorSgd,
}

impl Dm {
    /// A DM run with `config`.
    pub fn new(config: DmConfig) -> Result<Dm> {
        if config.batch_real == 0 {
            return Err(Error::invalid("batch_real", "must be at least 1"));
        }
        if !(config.lr.is_finite() && config.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("{} is not a positive number", config.lr),
            ));
        }
        let opt = TensorSgd::new(config.lr, config.momentum);
        Ok(Dm { config, opt })
    }

    /// The configuration.
    pub fn config(&self) -> &DmConfig {
        &self.config
    }

    /// The DM loss over all classes and its gradient w.r.t. `syn.images`, for a given network
    /// and the given real batches and augmentations (one per class): what one iteration
    /// computes before its update, exposed for checks.
    pub fn loss_and_grad(
        bundle: &Bundle,
        params: &Params,
        syn: &Synthetic,
        real_batches: &[Array4<f32>],
        augs: &[Augmentation],
    ) -> Result<(f32, Array4<f32>)> {
        let classes = syn.class_indices();
        if real_batches.len() != classes.len() || augs.len() != classes.len() {
            return Err(Error::invalid(
                "real_batches",
                format!(
                    "{} real batches and {} augmentations for {} classes",
                    real_batches.len(),
                    augs.len(),
                    classes.len()
                ),
            ));
        }
        let mut grad = Array4::zeros(syn.images.dim());
        let mut total = 0.0f64;
        for (c, members) in classes.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let x_syn = syn.images.select(Axis(0), members);
            let (loss, g) = class_loss_and_grad(
                bundle,
                params,
                real_batches[c].view(),
                x_syn.view(),
                &augs[c],
            )?;
            total += f64::from(loss);
            for (row, &i) in members.iter().enumerate() {
                grad.index_axis_mut(Axis(0), i)
                    .assign(&g.index_axis(Axis(0), row));
            }
        }
        Ok((total as f32, grad))
    }
}

/// One class's DM loss `‖mean emb(aug(real)) − mean emb(aug(syn))‖²` and its gradient w.r.t.
/// the (unaugmented) synthetic images `syn`.
pub fn class_loss_and_grad(
    bundle: &Bundle,
    params: &Params,
    real: ArrayView4<f32>,
    syn: ArrayView4<f32>,
    aug: &Augmentation,
) -> Result<(f32, Array4<f32>)> {
    let mean_real = mean_embedding(bundle, params, aug.apply(real)?.view())?;
    let syn_aug = aug.apply(syn)?;
    let mean_syn = mean_embedding(bundle, params, syn_aug.view())?;
    let diff: Vec<f64> = mean_real
        .iter()
        .zip(&mean_syn)
        .map(|(r, s)| r - s)
        .collect();
    let loss: f64 = diff.iter().map(|d| d * d).sum();
    // d loss / d emb_i = −2 (mean_r − mean_s) / n_s, the same for every synthetic image.
    let n = syn_aug.dim().0;
    let row: Vec<f32> = diff.iter().map(|d| (-2.0 * d / n as f64) as f32).collect();
    let cot = Array2::from_shape_fn((n, row.len()), |(_, j)| row[j]);
    let g_aug = bundle.features_vjp(params, syn_aug.view(), cot.view())?;
    Ok((loss as f32, aug.vjp(g_aug.view())?))
}

/// Mean penultimate feature of a batch, accumulated in f64.
fn mean_embedding(bundle: &Bundle, params: &Params, x: ArrayView4<f32>) -> Result<Vec<f64>> {
    let f = bundle.forward(params, x)?.features;
    let n = f.nrows() as f64;
    Ok(f.axis_iter(Axis(1))
        .map(|col| col.iter().map(|&v| f64::from(v)).sum::<f64>() / n)
        .collect())
}

impl Method for Dm {
    fn name(&self) -> &'static str {
        "dm"
    }

    fn iterate(&mut self, ctx: &mut IterContext<'_>, syn: &mut Synthetic) -> Result<f32> {
        // Draw order is fixed (network, then per class: real batch, augmentation) so that a
        // seed always means the same run.
        let params = ctx.bundle.init_params(ctx.rng.next_u64());
        let mut real_batches = Vec::with_capacity(syn.num_classes);
        let mut augs = Vec::with_capacity(syn.num_classes);
        for c in 0..syn.num_classes {
            let pool = ctx.real_by_class.get(c).map_or(&[][..], Vec::as_slice);
            if pool.is_empty() {
                return Err(Error::invalid(
                    "real",
                    format!("dataset `{}` has no image of class {c}", ctx.real.name()),
                ));
            }
            let take = self.config.batch_real.min(pool.len());
            let picks: Vec<usize> = index::sample(&mut ctx.rng, pool.len(), take)
                .into_iter()
                .map(|k| pool[k])
                .collect();
            real_batches.push(ctx.real.images().select(Axis(0), &picks));
            augs.push(match &self.config.dsa {
                Some(dsa) => dsa.sample_shared(&mut ctx.rng),
                None => Augmentation::identity(),
            });
        }
        let (loss, grad) = Dm::loss_and_grad(ctx.bundle, &params, syn, &real_batches, &augs)?;
        let mut x = std::mem::take(&mut syn.images).into_dyn();
        self.opt.step(&mut x, grad.into_dyn().view());
        syn.images = x
            .into_dimensionality()
            .expect("the update keeps the image shape");
        Ok(loss)
    }

    fn state(&self) -> Vec<(String, ArrayD<f32>)> {
        self.opt
            .velocity()
            .map(|v| vec![("velocity".to_string(), v.clone())])
            .unwrap_or_default()
    }

    fn load_state(&mut self, state: Vec<(String, ArrayD<f32>)>) -> Result<()> {
        let mut velocity = None;
        for (name, t) in state {
            match name.as_str() {
                "velocity" => velocity = Some(t),
                other => {
                    return Err(Error::invalid(
                        "state",
                        format!("unknown DM state tensor `{other}` (expected `velocity`)"),
                    ))
                }
            }
        }
        self.opt.set_velocity(velocity);
        Ok(())
    }
}
