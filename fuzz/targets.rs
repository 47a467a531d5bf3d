//! Bodies of the fuzz targets: one `pub fn NAME(data: &[u8]) -> bool` per reader of outside bytes.
//!
//! Shared by the libFuzzer binaries (`fuzz/fuzz_targets/NAME.rs`, a one-line wrapper each)
//! and by `tests/fuzz_corpora.rs`, which replays every committed corpus and regression file
//! through the same body under plain `cargo test`. Every reader takes a path, so each body
//! writes the input to a per-process scratch folder (`/dev/shm` when it exists, else the
//! temporary folder; removed at exit) and calls the reader. `Ok` and `Err` are both fine; a
//! panic, an abort, a hang or an allocation far beyond the input's size is a bug. Where a
//! reader has a matching writer, what was read is written back and read again, and must come
//! back the same (the writers are what the readers' files are made with). Each body returns
//! whether the reader accepted the input; the replay test checks that the `seed-*` files of a
//! corpus are accepted and the `bad-*` ones refused.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ddlens::analysis::agreement::{merge_pool, read_pool_files, AgreementConfig, PoolShard};
use ddlens::analysis::{Budget, NamedSet};
use ddlens::bundle::Manifest;
use ddlens::data::{read_cifar10_batch, read_idx_images, read_idx_labels, CIFAR10_RECORD_BYTES};
use ddlens::distill::{Checkpoint, ExpertDir, ExpertSource};
use ddlens::train::{load_params, save_params, TrainCheckpoint};
use ddlens::DistilledSet;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A target's body: reads the input, returns whether the reader accepted it.
pub type Body = fn(&[u8]) -> bool;

/// Every target, by name: the fuzz binaries and the corpus folders are named the same.
pub const TARGETS: &[(&str, Body)] = &[
    ("idx_images", idx_images),
    ("idx_labels", idx_labels),
    ("cifar10_batch", cifar10_batch),
    ("distilled_safetensors", distilled_safetensors),
    ("distilled_npz", distilled_npz),
    ("distilled_npy", distilled_npy),
    ("params", params),
    ("manifest", manifest),
    ("distill_checkpoint", distill_checkpoint),
    ("experts", experts),
    ("report_results", report_results),
    ("pool_file", pool_file),
    ("pt_import", pt_import),
    ("train_checkpoint", train_checkpoint),
];

/// The model the parameter and expert targets read for: `models/tiny-1x8x8/manifest.json`,
/// compiled in so that the targets run from any folder.
const TINY_MANIFEST: &str = include_str!("../models/tiny-1x8x8/manifest.json");
const TINY_BN_MANIFEST: &str = include_str!("../models/tiny-bn-1x8x8/manifest.json");

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `<scratch>/<target>`, created on first use; the scratch folder is per process.
fn scratch(target: &str) -> PathBuf {
    let base = SCRATCH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("ddlens-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz scratch folder");
        // SAFETY: registers a plain `extern "C" fn()`; it only removes the scratch folder.
        unsafe { libc::atexit(remove_scratch) };
        dir
    });
    let dir = base.join(target);
    std::fs::create_dir_all(&dir).expect("creating a fuzz scratch folder");
    dir
}

/// Writes `data` to `<scratch>/<target>/<name>` and returns the path.
fn put(target: &str, name: &str, data: &[u8]) -> PathBuf {
    let path = scratch(target).join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating a fuzz scratch folder");
    }
    std::fs::write(&path, data).expect("writing a fuzz input");
    path
}

/// Splits an input holding two files: a little-endian `u32` length, the first file (clamped
/// to what is there), then the second. [`join`] builds such inputs.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return (data, &[]);
    };
    let n = (u32::from_le_bytes(*len) as usize).min(rest.len());
    rest.split_at(n)
}

/// The input [`split`] turns into `a` and `b`.
pub fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = (a.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// The tiny model's manifest, read once through [`Manifest::read`].
pub fn tiny_manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        let path = put("manifest-tiny", "manifest.json", TINY_MANIFEST.as_bytes());
        Manifest::read(&path).expect("models/tiny-1x8x8/manifest.json reads")
    })
}

/// The manifest of `models/tiny-bn-1x8x8` (the tiny model's parameters, plus BatchNorm
/// running statistics as state).
pub fn tiny_bn_manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        let path = put(
            "manifest-tiny-bn",
            "manifest.json",
            TINY_BN_MANIFEST.as_bytes(),
        );
        Manifest::read(&path).expect("models/tiny-bn-1x8x8/manifest.json reads")
    })
}

/// IDX images, raw or gzip (`read_idx_images`).
pub fn idx_images(data: &[u8]) -> bool {
    let path = put("idx_images", "images-idx3-ubyte", data);
    let Ok(images) = read_idx_images(&path) else {
        return false;
    };
    assert_eq!(
        images.pixels.len(),
        images.count * images.rows * images.cols
    );
    true
}

