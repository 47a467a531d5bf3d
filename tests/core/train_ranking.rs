//! DD-Ranking's metrics (src/train/ranking.rs) against values worked out by hand from the
//! published formulas.

use ddlens::train::{
    dd_ranking, dd_ranking_from_saved, eval_report, normalised_score, protocol_pair, Accuracies,
    EvalSummary, SavedEval,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_normalisation_maps_minus_one_zero_and_one_to_0_26_9_and_100() {
    assert!(close(normalised_score(-1.0), 0.0));
    assert!(close(normalised_score(0.0), 26.894142136999516));
    assert!(close(normalised_score(1.0), 100.0));
}

#[test]
fn scores_are_computed_per_round_then_averaged() {
    let plain = Accuracies {
        distilled: &[0.80, 0.82],
        random: &[0.70, 0.71],
    };
    let aug = Accuracies {
        distilled: &[0.83, 0.85],
        random: &[0.72, 0.75],
    };
    // One full-data accuracy: used for every round.
    let r = dd_ranking(plain, Some(aug), Some(&[0.93])).unwrap();
    assert!(close(r.ior.rounds[0], 0.10) && close(r.ior.rounds[1], 0.11));
    assert!(close(r.ior.mean, 0.105));
    let hlr = r.hlr.unwrap();
    assert!(close(hlr.rounds[0], 0.13) && close(hlr.rounds[1], 0.11));
    // α = 0.5·0.10 − 0.5·0.13 = −0.015 and α = 0.5·0.11 − 0.5·0.11 = 0.
    let lrs = r.lrs.unwrap();
    assert!(close(lrs.rounds[0], normalised_score(-0.015)));
    assert!(close(lrs.rounds[1], 26.894142136999516));
    assert!(close(lrs.mean, 26.57742912484762), "{}", lrs.mean);
    // β = 0.5·0.11 + 0.5·0.10 = 0.105 and 0.5·0.10 + 0.5·0.11 = 0.105.
    let ars = r.ars.unwrap();
    assert!(close(ars.mean, 31.60442540400499) && close(ars.std, 0.0));
    // Sample std and a t interval (df = 1) around the mean.
    assert!(close(hlr.std, 0.02f64.hypot(0.0) / 2f64.sqrt()));
    assert!(hlr.interval.lo < hlr.mean && hlr.mean < hlr.interval.hi);
    assert_eq!(hlr.interval.n, 2);
}

#[test]
fn without_full_data_or_augmentation_those_scores_are_absent() {
    let plain = Accuracies {
        distilled: &[0.5],
        random: &[0.4],
    };
    let r = dd_ranking(plain, None, None).unwrap();
    assert!(r.hlr.is_none() && r.lrs.is_none() && r.ars.is_none());
    assert!(close(r.ior.mean, 0.1));
    assert!(!r.ior.interval.lo.is_finite(), "one round has no interval");
}

#[test]
fn mismatched_runs_and_percentages_are_errors_naming_the_argument() {
    let bad = Accuracies {
        distilled: &[0.5, 0.6],
        random: &[0.4],
    };
    let e = dd_ranking(bad, None, None).unwrap_err().to_string();
    assert!(e.contains("plain") && e.contains("pairs"), "{e}");
    let plain = Accuracies {
        distilled: &[0.5],
        random: &[0.4],
    };
    let e = dd_ranking(plain, None, Some(&[93.0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("full") && e.contains("fraction"), "{e}");
    let aug = Accuracies {
        distilled: &[0.5, 0.5],
        random: &[0.4, 0.4],
    };
    let e = dd_ranking(plain, Some(aug), None).unwrap_err().to_string();
    assert!(e.contains("augmented"), "{e}");
}

/// A saved `ddlens eval --json` report of `sets` (label, accuracies) under `protocol`.
fn saved(
    origin: &str,
    model: &str,
    protocol: serde_json::Value,
    sets: &[(&str, &[f64])],
) -> SavedEval {
    let results: Vec<EvalSummary> = sets
        .iter()
        .map(|(label, acc)| EvalSummary::from_runs(*label, 10, acc.to_vec()))
        .collect();
    let report = eval_report(model, &protocol, &results);
    SavedEval::from_value(origin, &report).unwrap()
}

fn protocol(epochs: usize, augment: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "runs": 2, "epochs": epochs, "lr": 0.01, "augment": augment, "seed": 0 })
}

#[test]
fn saved_reports_give_the_metrics_of_the_runs_they_hold() {
    let (set, rnd) = ([0.80, 0.82], [0.70, 0.71]);
    let (set_aug, rnd_aug) = ([0.83, 0.85], [0.72, 0.75]);
    let want = dd_ranking(
        Accuracies {
            distilled: &set,
            random: &rnd,
        },
        Some(Accuracies {
            distilled: &set_aug,
            random: &rnd_aug,
        }),
        Some(&[0.93]),
    )
    .unwrap();
    // One report per protocol holding both sets...
    let plain = saved(
        "p.json",
        "m",
        protocol(300, None),
        &[("s", &set), ("r", &rnd)],
    );
    let aug = saved(
        "a.json",
        "m",
        protocol(1000, Some("dsa")),
        &[("s", &set_aug), ("r", &rnd_aug)],
    );
    let got = dd_ranking_from_saved(&[plain], Some(&[aug]), Some(&[0.93])).unwrap();
    assert_eq!(got, want);
    // ...or two reports of one set each; the learning rates may differ.
    let mut own_lr = protocol(300, None);
    own_lr["lr"] = serde_json::json!(0.03);
    let plain = [
        saved("s.json", "m", own_lr, &[("s", &set)]),
        saved("r.json", "m", protocol(300, None), &[("r", &rnd)]),
    ];
    let got = dd_ranking_from_saved(&plain, None, None).unwrap();
    assert_eq!(got.ior, want.ior);
    assert!(got.ars.is_none() && got.hlr.is_none());
}

#[test]
fn saved_reports_evaluated_differently_are_refused_naming_the_setting() {
    let set = [0.80, 0.82];
    let s = saved("s.json", "m", protocol(300, None), &[("s", &set)]);
    let err = |reports: &[SavedEval]| protocol_pair(reports).unwrap_err().to_string();
    let other_epochs = saved("r.json", "m", protocol(100, None), &[("r", &set)]);
    let e = err(&[s.clone(), other_epochs]);
    assert!(e.contains("r.json") && e.contains("protocol.epochs"), "{e}");
    let other_model = saved("r.json", "mlp", protocol(300, None), &[("r", &set)]);
    let e = err(&[s.clone(), other_model]);
    assert!(e.contains("mlp") && e.contains("model"), "{e}");
    // One report must hold the set and its random subset.
    let e = err(std::slice::from_ref(&s));
    assert!(
        e.contains("s.json") && e.contains("1 evaluated sets"),
        "{e}"
    );
    // The augmented protocol must be augmented.
    let both = saved(
        "b.json",
        "m",
        protocol(300, None),
        &[("s", &set), ("r", &set)],
    );
    let e = dd_ranking_from_saved(
        std::slice::from_ref(&both),
        Some(std::slice::from_ref(&both)),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("b.json") && e.contains("without augmentation"),
        "{e}"
    );
    // Not a report at all.
    let e = SavedEval::from_value("x.json", &serde_json::json!({"model": "m"})).unwrap_err();
    assert!(
        e.to_string().contains("x.json") && e.to_string().contains("protocol"),
        "{e}"
    );
}
