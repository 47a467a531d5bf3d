//! Sharded jobs through the command line: units split over processes (by `--shard` or by
//! Slurm's array variables), re-runs that skip finished units, and `ddlens gather`, whose
//! result must be byte-identical to the same job run in one process.

use std::path::Path;
use std::process::{Command, Output};

/// `ddlens ARGS` with no Slurm variables inherited (the tests may run inside a Slurm job)
/// except those in `env`.
fn ddlens_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ddlens"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SLURM_") {
            c.env_remove(k);
        }
    }
    c.args(["--provider", "cpu", "--threads", "1"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs the ddlens binary")
}

fn ddlens(args: &[&str]) -> Output {
    ddlens_env(args, &[])
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
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

/// A small distilled-set file (2 real images per class) in `dir`.
fn small_set(dir: &Path) -> String {
    use ddlens::data::{self, DistilledMeta, DistilledSet};
    let splits = data::load(ddlens::DatasetName::FashionMnist, None).unwrap();
    let idx = data::class_balanced(&splits.train, 2, 99).unwrap();
    let set = DistilledSet::new(
        splits.train.select(&idx).unwrap(),
        None,
        DistilledMeta::default(),
    )
    .unwrap();
    let file = dir.join("set.safetensors");
    set.write(&file).unwrap();
    file.display().to_string()
}

const EVAL: &[&str] = &["--model", "mlp-1x28x28", "--runs", "3", "--epochs", "4"];

fn eval_args<'a>(set: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["eval", set];
    a.extend_from_slice(EVAL);
    a.extend_from_slice(extra);
    a
}

#[test]
fn sharded_eval_gathers_to_the_bytes_of_one_process() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let set = small_set(tmp.path());
    let units = tmp.path().join("units");
    let units = units.to_str().unwrap();
    let whole = ok(ddlens(&eval_args(&set, &["--json"]))).stdout;

    // Shard 0/2 by flag: units 0, 2, 4 of 6 (2 sets × 3 runs).
    let o = ok(ddlens(&eval_args(
        &set,
        &["--units", units, "--shard", "0/2"],
    )));
    assert!(
        stderr(&o).contains("shard 0/2: units 0, 2, 4 (3 of 6)"),
        "{}",
        stderr(&o)
    );
    // Nothing to gather yet: the missing units are named.
    let o = ddlens(&["gather", units]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("3 of 6 eval units missing: 1, 3, 5"),
        "{}",
        stderr(&o)
    );
    // Shard 1/2 as Slurm array task 2 of `--array=1-2`.
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "2"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ];
    let o = ok(ddlens_env(&eval_args(&set, &["--units", units]), &slurm));
    assert!(
        stderr(&o).contains("shard 1/2: units 1, 3, 5"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("all 6 units are done"),
        "{}",
        stderr(&o)
    );
    // A re-run (a requeued task) skips its finished units.
    let o = ok(ddlens(&eval_args(
        &set,
        &["--units", units, "--shard", "0/2"],
    )));
    assert!(
        stderr(&o).contains("ran 0 unit(s) []; skipped 3 already done [0, 2, 4]"),
        "{}",
        stderr(&o)
    );

    let gathered = ok(ddlens(&["gather", units, "--json"])).stdout;
    assert_eq!(
        String::from_utf8_lossy(&gathered),
        String::from_utf8_lossy(&whole),
        "gathered result differs from the one-process result"
    );
    let file = std::fs::read(tmp.path().join("units").join("eval.json")).unwrap();
    assert_eq!(
        file, whole,
        "DIR/eval.json holds the bytes `eval --json` prints"
    );

    // Another split (3 ways) into another folder gives the same bytes again.
    let three = tmp.path().join("three");
    let three = three.to_str().unwrap();
    for i in 0..3 {
        let shard = format!("{i}/3");
        ok(ddlens(&eval_args(
            &set,
            &["--units", three, "--shard", &shard],
        )));
    }
    assert_eq!(ok(ddlens(&["gather", three, "--json"])).stdout, whole);
}

