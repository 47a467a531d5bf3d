//! Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021) with exact vector-Jacobian
//! products, for every method that augments: DSA/DC gradient matching, DM, MTT, BPTT and
//! training or evaluating with augmentation.
//!
//! A [`Dsa`] strategy (e.g. [`STANDARD_STRATEGY`], `color_crop_cutout_flip_scale_rotate`)
//! samples one [`Augmentation`] per step: one transform family chosen uniformly, with all its
//! random draws. Applying that value to the real batch and to the synthetic batch transforms
//! both identically ("Siamese"); [`Augmentation::vjp`] carries a gradient back to the
//! synthetic pixels.
//!
//! Semantics follow the reference `DiffAugment`/`ParamDiffAug` code, on normalised tensors as
//! it does:
//! * one family per call (`aug_mode = 'S'`); `color` is brightness, saturation and contrast in
//!   sequence;
//! * [`Dsa::sample_shared`] is the reference's Siamese mode: one draw shared by every image of
//!   both batches, so batches of different sizes need nothing special. [`Dsa::sample`] draws
//!   per image (the reference without a seed, as when training with augmentation) and applies
//!   to any batch of at most `n` images, image `i` getting draw `i`;
//! * crop shifts and cutout sizes are `int(ratio * size + 0.5)` pixels of the batch they meet;
//!   scale and rotate resample with `affine_grid`/`grid_sample`, `align_corners = true`, zero
//!   padding.
//!
//! Every transform is affine in the pixels, so the vector-Jacobian product is exact and
//! independent of the input: bilinear resampling transposes to a scatter of the same weights,
//! and the colour ops include the dependence of their means on the pixels.
//!
//! ```
//! use ddlens::augment::Dsa;
//! use ndarray::Array4;
//! use rand::SeedableRng;
//!
//! let dsa = Dsa::default();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let aug = dsa.sample_shared(&mut rng);
//! let real = Array4::<f32>::ones((8, 1, 28, 28));
//! let syn = Array4::<f32>::ones((2, 1, 28, 28));
//! let real_aug = aug.apply(real.view()).unwrap();
//! let syn_aug = aug.apply(syn.view()).unwrap();
//! // ... a loss on (real_aug, syn_aug), its gradient w.r.t. syn_aug ...
//! let grad_syn_aug = Array4::<f32>::ones(syn_aug.dim());
//! let grad_syn = aug.vjp(grad_syn_aug.view()).unwrap();
//! assert_eq!(grad_syn.dim(), syn.dim());
//! # assert_eq!(real_aug.dim(), real.dim());
//! ```

mod affine;
mod augmentation;
mod color;
mod crop;
mod cutout;
mod flip;
mod params;
mod stage;
mod strategy;
mod transform;

pub use augmentation::{Augmentation, Sharing};
pub use params::DsaParams;
pub use strategy::{AugOp, Dsa, STANDARD_STRATEGY};
pub use transform::Transform;
