//! `curvature`: measurements land at the configured steps, the trace at step 0 agrees with the
//! dense Hessian of the same parameters within the estimator's noise, settings are checked.

use crate::common;

use ddlens::analysis::curvature::{curvature, ema, CurvatureConfig};
use ddlens::analysis::hessian::HessianOperator;
use ddlens::analysis::{no_progress, Budget, NamedSet, RealData};
use ddlens::Params;

fn setup() -> (ddlens::Bundle, ddlens::Dataset, ddlens::Dataset) {
    common::runtime();
    (
        common::open("tiny-1x8x8"),
        common::banded_dataset(300, 1),
        common::banded_dataset(60, 2),
    )
}

fn dense_trace(op: &HessianOperator<'_>, b: &ddlens::Bundle) -> f64 {
    let n = op.dim();
    (0..n)
        .map(|j| {
            let mut e = vec![0.0f32; n];
            e[j] = 1.0;
            let unit = Params::from_flat(&b.manifest().params, &e).unwrap();
            op.apply(&unit).unwrap().to_flat()[j] as f64
        })
        .sum()
}

#[test]
fn traces_at_configured_steps_match_the_dense_hessian_at_init() {
    let (b, train, test) = setup();
    let set = NamedSet {
        name: "toy".into(),
        data: common::banded_dataset(12, 9),
        lr: None,
    };
    let mut c = CurvatureConfig::for_budget(Budget::Smoke, 4);
    c.steps = vec![0, 2, 5];
    c.spectrum_steps = vec![5];
    c.train_images = 0;
    c.batch = 64;
    c.max_probes = 300;
    c.tol = 1e-12;
    c.target_rel_se = 0.0;
    let real = RealData {
        train: &train,
        test: &test,
    };
    let r = curvature(&b, real, std::slice::from_ref(&set), &c, &mut no_progress).unwrap();
    assert_eq!(r.steps, vec![0, 2, 5]);
    assert_eq!(r.sets.len(), 2);
    assert_eq!(r.sets[0].name, "real");
    assert_eq!(r.sets[0].examples, 300);
    for s in &r.sets {
        assert_eq!(s.traces.len(), 3);
        assert_eq!(s.spectra.len(), 1);
        assert_eq!(s.spectra[0].step, 5);
        assert_eq!(s.spectra[0].top_eigenvalues.len(), c.top_k);
        assert!(s.traces.iter().all(|t| t.probes == 300));
        // The top eigenvalue bounds the trace's share: λ_max ≥ tr/n, and densities integrate
        // to about one over their grid.
        let sp = &s.spectra[0];
        let dx = sp.grid[1] - sp.grid[0];
        let mass: f64 = sp.density.iter().sum::<f64>() * dx;
        assert!((mass - 1.0).abs() < 0.1, "density mass {mass}");
    }
    // Step 0 is the initialisation `init_params(seed)`: compare with the dense Hessian there.
    let init = b.init_params(c.seed);
    for (k, data) in [&train, &set.data].into_iter().enumerate() {
        let op = HessianOperator::new(&b, &init, data, 64).unwrap();
        let exact = dense_trace(&op, &b);
        let t = &r.sets[k].traces[0];
        assert!(
            (t.trace - exact).abs() < 4.0 * t.std_error + 1e-6,
            "set {k}: {} ± {} vs dense {exact}",
            t.trace,
            t.std_error
        );
    }
    // The plotted curve is the EMA of the traces.
    let raw: Vec<f64> = r.sets[1].traces.iter().map(|t| t.trace).collect();
    assert_eq!(r.sets[1].ema, ema(raw.into_iter(), c.ema));
}

#[test]
fn bad_settings_name_the_field() {
    let (b, train, test) = setup();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let mut c = CurvatureConfig::for_budget(Budget::Smoke, 0);
    c.steps = vec![3, 1];
    let e = curvature(&b, real, &[], &c, &mut no_progress).unwrap_err();
    assert!(e.to_string().contains("`steps`"), "{e}");
    let mut c = CurvatureConfig::for_budget(Budget::Smoke, 0);
    c.spectrum_steps = vec![7];
    let e = curvature(&b, real, &[], &c, &mut no_progress).unwrap_err();
    assert!(e.to_string().contains("spectrum_steps"), "{e}");
    let e = ddlens::analysis::config_with::<ddlens::analysis::curvature::Curvature>(
        Budget::Smoke,
        0,
        Some(r#"{"probes": 3}"#),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `probes`"), "{e}");
}

#[test]
fn cancellation_stops_the_run() {
    let (b, train, test) = setup();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let c = CurvatureConfig::for_budget(Budget::Smoke, 0);
    let mut calls = 0;
    let mut stop = |_: &str, done: usize, _: usize| {
        calls += 1;
        if done >= 1 {
            Err(ddlens::Error::Cancelled("test".into()))
        } else {
            Ok(())
        }
    };
    let e = curvature(&b, real, &[], &c, &mut stop).unwrap_err();
    assert!(matches!(e, ddlens::Error::Cancelled(_)), "{e}");
    assert_eq!(calls, 2);
}
