//! Every analysis of the registry runs from its name and JSON settings, and its result reads
//! back into its typed result for the report's text (`Entry::summary`): the path `ddlens
//! analyze NAME`, `ddl_analyze` and the report take.

use ddlens::analysis::{self, Budget, NamedSet, RealData, Request, RunInfo};
use ddlens::progress::Silent;

use crate::common;

/// Small settings per analysis, so that the whole registry runs in seconds on the tiny bundle.
fn options(name: &str) -> &'static str {
    match name {
        "mixing" => r#"{"ks": [0, 2], "runs": 2, "steps": 5}"#,
        "sensitivity" => r#"{"epochs": 4, "lr_factors": [0.5]}"#,
        "pixels" => r#"{"bins": 30, "real_images": 60}"#,
        "recognition" => r#"{"train_epochs": 5, "train_max_steps": 3}"#,
        "agreement" => r#"{"pool_a_fraction_min": 0.1, "pool_a_fraction_max": 0.2}"#,
        "recognition-over-training" => r#"{"steps": 5, "every": 5}"#,
        "curvature" => {
            r#"{"steps": [0, 2, 4], "train_images": 30, "batch": 30, "spectrum_steps": [4]}"#
        }
        "influence" => {
            r#"{"steps": 8, "loo_images": 2, "test_images": 30, "cg_iters": 4, "feature_steps": 3}"#
        }
        other => panic!("no test settings for the new analysis `{other}`: add them here"),
    }
}

#[test]
fn every_analysis_runs_by_name_and_its_result_reads_back_for_the_report() {
    let bundle = common::open("tiny-1x8x8");
    let (train, test) = (common::banded_dataset(90, 1), common::banded_dataset(30, 2));
    let sets = vec![NamedSet {
        name: "toy".into(),
        data: common::banded_dataset(6, 3),
        lr: None,
    }];
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: "bands".into(),
        budget: Budget::Smoke,
        seed: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    for entry in &analysis::ANALYSES {
        let request = Request {
            info: &info,
            options: Some(options(entry.name)),
            out_dir: Some(dir.path()),
        };
        let real = RealData {
            train: &train,
            test: &test,
        };
        let (json, saved) = (entry.run)(&bundle, real, &sets, &request, &mut Silent)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        assert!(saved
            .unwrap()
            .json
            .ends_with(format!("{}.json", entry.name)));
        let summary = (entry.summary)(&json).unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        assert!(
            !summary.title.is_empty() && !summary.tables.is_empty(),
            "{}",
            entry.name
        );
        assert!(
            summary.tables[0].rows.iter().any(|r| r[0].contains("toy")),
            "{}: the set is in the first table",
            entry.name
        );
        // The verdict is part of the result, names the set, and is what the saved result
        // gives back.
        let stored: analysis::Verdict = serde_json::from_value(json["verdict"].clone())
            .unwrap_or_else(|e| panic!("{}: no verdict in the result: {e}", entry.name));
        assert!(
            stored.sets.iter().any(|s| s.set == "toy") && !stored.claim.is_empty(),
            "{}: {stored:?}",
            entry.name
        );
        assert_eq!((entry.verdict)(&json).unwrap(), stored, "{}", entry.name);
        let file: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("{}.json", entry.name))).unwrap(),
        )
        .unwrap();
        assert_eq!(file["result"]["verdict"], json["verdict"], "{}", entry.name);
    }
    // The report reads them all back, with each analysis's own text.
    let out = dir.path().join("report.html");
    analysis::write_report(dir.path(), &out, "registry").unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("(no summary:"), "every result read back");
    assert!(
        html.contains("<h2>Verdicts</h2>") && html.contains("Smoke budget"),
        "the verdict table and the budget banner head the report"
    );
    for entry in &analysis::ANALYSES {
        assert!(
            html.contains(&format!("id=\"{}\"", entry.name)),
            "{}",
            entry.name
        );
    }
}

