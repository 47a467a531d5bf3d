//! Scale and rotate: bilinear resampling with PyTorch's `affine_grid` + `grid_sample` semantics
//! (`align_corners = true`, `padding_mode = zeros`), as the reference `rand_scale`/`rand_rotate`.
//!
//! The sampling positions depend only on the matrix and the image size, never on the pixels or
//! the channel, so they are computed once per image as "taps" (four source indices and
//! bilinear weights per output pixel) and reused for every channel. The output is linear in the
//! pixels with exactly these weights, so the vector-Jacobian product w.r.t. the pixels is the
//! transposed scatter of the same taps.

use super::transform::Dims;

/// Four bilinear taps of one output pixel: indices into the source plane and their weights.
/// Corners outside the image carry weight 0 (zero padding) and a harmless index 0.
#[derive(Debug, Clone, Copy, Default)]
struct Tap {
    idx: [u32; 4],
    wt: [f32; 4],
}

/// The taps of every output pixel of one plane.
#[derive(Debug, Default)]
pub(crate) struct Taps {
    taps: Vec<Tap>,
}

/// The last computed [`Taps`], keyed by matrix and size: with batch-shared parameters every
/// image of the batch reuses them.
#[derive(Debug, Default)]
pub(crate) struct TapCache {
    key: Option<([f64; 4], Dims)>,
    taps: Taps,
}

impl TapCache {
    /// The taps for `matrix` on images of size `d`, recomputed only when either changes.
    pub fn get(&mut self, matrix: [f64; 4], d: Dims) -> &Taps {
        if self.key != Some((matrix, d)) {
            self.taps.compute(matrix, d);
            self.key = Some((matrix, d));
        }
        &self.taps
    }
}

/// `affine_grid`'s base coordinate of pixel `j` among `n` with align_corners = true:
/// `linspace(-1, 1, n)`, and 0 for a single pixel (PyTorch's convention).
fn base(j: usize, n: usize) -> f64 {
    if n > 1 {
        -1.0 + 2.0 * j as f64 / (n - 1) as f64
    } else {
        0.0
    }
}

/// `grid_sample`'s unnormalisation with align_corners = true: -1 and 1 are the centres of the
/// first and last pixel.
fn unnormalize(g: f64, n: usize) -> f64 {
    (g + 1.0) / 2.0 * (n as f64 - 1.0)
}

impl Taps {
    /// Fills the taps for `matrix` on images of size `d`. Coordinates are computed in f64 so
    /// that the identity matrix lands exactly on pixel centres.
    fn compute(&mut self, m: [f64; 4], d: Dims) {
        self.taps.clear();
        self.taps.reserve(d.plane());
        for r in 0..d.h {
            let by = base(r, d.h);
            for q in 0..d.w {
                let bx = base(q, d.w);
                let ix = unnormalize(m[0] * bx + m[1] * by, d.w);
                let iy = unnormalize(m[2] * bx + m[3] * by, d.h);
                self.taps.push(bilinear(ix, iy, d));
            }
        }
    }

    /// `dst[c, p] = sum_k wt[p][k] * src[c, idx[p][k]]` for every channel.
    pub fn gather(&self, src: &[f32], dst: &mut [f32], d: Dims) {
        for (s, o) in src
            .chunks_exact(d.plane())
            .zip(dst.chunks_exact_mut(d.plane()))
        {
            for (v, t) in o.iter_mut().zip(&self.taps) {
                *v = t.wt[0] * s[t.idx[0] as usize]
                    + t.wt[1] * s[t.idx[1] as usize]
                    + t.wt[2] * s[t.idx[2] as usize]
                    + t.wt[3] * s[t.idx[3] as usize];
            }
        }
    }

    /// The transpose of [`Taps::gather`]: `dst[c, idx[p][k]] += wt[p][k] * src[c, p]`, from zero.
    pub fn scatter(&self, src: &[f32], dst: &mut [f32], d: Dims) {
        dst.fill(0.0);
        for (s, o) in src
            .chunks_exact(d.plane())
            .zip(dst.chunks_exact_mut(d.plane()))
        {
            for (g, t) in s.iter().zip(&self.taps) {
                for k in 0..4 {
                    o[t.idx[k] as usize] += t.wt[k] * g;
                }
            }
        }
    }
}

/// The bilinear taps at source position `(ix, iy)` in pixels; corners outside the image get
/// weight 0, as `grid_sample` with zero padding.
fn bilinear(ix: f64, iy: f64, d: Dims) -> Tap {
    let mut tap = Tap::default();
    // Far outside (or NaN): all four corners are out of the image. Checked before the casts.
    if !(ix > -1.0 && ix < d.w as f64 && iy > -1.0 && iy < d.h as f64) {
        return tap;
    }
    let (x0, y0) = (ix.floor(), iy.floor());
    let (fx, fy) = (ix - x0, iy - y0);
    let (x0, y0) = (x0 as isize, y0 as isize);
    let corners = [
        (x0, y0, (1.0 - fx) * (1.0 - fy)),
        (x0 + 1, y0, fx * (1.0 - fy)),
        (x0, y0 + 1, (1.0 - fx) * fy),
        (x0 + 1, y0 + 1, fx * fy),
    ];
    for (k, (cx, cy, wt)) in corners.into_iter().enumerate() {
        if (0..d.w as isize).contains(&cx) && (0..d.h as isize).contains(&cy) {
            tap.idx[k] = (cy as usize * d.w + cx as usize) as u32;
            tap.wt[k] = wt as f32;
        }
    }
    tap
}
