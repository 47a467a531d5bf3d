//! Training with a running-stats bundle (`tiny-bn-1x8x8`): the trainer carries the BatchNorm
//! running statistics the way PyTorch does, evaluates with them, writes them into parameter
//! files and checkpoints (resume stays bit for bit); manifests with a bad `state` are refused
//! by field, and manifests from before state existed still open.

use std::path::{Path, PathBuf};

use ddlens::bundle::NormState;
use ddlens::train::{self, Control, Hook, SgdConfig, StepContext, TrainConfig};
use ddlens::{Bundle, Params};
use ndarray::Array1;
use serde_json::Value;

use super::tiny_bn::{self, MOMENTUM, NAME};
use crate::common;

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        max_steps: None,
        batch_size: Some(12),
        lr: 0.05,
        sgd: SgdConfig {
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        schedule: train::Schedule::Constant,
        seed: 3,
        augment: None,
    }
}

#[test]
fn the_bundle_lists_its_state() {
    let b = common::open(NAME);
    let m = b.manifest();
    assert_eq!(m.norm_state, NormState::RunningStats);
    assert_eq!(m.norm_state.as_str(), "running-stats");
    assert!(b.has_state() && m.batch_statistics);
    let names: Vec<&str> = m.state.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["norm0.running_mean", "norm0.running_var"]);
    let s = b.init_state();
    assert!(s.tensors()[0].iter().all(|&v| v == 0.0));
    assert!(s.tensors()[1].iter().all(|&v| v == 1.0));
    assert_eq!(b.chunk(), None, "training-mode graphs see the whole batch");
}

/// Records the state the hooks see after every update.
struct States(Vec<Params>);

impl Hook for States {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> ddlens::Result<Control> {
        self.0.push(ctx.state.clone());
        Ok(Control::Continue)
    }
}

#[test]
fn training_updates_the_state_as_pytorch_does_and_evaluates_with_it() {
    let b = common::open(NAME);
    let data = common::banded_dataset(36, 1);
    let config = config(4);
    let mut states = States(Vec::new());
    let mut params_seen = Vec::new();
    let mut record = |ctx: &StepContext<'_>| {
        params_seen.push(ctx.params.clone());
        Ok(Control::Continue)
    };
    let out = train::train(
        &b,
        b.init_params(1),
        &data,
        &config,
        &mut [&mut states, &mut record],
    )
    .unwrap();
    assert_eq!(out.steps, 12);
    assert_eq!(states.0.len(), 13);
    assert_eq!(states.0[0], b.init_state());
    assert_eq!(out.state, states.0[12]);
    // Step 1 moved the state by PyTorch's rule from the batch statistics of the first
    // minibatch at the initial parameters (the shuffled order is the trainer's; recover the
    // minibatch as the one whose statistics explain the update).
    let order = first_batch(&b, &data, &config);
    let st = tiny_bn::stats(&b, &params_seen[0], &order);
    for c in 0..4 {
        let got = (
            states.0[1].tensors()[0][[c]] as f64,
            states.0[1].tensors()[1][[c]] as f64,
        );
        common::assert_close("mean", got.0, MOMENTUM * st.mean[c], 1e-5, 1e-6);
        common::assert_close(
            "var",
            got.1,
            (1.0 - MOMENTUM) + MOMENTUM * st.var_unbiased[c],
            1e-5,
            1e-6,
        );
    }
    // It learns, and the evaluation uses the running statistics (a stateless evaluation is
    // refused by name).
    let e = train::evaluate_with_state(&b, &out.params, &out.state, &data).unwrap();
    assert!(e.accuracy > 0.6, "accuracy {}", e.accuracy);
    let err = train::evaluate(&b, &out.params, &data)
        .unwrap_err()
        .to_string();
    assert!(err.contains(NAME) && err.contains("running-stats"), "{err}");
}

/// The first minibatch of `config`'s run over `data` (the trainer's shuffle: ChaCha8 stream 0
/// of the seed, one shuffle per epoch).
fn first_batch(_b: &Bundle, data: &ddlens::Dataset, config: &TrainConfig) -> ndarray::Array4<f32> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut rng);
    let batch = data
        .batches(&order, config.batch_size.unwrap())
        .unwrap()
        .next()
        .unwrap();
    batch.images
}

