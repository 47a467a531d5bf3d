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

/// `eval --dd-ranking`: both protocols on the set and the random subset, and DD-Ranking's
/// metrics recomputed here from the per-run accuracies the same JSON reports.
#[test]
fn eval_dd_ranking_scores_follow_from_the_runs() {
    if !fashion_mnist_present() {
        return;
    }
    let o = ddlens(&[
        "eval",
        "zoo:dm-ipc1",
        "--model",
        "mlp-1x28x28",
        "--runs",
        "2",
        "--epochs",
        "2",
        "--dd-ranking",
        "--full-accuracy",
        "0.85",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let acc = |protocol: &str, i: usize| -> Vec<f64> {
        serde_json::from_value(v[protocol]["results"][i]["accuracies"].clone()).unwrap()
    };
    assert_eq!(v["plain"]["protocol"]["augment"], serde_json::Value::Null);
    assert!(v["augmented"]["protocol"]["augment"].is_string(), "{v}");
    let (set, rnd) = (acc("plain", 0), acc("plain", 1));
    let (set_aug, rnd_aug) = (acc("augmented", 0), acc("augmented", 1));
    let r = &v["dd_ranking"];
    let score = |x: f64| {
        let e = std::f64::consts::E;
        (x.exp() - (-1f64).exp()) / (e - (-1f64).exp()) * 100.0
    };
    for i in 0..2 {
        let ior = set[i] - rnd[i];
        let hlr = 0.85 - set[i];
        let close = |key: &str, want: f64| {
            let got = r[key]["rounds"][i].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{key}[{i}]: {got} vs {want}");
        };
        close("ior", ior);
        close("hlr", hlr);
        close("lrs", score(0.5 * ior - 0.5 * hlr));
        close("ars", score(0.5 * (set_aug[i] - rnd_aug[i]) + 0.5 * ior));
    }
    // `ddlens rank` computes the same metrics from the two saved reports.
    let dir = tempfile::tempdir().unwrap();
    let (p, a) = (dir.path().join("plain.json"), dir.path().join("aug.json"));
    std::fs::write(&p, v["plain"].to_string()).unwrap();
    std::fs::write(&a, v["augmented"].to_string()).unwrap();
    let (p, a) = (p.to_str().unwrap(), a.to_str().unwrap());
    let args = [
        "rank",
        "--plain",
        p,
        "--augmented",
        a,
        "--full-accuracy",
        "0.85",
        "--json",
    ];
    let o = ddlens(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let ranked: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ranked["dd_ranking"], v["dd_ranking"]);
    // The protocols swapped: named as such.
    let o = ddlens(&["rank", "--plain", a, "--augmented", p]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("aug.json") && stderr(&o).contains("augmentation"),
        "{}",
        stderr(&o)
    );
    let bad = ddlens(&["eval", "zoo:dm-ipc1", "--dd-ranking", "--no-baseline"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--no-baseline"), "{}", stderr(&bad));
}

#[test]
fn eval_with_dsa_reports_its_protocol() {
    if !fashion_mnist_present() {
        return;
    }
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--ipc",
            "1",
            "--model",
            "mlp-1x28x28",
            "--runs",
            "1",
            "--epochs",
            "3",
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = ddlens(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let plain = eval(&[]);
    assert_eq!(plain["protocol"]["augment"], serde_json::Value::Null);
    let v = eval(&["--dsa"]);
    assert_eq!(
        v["protocol"]["augment"], "color_crop_cutout_flip_scale_rotate",
        "{v}"
    );
    assert_eq!(v["protocol"]["epochs"], 3);
    assert_eq!(v["protocol"]["runs"], 1);
    assert_eq!(v["results"][0]["train_size"], 10);
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

/// Runs `ddlens distill` on the MLP at 1 image per class with `extra` flags and returns the
/// JSON report.
fn distill_json(out: &Path, method: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "distill",
        "--method",
        method,
        "--model",
        "mlp-1x28x28",
        "--ipc",
        "1",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = ddlens(&args);
    assert!(o.status.success(), "distill {method}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("distill --json prints JSON")
}

fn eval_accepts(set: &Path) {
    let o = ddlens(&[
        "eval",
        set.to_str().unwrap(),
        "--model",
        "mlp-1x28x28",
        "--runs",
        "1",
        "--epochs",
        "2",
        "--no-baseline",
        "--json",
    ]);
    assert!(o.status.success(), "eval {}: {}", set.display(), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"][0]["train_size"], 10);
}

#[test]
fn distill_dm_writes_four_files_and_resumes() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let flags = ["--batch-real", "16", "--checkpoint-every", "1"];
    let v = distill_json(out, "dm", &[&flags[..], &["--iterations", "1"]].concat());
    assert_eq!(v["iterations"], 1);
    for ext in ["safetensors", "png", "json", "ckpt"] {
        assert!(out.join(format!("dm-ipc1.{ext}")).is_file(), "no .{ext}");
    }
    let v = distill_json(
        out,
        "dm",
        &[&flags[..], &["--iterations", "2", "--resume"]].concat(),
    );
    assert_eq!(v["resumed_from"], 1, "{v}");
    assert_eq!(v["loss_per_iteration"].as_array().unwrap().len(), 2, "{v}");

    // Other settings may not resume from that checkpoint.
    let o = ddlens(&[
        "distill",
        "--method",
        "dm",
        "--model",
        "mlp-1x28x28",
        "--ipc",
        "1",
        "--batch-real",
        "8",
        "--iterations",
        "3",
        "--resume",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("settings"), "{}", stderr(&o));
}

#[test]
fn distill_dc_and_bptt_write_sets_that_eval_accepts() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let v = distill_json(out, "dc", &["--iterations", "1", "--batch-real", "16"]);
    assert_eq!(v["method"], "dc");
    assert_eq!(v["settings"]["dsa"], "none");
    assert_eq!(v["iterations"], 1);
    eval_accepts(&out.join("dc-ipc1.safetensors"));

    let v = distill_json(
        out,
        "bptt",
        &[
            "--iterations",
            "1",
            "--syn-steps",
            "3",
            "--window",
            "2",
            "--learn-lr",
            "--batch-real",
            "16",
        ],
    );
    assert_eq!(v["settings"]["window"], 2);
    assert_eq!(v["settings"]["steps"], 3);
    let set = ddlens::DistilledSet::read(&out.join("bptt-ipc1.safetensors")).unwrap();
    assert!(set.lr.is_some(), "--learn-lr stores the lr");
    eval_accepts(&out.join("bptt-ipc1.safetensors"));
}

/// A graph call's chunks run side by side on the worker threads, but the chunks and the order
/// their results are summed in do not depend on the thread count: the same bits either way.
#[test]
fn distillation_gives_the_same_bits_on_one_or_two_threads() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sets: Vec<Vec<u8>> = ["1", "2"]
        .iter()
        .map(|threads| {
            let out = tmp.path().join(threads);
            let o = ddlens(&[
                "--threads",
                threads,
                "distill",
                "--method",
                "dc",
                "--model",
                "convnettiny-1x28x28",
                "--ipc",
                "1",
                "--iterations",
                "2",
                "--batch-real",
                "20",
                "--out",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "--threads {threads}: {}", stderr(&o));
            std::fs::read(out.join("dc-ipc1.safetensors")).unwrap()
        })
        .collect();
    assert!(sets[0] == sets[1], "1 and 2 threads gave different sets");
}

#[test]
fn experts_then_distill_mtt_stores_learned_lr() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let experts = tmp.path().join("experts");
    let o = ddlens(&[
        "experts",
        "--model",
        "mlp-1x28x28",
        "--num-experts",
        "1",
        "--epochs",
        "1",
        "--no-dsa",
        "--batch-size",
        "1024",
        "--json",
        "--out",
        experts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["index"]["experts"], 1);
    assert!(experts.join("experts.json").is_file());
    assert!(experts.join("expert-0000/epoch-0001.safetensors").is_file());

    let out = tmp.path().join("mtt");
    let v = distill_json(
        &out,
        "mtt",
        &[
            "--experts",
            experts.to_str().unwrap(),
            "--iterations",
            "2",
            "--syn-steps",
            "2",
            "--expert-epochs-ahead",
            "1",
            "--max-start-epoch",
            "1",
        ],
    );
    assert_eq!(v["iterations"], 2);
    assert_eq!(v["settings"]["experts"]["model"], "mlp-1x28x28");
    let set = ddlens::DistilledSet::read(&out.join("mtt-ipc1.safetensors")).unwrap();
    assert_eq!(set.meta.method, "mtt");
    let lr = set.lr.expect("MTT's learned lr is in the set");
    assert!(lr.is_finite() && lr > 0.0, "{lr}");
    assert!(
        !out.join("experts").exists(),
        "--experts reuses, generates nothing"
    );

    // M longer than the trajectories is refused, naming the setting.
    let o = ddlens(&[
        "distill",
        "--method",
        "mtt",
        "--model",
        "mlp-1x28x28",
        "--ipc",
        "1",
        "--experts",
        experts.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("expert_epochs"), "{}", stderr(&o));
}

#[test]
fn distill_unknown_method_lists_the_valid_ones() {
    let o = ddlens(&["distill", "--method", "kip", "--model", "mlp-1x28x28"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("kip"), "{err}");
    for m in ["random", "herding", "dm", "dc", "dsa", "mtt", "bptt"] {
        assert!(err.contains(m), "{m} missing from: {err}");
    }
}

#[test]
fn distill_flags_for_another_method_are_named() {
    let o = ddlens(&["distill", "--method", "dm", "--window", "5"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("`window`") && err.contains("does not apply to method `dm`"),
        "{err}"
    );
    let o = ddlens(&["distill", "--method", "random", "--resume"]);
    assert!(stderr(&o).contains("`resume`"), "{}", stderr(&o));
}

#[test]
fn an_empty_set_is_an_error_naming_the_file_not_a_panic() {
    if !fashion_mnist_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    let images =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![0, 1, 28, 28], &[])
            .unwrap();
    let labels =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![0], &[]).unwrap();
    safetensors::serialize_to_file([("images", images), ("labels", labels)], None, &path).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec![
            "analyze",
            "pixels",
            p,
            "--budget",
            "smoke",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        vec!["eval", p, "--runs", "1", "--epochs", "1"],
    ] {
        let o = ddlens(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("empty.safetensors") && err.contains("no images"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn zoo_names_stand_in_for_paths() {
    if !fashion_mnist_present() {
        return;
    }
    // A zoo folder of one's own through DDLENS_ZOO, ahead of the project's.
    let dir = tempfile::tempdir().unwrap();
    let o = ddlens(&[
        "distill",
        "--method",
        "random",
        "--ipc",
        "1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::rename(
        dir.path().join("random-ipc1.safetensors"),
        dir.path().join("mine-ipc1.safetensors"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ddlens"))
        .env("DDLENS_ZOO", dir.path())
        .args([
            "--provider",
            "cpu",
            "eval",
            "zoo:mine-ipc1",
            "--runs",
            "1",
            "--epochs",
            "2",
        ])
        .args(["--no-baseline", "--model", "mlp-1x28x28", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"][0]["label"], "zoo:mine-ipc1");
    let o = ddlens(&["eval", "zoo:no-such-set"]);
    assert!(stderr(&o).contains("not in the zoo"), "{}", stderr(&o));
}

#[test]
fn zero_or_negative_counts_name_the_argument() {
    let o = ddlens(&["eval", "--ipc", "0"]);
    assert!(
        stderr(&o).contains("`ipc`: must be at least 1"),
        "{}",
        stderr(&o)
    );
    // A negative number is the argument's value, refused by its parser, not clap's tip to
    // write `-- -1` (which would make it a positional argument).
    let o = ddlens(&["eval", "--ipc", "-1"]);
    let err = stderr(&o);
    assert!(
        err.contains("'-1' for '--ipc <IPC>'") && !err.contains("-- -1"),
        "{err}"
    );
}

#[test]
fn a_set_made_for_another_dataset_is_refused_unless_forced() {
    if !fashion_mnist_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.safetensors");
    let images = ndarray::Array4::<f32>::zeros((10, 1, 28, 28));
    let labels = ndarray::Array1::from_iter(0..10i64);
    let data = ddlens::Dataset::new(images, labels, 10, "digits").unwrap();
    let meta = ddlens::data::DistilledMeta {
        method: "random".into(),
        dataset: "mnist".into(),
        ..Default::default()
    };
    ddlens::DistilledSet::new(data, None, meta)
        .unwrap()
        .write(&path)
        .unwrap();
    let p = path.to_str().unwrap();
    let args = ["eval", p, "--runs", "1", "--epochs", "1", "--no-baseline"];
    let o = ddlens(&[&args[..], &["--model", "mlp-1x28x28"]].concat());
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("distilled on mnist")
            && err.contains("fashion-mnist")
            && err.contains("--force"),
        "{err}"
    );
    let o = ddlens(&[&args[..], &["--model", "mlp-1x28x28", "--force"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ddlens(&[
        "analyze",
        "pixels",
        p,
        "--budget",
        "smoke",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(stderr(&o).contains("distilled on mnist"), "{}", stderr(&o));
}

/// `ddlens import` of a DM result file (the committed fuzz seed, a `torch.save` of
/// `{"data": [[images, labels]], ...}` with float16 1x28x28 images), renamed as DM names it:
/// dataset and method come from the name; a missing experiment is an error naming the file.
#[test]
fn import_writes_a_set_with_its_provenance() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pt_import/seed-dc-res");
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("res_DM_FashionMNIST_ConvNet_1ipc.pt");
    std::fs::copy(seed, &res).unwrap();
    let out = tmp.path().join("dm.safetensors");
    let o = ddlens(&[
        "import",
        res.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("method dm, dataset fashion-mnist"), "{text}");
    let set = ddlens::DistilledSet::read(&out).unwrap();
    assert_eq!(set.data.len(), 10);
    assert_eq!(set.meta.extra["source_tool"], "DatasetCondensation");
    assert_eq!(set.meta.extra["experiment"], "0");
    assert!(!set.needs_zca());

    let o = ddlens(&[
        "import",
        res.to_str().unwrap(),
        "--experiment",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("res_DM_FashionMNIST_ConvNet_1ipc.pt") && err.contains("holds 1 experiment"),
        "{err}"
    );
}

#[test]
fn train_removes_its_checkpoint_when_done_and_resume_needs_one() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        "--model",
        "mlp-1x28x28",
        "--ipc",
        "2",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--checkpoint-secs",
        "0",
        "--out",
        out_s,
    ];
    let o = ddlens(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("params.safetensors").is_file());
    assert!(
        !out.join("train.ckpt").exists(),
        "the checkpoint outlived the run"
    );
    let o = ddlens(&[&args[..], &["--resume"]].concat());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("train.ckpt") && stderr(&o).contains("without --resume"),
        "{}",
        stderr(&o)
    );
    let o = ddlens(&["train", "--checkpoint-secs", "-1", "--out", out_s]);
    assert!(stderr(&o).contains("checkpoint-secs"), "{}", stderr(&o));
}
