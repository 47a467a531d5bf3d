//! `ddlens train`: one model on real data, a random real subset or a distilled set.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use ddlens::data;
use ddlens::train::{self, Hook, SgdConfig, TrainConfig};
use ddlens::{Error, Result};
use serde_json::json;

use crate::args::{open_model_and_data, read_set, DataArgs};
use crate::bar::{progress_hook, Bar};

/// Options of `ddlens train`.
#[derive(Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Train on a distilled set (safetensors, .npz / images.npy, or zoo:NAME) instead of real data.
    #[arg(long, value_name = "FILE", conflicts_with = "ipc")]
    pub distilled: Option<PathBuf>,
    /// Train on a class-balanced random real subset with this many images per class.
    #[arg(long)]
    pub ipc: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Minibatch size.
    #[arg(long, default_value_t = 256, conflicts_with = "full_batch")]
    pub batch_size: usize,
    /// Full-batch training (the paper's P_dist).
    #[arg(long)]
    pub full_batch: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Multiply the lr by 0.1 at half of the epochs.
    #[arg(long)]
    pub step_lr: bool,
    /// Seed of initialisation, subset and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (params.safetensors and train.json).
    #[arg(long, default_value = "ddlens-out/train")]
    pub out: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the checkpoint OUT/train.ckpt at the end of an epoch once this many seconds have
    /// passed since the last one (0: every epoch); it is removed when the run has finished.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub checkpoint_secs: f64,
    /// Continue an interrupted run from OUT/train.ckpt (same command otherwise): the result
    /// is bit-identical to an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
}

/// Trains, evaluates on the test split and writes the parameters and a log.
pub(crate) fn run(args: TrainArgs) -> Result<()> {
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let (train_set, source) = match (&args.distilled, args.ipc) {
        (Some(path), _) => (
            read_set(path, &args.data)?.data,
            format!("distilled {}", path.display()),
        ),
        (None, Some(ipc)) => {
            let idx = data::class_balanced(&splits.train, ipc, args.seed)?;
            (
                splits.train.select(&idx)?,
                format!("random real subset, {ipc} per class"),
            )
        }
        (None, None) => (splits.train.clone(), "full training set".to_string()),
    };
    train_set.check_against(bundle.manifest())?;
    let config = TrainConfig {
        epochs: args.epochs,
        max_steps: args.max_steps,
        batch_size: (!args.full_batch).then_some(args.batch_size),
        lr: args.lr,
        sgd: SgdConfig {
            momentum: args.momentum,
            weight_decay: args.weight_decay,
        },
        schedule: if args.step_lr {
            let per_epoch = if args.full_batch {
                1
            } else {
                train_set.len().div_ceil(args.batch_size)
            };
            train::Schedule::Step {
                milestones: vec![args.epochs / 2 * per_epoch],
                gamma: 0.1,
            }
        } else {
            train::Schedule::Constant
        },
        seed: args.seed,
        augment: None,
    };
    config.validate()?;
    let total = config.total_steps(train_set.len());
    let bar = Bar::new("train", total as u64);
    let mut hook = progress_hook(&bar);
    let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
    if !(args.checkpoint_secs >= 0.0 && args.checkpoint_secs.is_finite()) {
        return Err(Error::invalid(
            "checkpoint-secs",
            "must be a number of seconds, 0 or more",
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let checkpointing = train::Checkpointing {
        path: args.out.join("train.ckpt"),
        every_secs: args.checkpoint_secs,
        resume: args.resume,
    };
    let start = Instant::now();
    let out = train::train_checkpointed(
        &bundle,
        bundle.init_params(args.seed),
        &train_set,
        &config,
        hooks,
        Some(&checkpointing),
    )?;
    let train_secs = start.elapsed().as_secs_f64();
    bar.finish();
    let eval = train::evaluate_with_state(&bundle, &out.params, &out.state, &splits.test)?;
    let params_path = args.out.join("params.safetensors");
    train::save_model(&params_path, bundle.manifest(), &out.params, &out.state)?;
    let images_seen: usize = (out.log.len() - out.resumed_from)
        * config
            .batch_size
            .unwrap_or(train_set.len())
            .min(train_set.len());
    let report = json!({
        "model": bundle.name(),
        "dataset": args.data.dataset.as_str(),
        "train_set": source,
        "train_size": train_set.len(),
        "config": config,
        "steps": out.steps,
        "train_seconds": train_secs,
        "resumed_from_step": out.resumed_from,
        "images_per_second": images_seen as f64 / train_secs.max(1e-9),
        "test": eval,
        "params": params_path,
        "loss_per_step": out.log.iter().map(|s| s.loss).collect::<Vec<_>>(),
    });
    let log_path = args.out.join("train.json");
    ddlens::io::write_atomic(
        &log_path,
        serde_json::to_string_pretty(&report)
            .expect("json")
            .as_bytes(),
    )?;
    // The results are written: the checkpoint has served.
    if checkpointing.path.is_file() {
        std::fs::remove_file(&checkpointing.path).map_err(|e| Error::io(&checkpointing.path, e))?;
    }
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} on {} ({} images, {} steps): test accuracy {:.2}%, loss {:.4}; {:.1} s, {:.0} images/s\nwrote {} and {}",
            bundle.name(),
            source,
            train_set.len(),
            out.steps,
            eval.accuracy * 100.0,
            eval.loss,
            train_secs,
            report["images_per_second"].as_f64().unwrap_or(0.0),
            params_path.display(),
            log_path.display()
        );
    }
    Ok(())
}
