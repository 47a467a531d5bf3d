//! `influence`: leave-one-out rows are exactly the retraining difference, influence-function
//! rows agree with them in rank on a smooth problem, the grid and consistency score exist.

use crate::common;

use ddlens::analysis::influence::{influence, spearman, InfluenceConfig};
use ddlens::analysis::{no_progress, Budget, NamedSet, RealData};
use ddlens::train::{self, evaluate, TrainConfig};

#[test]
fn spearman_is_a_rank_correlation() {
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    let b = [10.0f32, 20.0, 30.0, 40.0, 500.0];
    assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
    let c = [5.0f32, 4.0, 3.0, 2.0, 1.0];
    assert!((spearman(&a, &c) + 1.0).abs() < 1e-12);
    // Ties share their average rank: [1, 2.5, 2.5, 4] against [1, 2, 3, 4].
    let t = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]);
    assert!((t - 0.9486832980505138).abs() < 1e-9, "{t}");
    assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
}

#[test]
fn leave_one_out_is_the_retraining_difference_and_ranks_agree() {
    common::runtime();
    let b = common::open("tiny-1x8x8");
    let train_set = common::banded_dataset(120, 1);
    let test = common::banded_dataset(45, 2);
    let set = NamedSet {
        name: "toy".into(),
        data: common::banded_dataset(9, 3),
        lr: None,
    };
    let mut c = InfluenceConfig::for_budget(Budget::Smoke, 5);
    c.steps = 30;
    c.images = 0;
    c.loo_images = 0;
    c.test_images = 0;
    c.cg_iters = 200;
    c.cg_tol = 1e-6;
    let real = RealData {
        train: &train_set,
        test: &test,
    };
    let r = influence(&b, real, std::slice::from_ref(&set), &c, &mut no_progress).unwrap();
    assert_eq!(r.test_images, 45);
    let s = &r.sets[0];
    assert_eq!(s.images.len(), 9);
    assert_eq!(r.grids.len(), 1);
    assert!(r.grids[0].starts_with(b"\x89PNG"));

    // Independent leave-one-out of image 4: P_dist from the shared init without it.
    let init = b.init_params(c.seed);
    let cfg = TrainConfig::p_dist(c.steps, c.seed);
    let all = train::train(&b, init.clone(), &set.data, &cfg, &mut []).unwrap();
    let keep: Vec<usize> = (0..9).filter(|&j| j != 4).collect();
    let without = train::train(&b, init, &set.data.select(&keep).unwrap(), &cfg, &mut []).unwrap();
    let la = evaluate(&b, &all.params, &test).unwrap().per_example_loss;
    let lw = evaluate(&b, &without.params, &test)
        .unwrap()
        .per_example_loss;
    let want: Vec<f32> = lw.iter().zip(&la).map(|(w, a)| w - a).collect();
    let image4 = s.images.iter().find(|im| im.index == 4).unwrap();
    let got = image4.loo.as_ref().expect("every image has a LOO row");
    assert_eq!(got, &want, "leave-one-out row differs from retraining");
    assert_eq!(
        evaluate(&b, &all.params, &test).unwrap().accuracy,
        s.accuracy
    );

    // Top-k follow the leave-one-out row.
    let top = &image4.top;
    assert_eq!(top.len(), c.top_k);
    let kth = got[*top.last().unwrap()];
    assert!(got.iter().filter(|&&v| v > kth).count() < c.top_k);

    // Influence functions approximate leave-one-out: positively rank-correlated on this
    // small smooth problem (CG converged).
    assert!(s
        .images
        .iter()
        .all(|im| im.cg_residual <= 1e-6 || im.cg_iterations == 200));
    let rho = s.median_spearman.unwrap();
    assert!(rho > 0.3, "median Spearman {rho}");
}
