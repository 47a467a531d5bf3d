//! The Hessian machinery of the curvature and influence analyses, against a dense Hessian
//! assembled column by column on the tiny bundle (243 parameters): Hutchinson's trace within
//! its own noise, Lanczos' top eigenvalues and SLQ's moments exactly, CG against a dense solve.

use crate::common;

use ddlens::analysis::hessian::{
    conjugate_gradient, hutchinson_trace, hutchinson_trace_to, lanczos, rademacher,
    spectral_density, top_eigenvalues, HessianOperator, MIN_PROBES,
};
use ddlens::{Bundle, Params};
use nalgebra::{DMatrix, DVector};

fn setup() -> (Bundle, Params, ddlens::Dataset) {
    common::runtime();
    let b = common::open("tiny-1x8x8");
    let p = b.init_params(3);
    (b, p, common::banded_dataset(30, 1))
}

/// The dense Hessian, one product per basis vector.
fn dense(op: &HessianOperator<'_>, b: &Bundle) -> DMatrix<f64> {
    let n = op.dim();
    let mut h = DMatrix::zeros(n, n);
    for j in 0..n {
        let mut e = vec![0.0f32; n];
        e[j] = 1.0;
        let unit = Params::from_flat(&b.manifest().params, &e).unwrap();
        let col = op.apply(&unit).unwrap().to_flat();
        for i in 0..n {
            h[(i, j)] = col[i] as f64;
        }
    }
    h
}

#[test]
fn operator_is_symmetric_and_batching_does_not_change_it() {
    let (b, p, d) = setup();
    let whole = HessianOperator::new(&b, &p, &d, 64).unwrap();
    let batched = HessianOperator::new(&b, &p, &d, 7).unwrap();
    let mut r = common::rng(5);
    let (u, v) = (rademacher(&p, &mut r), rademacher(&p, &mut r));
    let hu = whole.apply(&u).unwrap();
    let hv = whole.apply(&v).unwrap();
    common::assert_close("uᵀHv vs vᵀHu", u.dot(&hv), v.dot(&hu), 1e-4, 1e-6);
    let hv7 = batched.apply(&v).unwrap();
    common::assert_close("batched Hv", hv7.dot(&u), hv.dot(&u), 1e-4, 1e-6);
}

#[test]
fn hutchinson_lanczos_slq_and_cg_match_the_dense_hessian() {
    let (b, p, d) = setup();
    let op = HessianOperator::new(&b, &p, &d, 64).unwrap();
    let h = dense(&op, &b);
    let h = (&h + h.transpose()) * 0.5;
    let exact_trace = h.trace();
    let eig = h.clone().symmetric_eigen();
    let mut exact: Vec<f64> = eig.eigenvalues.iter().copied().collect();
    exact.sort_by(|a, b| b.total_cmp(a));

    // Hutchinson: unbiased, so the estimate lies within a few standard errors.
    let mut r = common::rng(11);
    let est = hutchinson_trace(&op, 200, 1e-9, &mut r).unwrap();
    assert_eq!(est.probes, 200, "tol 1e-9 never stops early");
    assert!(
        (est.trace - exact_trace).abs() < 4.0 * est.std_error,
        "trace {} ± {} vs exact {exact_trace}",
        est.trace,
        est.std_error
    );
    // The paper's stopping rule stops long before 100 probes at tol 1e-3... or at the cap.
    let quick = hutchinson_trace(&op, 100, 1e-3, &mut r).unwrap();
    assert!(quick.probes >= 2 && quick.probes <= 100);
    // The standard-error rule stops as soon as the target is met, and not before. (This
    // Hessian's probes spread about 20 times its trace, so a 100% target takes ~500.)
    let to = hutchinson_trace_to(&op, 5000, 1.0, &mut r).unwrap();
    assert!(to.probes >= MIN_PROBES && to.probes < 5000, "{to:?}");
    assert!(to.std_error <= to.trace.abs(), "{to:?}");
    let capped = hutchinson_trace_to(&op, MIN_PROBES, 1e-9, &mut r).unwrap();
    assert_eq!(
        capped.probes, MIN_PROBES,
        "an unreachable target stops at the cap"
    );

    // Lanczos with as many steps as dimensions recovers the top of the spectrum.
    let top = top_eigenvalues(&op, 3, 60, &mut r).unwrap();
    for (k, (&got, &want)) in top.iter().zip(&exact).enumerate() {
        common::assert_close(&format!("eigenvalue {k}"), got, want, 1e-3, 1e-5);
    }

    // SLQ: weights sum to one per probe and the first moment is tr(H)/n in expectation; with
    // full-length Lanczos each probe's quadrature is exact for vᵀHv/|v|².
    let start = rademacher(&p, &mut r);
    let t = lanczos(&op, &start, op.dim()).unwrap();
    let (nodes, weights) = t.eigen();
    let hv = op.apply(&start).unwrap();
    let quad: f64 = nodes.iter().zip(&weights).map(|(n, w)| n * w).sum();
    common::assert_close(
        "quadrature of vᵀHv/|v|²",
        quad,
        start.dot(&hv) / start.dot(&start),
        1e-3,
        1e-6,
    );
    let density = spectral_density(&op, 3, 20, &mut r).unwrap();
    let total: f64 = density.weights.iter().sum();
    common::assert_close("SLQ weights", total, 1.0, 1e-6, 0.0);

    // CG against a dense solve of (H + λI) x = g.
    let damping = exact.last().unwrap().abs() + 0.1;
    let g = rademacher(&p, &mut r);
    let sol = conjugate_gradient(&op, &g, damping, 500, 1e-8).unwrap();
    let a = &h + DMatrix::identity(h.nrows(), h.ncols()) * damping;
    let want = a
        .lu()
        .solve(&DVector::from_iterator(
            g.numel(),
            g.to_flat().iter().map(|&v| v as f64),
        ))
        .unwrap();
    let got = sol.x.to_flat();
    let err = got
        .iter()
        .zip(want.iter())
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        err / want.norm() < 1e-3,
        "CG error {err} (|x| {})",
        want.norm()
    );
    // Without damping an indefinite Hessian is refused with a message naming the fix.
    if exact.last().unwrap() < &-1e-6 {
        let e = conjugate_gradient(&op, &g, 0.0, 500, 1e-8).err();
        if let Some(e) = e {
            assert!(e.to_string().contains("damping"), "{e}");
        }
    }
}
