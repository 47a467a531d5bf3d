//! Replays the fuzz corpora: every file of `fuzz/corpus/<target>/` (seeds and what fuzzing
//! found interesting) and `fuzz/regressions/<target>/` (inputs that once crashed a reader)
//! goes through the fuzz target's own body (`fuzz/targets.rs`), so a reader that panics again
//! on any of them fails plain `cargo test`. Fuzzing itself is `scripts/fuzz` (see
//! docs/reliability.md).
//!
//! The seeds are made with ddlens's own writers by the ignored test `make_seed_corpora`:
//! `cargo test --release --test fuzz_corpora -- --ignored make_seed_corpora` rewrites the
//! `seed-*` and `bad-*` files (it needs ONNX Runtime for the analysis results, and the
//! Debian Fashion-MNIST package for one IDX seed).

#[path = "../fuzz/targets.rs"]
mod targets;

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, in name order (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn body(target: &str) -> fn(&[u8]) -> bool {
    targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target `{target}` in fuzz/targets.rs"))
        .1
}

/// libFuzzer's `-timeout` in `scripts/fuzz`: an input that once ran past it (a `timeout-*`
/// regression) must now finish well inside it.
const FUZZ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs every corpus and regression file of `target` through its body; the corpus must not
/// be empty. A panic names the file; so does a `seed-*` file the reader refuses, a `bad-*`
/// file it accepts (other names, e.g. what fuzzing added, may go either way), and a
/// `timeout-*` or `slow-unit-*` file that still takes the fuzzer's time limit.
fn replay(target: &str) {
    let run = body(target);
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: run `cargo test --release --test fuzz_corpora -- \
         --ignored make_seed_corpora`"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap();
        let started = std::time::Instant::now();
        let Ok(accepted) = std::panic::catch_unwind(|| run(&data)) else {
            panic!("{target} panics on {}", file.display());
        };
        let took = started.elapsed();
        let name = file.file_name().unwrap().to_string_lossy();
        if name.starts_with("timeout-") || name.starts_with("slow-unit-") {
            assert!(
                took < FUZZ_TIMEOUT,
                "{target} still takes {took:?} on {} (the fuzzer's limit is {FUZZ_TIMEOUT:?})",
                file.display()
            );
        }
        if name.starts_with("seed-") {
            assert!(accepted, "{target} refuses the seed {}", file.display());
        }
        if name.starts_with("bad-") {
            assert!(!accepted, "{target} accepts the corrupt {}", file.display());
        }
    }
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*

        /// The tests above, the target table and the fuzz binaries name the same targets.
        #[test]
        fn every_target_is_replayed_and_has_a_fuzz_binary() {
            let replayed = [$(stringify!($target)),*];
            let table: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(replayed.as_slice(), table.as_slice());
            let cargo = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
            let mut binaries: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
                .iter()
                .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            binaries.sort();
            let mut sorted = table.clone();
            sorted.sort();
            assert_eq!(binaries, sorted, "fuzz/fuzz_targets/*.rs");
            for t in table {
                assert!(
                    cargo.contains(&format!("name = \"{t}\"")),
                    "fuzz/Cargo.toml has no [[bin]] `{t}`"
                );
            }
        }
    };
}

replay_tests!(
    idx_images,
    idx_labels,
    cifar10_batch,
    distilled_safetensors,
    distilled_npz,
    distilled_npy,
    params,
    manifest,
    distill_checkpoint,
    experts,
    report_results,
    pool_file,
    pt_import,
    train_checkpoint,
);

/// The split of two-file inputs is the inverse of the join the seeds are made with.
#[test]
fn split_inverts_join() {
    let joined = targets::join(b"abc", b"de");
    assert_eq!(targets::split(&joined), (&b"abc"[..], &b"de"[..]));
    assert_eq!(targets::split(b"ab"), (&b"ab"[..], &b""[..]));
    let short = [9, 0, 0, 0, 1, 2];
    assert_eq!(targets::split(&short), (&[1u8, 2][..], &b""[..]));
}

