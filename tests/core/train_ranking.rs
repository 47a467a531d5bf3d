//! DD-Ranking's metrics (src/train/ranking.rs) against values worked out by hand from the
//! published formulas.

use ddlens::train::{dd_ranking, normalised_score, Accuracies};

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
