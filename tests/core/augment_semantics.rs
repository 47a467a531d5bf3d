//! What each DSA transform does to images, checked against the reference semantics written out
//! independently here, plus the Siamese, determinism and strategy-parsing contracts.

use ddlens::augment::{AugOp, Dsa, DsaParams, Sharing, Transform, STANDARD_STRATEGY};
use ndarray::{s, Array3, Array4, ArrayView3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn randn(shape: (usize, usize, usize, usize), rng: &mut ChaCha8Rng) -> Array4<f32> {
    Array4::from_shape_simple_fn(shape, || StandardNormal.sample(rng))
}

fn only(op: AugOp) -> Dsa {
    Dsa::new(DsaParams::default(), vec![op]).unwrap()
}

fn max_abs_diff(a: ArrayView3<f32>, b: ArrayView3<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// PyTorch's `affine_grid` + `grid_sample` (bilinear, zeros, align_corners = true) transcribed
/// pixel by pixel for one image.
fn torch_affine(x: ArrayView3<f32>, theta: [f64; 4]) -> Array3<f32> {
    let (c, h, w) = x.dim();
    let lin = |j: usize, n: usize| {
        if n > 1 {
            -1.0 + 2.0 * j as f64 / (n - 1) as f64
        } else {
            0.0
        }
    };
    let mut out = Array3::zeros((c, h, w));
    for r in 0..h {
        for q in 0..w {
            let (bx, by) = (lin(q, w), lin(r, h));
            let gx = theta[0] * bx + theta[1] * by;
            let gy = theta[2] * bx + theta[3] * by;
            let ix = (gx + 1.0) / 2.0 * (w as f64 - 1.0);
            let iy = (gy + 1.0) / 2.0 * (h as f64 - 1.0);
            let (x0, y0) = (ix.floor(), iy.floor());
            for (cx, cy) in [
                (x0, y0),
                (x0 + 1.0, y0),
                (x0, y0 + 1.0),
                (x0 + 1.0, y0 + 1.0),
            ] {
                let wgt = (1.0 - (ix - cx).abs()) * (1.0 - (iy - cy).abs());
                if cx < 0.0 || cy < 0.0 || cx >= w as f64 || cy >= h as f64 {
                    continue;
                }
                for ch in 0..c {
                    out[[ch, r, q]] += (wgt * f64::from(x[[ch, cy as usize, cx as usize]])) as f32;
                }
            }
        }
    }
    out
}

#[test]
fn flip_twice_is_identity_and_mirrors_exactly_the_drawn_images() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = randn((16, 3, 7, 9), &mut rng);
    let aug = only(AugOp::Flip).sample(16, &mut rng);
    let once = aug.apply(x.view()).unwrap();
    assert_eq!(aug.apply(once.view()).unwrap(), x);
    let mut flipped = 0;
    for i in 0..16 {
        let [Transform::Flip { flipped: f }] = aug.transforms(i, 7, 9).unwrap()[..] else {
            panic!("flip expected");
        };
        let expect = if f {
            flipped += 1;
            x.slice(s![i, .., .., ..;-1]).to_owned()
        } else {
            x.slice(s![i, .., .., ..]).to_owned()
        };
        assert_eq!(once.slice(s![i, .., .., ..]), expect);
    }
    assert!(
        (3..=13).contains(&flipped),
        "{flipped} of 16 flipped at p = 0.5"
    );
}

#[test]
fn crop_shifts_content_by_the_drawn_amount_with_zero_padding() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, h, w) = (200, 32, 24);
    let x = Array4::from_shape_fn((n, 2, h, w), |(i, c, r, q)| (1 + i + c + r * w + q) as f32);
    let aug = only(AugOp::Crop).sample(n, &mut rng);
    let y = aug.apply(x.view()).unwrap();
    let (mut seen_dy, mut seen_dx) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for i in 0..n {
        let [Transform::Translate { dy, dx }] = aug.transforms(i, h, w).unwrap()[..] else {
            panic!("translate expected");
        };
        seen_dy.insert(dy);
        seen_dx.insert(dx);
        for c in 0..2 {
            for r in 0..h {
                for q in 0..w {
                    let (sr, sq) = (r as isize + dy, q as isize + dx);
                    let inside = (0..h as isize).contains(&sr) && (0..w as isize).contains(&sq);
                    let expect = if inside {
                        x[[i, c, sr as usize, sq as usize]]
                    } else {
                        0.0
                    };
                    assert_eq!(y[[i, c, r, q]], expect, "image {i} shift ({dy}, {dx})");
                }
            }
        }
    }
    // int(32 * 0.125 + 0.5) = 4 rows, int(24 * 0.125 + 0.5) = 3 columns, every value drawn.
    assert_eq!(seen_dy, (-4..=4).collect());
    assert_eq!(seen_dx, (-3..=3).collect());
}