/// Writes the seed corpora (`seed-*` valid files, `bad-*` corrupt ones) with ddlens's writers,
/// and the hand-made regression inputs of fuzz/regressions (one per bug fixed; the fuzzer's
/// own finds are kept there as it wrote them).
#[test]
#[ignore = "rewrites fuzz/corpus and fuzz/regressions; run by hand"]
fn make_seed_corpora() {
    seeds::write_all();
    seeds::regressions();
}

mod seeds {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::Path;

    use ddlens::analysis::agreement::{PoolMember, PoolShard, Shard};
    use ddlens::bundle::Params;
    use ddlens::data::DistilledMeta;
    use ndarray::{Array1, Array4, ArrayD};
    use ndarray_npy::{NpzWriter, WriteNpyExt};

    use super::{common, fuzz_dir, targets};

    fn save(target: &str, name: &str, data: &[u8]) {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }

    fn regression(target: &str, name: &str, data: &[u8]) {
        let dir = fuzz_dir().join("regressions").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }

    fn safetensors(
        tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
        meta: &[(&str, &str)],
    ) -> Vec<u8> {
        let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| {
                let v = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
                (*n, v)
            })
            .collect();
        let meta: std::collections::HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    /// One input per bug the fuzzers found or the readers' review did (docs/reliability.md).
    pub fn regressions() {
        use safetensors::Dtype;
        // IDX: a gzip file whose data goes on past what its header announces inflated all of
        // it (a small file could fill memory); now reading stops one byte past.
        let mut bomb = idx(0x803, &[1, 2, 2], &[1, 2, 3, 4]);
        bomb.extend(std::iter::repeat_n(0u8, 1 << 20));
        regression("idx_images", "gzip-past-header", &gzip(&bomb));

        // .npy / .npz: a header announcing a huge array was allocated before the data was
        // read (abort); so was a format-2 header length of 4 GiB.
        let one_image = npy(&images(1, 1, 2));
        let label0 = npy(&Array1::from(vec![0i64]));
        let huge = super::common::npy_raw("<f4", "(1099511627776, 1, 1, 1)", &[]);
        regression(
            "distilled_npy",
            "npy-huge-shape",
            &targets::join(&huge, &label0),
        );
        let mut long_header = b"\x93NUMPY\x02\x00".to_vec();
        long_header.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        long_header.extend_from_slice(b"{'descr': '<f4'");
        regression(
            "distilled_npy",
            "npy-header-4gib",
            &targets::join(&long_header, &label0),
        );
        // A zero-sized array whose other dimensions overflow: ndarray-npy's `unwrap` panicked.
        let zero_by_huge =
            super::common::npy_raw("<f4", "(0, 1099511627776, 1099511627776, 1)", &[]);
        regression(
            "distilled_npy",
            "npy-zero-by-huge",
            &targets::join(&zero_by_huge, &npy(&Array1::<i64>::zeros(0))),
        );
        // A label of i64::MAX made the inferred class count 2^63 and the class table with it.
        let max_label = npy(&Array1::from(vec![i64::MAX]));
        regression(
            "distilled_npy",
            "label-i64-max",
            &targets::join(&one_image, &max_label),
        );
        // A header whose brackets nest 50 deep: ndarray-npy's backtracking header parser took
        // longer than libFuzzer's 10 s (found by fuzzing); now refused before parsing.
        let nested = super::common::npy_raw(
            "<f4",
            &format!("{}(1,){}", "[".repeat(50), "]".repeat(50)),
            &[],
        );
        regression(
            "distilled_npy",
            "npy-nested-brackets",
            &targets::join(&nested, &label0),
        );
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("images.npy", stored).unwrap();
        zip.write_all(&huge).unwrap();
        zip.start_file("labels.npy", stored).unwrap();
        zip.write_all(&label0).unwrap();
        regression(
            "distilled_npz",
            "npz-huge-shape",
            &zip.finish().unwrap().into_inner(),
        );

        // Distilled safetensors: a zero-sized image tensor whose other dimensions overflow
        // (panic in ndarray), and a huge `num_classes` (class table allocation).
        let big = 1usize << 40;
        regression(
            "distilled_safetensors",
            "images-zero-by-huge",
            &safetensors(
                vec![
                    ("images", Dtype::F32, vec![0, big, big, big], vec![]),
                    ("labels", Dtype::I64, vec![0], vec![]),
                ],
                &[],
            ),
        );
        let set = distilled(None);
        let pixels: Vec<u8> = set
            .data
            .images()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let labels: Vec<u8> = set
            .data
            .labels()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        regression(
            "distilled_safetensors",
            "num-classes-2-pow-40",
            &safetensors(
                vec![
                    ("images", Dtype::F32, vec![4, 1, 3, 3], pixels),
                    ("labels", Dtype::I64, vec![4], labels),
                ],
                &[("num_classes", "1099511627776")],
            ),
        );

        // Checkpoint: a huge `num_classes` read fine and sized the class table on resume.
        let checkpoint = ddlens::distill::Checkpoint {
            iteration: 0,
            synthetic: ddlens::distill::Synthetic {
                images: images(1, 1, 2),
                labels: Array1::from(vec![0]),
                num_classes: big,
                lr: None,
            },
            state: vec![],
            losses: vec![],
            fingerprint: serde_json::json!({}),
        };
        regression(
            "distill_checkpoint",
            "num-classes-2-pow-40",
            &checkpoint.to_bytes().unwrap(),
        );

        // Manifests: initialiser numbers beyond f32 read as infinities, which made
        // `Params::init` panic or the written manifest unreadable; parameter shapes whose
        // element count overflows.
        let tiny = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-1x8x8/manifest.json"),
        )
        .unwrap();
        let mut m: serde_json::Value = serde_json::from_str(&tiny).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut m = m.clone();
            f(&mut m);
            serde_json::to_vec_pretty(&m).unwrap()
        };
        regression(
            "manifest",
            "normal-std-1e39",
            &edit(&|m| {
                m["params"][0]["init"] =
                    serde_json::json!({"kind": "normal", "mean": 0.0, "std": 1e39})
            }),
        );
        regression(
            "manifest",
            "uniform-spread-overflows",
            &edit(&|m| {
                m["params"][0]["init"] =
                    serde_json::json!({"kind": "uniform", "low": -3e38, "high": 3e38})
            }),
        );
        regression(
            "manifest",
            "constant-1e39",
            &edit(&|m| {
                m["params"][1]["init"] = serde_json::json!({"kind": "constant", "value": 1e39})
            }),
        );
        m["params"][0]["shape"] = serde_json::json!([4294967296u64, 4294967296u64, 4]);
        regression(
            "manifest",
            "param-count-overflows",
            &serde_json::to_vec_pretty(&m).unwrap(),
        );

        // Analysis results with fewer points than steps (a damaged file): the verdicts of
        // `mixing` (found by fuzzing) and `curvature` indexed past the end.
        let seed = std::fs::read(fuzz_dir().join("corpus/report_results/seed-curvature")).unwrap();
        let mut curvature: serde_json::Value = serde_json::from_slice(&seed).unwrap();
        curvature["result"]["steps"] = serde_json::json!([0, 60]);
        for set in curvature["result"]["sets"].as_array_mut().unwrap() {
            set["traces"].as_array_mut().unwrap().truncate(1);
        }
        regression(
            "report_results",
            "curvature-traces-fewer-than-steps",
            &serde_json::to_vec(&curvature).unwrap(),
        );

        // Pool files: a shard count of 2^40 sized the merge's table of shards seen.
        let shard = PoolShard {
            shard: Shard {
                index: 0,
                count: big,
            },
            fingerprint: "{}".into(),
            members: vec![PoolMember {
                job: 0,
                step: 0,
                accuracy: 0.5,
                predictions: vec![1, 2],
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.safetensors");
        shard.write(&path).unwrap();
        regression(
            "pool_file",
            "shard-count-2-pow-40",
            &std::fs::read(&path).unwrap(),
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    fn images(n: usize, c: usize, hw: usize) -> Array4<f32> {
        Array4::from_shape_fn((n, c, hw, hw), |(i, ch, y, x)| {
            (i * 7 + ch * 3 + y * 2 + x) as f32 / 10.0 - 1.0
        })
    }

    fn distilled(lr: Option<f32>) -> ddlens::DistilledSet {
        let data =
            ddlens::Dataset::new(images(4, 1, 3), Array1::from(vec![0, 0, 1, 1]), 2, "s").unwrap();
        let meta = DistilledMeta {
            method: "dm".into(),
            ipc: 2,
            dataset: String::new(),
            model: "tiny-1x8x8".into(),
            seed: Some(3),
            extra: BTreeMap::from([("note".to_string(), "seed".to_string())]),
        };
        ddlens::DistilledSet::new(data, lr, meta).unwrap()
    }

    fn npy<T: WriteNpyExt>(array: &T) -> Vec<u8> {
        let mut out = Vec::new();
        array.write_npy(&mut out).unwrap();
        out
    }

    fn tiny_params(scale: f32) -> Params {
        let specs = &targets::tiny_manifest().params;
        let n = targets::tiny_manifest().num_parameters();
        let flat: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01 - 0.5) * scale).collect();
        Params::from_flat(specs, &flat).unwrap()
    }

    fn params_bytes(p: &Params) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        ddlens::train::save_params(&path, targets::tiny_manifest(), p).unwrap();
        std::fs::read(path).unwrap()
    }

    pub fn write_all() {
        idx_seeds();
        cifar_seeds();
        distilled_seeds();
        params_seeds();
        checkpoint_seeds();
        train_checkpoint_seeds();
        pool_seeds();
        report_seeds();
        pt_seeds();
    }

    /// Small sets written with `torch.save` by tests/pt/make_sets.py (`fuzz` mode), with the
    /// project's `.venv`; skipped, keeping the committed seeds, without it.
    fn pt_seeds() {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pt/make_sets.py");
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new(python)
            .arg(&script)
            .arg(dir.path())
            .arg("fuzz")
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("pt_import seeds not rewritten: no .venv with torch");
            return;
        }
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        let res = read("res.pt");
        save("pt_import", "seed-dc-res", &res);
        save(
            "pt_import",
            "seed-mtt",
            &targets::join(&read("images_fuzz.pt"), &read("labels_fuzz.pt")),
        );
        save("pt_import", "bad-custom-object", &read("custom.pt"));
        save("pt_import", "bad-truncated", &res[..res.len() / 2]);
        save(
            "pt_import",
            "bad-mtt-labels-as-images",
            &targets::join(&read("labels_fuzz.pt"), &read("labels_fuzz.pt")),
        );
    }

    fn idx_seeds() {
        let body: Vec<u8> = (0..12).map(|i| i * 20).collect();
        let raw = idx(0x803, &[3, 2, 2], &body);
        save("idx_images", "seed-raw", &raw);
        save("idx_images", "seed-gz", &gzip(&raw));
        save("idx_images", "bad-magic", &idx(0x801, &[3, 2, 2], &body));
        save("idx_images", "bad-truncated", &raw[..raw.len() - 4]);
        save(
            "idx_images",
            "bad-huge-dims",
            &idx(0x803, &[u32::MAX; 3], &body),
        );
        let gz = gzip(&raw);
        save("idx_images", "bad-gz-truncated", &gz[..gz.len() / 2]);
        // The head of the real Fashion-MNIST test images: the header announces 10000 images;
        // kept with 2 images, and with the count patched to 2.
        let real = Path::new("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
        if let Ok(gz) = std::fs::read(real) {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut all)
                .unwrap();
            let mut head = all[..16 + 2 * 784].to_vec();
            save("idx_images", "bad-fashion-mnist-head", &head);
            head[4..8].copy_from_slice(&2u32.to_be_bytes());
            save("idx_images", "seed-fashion-mnist-2.gz", &gzip(&head));
        }
        let labels = idx(0x801, &[4], &[0, 9, 3, 1]);
        save("idx_labels", "seed-raw", &labels);
        save("idx_labels", "seed-gz", &gzip(&labels));
        save("idx_labels", "bad-trailing", &[&labels[..], &[7]].concat());
        save("idx_labels", "bad-magic", &idx(0x803, &[4], &[0, 9, 3, 1]));
        save("idx_labels", "bad-short-header", &labels[..6]);
    }

    fn cifar_seeds() {
        let record = |label: u8| {
            let mut r = vec![label];
            r.extend((0..3072).map(|i| (i % 251) as u8));
            r
        };
        save("cifar10_batch", "seed-2", &[record(3), record(9)].concat());
        save("cifar10_batch", "bad-label", &record(10));
        save("cifar10_batch", "bad-truncated", &record(1)[..3000]);
    }

    fn distilled_seeds() {
        let with_lr = distilled(Some(0.01)).to_bytes().unwrap();
        save("distilled_safetensors", "seed-lr", &with_lr);
        save(
            "distilled_safetensors",
            "seed-plain",
            &distilled(None).to_bytes().unwrap(),
        );
        save(
            "distilled_safetensors",
            "bad-truncated",
            &with_lr[..with_lr.len() - 8],
        );
        let mut huge = with_lr.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        save("distilled_safetensors", "bad-header-length", &huge);

        let set = distilled(Some(0.02));
        let imgs = set.data.images().clone();
        let labels = set.data.labels().clone();
        let npz = |compressed: bool, f64_images: bool| {
            let options =
                zip::write::SimpleFileOptions::default().compression_method(if compressed {
                    zip::CompressionMethod::Deflated
                } else {
                    zip::CompressionMethod::Stored
                });
            let mut w = NpzWriter::new_with_options(std::io::Cursor::new(Vec::new()), options);
            if f64_images {
                w.add_array("images", &imgs.mapv(f64::from)).unwrap();
                w.add_array("labels", &labels.mapv(|l| l as i32)).unwrap();
            } else {
                w.add_array("images", &imgs).unwrap();
                w.add_array("labels", &labels).unwrap();
                w.add_array("lr", &ndarray::arr0(0.02f32)).unwrap();
            }
            w.finish().unwrap().into_inner()
        };
        save("distilled_npz", "seed-savez", &npz(false, false));
        save("distilled_npz", "seed-savez-compressed", &npz(true, false));
        save("distilled_npz", "seed-f64-i32", &npz(true, true));
        let stored = npz(false, false);
        save(
            "distilled_npz",
            "bad-truncated",
            &stored[..stored.len() / 2],
        );

        let images_npy = npy(&imgs);
        let labels_npy = npy(&labels);
        save(
            "distilled_npy",
            "seed-f32-i64",
            &targets::join(&images_npy, &labels_npy),
        );
        save(
            "distilled_npy",
            "seed-f64-i32",
            &targets::join(
                &npy(&imgs.mapv(f64::from)),
                &npy(&labels.mapv(|l| l as i32)),
            ),
        );
        save(
            "distilled_npy",
            "bad-label-count",
            &targets::join(&images_npy, &npy(&Array1::from(vec![0i64, 1]))),
        );
        save(
            "distilled_npy",
            "bad-rank",
            &targets::join(&npy(&ArrayD::<f32>::zeros(vec![2, 3])), &labels_npy),
        );
    }

    fn params_seeds() {
        let p = params_bytes(&tiny_params(1.0));
        save("params", "seed-tiny", &p);
        save("params", "bad-truncated", &p[..p.len() - 4]);
        let index = |experts: usize, epochs: usize| {
            let index = ddlens::distill::ExpertIndex {
                format: ddlens::distill::EXPERTS_FORMAT.into(),
                model: "tiny-1x8x8".into(),
                experts,
                epochs,
                lr: 0.01,
                momentum: 0.0,
                batch: 256,
                augment: "none".into(),
                seed: 0,
            };
            serde_json::to_vec_pretty(&index).unwrap()
        };
        save("experts", "seed-one", &targets::join(&index(1, 0), &p));
        save("experts", "seed-none", &targets::join(&index(0, 3), b""));
        save("experts", "bad-missing", &targets::join(&index(2, 1), &p));
        save(
            "experts",
            "bad-params",
            &targets::join(&index(1, 0), &p[..100]),
        );

        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for (name, model) in [("seed-tiny", "tiny-1x8x8"), ("seed-mlp", "mlp-1x28x28")] {
            let text = std::fs::read(models.join(model).join("manifest.json")).unwrap();
            save("manifest", name, &text);
        }
        let tiny = std::fs::read_to_string(models.join("tiny-1x8x8/manifest.json")).unwrap();
        save(
            "manifest",
            "bad-version",
            tiny.replace("\"format_version\": 1", "\"format_version\": 2")
                .as_bytes(),
        );
        save(
            "manifest",
            "bad-truncated",
            &tiny.as_bytes()[..tiny.len() / 2],
        );
    }

    fn checkpoint_seeds() {
        let state = ArrayD::from_shape_fn(vec![2, 3], |i| i[0] as f32 - i[1] as f32);
        let checkpoint = ddlens::distill::Checkpoint {
            iteration: 2,
            synthetic: ddlens::distill::Synthetic {
                images: images(2, 1, 2),
                labels: Array1::from(vec![0, 1]),
                num_classes: 2,
                lr: Some(0.01),
            },
            state: vec![("velocity".into(), state)],
            losses: vec![1.5, 1.25],
            fingerprint: serde_json::json!({"method": "mtt", "seed": 1, "lr": 0.5}),
        };
        let bytes = checkpoint.to_bytes().unwrap();
        save("distill_checkpoint", "seed-mtt", &bytes);
        save(
            "distill_checkpoint",
            "bad-truncated",
            &bytes[..bytes.len() - 3],
        );
    }

    fn train_checkpoint_seeds() {
        let params = tiny_params(0.5);
        let velocity = tiny_params(-0.25);
        let log = (0..3)
            .map(|i| ddlens::train::StepLog {
                step: i + 1,
                epoch: i / 2,
                loss: 2.0 - i as f32 * 0.25,
                lr: 0.01,
            })
            .collect();
        let checkpoint = ddlens::train::TrainCheckpoint {
            epoch: 2,
            params,
            state: Params::empty(),
            velocity: Some(velocity),
            order: vec![2, 0, 3, 1],
            rng_pos: 1 << 70,
            aug_rng_pos: 17,
            log,
            fingerprint: serde_json::json!({"model": "tiny-1x8x8", "config": {"lr": 0.01}}),
        };
        assert_eq!(checkpoint.order.len(), targets::TRAIN_CHECKPOINT_EXAMPLES);
        let bytes = checkpoint.to_bytes().unwrap();
        save("train_checkpoint", "seed-momentum", &bytes);
        let fresh = ddlens::train::TrainCheckpoint {
            velocity: None,
            log: vec![],
            epoch: 0,
            ..checkpoint
        };
        save("train_checkpoint", "seed-fresh", &fresh.to_bytes().unwrap());
        save(
            "train_checkpoint",
            "bad-truncated",
            &bytes[..bytes.len() - 3],
        );
        // `order` with a repeated example: not a permutation.
        let repeated = ddlens::train::TrainCheckpoint {
            order: vec![0, 0, 1, 2],
            ..fresh.clone()
        };
        save(
            "train_checkpoint",
            "bad-order",
            &repeated.to_bytes().unwrap(),
        );
        // With BatchNorm running statistics (tiny-bn-1x8x8's `state`).
        let bn = targets::tiny_bn_manifest();
        let values: Vec<f32> = (0..8).map(|i| 0.1 * i as f32).collect();
        let running = ddlens::train::TrainCheckpoint {
            state: Params::from_flat(&bn.state, &values).unwrap(),
            ..fresh.clone()
        };
        save(
            "train_checkpoint",
            "seed-running-stats",
            &running.to_bytes().unwrap(),
        );
        // Only the running means: the state of neither model.
        let short = ddlens::train::TrainCheckpoint {
            state: Params::from_flat(&bn.state[..1], &values[..4]).unwrap(),
            ..fresh
        };
        save(
            "train_checkpoint",
            "bad-state-length",
            &short.to_bytes().unwrap(),
        );
    }

    fn pool_seeds() {
        let shard = PoolShard {
            shard: Shard { index: 0, count: 1 },
            fingerprint: "{\"model\":\"tiny-1x8x8\"}".into(),
            members: (0..3)
                .map(|j| PoolMember {
                    job: j,
                    step: 10 * j,
                    accuracy: 0.25 * j as f64,
                    predictions: vec![0, 1, 2, j as u16],
                })
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.safetensors");
        shard.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        save("pool_file", "seed-3", &bytes);
        save("pool_file", "bad-truncated", &bytes[..bytes.len() - 2]);
    }

    /// Every analysis of the registry, run on the tiny bundle with the small settings of
    /// tests/analysis/registry.rs, saved as the report reads it.
    fn report_seeds() {
        use ddlens::analysis::{self, Budget, NamedSet, RealData, Request, RunInfo};
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
        let options = |name: &str| match name {
            "mixing" => r#"{"ks": [0, 2], "runs": 2, "steps": 5}"#,
            "sensitivity" => r#"{"epochs": 4, "lr_factors": [0.5]}"#,
            "pixels" => r#"{"bins": 10, "real_images": 60}"#,
            "recognition" => r#"{"train_epochs": 5, "train_max_steps": 3}"#,
            "agreement" => r#"{"pool_a_fraction_min": 0.1, "pool_a_fraction_max": 0.2}"#,
            "recognition-over-training" => r#"{"steps": 5, "every": 5}"#,
            "curvature" => {
                r#"{"steps": [0, 2], "train_images": 30, "batch": 30, "spectrum_steps": [2]}"#
            }
            "influence" => {
                r#"{"steps": 4, "loo_images": 2, "test_images": 30, "cg_iters": 2, "feature_steps": 2}"#
            }
            other => panic!("no seed settings for the analysis `{other}`"),
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
            (entry.run)(
                &bundle,
                real,
                &sets,
                &request,
                &mut ddlens::progress::Silent,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            let text = std::fs::read(dir.path().join(format!("{}.json", entry.name))).unwrap();
            let mut envelope: serde_json::Value = serde_json::from_slice(&text).unwrap();
            // Without figures, so that the fuzzed report gets past them to the text.
            envelope["figures"] = serde_json::json!([]);
            let compact = serde_json::to_vec(&envelope).unwrap();
            save("report_results", &format!("seed-{}", entry.name), &compact);
        }
        save(
            "report_results",
            "bad-not-a-result",
            br#"{"format": "something-else", "x": [1, 2]}"#,
        );
        save(
            "report_results",
            "bad-no-name",
            br#"{"format": "ddlens-analysis", "result": {}}"#,
        );
        save(
            "report_results",
            "bad-figure",
            br#"{"format": "ddlens-analysis", "analysis": "pixels", "figures": ["none.png"]}"#,
        );
    }
}