/// IDX labels, raw or gzip (`read_idx_labels`).
pub fn idx_labels(data: &[u8]) -> bool {
    let path = put("idx_labels", "labels-idx1-ubyte", data);
    read_idx_labels(&path).is_ok()
}

/// One CIFAR-10 binary batch (`read_cifar10_batch`).
pub fn cifar10_batch(data: &[u8]) -> bool {
    let path = put("cifar10_batch", "data_batch_1.bin", data);
    let Ok((pixels, labels)) = read_cifar10_batch(&path) else {
        return false;
    };
    assert_eq!(
        labels.len() * CIFAR10_RECORD_BYTES,
        pixels.len() + labels.len()
    );
    assert!(labels.iter().all(|&l| l < 10));
    true
}

/// A distilled set in safetensors (`DistilledSet::read`, and `NamedSet::read`, which goes
/// through `DistilledSet::read_any`); a set that reads is written back and reads the same.
pub fn distilled_safetensors(data: &[u8]) -> bool {
    let path = put("distilled_safetensors", "set.safetensors", data);
    let set = DistilledSet::read(&path);
    let named = NamedSet::read(&path);
    assert_eq!(set.is_ok(), named.is_ok(), "read and read_any disagree");
    let Ok(set) = set else {
        return false;
    };
    let again = put("distilled_safetensors", "again/set.safetensors", b"");
    set.write(&again).expect("a set that reads writes");
    let back = DistilledSet::read(&again).expect("a written set reads back");
    assert_eq!(back, set, "the set changed through write and read");
    true
}

/// A distilled set as a NumPy `.npz` archive (`import_npz` through `read_any`).
pub fn distilled_npz(data: &[u8]) -> bool {
    let path = put("distilled_npz", "set.npz", data);
    DistilledSet::read_any(&path).is_ok()
}

/// A distilled set as `images.npy` beside `labels.npy` (`import_npy` through `read_any`);
/// the input holds both files ([`split`]).
pub fn distilled_npy(data: &[u8]) -> bool {
    let (images, labels) = split(data);
    let path = put("distilled_npy", "images.npy", images);
    put("distilled_npy", "labels.npy", labels);
    DistilledSet::read_any(&path).is_ok()
}

/// A set saved with `torch.save` (`import_set` through `read_any`): an input that starts like
/// a zip archive is one DC/DSA/DM result file; any other holds MTT's `images_fuzz.pt` and
/// `labels_fuzz.pt` ([`split`]), whose root tensors go through the wrapped-copy path.
pub fn pt_import(data: &[u8]) -> bool {
    if data.starts_with(b"PK") {
        let path = put("pt_import", "res.pt", data);
        return DistilledSet::read_any(&path).is_ok();
    }
    let (images, labels) = split(data);
    let path = put("pt_import", "images_fuzz.pt", images);
    put("pt_import", "labels_fuzz.pt", labels);
    DistilledSet::read_any(&path).is_ok()
}

/// A parameter file of the tiny model (`load_params`); parameters that read are saved and
/// read back to the same bytes.
pub fn params(data: &[u8]) -> bool {
    let manifest = tiny_manifest();
    let path = put("params", "params.safetensors", data);
    let Ok(p) = load_params(&path, manifest) else {
        return false;
    };
    let again = path.with_file_name("again.safetensors");
    save_params(&again, manifest, &p).expect("parameters that read save");
    let first = std::fs::read(&again).unwrap();
    let p2 = load_params(&again, manifest).expect("saved parameters read back");
    save_params(&again, manifest, &p2).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), first, "parameters changed");
    true
}

/// A bundle manifest (`Manifest::read`); a manifest that reads initialises parameters
/// (`Params::init`), and is written and reads back the same.
pub fn manifest(data: &[u8]) -> bool {
    let path = put("manifest", "manifest.json", data);
    let Ok(m) = Manifest::read(&path) else {
        return false;
    };
    let _ = m.channels();
    // What a bundle does with its manifest first: a fresh initialisation (kept small here).
    if m.num_parameters() <= 1 << 16 {
        let _ = ddlens::Params::init(&m.params, &mut StdRng::seed_from_u64(0));
    }
    let again = path.with_file_name("again.json");
    m.write(&again).expect("a manifest that reads writes");
    let back = Manifest::read(&again).expect("a written manifest reads back");
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(&m).unwrap(),
        "the manifest changed through write and read"
    );
    true
}