#[test]
fn cutout_zeroes_the_drawn_square_and_nothing_else() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, h, w) = (300, 32, 28);
    let x = Array4::<f32>::ones((n, 3, h, w));
    let aug = only(AugOp::Cutout).sample(n, &mut rng);
    let y = aug.apply(x.view()).unwrap();
    let (mut full, mut clipped) = (0, 0);
    for i in 0..n {
        let [Transform::Cutout { ref rows, ref cols }] = aug.transforms(i, h, w).unwrap()[..]
        else {
            panic!("cutout expected");
        };
        // Sides int(32 * 0.5 + 0.5) = 16 and 14, clipped at the border, never empty.
        assert!(rows.end <= h && cols.end <= w && !rows.is_empty() && !cols.is_empty());
        assert!(rows.len() <= 16 && cols.len() <= 14);
        if rows.len() == 16 && cols.len() == 14 {
            full += 1;
        } else {
            clipped += 1;
            assert!(rows.start == 0 || rows.end == h || cols.start == 0 || cols.end == w);
        }
        for ((c, r, q), v) in y.slice(s![i, .., .., ..]).indexed_iter() {
            let inside = rows.contains(&r) && cols.contains(&q);
            assert_eq!(
                *v,
                if inside { 0.0 } else { 1.0 },
                "image {i} pixel {c} {r} {q}"
            );
        }
    }
    assert!(full > 30 && clipped > 30, "{full} full, {clipped} clipped");
}

#[test]
fn colour_is_brightness_then_saturation_then_contrast() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (n, c, h, w) = (64, 3, 6, 5);
    let x = randn((n, c, h, w), &mut rng);
    let aug = only(AugOp::Color).sample(n, &mut rng);
    let y = aug.apply(x.view()).unwrap();
    for i in 0..n {
        let t = aug.transforms(i, h, w).unwrap();
        let [Transform::Brightness { delta }, Transform::Saturation { factor: sat }, Transform::Contrast { factor: con }] =
            t[..]
        else {
            panic!("colour stages expected, got {t:?}");
        };
        assert!((-0.5..0.5).contains(&delta));
        assert!((0.0..2.0).contains(&sat));
        assert!((0.5..1.5).contains(&con));
        let mut img = x.slice(s![i, .., .., ..]).mapv(f64::from);
        img += f64::from(delta);
        let m = img.mean_axis(ndarray::Axis(0)).unwrap();
        for mut ch in img.outer_iter_mut() {
            ch.zip_mut_with(&m, |v, m| *v = (*v - m) * f64::from(sat) + m);
        }
        let m = img.mean().unwrap();
        img.mapv_inplace(|v| (v - m) * f64::from(con) + m);
        let diff = max_abs_diff(y.slice(s![i, .., .., ..]), img.mapv(|v| v as f32).view());
        assert!(diff < 1e-5, "image {i}: {diff}");
    }
}

#[test]
fn scale_and_rotate_match_affine_grid_and_grid_sample() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (op, (h, w)) in [
        (AugOp::Scale, (32, 32)),
        (AugOp::Rotate, (28, 28)),
        (AugOp::Rotate, (9, 14)),
    ] {
        let n = 24;
        let x = randn((n, 3, h, w), &mut rng);
        let aug = only(op).sample(n, &mut rng);
        let y = aug.apply(x.view()).unwrap();
        for i in 0..n {
            let [Transform::Affine { matrix }] = aug.transforms(i, h, w).unwrap()[..] else {
                panic!("affine expected");
            };
            match op {
                AugOp::Scale => {
                    assert_eq!((matrix[1], matrix[2]), (0.0, 0.0));
                    for s in [matrix[0], matrix[3]] {
                        assert!((1.0 / 1.2 - 1e-6..=1.2 + 1e-6).contains(&s), "{s}");
                    }
                }
                _ => {
                    let angle = matrix[2].atan2(matrix[0]).to_degrees();
                    assert!(angle.abs() <= 15.0 + 1e-9, "{angle}");
                    assert!(
                        (matrix[0] - matrix[3]).abs() < 1e-12
                            && (matrix[1] + matrix[2]).abs() < 1e-12
                    );
                }
            }
            let expect = torch_affine(x.slice(s![i, .., .., ..]), matrix);
            let diff = max_abs_diff(y.slice(s![i, .., .., ..]), expect.view());
            assert!(diff < 1e-5, "{op} image {i}: {diff}");
        }
    }
}

#[test]
fn unit_scale_and_zero_rotation_are_the_identity() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = randn((8, 3, 32, 32), &mut rng);
    let params = DsaParams {
        scale: 1.0,
        rotate_deg: 0.0,
        ..DsaParams::default()
    };
    for op in [AugOp::Scale, AugOp::Rotate] {
        let aug = Dsa::new(params, vec![op]).unwrap().sample(8, &mut rng);
        let y = aug.apply(x.view()).unwrap();
        let diff = y
            .iter()
            .zip(x.iter())
            .fold(0.0_f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-6, "{op}: {diff}");
        assert_eq!(
            aug.vjp(x.view()).unwrap(),
            y,
            "{op}: the identity is its own adjoint"
        );
    }
}

