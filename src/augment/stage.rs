//! The random draws of one transform for every image of a batch, kept independent of the image
//! size: shifts and cutout positions are stored as unit draws and turned into pixels only when
//! the augmentation meets a batch, exactly as the reference derives them from `x.size()`.

use rand::Rng;

use super::params::DsaParams;
use super::strategy::AugOp;
use super::transform::{Dims, Transform};

/// One transform's parameters, one entry per draw (per image, or a single shared one).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stage {
    Brightness(Vec<f32>),
    Saturation(Vec<f32>),
    Contrast(Vec<f32>),
    /// Unit draws `[rows, cols]` mapped to shifts in `[-s, s]`, `s = round(ratio * size)`.
    Crop {
        ratio: f32,
        draws: Vec<[f64; 2]>,
    },
    /// Unit draws `[rows, cols]` mapped to the square's centre.
    Cutout {
        ratio: f32,
        draws: Vec<[f64; 2]>,
    },
    Flip(Vec<bool>),
    Affine(Vec<[f64; 4]>),
}

/// Draws the stages of `op` for `n` images, in the reference's order (colour is brightness,
/// then saturation, then contrast).
pub(crate) fn sample<R: Rng + ?Sized>(
    op: AugOp,
    p: &DsaParams,
    n: usize,
    rng: &mut R,
) -> Vec<Stage> {
    // f32 uniforms for the continuous factors, as the reference's `torch.rand`.
    let unit = |rng: &mut R| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>()).collect() };
    match op {
        AugOp::Color => {
            let b = unit(rng)
                .into_iter()
                .map(|u| (u - 0.5) * p.brightness)
                .collect();
            let s = unit(rng).into_iter().map(|u| u * p.saturation).collect();
            let c = unit(rng).into_iter().map(|u| u + p.contrast).collect();
            vec![
                Stage::Brightness(b),
                Stage::Saturation(s),
                Stage::Contrast(c),
            ]
        }
        AugOp::Crop => vec![Stage::Crop {
            ratio: p.crop_ratio,
            draws: (0..n).map(|_| [rng.random(), rng.random()]).collect(),
        }],
        AugOp::Cutout => vec![Stage::Cutout {
            ratio: p.cutout_ratio,
            draws: (0..n).map(|_| [rng.random(), rng.random()]).collect(),
        }],
        AugOp::Flip => vec![Stage::Flip(
            unit(rng).into_iter().map(|u| u < p.flip_p).collect(),
        )],
        AugOp::Scale => {
            let (hi, lo) = (f64::from(p.scale), 1.0 / f64::from(p.scale));
            let sx = unit(rng);
            let sy = unit(rng);
            let m = sx
                .into_iter()
                .zip(sy)
                .map(|(ux, uy)| {
                    let sx = f64::from(ux) * (hi - lo) + lo;
                    let sy = f64::from(uy) * (hi - lo) + lo;
                    [sx, 0.0, 0.0, sy]
                })
                .collect();
            vec![Stage::Affine(m)]
        }
        AugOp::Rotate => {
            let max = f64::from(p.rotate_deg).to_radians();
            let m = unit(rng)
                .into_iter()
                .map(|u| {
                    let t = (f64::from(u) - 0.5) * 2.0 * max;
                    let (s, c) = t.sin_cos();
                    [c, -s, s, c]
                })
                .collect();
            vec![Stage::Affine(m)]
        }
    }
}

/// `int(size * ratio + 0.5)` as the reference computes shift and cutout sizes.
fn pixels(size: usize, ratio: f32) -> usize {
    (size as f64 * f64::from(ratio) + 0.5).floor() as usize
}

/// Maps a unit draw to an integer uniform in `lo..=hi`.
fn integer(u: f64, lo: isize, hi: isize) -> isize {
    let span = (hi - lo + 1) as f64;
    // `u < 1`, but the product can round up to `span`; clamp keeps the range closed.
    (lo + (u * span).floor() as isize).min(hi)
}

/// The rows (or columns) a cutout of side `side` centred by draw `u` zeroes in `size` pixels:
/// the reference draws the centre in `[0, size + (1 - side % 2))` and clips the square.
fn cutout_span(u: f64, size: usize, side: usize) -> std::ops::Range<usize> {
    let hi = size as isize - (side % 2) as isize;
    let centre = integer(u, 0, hi);
    let start = centre - (side / 2) as isize;
    let end = start + side as isize;
    let clip = |v: isize| v.clamp(0, size as isize) as usize;
    clip(start)..clip(end)
}

impl Stage {
    /// Number of draws held.
    pub fn draws(&self) -> usize {
        match self {
            Stage::Brightness(v) | Stage::Saturation(v) | Stage::Contrast(v) => v.len(),
            Stage::Crop { draws, .. } | Stage::Cutout { draws, .. } => draws.len(),
            Stage::Flip(v) => v.len(),
            Stage::Affine(v) => v.len(),
        }
    }

    /// The transform of draw `k` on images of size `d`.
    pub fn resolve(&self, k: usize, d: Dims) -> Transform {
        match self {
            Stage::Brightness(v) => Transform::Brightness { delta: v[k] },
            Stage::Saturation(v) => Transform::Saturation { factor: v[k] },
            Stage::Contrast(v) => Transform::Contrast { factor: v[k] },
            Stage::Crop { ratio, draws } => {
                let (sh, sw) = (pixels(d.h, *ratio) as isize, pixels(d.w, *ratio) as isize);
                Transform::Translate {
                    dy: integer(draws[k][0], -sh, sh),
                    dx: integer(draws[k][1], -sw, sw),
                }
            }
            Stage::Cutout { ratio, draws } => {
                let (side_h, side_w) = (pixels(d.h, *ratio), pixels(d.w, *ratio));
                Transform::Cutout {
                    rows: cutout_span(draws[k][0], d.h, side_h),
                    cols: cutout_span(draws[k][1], d.w, side_w),
                }
            }
            Stage::Flip(v) => Transform::Flip { flipped: v[k] },
            Stage::Affine(v) => Transform::Affine { matrix: v[k] },
        }
    }
}
