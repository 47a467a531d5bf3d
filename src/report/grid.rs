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

/// Writes the grid of `images` to `path` as PNG (atomically) and returns its (width, height).
pub fn write_grid_png(
    path: &Path,
    images: ArrayView4<f32>,
    labels: &[i64],
    num_classes: usize,
    normalizer: &Normalizer,
) -> Result<(usize, usize)> {
    let pic = grid(images, labels, num_classes, normalizer)?;
    write_atomic(path, &encode_png(&pic)?)?;
    Ok((pic.dim().1, pic.dim().0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn writes_a_png_of_the_expected_size() {
        // 3 classes × 2 images of 8×8 grey: scale 7 (56 px), 2 px gaps.
        let norm = Normalizer::new("t", vec![0.5], vec![0.5]).unwrap();
        let images = Array4::from_shape_fn((6, 1, 8, 8), |(i, _, _, _)| i as f32 / 5.0 * 2.0 - 1.0);
        let labels = [0, 0, 1, 1, 2, 2];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        let (w, h) = write_grid_png(&path, images.view(), &labels, 3, &norm).unwrap();
        assert_eq!((w, h), (2 * 58 + 2, 3 * 58 + 2));
        let (info, buf) = decode(&std::fs::read(&path).unwrap());
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        // Image 0 is -1 in normalised space -> 0 after denormalising; image 5 is 1 -> 255.
        assert_eq!(buf[2 * w + 2], 0);
        assert_eq!(buf[(2 + 2 * 58 + 10) * w + 2 + 58 + 10], 255);
        assert_eq!(buf[0], BACKGROUND);
    }

    #[test]
    fn rgb_images_make_an_rgb_png_and_bad_labels_are_refused() {
        let norm = Normalizer::cifar10();
        let images = Array4::<f32>::zeros((2, 3, 32, 32));
        let pic = grid(images.view(), &[0, 1], 2, &norm).unwrap();
        // 32 px -> scale 2 (64 px).
        assert_eq!(pic.dim(), (2 * 66 + 2, 66 + 2, 3));
        let (info, _) = decode(&encode_png(&pic).unwrap());
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let err = grid(images.view(), &[0, 2], 2, &norm)
            .unwrap_err()
            .to_string();
        assert!(err.contains("labels"), "{err}");
    }
}
