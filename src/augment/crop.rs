//! Crop/translate kernel: an integer shift with zero padding, as the reference `rand_crop`
//! (pad, then index with the shifted grid).

use super::transform::Dims;

/// `dst[c, r, q] = src[c, r + dy, q + dx]`, zero where the source falls outside the image.
pub(crate) fn translate(src: &[f32], dst: &mut [f32], d: Dims, dy: isize, dx: isize) {
    let (h, w) = (d.h as isize, d.w as isize);
    // Output columns whose source column lies inside the image.
    let q0 = (-dx).clamp(0, w) as usize;
    let q1 = (w - dx).clamp(0, w) as usize;
    for (s_plane, d_plane) in src
        .chunks_exact(d.plane())
        .zip(dst.chunks_exact_mut(d.plane()))
    {
        for (r, d_row) in d_plane.chunks_exact_mut(d.w).enumerate() {
            let sr = r as isize + dy;
            if !(0..h).contains(&sr) || q0 >= q1 {
                d_row.fill(0.0);
                continue;
            }
            let s_row = &s_plane[sr as usize * d.w..][..d.w];
            d_row[..q0].fill(0.0);
            let s0 = (q0 as isize + dx) as usize;
            d_row[q0..q1].copy_from_slice(&s_row[s0..s0 + (q1 - q0)]);
            d_row[q1..].fill(0.0);
        }
    }
}