/// A distillation checkpoint (`Checkpoint::read`); one that reads gives its classes (as a
/// resumed run does) and is written and reads back to the same bytes.
pub fn distill_checkpoint(data: &[u8]) -> bool {
    let path = put("distill_checkpoint", "run.ckpt", data);
    let Ok(c) = Checkpoint::read(&path) else {
        return false;
    };
    // What resuming does with the synthetic set first.
    assert_eq!(c.synthetic.class_indices().len(), c.synthetic.num_classes);
    let bytes = c.to_bytes().expect("a checkpoint that reads encodes");
    let again = put("distill_checkpoint", "again.ckpt", &bytes);
    let back = Checkpoint::read(&again).expect("an encoded checkpoint reads back");
    assert_eq!(back.to_bytes().unwrap(), bytes, "the checkpoint changed");
    true
}

/// Examples the training checkpoints of [`train_checkpoint`] are read for (`order` must be a
/// permutation of them).
pub const TRAIN_CHECKPOINT_EXAMPLES: usize = 4;

/// A training checkpoint (`TrainCheckpoint::read`, what `ddlens train --resume` reads) for
/// the tiny model over [`TRAIN_CHECKPOINT_EXAMPLES`] examples, without state or with the
/// BatchNorm running statistics of `tiny-bn-1x8x8`, with a write/read round trip.
pub fn train_checkpoint(data: &[u8]) -> bool {
    let path = put("train_checkpoint", "train.ckpt", data);
    for m in [tiny_manifest(), tiny_bn_manifest()] {
        let (specs, state) = (&m.params, &m.state);
        let Ok(c) = TrainCheckpoint::read(&path, specs, state, TRAIN_CHECKPOINT_EXAMPLES) else {
            continue;
        };
        assert_eq!(c.order.len(), TRAIN_CHECKPOINT_EXAMPLES);
        assert_eq!(c.state.len(), state.len());
        let bytes = c.to_bytes().expect("a checkpoint that reads encodes");
        let again = put("train_checkpoint", "again.ckpt", &bytes);
        let back = TrainCheckpoint::read(&again, specs, state, TRAIN_CHECKPOINT_EXAMPLES)
            .expect("an encoded checkpoint reads back");
        assert_eq!(back.to_bytes().unwrap(), bytes, "the checkpoint changed");
        return true;
    }
    false
}

/// An expert folder (`ExpertDir::open`, then `load_all`): the input holds the index
/// `experts.json` and the one checkpoint `expert-0000/epoch-0000.safetensors` ([`split`]).
pub fn experts(data: &[u8]) -> bool {
    let manifest = tiny_manifest();
    let (index, checkpoint) = split(data);
    let dir = scratch("experts");
    put("experts", "experts.json", index);
    put("experts", "expert-0000/epoch-0000.safetensors", checkpoint);
    let Ok(experts) = ExpertDir::open(&dir, manifest) else {
        return false;
    };
    let _ = experts.checkpoint(0, 0);
    let Ok(all) = experts.load_all() else {
        return false;
    };
    assert_eq!(all.len(), experts.experts());
    true
}

/// An analysis result file as the report reads it (`report::html::read_results`), each
/// result's text and verdict (`Entry::summary`, `Entry::verdict`), and the whole report
/// (`analysis::write_report`), which refuses figure names that are paths and embeds only
/// regular files of bounded size. Accepted: a result whose text, verdict and report all come
/// out.
pub fn report_results(data: &[u8]) -> bool {
    let dir = scratch("report_results");
    let _ = std::fs::remove_file(dir.join("report.html"));
    put("report_results", "result.json", data);
    let order: Vec<&str> = ddlens::analysis::names().collect();
    let Ok(results) = ddlens::report::html::read_results(&dir, &order) else {
        return false;
    };
    let mut accepted = !results.is_empty();
    for r in &results {
        match ddlens::analysis::find(&r.analysis) {
            Ok(entry) => {
                accepted &= (entry.summary)(&r.envelope["result"]).is_ok();
                accepted &= (entry.verdict)(&r.envelope["result"]).is_ok();
            }
            Err(_) => accepted = false,
        }
    }
    let report = ddlens::analysis::write_report(&dir, &dir.join("report.html"), "fuzz");
    accepted && report.is_ok()
}

/// An agreement pool file (`read_pool_files`, i.e. `PoolShard::read`), then merging it
/// (`merge_pool`) as `ddlens analyze agreement --merge` does; a shard that reads is written
/// and reads back to the same bytes.
pub fn pool_file(data: &[u8]) -> bool {
    let path = put("pool_file", "agreement-pool-0.safetensors", data);
    let Ok(shards) = read_pool_files(std::slice::from_ref(&path)) else {
        return false;
    };
    let again = path.with_file_name("again.safetensors");
    shards[0].write(&again).expect("a shard that reads writes");
    let first = std::fs::read(&again).unwrap();
    PoolShard::read(&again)
        .expect("a written shard reads back")
        .write(&again)
        .unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), first, "the shard changed");
    let config = AgreementConfig::for_budget(Budget::Smoke, 0);
    let _ = merge_pool(&shards, &shards[0].fingerprint, &config);
    true
}
