//! Verdicts from saved results: each analysis's rule read off hand-made result JSON, the way
//! the report and `ddl_analyze` callers see it. The rule: the interval's side decides, an
//! interval that includes no effect (or a setting that cannot reach the paper's claim) is
//! inconclusive, and one contradicting set contradicts the claim.

use ddlens::analysis::{self, State, Verdict};
use serde_json::{json, Value};

fn verdict(name: &str, result: Value) -> Verdict {
    (analysis::find(name).unwrap().verdict)(&result).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mixing_curve(name: &str, kind: &str, at_0: [f64; 3], at_10: [f64; 3]) -> Value {
    let point = |k: usize, acc: [f64; 3]| json!({"k": k, "train_size": 10, "accuracies": acc, "mean": 0.0, "std": 0.0});
    json!({
        "name": name, "kind": kind, "set_size": 10, "class_counts": [1],
        "baseline": null, "indices": null,
        "points": [point(0, at_0), point(10, at_10)],
        "change_vs_first_k": [0.0, 0.0], "gap_to_baseline": null
    })
}

fn mixing(curves: Vec<Value>) -> Value {
    json!({
        "ks": [0, 10], "runs": 3, "steps": 10, "lr": 0.01, "test_images": 100,
        "extras_per_class": [], "curves": curves
    })
}

#[test]
fn mixing_judges_the_paired_change_and_one_contradiction_wins() {
    let lower = mixing_curve("bptt", "distilled", [0.80, 0.82, 0.81], [0.70, 0.73, 0.71]);
    let v = verdict("mixing", mixing(vec![lower.clone()]));
    assert_eq!(v.state, State::Supports, "{v:?}");
    let e = v.sets[0].effect.unwrap();
    assert!(
        (e.estimate + 0.0967).abs() < 1e-3 && e.hi < 0.0 && e.n == 3,
        "{e:?}"
    );

    // Noisy runs: the paired interval includes 0.
    let noisy = mixing_curve("dm", "distilled", [0.80, 0.70, 0.90], [0.85, 0.60, 0.88]);
    assert_eq!(
        verdict("mixing", mixing(vec![noisy])).state,
        State::Inconclusive
    );

    // A set that clearly gains, beside one that loses: the claim is contradicted; the
    // baseline curve is not judged at all.
    let higher = mixing_curve("dc", "distilled", [0.60, 0.61, 0.62], [0.70, 0.72, 0.71]);
    let base = mixing_curve("random-ipc1", "baseline", [0.4, 0.4, 0.4], [0.9, 0.9, 0.9]);
    let v = verdict("mixing", mixing(vec![lower, higher, base]));
    assert_eq!(v.state, State::Contradicts);
    assert_eq!(v.sets.len(), 2, "baselines are not judged");
    assert!(v.reason.contains("dc"), "{}", v.reason);
}

#[test]
fn one_run_gives_no_interval_and_no_verdict() {
    let one =
        |acc: f64| json!({"k": 0, "train_size": 10, "accuracies": [acc], "mean": acc, "std": 0.0});
    let mut curve = mixing_curve("bptt", "distilled", [0.0; 3], [0.0; 3]);
    curve["points"] = json!([one(0.8), {"k": 10, "train_size": 10, "accuracies": [0.5], "mean": 0.5, "std": 0.0}]);
    let v = verdict("mixing", mixing(vec![curve]));
    assert_eq!(v.state, State::Inconclusive);
    assert!(v.reason.contains("more runs"), "{}", v.reason);
}

fn rot(steps: Vec<usize>, gap: Option<Value>) -> Value {
    let curve = |name: &str| {
        json!({"name": name, "images": 10, "accuracy": [], "loss": [],
               "first_step_all_correct": null, "all_correct_from": null,
               "gap_at_claim_step": gap})
    };
    json!({"steps": steps, "test": curve("test"), "sets": [curve("mtt")]})
}

#[test]
fn recognition_over_training_needs_the_papers_step() {
    let v = verdict("recognition-over-training", rot(vec![0, 10, 20], None));
    assert_eq!(v.state, State::Inconclusive);
    assert!(v.reason.contains("stopped at step 20"), "{}", v.reason);
    let gap = json!({"estimate": 0.3, "lo": 0.2, "hi": 0.4, "n": 1010});
    let v = verdict(
        "recognition-over-training",
        rot(vec![0, 100, 150], Some(gap)),
    );
    assert_eq!(v.state, State::Supports);
}

fn trace(t: f64, se: f64) -> Value {
    json!({"trace": t, "probes": 10, "std_error": se})
}

fn curvature(steps: Vec<usize>, real: Vec<Value>, set: Vec<Value>) -> Value {
    let s = |name: &str, traces: Vec<Value>| json!({"name": name, "examples": 10, "traces": traces, "ema": [], "spectra": []});
    json!({"steps": steps, "sets": [s("real", real), s("bptt", set)], "peak_steps": [0, 0],
           "target_rel_se": 0.1})
}

#[test]
fn curvature_is_judged_in_the_papers_window_only() {
    // Higher than real in the window (60 and 80), lower outside it: supports.
    let v = verdict(
        "curvature",
        curvature(
            vec![0, 60, 80],
            vec![trace(50.0, 1.0), trace(10.0, 1.0), trace(10.0, 1.0)],
            vec![trace(1.0, 1.0), trace(20.0, 1.0), trace(22.0, 1.0)],
        ),
    );
    assert_eq!(v.state, State::Supports, "{v:?}");
    let e = v.sets[0].effect.unwrap();
    assert!((e.estimate - 11.0).abs() < 1e-9, "{e:?}");
    // se of the mean difference: sqrt(4 · 1) / 2 = 1, so the interval is 11 ± 1.96.
    assert!((e.half_width() - 1.96).abs() < 1e-3, "{e:?}");
    assert!(v.sets[0].reason.contains("2.10x"), "{}", v.sets[0].reason);

    let v = verdict(
        "curvature",
        curvature(
            vec![0, 25],
            vec![trace(1.0, 0.1); 2],
            vec![trace(9.0, 0.1); 2],
        ),
    );
    assert_eq!(v.state, State::Inconclusive);
    assert!(v.reason.contains("window 60-100"), "{}", v.reason);
}

fn influence_set(name: &str, pairs: &[(f64, f64)]) -> Value {
    let images: Vec<Value> = pairs
        .iter()
        .enumerate()
        .map(|(i, (top, rnd))| {
            json!({"index": i, "label": 0, "loo": null, "influence_function": [],
                   "spearman": null, "cg_iterations": 1, "cg_residual": 0.0, "top": [],
                   "top_similarity": top, "random_similarity": rnd})
        })
        .collect();
    json!({"name": name, "accuracy": 0.5, "min_eigenvalue": 0.0, "damping_used": 0.0,
           "images": images, "median_spearman": null, "mean_top_similarity": 0.0,
           "mean_random_similarity": 0.0, "fraction_more_consistent": 0.0})
}

#[test]
fn influence_bootstraps_over_the_distilled_images_and_keeps_references_aside() {
    let alike: Vec<(f64, f64)> = (0..10).map(|i| (0.6 + 0.01 * i as f64, 0.4)).collect();
    let unlike: Vec<(f64, f64)> = (0..10).map(|i| (0.3 + 0.01 * i as f64, 0.4)).collect();
    let result = |sets: Vec<Value>| {
        json!({"test_images": 10, "test_indices": [], "feature_model_accuracy": 0.9,
               "sets": sets})
    };
    let v = verdict(
        "influence",
        result(vec![
            influence_set("dm", &alike),
            influence_set("random-ipc10", &unlike),
        ]),
    );
    assert_eq!(
        v.state,
        State::Supports,
        "the random reference does not contradict"
    );
    assert!(v.sets[1].reference && v.sets[1].state == State::Contradicts);
    // Beyond the reference: 0.245 against -0.055 (means over the ten images).
    let against = v.sets[0].against_reference.clone().expect("compared");
    assert_eq!(against.reference, "random-ipc10");
    assert!(
        (against.difference.estimate - 0.3).abs() < 1e-9,
        "{against:?}"
    );
    assert_eq!(against.state, State::Supports);
    assert_eq!(v.against_reference, Some(State::Supports));
    let v = verdict("influence", result(vec![influence_set("dm", &unlike)]));
    assert_eq!(v.state, State::Contradicts);
    assert!(v.against_reference.is_none());
    // A reference (given as a zoo name) as alike as the set: supported, but not specific.
    let v = verdict(
        "influence",
        result(vec![
            influence_set("zoo:dm-ipc10", &alike),
            influence_set("zoo:random-ipc10", &alike),
        ]),
    );
    assert_eq!(v.state, State::Supports);
    assert!(v.sets[1].reference);
    assert_eq!(v.against_reference, Some(State::Inconclusive));
    assert!(
        v.reason.contains("not specific to distilled data"),
        "{}",
        v.reason
    );
}
