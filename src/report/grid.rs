//! A PNG picture of a synthetic set: one row per class, one column per image, pixels mapped
//! back from normalised space, small images enlarged so they can be seen.

use std::path::Path;

use ndarray::{Array3, ArrayView4};

use crate::data::Normalizer;
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Gap between images and around the grid, in output pixels.
pub const GRID_PADDING: usize = 2;
/// Images are enlarged by an integer factor (nearest neighbour) until at least this tall.
pub const GRID_MIN_SIZE: usize = 56;
/// Value of the padding pixels (white, so dark images stand out).
const BACKGROUND: u8 = 255;

/// An 8-bit picture in `H x W x C` order, `C` = 1 (grey) or 3 (RGB).
pub type Picture = Array3<u8>;

/// Lays out `images` (normalised, `N x C x H x W`, C = 1 or 3) with one row per class and as
/// many columns as the largest class, in the order the images come.
pub fn grid(
    images: ArrayView4<f32>,
    labels: &[i64],
    num_classes: usize,
    normalizer: &Normalizer,
) -> Result<Picture> {
    let (n, c, h, w) = images.dim();
    if c != 1 && c != 3 {
        return Err(Error::invalid(
            "images",
            format!("{c} channels; a picture needs 1 or 3"),
        ));
    }
    if c != normalizer.channels() {
        return Err(Error::invalid(
            "normalizer",
            format!("has {} channels, the images {c}", normalizer.channels()),
        ));
    }
    if labels.len() != n {
        return Err(Error::invalid(
            "labels",
            format!("{} labels for {n} images", labels.len()),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&y| y < 0 || y as usize >= num_classes) {
        return Err(Error::invalid(
            "labels",
            format!("label {bad} outside [0, {num_classes})"),
        ));
    }
    let pixels = normalizer.to_u8(images);
    let scale = GRID_MIN_SIZE.div_ceil(h.max(w).max(1)).max(1);
    let (cell_h, cell_w) = (h * scale, w * scale);
    let mut column = vec![0usize; num_classes];
    for &y in labels {
        column[y as usize] += 1;
    }
    let cols = column.iter().copied().max().unwrap_or(0).max(1);
    let out_h = num_classes * (cell_h + GRID_PADDING) + GRID_PADDING;
    let out_w = cols * (cell_w + GRID_PADDING) + GRID_PADDING;
    let mut pic = Array3::from_elem((out_h, out_w, c), BACKGROUND);
    column.fill(0);
    for (i, &y) in labels.iter().enumerate() {
        let row = y as usize;
        let top = GRID_PADDING + row * (cell_h + GRID_PADDING);
        let left = GRID_PADDING + column[row] * (cell_w + GRID_PADDING);
        column[row] += 1;
        for ((ch, py, px), v) in pixels.index_axis(ndarray::Axis(0), i).indexed_iter() {
            for dy in 0..scale {
                for dx in 0..scale {
                    pic[[top + py * scale + dy, left + px * scale + dx, ch]] = *v;
                }
            }
        }
    }
    Ok(pic)
}

/// PNG encoding of a [`Picture`].
pub fn encode_png(pic: &Picture) -> Result<Vec<u8>> {
    let (h, w, c) = pic.dim();
    let color = match c {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => {
            return Err(Error::invalid(
                "picture",
                format!("{c} channels; PNG needs 1 or 3"),
            ))
        }
    };
    let size = |v: usize, name: &str| {
        u32::try_from(v).map_err(|_| Error::invalid("picture", format!("{name} {v} is too large")))
    };
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, size(w, "width")?, size(h, "height")?);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let encode_err =
        |e: png::EncodingError| Error::invalid("picture", format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(encode_err)?;
    let data = pic.as_standard_layout();
    writer
        .write_image_data(data.as_slice().expect("standard layout"))
        .map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    Ok(bytes)
}

/// Writes the grid of `images` to `path` as PNG (atomically), each row labelled with its
/// class name (`class_names[k]`, or `class k`) under `title`; returns its (width, height).
pub fn write_grid_png(
    path: &Path,
    images: ArrayView4<f32>,
    labels: &[i64],
    num_classes: usize,
    normalizer: &Normalizer,
    title: &str,
    class_names: Option<&[&str]>,
) -> Result<(usize, usize)> {
    let pic = grid(images, labels, num_classes, normalizer)?;
    let (_, _, h, w) = images.dim();
    let scale = GRID_MIN_SIZE.div_ceil(h.max(w).max(1)).max(1);
    let cell = h * scale + GRID_PADDING;
    let rows = (0..num_classes)
        .map(|k| {
            let name = class_names
                .and_then(|n| n.get(k))
                .map_or_else(|| format!("class {k}"), |n| n.to_string());
            (GRID_PADDING + k * cell + cell / 2, name)
        })
        .collect();
    let labels = crate::report::plot::PictureLabels {
        title: title.to_string(),
        rows,
        cols: Vec::new(),
    };
    write_atomic(path, &crate::report::plot::labelled_png(&pic, &labels)?)?;
    Ok((pic.dim().1, pic.dim().0))
}
