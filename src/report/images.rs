//! Pictures made of image rows (an influence grid: a distilled image, a gap, then its most
//! influenced test images). Each image is scaled to its own min–max range, because distilled
//! pixels leave the real range and one shared scale would wash real images out.

use ndarray::{Array3, ArrayView3};

use super::grid::{Picture, GRID_MIN_SIZE, GRID_PADDING};
use crate::error::{Error, Result};

/// Lays out `rows` of images (`C x H x W`, C = 1 or 3, all the same shape), one picture row
/// per entry, with a wider gap after the first image of each row (the "query" image).
pub fn image_rows(rows: &[Vec<ArrayView3<'_, f32>>]) -> Result<Picture> {
    let first = rows
        .iter()
        .flat_map(|r| r.first())
        .next()
        .ok_or_else(|| Error::invalid("rows", "no images to draw"))?;
    let (c, h, w) = first.dim();
    if c != 1 && c != 3 {
        return Err(Error::invalid(
            "rows",
            format!("{c} channels; a picture needs 1 or 3"),
        ));
    }
    if let Some(bad) = rows.iter().flatten().find(|im| im.dim() != (c, h, w)) {
        return Err(Error::invalid(
            "rows",
            format!(
                "image of shape {:?} among images of shape {:?}",
                bad.dim(),
                (c, h, w)
            ),
        ));
    }
    let scale = GRID_MIN_SIZE.div_ceil(h.max(w).max(1)).max(1);
    let (cell_h, cell_w) = (h * scale, w * scale);
    let gap = 4 * GRID_PADDING;
    let cols = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let out_h = rows.len() * (cell_h + GRID_PADDING) + GRID_PADDING;
    let out_w = cols * (cell_w + GRID_PADDING) + GRID_PADDING + gap;
    let mut pic = Array3::from_elem((out_h, out_w, c), 255u8);
    for (r, row) in rows.iter().enumerate() {
        let top = GRID_PADDING + r * (cell_h + GRID_PADDING);
        for (k, im) in row.iter().enumerate() {
            let left = GRID_PADDING + k * (cell_w + GRID_PADDING) + if k > 0 { gap } else { 0 };
            let (lo, hi) = im
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let span = (hi - lo).max(1e-12);
            for ((ch, py, px), &v) in im.indexed_iter() {
                let byte = (255.0 * (v - lo) / span).round().clamp(0.0, 255.0) as u8;
                for dy in 0..scale {
                    for dx in 0..scale {
                        pic[[top + py * scale + dy, left + px * scale + dx, ch]] = byte;
                    }
                }
            }
        }
    }
    Ok(pic)
}
