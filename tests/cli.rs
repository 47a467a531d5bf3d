//! The `ddlens` command line as a user runs it: results, files written, and errors that name
//! the argument or file at fault.

use std::path::Path;
use std::process::{Command, Output};

fn ddlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ddlens"))
        .args(["--provider", "cpu"])
        .args(args)
        .output()
        .expect("runs the ddlens binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fashion_mnist_present() -> bool {
    let ok = Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
        || std::env::var_os("DDLENS_DATA").is_some();
    if !ok {
        eprintln!("Fashion-MNIST not installed (scripts/setup installs it); skipping");
    }
    ok
}

#[test]
fn doctor_json_lists_runtime_and_bundles() {
    let o = ddlens(&["doctor", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("doctor --json prints JSON");
    assert_eq!(v["runtime"]["provider_in_use"], "cpu");
    assert!(v["runtime"]["version"].as_str().unwrap().starts_with("1."));
    let names: Vec<&str> = v["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    for want in ["convnet3-1x28x28", "tiny-1x8x8", "mlp-1x28x28"] {
        assert!(
            names.contains(&want),
            "doctor did not list {want}: {names:?}"
        );
    }
}

#[test]
fn doctor_fails_with_fix_when_runtime_missing() {
    let o = Command::new(env!("CARGO_BIN_EXE_ddlens"))
        .args(["doctor", "--ort-lib", "/nope/libonnxruntime.so"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("/nope/libonnxruntime.so") && out.contains("scripts/setup"),
        "{out}"
    );
}

#[test]
fn train_random_subset_writes_params_and_log() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let o = ddlens(&[
        "train",
        "--model",
        "mlp-1x28x28",
        "--ipc",
        "5",
        "--epochs",
        "20",
        "--batch-size",
        "16",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["train_size"], 50);
    assert_eq!(v["steps"], 20 * 4);
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.3,
        "50 real images should beat chance by far, got {acc}"
    );
    assert!(out_dir.join("params.safetensors").is_file());
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("train.json")).unwrap())
            .unwrap();
    assert_eq!(log["loss_per_step"].as_array().unwrap().len(), 80);
}

#[test]
fn eval_distilled_beside_random() {
    if !fashion_mnist_present() {
        return;
    }
    use ddlens::data::{self, DistilledMeta, DistilledSet};
    let splits = data::load(ddlens::DatasetName::FashionMnist, None).unwrap();
    let idx = data::class_balanced(&splits.train, 2, 99).unwrap();
    let set = DistilledSet::new(
        splits.train.select(&idx).unwrap(),
        None,
        DistilledMeta::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("set.safetensors");
    set.write(&file).unwrap();
    let o = ddlens(&[
        "eval",
        file.to_str().unwrap(),
        "--model",
        "mlp-1x28x28",
        "--runs",
        "2",
        "--epochs",
        "10",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "distilled set and random baseline");
    for r in results {
        assert_eq!(r["train_size"], 20);
        assert_eq!(r["accuracies"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn bad_arguments_are_named() {
    let o = ddlens(&["train", "--dataset", "imagenet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("imagenet"), "{}", stderr(&o));

    let o = ddlens(&["train", "--data-dir", "/no/such/folder", "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/folder"), "{}", stderr(&o));

    let o = ddlens(&["train", "--model", "no-such-model"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-model"), "{}", stderr(&o));

    if fashion_mnist_present() {
        let o = ddlens(&["train", "--model", "tiny-1x8x8", "--epochs", "1"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("tiny-1x8x8"), "{}", stderr(&o));

        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("broken.safetensors");
        std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
        let o = ddlens(&[
            "eval",
            bad.to_str().unwrap(),
            "--runs",
            "1",
            "--epochs",
            "1",
        ]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("broken.safetensors"), "{}", stderr(&o));
    }
}