#[test]
fn evaluation_reads_the_running_statistics_not_the_batch() {
    let b = common::open(NAME);
    let data = common::banded_dataset(36, 2);
    let out = train::train(&b, b.init_params(2), &data, &config(3), &mut []).unwrap();
    // A skewed batch: every image brighter by 3.
    let (mut x, _) = common::batch(&b, 6, 5);
    x.mapv_inplace(|v| v + 3.0);
    let running = b
        .forward_with_state(&out.params, &out.state, x.view())
        .unwrap()
        .logits;
    // Batch-statistics evaluation of the same batch (training mode: its own statistics).
    let batch_stats = tiny_bn::train_forward(&b, &out.params, &x).logits;
    let gap = running
        .iter()
        .zip(&batch_stats)
        .map(|(a, c)| (a - c).abs())
        .fold(0.0f32, f32::max);
    assert!(
        gap > 0.1,
        "running and batch statistics gave the same logits (gap {gap})"
    );
    let want = tiny_bn::eval_logits(&b, &out.params, &out.state, &x);
    for (g, w) in running.iter().zip(&want) {
        common::assert_close("logits", *g as f64, *w, 1e-4, 1e-4);
    }
}

#[test]
fn parameter_files_round_trip_the_state() {
    let b = common::open(NAME);
    let data = common::banded_dataset(24, 3);
    let out = train::train(&b, b.init_params(3), &data, &config(2), &mut []).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    train::save_model(&path, b.manifest(), &out.params, &out.state).unwrap();
    assert_eq!(train::load_params(&path, b.manifest()).unwrap(), out.params);
    assert_eq!(train::load_state(&path, b.manifest()).unwrap(), out.state);
    // Stored under the state's own names (PyTorch's buffer names).
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mean = st.tensor("norm0.running_mean").unwrap();
    assert_eq!(mean.shape(), [4]);
    // A parameters-only file has no state: the error names the tensor and the file.
    let bare = dir.path().join("bare.safetensors");
    train::save_params(&bare, b.manifest(), &out.params).unwrap();
    let err = train::load_state(&bare, b.manifest())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("norm0.running_mean") && err.contains("bare.safetensors"),
        "{err}"
    );
    // The SaveParams hook writes the state too.
    let mut save = train::SaveParams::new(dir.path().join("steps"), 2);
    let again = train::train(&b, b.init_params(3), &data, &config(2), &mut [&mut save]).unwrap();
    let last = save.files.last().unwrap();
    assert_eq!(train::load_state(last, b.manifest()).unwrap(), again.state);
    // A bundle without state reads no state.
    let tiny = common::open("tiny-1x8x8");
    assert!(train::load_state(&bare, tiny.manifest())
        .unwrap()
        .is_empty());
}

/// Fails the run (as a kill would end it) once `at` updates are done.
struct KillAt(usize);

impl Hook for KillAt {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> ddlens::Result<Control> {
        if ctx.step == self.0 {
            return Err(ddlens::Error::Internal("killed".into()));
        }
        Ok(Control::Continue)
    }
}

#[test]
fn an_interrupted_run_resumes_with_its_state_bit_for_bit() {
    let b = common::open(NAME);
    let data = common::banded_dataset(36, 4);
    let config = config(4);
    let whole = train::train(&b, b.init_params(4), &data, &config, &mut []).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = train::Checkpointing {
        path: dir.path().join("train.ckpt"),
        every_secs: 0.0,
        resume: false,
    };
    let run = |hooks: &mut [&mut dyn Hook], c: &train::Checkpointing| {
        train::train_checkpointed(&b, b.init_params(4), &data, &config, hooks, Some(c))
    };
    // 3 updates per epoch: killed during epoch 3, after the checkpoint of epoch 2.
    assert!(run(&mut [&mut KillAt(8)], &ckpt).is_err());
    let saved = train::TrainCheckpoint::read(
        &ckpt.path,
        &b.manifest().params,
        &b.manifest().state,
        data.len(),
    )
    .unwrap();
    assert_eq!(saved.epoch, 2);
    assert_ne!(
        saved.state,
        b.init_state(),
        "the checkpoint carries the trained state"
    );
    let resumed = run(
        &mut [],
        &train::Checkpointing {
            resume: true,
            ..ckpt.clone()
        },
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, 6);
    assert_eq!(resumed.params, whole.params);
    assert_eq!(resumed.state, whole.state, "resumed state differs");
    assert_eq!(resumed.log, whole.log);
    // A checkpoint without the state (another model's) is refused by name.
    let tiny = common::open("tiny-1x8x8");
    let err = train::TrainCheckpoint::read(&ckpt.path, &tiny.manifest().params, &[], data.len())
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.ckpt"), "{err}");
}