#[test]
fn a_shared_augmentation_transforms_every_image_of_both_batches_alike() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let img = randn((1, 3, 16, 16), &mut rng);
    let real = ndarray::concatenate![ndarray::Axis(0), img, randn((4, 3, 16, 16), &mut rng), img];
    let syn = ndarray::concatenate![ndarray::Axis(0), img, img];
    let dsa = Dsa::default();
    for _ in 0..30 {
        let aug = dsa.sample_shared(&mut rng);
        assert_eq!(aug.sharing(), Sharing::Batch);
        let (ra, sa) = (
            aug.apply(real.view()).unwrap(),
            aug.apply(syn.view()).unwrap(),
        );
        let first = sa.slice(s![0, .., .., ..]);
        for out in [
            ra.slice(s![0, .., .., ..]),
            ra.slice(s![5, .., .., ..]),
            sa.slice(s![1, .., .., ..]),
        ] {
            assert_eq!(out, first, "{:?}", aug.op());
        }
    }
}

#[test]
fn a_per_image_augmentation_gives_image_i_draw_i_in_any_batch() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let real = randn((10, 3, 12, 12), &mut rng);
    let syn = real.slice(s![..3, .., .., ..]).to_owned();
    let dsa = Dsa::default();
    for _ in 0..30 {
        let aug = dsa.sample(10, &mut rng);
        let (ra, sa) = (
            aug.apply(real.view()).unwrap(),
            aug.apply(syn.view()).unwrap(),
        );
        assert_eq!(ra.slice(s![..3, .., .., ..]), sa, "{:?}", aug.op());
    }
}

#[test]
fn the_same_seed_gives_the_same_augmentation() {
    let dsa = Dsa::default();
    let x = randn((6, 3, 20, 20), &mut ChaCha8Rng::seed_from_u64(0));
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..20).map(|_| dsa.sample(6, &mut rng)).collect::<Vec<_>>()
    };
    let (a, b, other) = (draw(42), draw(42), draw(43));
    assert_eq!(a, b);
    for (p, q) in a.iter().zip(&b) {
        assert_eq!(p.apply(x.view()).unwrap(), q.apply(x.view()).unwrap());
    }
    assert_ne!(a, other);
}

#[test]
fn each_sample_draws_one_family_uniformly() {
    let dsa = Dsa::from_strategy(STANDARD_STRATEGY).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..1200 {
        *counts
            .entry(dsa.sample_shared(&mut rng).op().unwrap())
            .or_insert(0) += 1;
    }
    for op in AugOp::ALL {
        let k = counts.get(&op).copied().unwrap_or(0);
        // Expect 200 each; 6 standard deviations is about +-80.
        assert!((120..=280).contains(&k), "{op}: {k} of 1200");
    }
}

#[test]
fn strategies_parse_print_and_reject_unknown_words() {
    let dsa = Dsa::from_strategy("color_crop_cutout_flip_scale_rotate").unwrap();
    assert_eq!(dsa.ops(), AugOp::ALL);
    assert_eq!(dsa, Dsa::default());
    assert_eq!(dsa.strategy(), STANDARD_STRATEGY);
    let digits = dsa.without(AugOp::Flip);
    assert_eq!(digits.strategy(), "color_crop_cutout_scale_rotate");
    assert_eq!(Dsa::from_strategy(&digits.strategy()).unwrap(), digits);

    for none in ["", "none", "None"] {
        let dsa = Dsa::from_strategy(none).unwrap();
        assert_eq!(dsa.strategy(), "none");
        let aug = dsa.sample(3, &mut ChaCha8Rng::seed_from_u64(0));
        assert!(aug.is_identity() && aug.op().is_none());
        let x = Array4::<f32>::ones((5, 1, 4, 4));
        assert_eq!(aug.apply(x.view()).unwrap(), x);
    }

    let err = Dsa::from_strategy("colour_crop").unwrap_err().to_string();
    assert!(err.contains("`colour`") && err.contains("color"), "{err}");
    let bad = DsaParams {
        flip_p: 1.5,
        ..DsaParams::default()
    };
    let err = Dsa::new(bad, vec![AugOp::Flip]).unwrap_err().to_string();
    assert!(err.contains("dsa.flip_p"), "{err}");
    let bad = DsaParams {
        scale: 0.8,
        ..DsaParams::default()
    };
    assert!(Dsa::default().with_params(bad).is_err());
}

#[test]
fn params_default_to_the_reference_and_read_from_json() {
    let p = DsaParams::default();
    assert_eq!(
        (
            p.brightness,
            p.saturation,
            p.contrast,
            p.crop_ratio,
            p.cutout_ratio,
            p.flip_p,
            p.scale,
            p.rotate_deg
        ),
        (1.0, 2.0, 0.5, 0.125, 0.5, 0.5, 1.2, 15.0)
    );
    let q: DsaParams = serde_json::from_str(r#"{"rotate_deg": 10.0}"#).unwrap();
    assert_eq!(
        q,
        DsaParams {
            rotate_deg: 10.0,
            ..p
        }
    );
    assert!(serde_json::from_str::<DsaParams>(r#"{"rotation": 10.0}"#).is_err());
}
