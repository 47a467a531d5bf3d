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
