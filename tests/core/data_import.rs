//! `ddlens import`: the layouts MTT and DC/DSA/DM save with `torch.save`, written here by
//! tests/pt/make_sets.py with the project's PyTorch (`.venv`, `scripts/setup --dev`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ddlens::data::{import_set, DatasetName, ImportOptions, Layout};
use ddlens::DistilledSet;

/// The project's Python with torch, if `scripts/setup --dev` made it.
pub(crate) fn torch_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import torch"])
            .status()
            .is_ok_and(|s| s.success());
    ok.then_some(python)
}

/// Says loudly that a test could not run; CI must have the environment.
pub(crate) fn skip_without_torch() {
    eprintln!("SKIPPED: .venv with torch missing; run scripts/setup --dev");
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have the .venv with torch"
    );
}

/// The folder make_sets.py wrote, once per test process.
fn sets() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = torch_python()?;
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pt/make_sets.py");
        let status = Command::new(python)
            .arg(script)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "tests/pt/make_sets.py failed");
        Some(dir)
    })
    .as_ref()
    .map(|d| d.path())
}

/// The pixel values make_sets.py writes: value(k) = ((k % 97) - 48) / 16.
fn value(k: usize) -> f32 {
    ((k % 97) as f32 - 48.0) / 16.0
}

fn class_major(classes: i64, ipc: usize) -> Vec<i64> {
    (0..classes)
        .flat_map(|c| std::iter::repeat_n(c, ipc))
        .collect()
}

