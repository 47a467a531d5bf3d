//! The vector-Jacobian products of every DSA transform family, checked two ways: the adjoint
//! identity `<A(x) - A(0), g> = <x, vjp(g)>` (every transform is affine in the pixels, so this
//! pins the transpose exactly), and central finite differences of `<A(x), g>` along random
//! directions (which would also catch a Jacobian that secretly depended on `x`).

use ddlens::augment::{AugOp, Augmentation, Dsa, DsaParams, Sharing};
use ndarray::{Array4, ArrayView4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `N x C x H x W` standard normal values (RMS 1).
fn randn(shape: (usize, usize, usize, usize), rng: &mut ChaCha8Rng) -> Array4<f32> {
    Array4::from_shape_simple_fn(shape, || StandardNormal.sample(rng))
}

/// `<a, b>` accumulated in f64, and `sum |a_i b_i|` as the scale its rounding error lives on.
fn dot(a: ArrayView4<f32>, b: ArrayView4<f32>) -> (f64, f64) {
    a.iter().zip(b.iter()).fold((0.0, 0.0), |(s, m), (&x, &y)| {
        let p = f64::from(x) * f64::from(y);
        (s + p, m + p.abs())
    })
}

/// Augmentations of one family, per-image and batch-shared, over several seeds.
fn augmentations(op: AugOp, n: usize) -> Vec<Augmentation> {
    let dsa = Dsa::new(DsaParams::default(), vec![op]).unwrap();
    let mut out = Vec::new();
    for seed in 0..6 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        out.push(dsa.sample(n, &mut rng));
        out.push(dsa.sample_shared(&mut rng));
    }
    out
}

/// Non-square images catch any mix-up of rows and columns; 32 x 32 is the CIFAR size.
const SHAPES: [(usize, usize, usize, usize); 3] = [(4, 3, 9, 13), (3, 1, 28, 28), (2, 3, 32, 32)];

#[test]
fn adjoint_identity_holds_for_every_family() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for op in AugOp::ALL {
        for shape in SHAPES {
            for aug in augmentations(op, shape.0) {
                assert_eq!(aug.op(), Some(op));
                let x = randn(shape, &mut rng);
                let g = randn(shape, &mut rng);
                let zero = Array4::<f32>::zeros(shape);
                // The affine offset (the brightness shift) drops out of A(x) - A(0).
                let linear = aug.apply(x.view()).unwrap() - aug.apply(zero.view()).unwrap();
                let (lhs, lhs_scale) = dot(linear.view(), g.view());
                let vjp = aug.vjp(g.view()).unwrap();
                let (rhs, rhs_scale) = dot(x.view(), vjp.view());
                let scale = lhs_scale.max(rhs_scale).max(1e-30);
                assert!(
                    (lhs - rhs).abs() <= 1e-5 * scale,
                    "{op} {shape:?} {:?}: <A x, g> = {lhs}, <x, A^T g> = {rhs} (scale {scale})",
                    aug.sharing()
                );
            }
        }
    }
}

#[test]
fn vjp_matches_central_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut worst = 0.0_f64;
    for op in AugOp::ALL {
        for shape in SHAPES {
            for aug in augmentations(op, shape.0).into_iter().take(4) {
                let x = randn(shape, &mut rng);
                let g = randn(shape, &mut rng);
                let vjp = aug.vjp(g.view()).unwrap();
                for _ in 0..2 {
                    let v = randn(shape, &mut rng);
                    let eps = 1e-2_f32;
                    let plus = aug.apply((&x + &(&v * eps)).view()).unwrap();
                    let minus = aug.apply((&x - &(&v * eps)).view()).unwrap();
                    let fp = dot(plus.view(), g.view()).0;
                    let fm = dot(minus.view(), g.view()).0;
                    let fd = (fp - fm) / (2.0 * f64::from(eps));
                    let exact = dot(v.view(), vjp.view()).0;
                    // Exact up to f32 rounding of x +- eps v and of the outputs, which the
                    // 1 / (2 eps) amplifies to ~1e-4 absolute at these sizes.
                    let err = (fd - exact).abs();
                    worst = worst.max(err / exact.abs().max(1.0));
                    assert!(
                        err <= 1e-4 * exact.abs() + 2e-3,
                        "{op} {shape:?}: finite difference {fd}, vjp {exact}"
                    );
                }
            }
        }
    }
    println!("worst relative finite-difference error: {worst:.2e}");
}

#[test]
fn colour_vjp_includes_the_mean_dependence() {
    // Contrast alone with a factor away from 1: the mean's share (1 - f) / (C H W) of the
    // gradient must come back. A pure `f * g` (forgetting the mean) fails the identity above;
    // here it is checked directly on a constant gradient, which contrast maps to itself.
    let dsa = Dsa::from_strategy("color").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let aug = dsa.sample_shared(&mut rng);
    let g = Array4::<f32>::from_elem((2, 3, 8, 8), 0.25);
    // Saturation and contrast are identities on constants, brightness has Jacobian I.
    let vjp = aug.vjp(g.view()).unwrap();
    for v in vjp.iter() {
        assert!((v - 0.25).abs() < 1e-6, "{v}");
    }
}

#[test]
fn apply_and_vjp_accept_any_memory_layout() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = randn((3, 2, 10, 12), &mut rng);
    // The same values behind a non-standard layout: `t` is `x` stored W-major.
    let t = x
        .view()
        .permuted_axes([3, 2, 1, 0])
        .as_standard_layout()
        .into_owned();
    let strided = t.view().permuted_axes([3, 2, 1, 0]);
    assert!(strided.as_slice().is_none());
    for op in AugOp::ALL {
        for aug in augmentations(op, 3) {
            assert_eq!(
                aug.apply(strided).unwrap(),
                aug.apply(x.view()).unwrap(),
                "{op}"
            );
            assert_eq!(
                aug.vjp(strided).unwrap(),
                aug.vjp(x.view()).unwrap(),
                "{op}"
            );
        }
    }
}

#[test]
fn per_image_augmentation_rejects_a_larger_batch() {
    let dsa = Dsa::from_strategy("rotate").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let aug = dsa.sample(4, &mut rng);
    assert_eq!(aug.sharing(), Sharing::PerImage);
    let x = Array4::<f32>::zeros((5, 1, 8, 8));
    let err = aug.apply(x.view()).unwrap_err().to_string();
    assert!(
        err.contains("`x`") && err.contains("5 images") && err.contains("4"),
        "{err}"
    );
    let err = aug.vjp(x.view()).unwrap_err().to_string();
    assert!(err.contains("`grad_out`"), "{err}");
    // Smaller batches reuse the first draws; empty batches and empty images are fine.
    assert!(aug.apply(x.slice(ndarray::s![..2, .., .., ..])).is_ok());
    assert!(aug.apply(Array4::<f32>::zeros((0, 1, 8, 8)).view()).is_ok());
    assert!(aug.apply(Array4::<f32>::zeros((2, 1, 0, 8)).view()).is_ok());
}