#[test]
fn a_suite_runs_every_analysis_then_keeps_what_did_not_change() {
    use ddlens::analysis::suite::{verdict_table, Suite, SuiteSets};
    let bundle = common::open("tiny-1x8x8");
    let (train, test) = (common::banded_dataset(90, 1), common::banded_dataset(30, 2));
    let set = |name: &str, seed| NamedSet {
        name: name.into(),
        data: common::banded_dataset(6, seed),
        lr: None,
    };
    let sets = SuiteSets {
        judged: vec![set("toy", 3)],
        references: vec![set("random-toy", 4)],
    };
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: "bands".into(),
        budget: Budget::Smoke,
        seed: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut suite = Suite::all(info, dir.path());
    for entry in &analysis::ANALYSES {
        suite.set_options(entry.name, options(entry.name)).unwrap();
    }
    assert!(suite.set_options("nope", "{}").is_err());
    let real = RealData {
        train: &train,
        test: &test,
    };
    let mut order = Vec::new();
    let first = suite
        .run(
            &bundle,
            real,
            &sets,
            &mut |_, n| order.push(n.to_string()),
            &mut Silent,
        )
        .unwrap();
    assert_eq!(order, analysis::names().collect::<Vec<_>>());
    assert!(first.iter().all(|o| !o.kept));
    for o in &first {
        let entry = analysis::find(o.name).unwrap();
        // Analyses with their own baseline see the judged set alone; the others the
        // reference too, which is shown but not judged.
        let names: Vec<&str> = o.verdict.sets.iter().map(|s| s.set.as_str()).collect();
        assert!(names.contains(&"toy"), "{}: {names:?}", o.name);
        assert_eq!(
            names.contains(&"random-toy"),
            !entry.own_baseline,
            "{}: {names:?}",
            o.name
        );
        assert!(o
            .verdict
            .sets
            .iter()
            .all(|s| s.reference == (s.set == "random-toy")));
    }
    let table = verdict_table(&first);
    assert!(
        table.lines().count() == 9 && table.contains("random-toy (reference)"),
        "{table}"
    );

    // Same inputs: everything is kept. A changed setting reruns that analysis only.
    let again = suite
        .run(&bundle, real, &sets, &mut |_, _| {}, &mut Silent)
        .unwrap();
    assert!(again.iter().all(|o| o.kept));
    assert_eq!(
        again.iter().map(|o| &o.verdict).collect::<Vec<_>>(),
        first.iter().map(|o| &o.verdict).collect::<Vec<_>>()
    );
    suite
        .set_options("pixels", r#"{"bins": 20, "real_images": 60}"#)
        .unwrap();
    let changed = suite
        .run(&bundle, real, &sets, &mut |_, _| {}, &mut Silent)
        .unwrap();
    let rerun: Vec<&str> = changed.iter().filter(|o| !o.kept).map(|o| o.name).collect();
    assert_eq!(rerun, vec!["pixels"]);

    // A result of an older method revision is recomputed: influence's stamp (revision 2)
    // with the revision taken out, as its first method wrote it, reruns influence only.
    // Revision-1 stamps carry no revision, so results saved before revisions stay kept.
    let stamp_of = |name: &str| dir.path().join(format!("{name}.inputs"));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(stamp_of(name)).unwrap()).unwrap()
    };
    assert!(read("pixels").get("revision").is_none());
    let mut old = read("influence");
    assert_eq!(old["revision"], 2);
    old.as_object_mut().unwrap().remove("revision");
    std::fs::write(stamp_of("influence"), old.to_string()).unwrap();
    let older = suite
        .run(&bundle, real, &sets, &mut |_, _| {}, &mut Silent)
        .unwrap();
    let rerun: Vec<&str> = older.iter().filter(|o| !o.kept).map(|o| o.name).collect();
    assert_eq!(rerun, vec!["influence"]);
    assert_eq!(read("influence")["revision"], 2);
}