fn import(path: &Path, options: &ImportOptions) -> ddlens::data::Imported {
    import_set(path, options).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn import_err(path: &Path, options: &ImportOptions) -> String {
    match import_set(path, options) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

macro_rules! need_sets {
    () => {
        match sets() {
            Some(dir) => dir,
            None => return skip_without_torch(),
        }
    };
}

#[test]
fn mtt_trio_imports_with_lr_and_needs_zca_on_cifar() {
    let dir = need_sets!();
    let imported = import(&dir.join("mtt"), &ImportOptions::default());
    assert!(matches!(imported.layout, Layout::Mtt { lr: Some(_), .. }));
    let set = &imported.set;
    assert_eq!(set.data.images().dim(), (20, 3, 32, 32));
    for (k, &v) in set.data.images().iter().enumerate() {
        assert_eq!(v, value(k), "pixel {k}");
    }
    assert_eq!(set.data.labels().to_vec(), class_major(10, 2));
    assert_eq!(set.lr, Some(0.01));
    assert_eq!(set.meta.method, "mtt");
    assert_eq!(set.meta.dataset, "cifar10");
    assert_eq!(set.meta.ipc, 2);
    let extra = &set.meta.extra;
    assert_eq!(extra["source_tool"], "mtt-distillation");
    assert_eq!(
        extra["source_files"],
        "images_best.pt,labels_best.pt,syn_lr_best.pt"
    );
    assert_eq!(extra["normalization"], "zca");
    assert_eq!(extra["zca_eps"], "0.1");
    assert!(set.needs_zca());
    assert!(imported.notes.iter().any(|n| n.contains("ZCA")));

    // Written and read back, the metadata stays and says ZCA.
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("mtt.safetensors");
    set.write(&path).unwrap();
    let back = DistilledSet::read(&path).unwrap();
    assert!(back.needs_zca());
    assert_eq!(back.meta.extra, set.meta.extra);
    assert_eq!(back.data.images(), set.data.images());

    // --no-zca is recorded too.
    let plain = import(
        &dir.join("mtt"),
        &ImportOptions {
            zca: Some(false),
            ..Default::default()
        },
    );
    assert!(!plain.set.needs_zca());
    assert_eq!(plain.set.meta.extra["normalization"], "mean-std");
}

#[test]
fn read_any_takes_a_pt_file_directly() {
    let dir = need_sets!();
    let set = DistilledSet::read_any(&dir.join("mtt/images_best.pt")).unwrap();
    assert_eq!(set.data.len(), 20);
    assert_eq!(set.lr, Some(0.01));
    assert!(set.needs_zca());
    // Naming the labels file finds the same set.
    let same = DistilledSet::read_any(&dir.join("mtt/labels_best.pt")).unwrap();
    assert_eq!(same.data.images(), set.data.images());
}

#[test]
fn float16_images_and_no_lr() {
    let dir = need_sets!();
    let imported = import(&dir.join("fp16/images_fp16.pt"), &ImportOptions::default());
    let set = &imported.set;
    assert_eq!(set.lr, None);
    assert_eq!(set.data.images().dim(), (10, 3, 32, 32));
    for (k, &v) in set.data.images().iter().enumerate() {
        assert_eq!(v, value(k), "pixel {k}");
    }
    assert_eq!(
        set.meta.extra["source_files"],
        "images_fp16.pt,labels_fp16.pt"
    );
}

#[test]
fn strided_view_is_gathered() {
    let dir = need_sets!();
    let set = import(&dir.join("strided"), &ImportOptions::default()).set;
    assert_eq!(set.data.images().dim(), (10, 3, 32, 32));
    // Pixel k of the view is storage element 2k + 1.
    for (k, &v) in set.data.images().iter().enumerate() {
        assert_eq!(v, value(2 * k + 1), "pixel {k}");
    }
}

#[test]
fn dc_file_with_two_experiments() {
    let dir = need_sets!();
    let file = dir.join("dc/res_DC_CIFAR10_ConvNet_2ipc.pt");
    let first = import(&dir.join("dc"), &ImportOptions::default());
    assert_eq!(first.layout, Layout::Condensation { file: file.clone() });
    assert!(first.notes.iter().any(|n| n.contains("2 experiments")));
    let set = &first.set;
    assert_eq!(set.meta.method, "dc");
    assert_eq!(set.meta.dataset, "cifar10");
    assert_eq!(set.meta.extra["experiment"], "0");
    assert_eq!(set.meta.extra["source_model"], "ConvNet");
    assert_eq!(set.meta.extra["source_tool"], "DatasetCondensation");
    assert_eq!(set.meta.extra["normalization"], "mean-std");
    assert!(!set.needs_zca());
    assert_eq!(set.data.labels().to_vec(), class_major(10, 2));
    assert_eq!(set.data.images()[[0, 0, 0, 1]], value(1));

    let second = import(
        &file,
        &ImportOptions {
            experiment: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(second.set.meta.extra["experiment"], "1");
    for (k, &v) in second.set.data.images().iter().enumerate() {
        assert_eq!(v, value(k + 1000), "pixel {k}");
    }

    let err = import_err(
        &file,
        &ImportOptions {
            experiment: Some(2),
            ..Default::default()
        },
    );
    assert!(
        err.contains("experiment 2") && err.contains("holds 2 experiments"),
        "{err}"
    );
    assert!(err.contains("res_DC_CIFAR10_ConvNet_2ipc.pt"), "{err}");
}

#[test]
fn dataset_from_the_name_or_the_flag() {
    let dir = need_sets!();
    let dm = import(
        &dir.join("dm/res_DM_MNIST_ConvNet_1ipc.pt"),
        &ImportOptions::default(),
    );
    assert_eq!(dm.set.meta.dataset, "mnist");
    assert_eq!(dm.set.meta.method, "dm");

    let ambiguous = dir.join("ambiguous/set.pt");
    let err = import_err(&ambiguous, &ImportOptions::default());
    assert!(
        err.contains("--dataset") && err.contains("1x28x28"),
        "{err}"
    );
    let given = import(
        &ambiguous,
        &ImportOptions {
            dataset: Some(DatasetName::FashionMnist),
            method: Some("bptt".into()),
            ..Default::default()
        },
    );
    assert_eq!(given.set.meta.dataset, "fashion-mnist");
    assert_eq!(given.set.meta.method, "bptt");
    // read_any does not ask: the dataset stays unrecorded.
    let lenient = DistilledSet::read_any(&ambiguous).unwrap();
    assert_eq!(lenient.meta.dataset, "");

    let err = import_err(
        &ambiguous,
        &ImportOptions {
            dataset: Some(DatasetName::Cifar10),
            ..Default::default()
        },
    );
    assert!(err.contains("1x28x28") && err.contains("3x32x32"), "{err}");
}

#[test]
fn unexpected_objects_are_named_and_never_run() {
    let dir = need_sets!();
    let evil = dir.join("evil/res_DC_CIFAR10_ConvNet_1ipc.pt");
    let err = import_err(&evil, &ImportOptions::default());
    assert!(
        err.contains("system"),
        "the error names the callable: {err}"
    );
    assert!(err.contains("data[0][0]"), "{err}");
    assert!(!dir.join("PWNED").exists(), "the pickle's command ran");

    let custom = dir.join("custom/res_DC_CIFAR10_ConvNet_1ipc.pt");
    let err = import_err(&custom, &ImportOptions::default());
    assert!(err.contains("__main__.Trajectory"), "{err}");

    // MTT images without their labels.
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("mtt/images_best.pt"),
        alone.path().join("images_best.pt"),
    )
    .unwrap();
    let err = import_err(alone.path(), &ImportOptions::default());
    assert!(
        err.contains("labels_best.pt") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let dir = need_sets!();
    let truncated = dir.join("truncated/res_DC_CIFAR10_ConvNet_2ipc.pt");
    let err = import_err(&truncated, &ImportOptions::default());
    assert!(
        err.contains("truncated/res_DC_CIFAR10_ConvNet_2ipc.pt"),
        "{err}"
    );

    let out = tempfile::tempdir().unwrap();
    let text = out.path().join("notes.pt");
    std::fs::write(&text, "not a checkpoint").unwrap();
    let err = import_err(&text, &ImportOptions::default());
    assert!(err.contains("notes.pt") && err.contains("PyTorch"), "{err}");

    let empty = out.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = import_err(&empty, &ImportOptions::default());
    assert!(err.contains("res_*.pt"), "{err}");
}
