//! Colour kernels: brightness, saturation and contrast on one `C x H x W` image, in place.
//!
//! Saturation and contrast are `f x + (1 - f) P x` with `P` an averaging projection, a symmetric
//! linear map; the same kernels therefore serve as their own vector-Jacobian products.

use super::transform::Dims;

/// `x += delta`.
pub(crate) fn brightness(x: &mut [f32], delta: f32) {
    for v in x {
        *v += delta;
    }
}

/// `x = (x - m) * factor + m` with `m` the mean over channels at each pixel. `mean` is a
/// reusable buffer; the mean is accumulated plane by plane to stay on contiguous memory.
pub(crate) fn saturation(x: &mut [f32], d: Dims, factor: f32, mean: &mut Vec<f32>) {
    let hw = d.plane();
    mean.clear();
    mean.resize(hw, 0.0);
    for plane in x.chunks_exact(hw) {
        for (m, v) in mean.iter_mut().zip(plane) {
            *m += v;
        }
    }
    let inv_c = 1.0 / d.c as f32;
    for m in mean.iter_mut() {
        *m *= inv_c;
    }
    for plane in x.chunks_exact_mut(hw) {
        for (v, m) in plane.iter_mut().zip(mean.iter()) {
            *v = (*v - m) * factor + m;
        }
    }
}

/// `x = (x - m) * factor + m` with `m` the mean of the whole image.
pub(crate) fn contrast(x: &mut [f32], factor: f32) {
    if x.is_empty() {
        return;
    }
    // f64 accumulation: thousands of terms, and the mean enters every output value.
    let m = (x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64) as f32;
    for v in x {
        *v = (*v - m) * factor + m;
    }
}