#[test]
fn a_shard_with_other_settings_is_refused_naming_the_setting() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let units = tmp.path().join("u");
    let units = units.to_str().unwrap();
    let args = |epochs: &'static str| {
        vec![
            "eval",
            "--ipc",
            "1",
            "--model",
            "mlp-1x28x28",
            "--runs",
            "2",
            "--epochs",
            epochs,
            "--units",
            units,
            "--shard",
            "1/2",
        ]
    };
    ok(ddlens(&args("1")));
    let o = ddlens(&args("2"));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("job.json") && e.contains("\"epochs\":1"), "{e}");
    // Irregular Slurm arrays are refused with the fix.
    let o = ddlens_env(
        &args("1")[..11],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--shard I/N"), "{}", stderr(&o));
    // --shard needs --units.
    let o = ddlens(&["eval", "--ipc", "1", "--shard", "0/2"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--units"),
        "{}",
        stderr(&o)
    );
    let o = ddlens(&["analyze", "mixing", "--shard", "0/2"]);
    assert!(
        !o.status.success() && stderr(&o).contains("mixing needs --units DIR"),
        "{}",
        stderr(&o)
    );
    // Analyses that are not made of units say which are.
    let o = ddlens(&["analyze", "pixels", "--units", units]);
    assert!(
        !o.status.success() && stderr(&o).contains("mixing, sensitivity, influence"),
        "{}",
        stderr(&o)
    );
    // gather on a folder that holds no job names it.
    let o = ddlens(&["gather", tmp.path().to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("job.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sharded_influence_gathers_to_the_bytes_of_one_process() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let set = small_set(tmp.path());
    let dir = |name: &str| tmp.path().join(name).display().to_string();
    let (one, sharded, units) = (dir("one"), dir("sharded"), dir("units"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["analyze", "influence", &set, "--budget", "smoke"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--model", "mlp-1x28x28"].iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(ddlens(&a))
    };
    run(args(&["--out", &one]));
    // Smoke budget: 3 leave-one-out retrainings of the one set.
    let o = run(args(&[
        "--out", &sharded, "--units", &units, "--shard", "1/2",
    ]));
    assert!(
        stderr(&o).contains("shard 1/2: units 1 (1 of 3)"),
        "{}",
        stderr(&o)
    );
    let o = ddlens(&["gather", &units]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("2 of 3 influence units missing: 0, 2"),
        "{}",
        stderr(&o)
    );
    run(args(&[
        "--out", &sharded, "--units", &units, "--shard", "0/2",
    ]));
    ok(ddlens(&["gather", &units]));

    let mut files: Vec<_> = std::fs::read_dir(&one)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f == "influence.json"), "{files:?}");
    for f in &files {
        let a = std::fs::read(Path::new(&one).join(f)).unwrap();
        let b = std::fs::read(Path::new(&sharded).join(f))
            .unwrap_or_else(|e| panic!("gather did not write {f:?}: {e}"));
        assert!(
            a == b,
            "{f:?} differs between one process and the gathered shards"
        );
    }
    // --merge with the same arguments is the same gather.
    let merged = dir("merged");
    run(args(&["--out", &merged, "--merge", &units]));
    assert_eq!(
        std::fs::read(Path::new(&merged).join("influence.json")).unwrap(),
        std::fs::read(Path::new(&one).join("influence.json")).unwrap()
    );
    let e = ddlens(
        &args(&["--out", &merged, "--merge", &units, "--seed", "1"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        !e.status.success() && stderr(&e).contains("other arguments"),
        "{}",
        stderr(&e)
    );
}

/// `ddlens analyze NAME SET --budget smoke --model mlp-1x28x28 --set ...` plus `extra`.
fn analyze_args(name: &str, set: &str, overrides: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["analyze", name, set, "--budget", "smoke"]
        .iter()
        .chain(&["--model", "mlp-1x28x28"])
        .map(|s| s.to_string())
        .collect();
    for o in overrides {
        a.extend(["--set".to_string(), o.to_string()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_strings(a: &[String]) -> Output {
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ddlens(&a)
}

/// The files of `a` (not its sub-folders) hold the same bytes in `b`.
fn same_files(a: &Path, b: &Path, must_hold: &str) {
    let mut files: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name())
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f == must_hold), "{files:?}");
    for f in &files {
        let x = std::fs::read(a.join(f)).unwrap();
        let y =
            std::fs::read(b.join(f)).unwrap_or_else(|e| panic!("gather did not write {f:?}: {e}"));
        assert!(
            x == y,
            "{f:?} differs between one process and the gathered shards"
        );
    }
}

/// A 2-shard run of analysis `name` (with `units` units) gathers to the files of one
/// process; the first shard's line, a gather with missing units and a re-run are checked.
fn two_shards_gather_to_one_process(name: &str, overrides: &[&str], units: usize, first: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let set = small_set(tmp.path());
    let dir = |n: &str| tmp.path().join(n).display().to_string();
    let (one, sharded, store) = (dir("one"), dir("sharded"), dir("units"));
    let args = |extra: &[&str]| analyze_args(name, &set, overrides, extra);
    ok(run_strings(&args(&["--out", &one])));

    let o = ok(run_strings(&args(&[
        "--out", &sharded, "--units", &store, "--shard", "0/2",
    ])));
    assert!(stderr(&o).contains(first), "{}", stderr(&o));
    let o = ddlens(&["gather", &store]);
    assert!(!o.status.success());
    let missing = format!("{} of {units} {name} units missing: 1, 3", units / 2);
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
    ok(run_strings(&args(&[
        "--out", &sharded, "--units", &store, "--shard", "1/2",
    ])));
    // A requeued task finds its units done.
    let o = ok(run_strings(&args(&[
        "--out", &sharded, "--units", &store, "--shard", "0/2",
    ])));
    let skipped = format!("ran 0 unit(s) []; skipped {} already done [0, 2", units / 2);
    assert!(stderr(&o).contains(&skipped), "{}", stderr(&o));
    ok(ddlens(&["gather", &store]));
    same_files(
        Path::new(&one),
        Path::new(&sharded),
        &format!("{name}.json"),
    );
}

#[test]
fn sharded_mixing_gathers_to_the_bytes_of_one_process() {
    if !fashion_mnist_present() {
        return;
    }
    // The set and its baseline × ks {0, 2} × 2 runs = 8 units.
    let overrides = ["ks=[0,2]", "runs=2", "steps=3", "test_images=100"];
    two_shards_gather_to_one_process(
        "mixing",
        &overrides,
        8,
        "shard 0/2: units 0, 2, 4, 6 (4 of 8)",
    );
}

#[test]
fn sharded_sensitivity_gathers_to_the_bytes_of_one_process() {
    if !fashion_mnist_present() {
        return;
    }
    // The set and its baseline × (standard, epochs x0.5, lr x10; full batch reuses the
    // standard runs, the model's own architecture is skipped) × 1 run = 6 units.
    let overrides = [
        "epochs=2",
        "epoch_factors=[0.5]",
        "lr_factors=[10]",
        "batch_sizes=[0]",
        "optimizers=[]",
        "architectures=[\"mlp-{shape}\"]",
        "test_images=100",
    ];
    two_shards_gather_to_one_process(
        "sensitivity",
        &overrides,
        6,
        "shard 0/2: units 0, 2, 4 (3 of 6)",
    );
}

/// Every file under `a`, as paths relative to it, sorted.
fn tree(a: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![a.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(a).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A Fashion-MNIST-shaped data folder of `train` and `test` images (seeded noise, labels
/// `i % 10`, raw IDX files), so that experts train in moments.
fn tiny_idx_data(dir: &Path, train: u32, test: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 12345u32;
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut images = [0x0803u32, n, 28, 28]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<u8>>();
        images.extend((0..n * 28 * 28).map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 24) as u8
        }));
        let mut labels = [0x0801u32, n]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<u8>>();
        labels.extend((0..n).map(|i| (i % 10) as u8));
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
}

#[test]
fn sharded_experts_gather_to_the_files_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_idx_data(&data, 200, 50);
    let data = data.to_str().unwrap();
    let (one, store) = (tmp.path().join("one"), tmp.path().join("units"));
    let (one_s, store_s) = (one.to_str().unwrap(), store.to_str().unwrap());
    let experts = |extra: &[&str]| {
        let mut a = vec![
            "experts",
            "--model",
            "mlp-1x28x28",
            "--num-experts",
            "3",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--seed",
            "5",
            "--data-dir",
            data,
        ];
        a.extend_from_slice(extra);
        ok(ddlens(&a))
    };
    experts(&["--out", one_s]);
    let o = experts(&["--units", store_s, "--shard", "1/2"]);
    assert!(
        stderr(&o).contains("experts: shard 1/2: units 1 (1 of 3)"),
        "{}",
        stderr(&o)
    );
    assert!(
        !store.join("experts.json").exists(),
        "no index before the gather"
    );
    let o = ddlens(&["gather", store_s]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("2 of 3 experts units missing: 0, 2"),
        "{}",
        stderr(&o)
    );
    experts(&["--units", store_s, "--shard", "0/2"]);
    let o = experts(&["--units", store_s, "--shard", "1/2"]);
    assert!(
        stderr(&o).contains("ran 0 unit(s) []; skipped 1 already done [1]"),
        "{}",
        stderr(&o)
    );
    ok(ddlens(&["gather", store_s]));

    let files = tree(&one);
    assert!(
        files.iter().any(|f| f.ends_with("experts.json")),
        "{files:?}"
    );
    let sharded: Vec<_> = tree(&store)
        .into_iter()
        .filter(|f| !(f.starts_with("units") || f.ends_with("job.json")))
        .collect();
    assert_eq!(files, sharded, "the same files, beside job.json and units/");
    for f in &files {
        assert!(
            std::fs::read(one.join(f)).unwrap() == std::fs::read(store.join(f)).unwrap(),
            "{f:?} differs between one process and the gathered shards"
        );
    }
}