/// Copies a committed bundle into a temporary folder.
fn copy_bundle(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(common::models_dir().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (tmp, dst)
}

fn edited(dir: &Path, f: impl FnOnce(&mut Value)) -> String {
    let path = dir.join("manifest.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut v: Value = serde_json::from_str(&original).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let err = match Bundle::open(dir) {
        Ok(_) => panic!("a broken manifest opened"),
        Err(e) => e.to_string(),
    };
    std::fs::write(&path, original).unwrap();
    err
}

/// One way to break a manifest.
type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn bad_state_entries_are_refused_by_field() {
    common::runtime();
    let (_tmp, dir) = copy_bundle(NAME);
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|v| {
                v["state"][1]["init"] =
                    serde_json::json!({"kind": "uniform", "low": 0.0, "high": 1.0})
            }),
            &["state[1]", "norm0.running_var", "constant"],
        ),
        (
            Box::new(|v| v["state"][0]["shape"] = serde_json::json!([0])),
            &["state[0]", "shape"],
        ),
        (
            Box::new(|v| v["state"][1]["name"] = Value::from("norm0.running_mean")),
            &["state[1]", "repeats"],
        ),
        (
            Box::new(|v| v["state"][0]["name"] = Value::from("conv0.weight")),
            &["state[0]", "repeats"],
        ),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("state");
            }),
            &["norm_state", "state"],
        ),
        (
            Box::new(|v| v["norm_state"] = Value::from("batch-stats")),
            &["state", "batch-stats"],
        ),
        (
            Box::new(|v| v["state"][0]["shape"] = serde_json::json!([5])),
            &["norm0.running_mean"],
        ),
        (
            Box::new(|v| v["state"][0]["dtype"] = Value::from("f16")),
            &["dtype"],
        ),
    ];
    for (edit, parts) in cases {
        let err = edited(&dir, edit);
        assert!(
            err.contains("manifest.json") || err.contains(".onnx"),
            "{err}"
        );
        for p in parts {
            assert!(err.contains(p), "`{p}` missing from: {err}");
        }
    }
    // Untouched, it opens.
    Bundle::open(&dir).unwrap();
}

#[test]
fn manifests_from_before_state_still_open() {
    // The committed stateless bundles were written before `state` existed: no field, no
    // state, and every call works as before.
    let b = common::open("tiny-1x8x8");
    let text = std::fs::read_to_string(b.dir().join("manifest.json")).unwrap();
    assert!(!text.contains("\"state\""));
    assert!(!b.has_state() && b.init_state().is_empty());
    let p = b.init_params(1);
    let (x, y) = common::batch(&b, 3, 1);
    let plain = b.forward(&p, x.view()).unwrap();
    let with = b.forward_with_state(&p, &b.init_state(), x.view()).unwrap();
    assert_eq!(plain.logits, with.logits);
    let g = b
        .grad(&p, x.view(), y.view(), Some(Array1::ones(3).view()))
        .unwrap();
    assert!(g.state.is_empty());
}

#[test]
fn computations_without_the_state_are_refused_by_name() {
    // DM matches features of real batches through `forward`, which for this bundle would read
    // untrained running statistics: refused, naming the bundle and the reason.
    use ddlens::augment::{AugOp, Dsa};
    use ddlens::distill::{Dm, Synthetic};
    let b = common::open(NAME);
    let real = common::banded_dataset(30, 1);
    let syn = Synthetic::from_real(&real, 2, 4).unwrap();
    let batches: Vec<_> = real
        .class_indices()
        .iter()
        .map(|idx| real.images().select(ndarray::Axis(0), idx))
        .collect();
    let dsa = Dsa::new(Default::default(), vec![AugOp::Flip]).unwrap();
    let augs: Vec<_> = (0..3)
        .map(|i| dsa.sample_shared(&mut common::rng(i)))
        .collect();
    let err = Dm::loss_and_grad(&b, &b.init_params(1), &syn, &batches, &augs)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(NAME) && err.contains("running statistics") && err.contains("batch-stats"),
        "{err}"
    );
}

#[test]
fn the_standard_evaluation_trains_and_tests_on_the_running_statistics() {
    // What `ddlens eval` runs: each run trains from its seed and tests with its final state.
    use ddlens::train::StandardEval;
    let b = common::open(NAME);
    let (train_set, test) = (
        common::banded_dataset(30, 10),
        common::banded_dataset(30, 11),
    );
    let eval = StandardEval {
        runs: 2,
        epochs: 4,
        lr: 0.05,
        ..StandardEval::new(None)
    };
    let summary = train::standard_evaluation(
        &b,
        &train_set,
        &test,
        "set",
        &eval,
        &mut ddlens::progress::Silent,
    )
    .unwrap();
    let config = eval.train_config(train_set.len(), 1);
    let out = train::train(&b, b.init_params(1), &train_set, &config, &mut []).unwrap();
    let acc = train::evaluate_with_state(&b, &out.params, &out.state, &test)
        .unwrap()
        .accuracy;
    assert_eq!(acc, summary.accuracies[1]);
}
