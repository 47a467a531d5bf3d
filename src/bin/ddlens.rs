//! The `ddlens` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use ddlens::augment::{AugOp, Dsa};
use ddlens::bundle::resolve_bundle;
use ddlens::data::{self, DatasetName, DistilledMeta, Normalizer, Splits};
use ddlens::distill::{
    self, Bptt, BpttConfig, Dc, DcConfig, Dm, DmConfig, ExpertConfig, ExpertDir, ExpertIndex,
    Method, Mtt, MttConfig, RunConfig, RunLog, Synthetic,
};
use ddlens::progress::Progress;
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::train::{self, Control, Hook, SgdConfig, StepContext, TrainConfig};
use ddlens::{Bundle, DistilledSet, Error, Result};
use serde_json::json;

#[path = "ddlens/analyze.rs"]
mod analyze;
#[path = "ddlens/demo.rs"]
mod demo;
#[path = "ddlens/report.rs"]
mod report;

#[derive(Parser)]
#[command(
    name = "ddlens",
    version,
    about = "Distil datasets and show what distilled data has learned"
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(subcommand)]
    command: Command,
}

/// ONNX Runtime options shared by every subcommand.
#[derive(Args)]
struct RuntimeArgs {
    /// Path of libonnxruntime.so (default: DDLENS_ORT_LIB, ORT_DYLIB_PATH, the project copy, python3's onnxruntime).
    #[arg(long, global = true, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Execution provider: cpu, cuda or auto.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_provider)]
    provider: ProviderChoice,
    /// Threads per graph (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

/// Where the data comes from.
#[derive(Args)]
struct DataArgs {
    /// Dataset: fashion-mnist, mnist or cifar10.
    #[arg(long, default_value = "fashion-mnist", value_parser = parse_dataset)]
    dataset: DatasetName,
    /// Folder with the dataset files (default: DDLENS_DATA, or the Debian package's folder for Fashion-MNIST).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Model bundle: a name from models/ (or DDLENS_MODELS) or a bundle folder.
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
}

#[derive(Subcommand)]
enum Command {
    /// Check ONNX Runtime, execution providers, model bundles and datasets.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train a model on real data, a random real subset, or a distilled set.
    Train(TrainArgs),
    /// Standard evaluation of a distilled set (N runs, mean ± std) beside a random real subset of the same size.
    Eval(EvalArgs),
    /// Distil a dataset: random, herding, dm, dc, dsa, mtt or bptt. Writes DIR/<method>-ipc<k>.{safetensors,png,json,ckpt}.
    Distill(DistillArgs),
    /// Generate MTT expert trajectories (SGD on real data, parameters saved every epoch) once,
    /// for `ddlens distill --method mtt --experts DIR`. Run it again to continue an
    /// interrupted generation.
    Experts(ExpertsArgs),
    /// The analyses of "What is Dataset Distillation Learning?": each writes OUT/<name>.json and PNG figures.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCommand),
    /// One self-contained HTML report (figures embedded) from a folder of analysis results.
    Report(report::ReportArgs),
    /// The main job: distil Fashion-MNIST with DM (IPC 10, small budget), run every analysis at small scale and write the HTML report.
    Demo(demo::DemoArgs),
}

#[derive(Args)]
struct ExpertsArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Number of experts (the reference buffer.py trains 100).
    #[arg(long, default_value_t = 10)]
    num_experts: usize,
    /// Epochs per expert (reference 50).
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Expert learning rate (reference 0.01, no momentum).
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Train on plain images (default: DSA augmentation per image, without flip on MNIST).
    #[arg(long)]
    no_dsa: bool,
    /// Seed (expert i uses stream i, so each expert is reproducible on its own).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (experts.json and expert-NNNN/epoch-NNNN.safetensors).
    #[arg(long, default_value = "ddlens-out/experts")]
    out: PathBuf,
    /// Print the index as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Train on a distilled set (safetensors, or .npz / images.npy) instead of real data.
    #[arg(long, value_name = "FILE", conflicts_with = "ipc")]
    distilled: Option<PathBuf>,
    /// Train on a class-balanced random real subset with this many images per class.
    #[arg(long)]
    ipc: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Minibatch size.
    #[arg(long, default_value_t = 256, conflicts_with = "full_batch")]
    batch_size: usize,
    /// Full-batch training (the paper's P_dist).
    #[arg(long)]
    full_batch: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Multiply the lr by 0.1 at half of the epochs.
    #[arg(long)]
    step_lr: bool,
    /// Seed of initialisation, subset and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (params.safetensors and train.json).
    #[arg(long, default_value = "ddlens-out/train")]
    out: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvalArgs {
    /// Distilled set to evaluate (safetensors, .npz or images.npy with labels.npy beside it).
    /// Without it, only a random real subset of `--ipc` images per class is evaluated.
    #[arg(required_unless_present = "ipc")]
    distilled: Option<PathBuf>,
    /// Images per class of the random real subset when no distilled set is given.
    #[arg(long, conflicts_with = "distilled")]
    ipc: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Number of runs (fresh models).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Epochs per run (default: the protocol's 300, or 1000 with --dsa).
    #[arg(long)]
    epochs: Option<usize>,
    /// Train every run with DSA augmentation, a fresh draw per image and minibatch (the
    /// standard strategy; without flip on MNIST), 1000 epochs unless --epochs says otherwise.
    #[arg(long)]
    dsa: bool,
    /// Learning rate (default: the set's learned lr, else 0.01).
    #[arg(long)]
    lr: Option<f32>,
    /// Seed of the first run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip the random real baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(
    after_help = "Iteration budgets (protocols.md): DM runs 20,000 iterations at the reference's full \
budget; the CLI default is 1,000 to keep a first run short. DC and DSA: 1,000 iterations. MTT: 5,000 \
iterations of N = 20 student steps matching M = 2 expert epochs (image lr 1000, lr-of-lr 1e-5). \
BPTT: 1,000 iterations of 100 unrolled steps (RaT-BPTT with --window M). random and herding do not \
iterate.\n\
MTT needs expert trajectories: --experts DIR reuses those of `ddlens experts`; without it they are \
generated first (--num-experts, --expert-epochs) into DIR/experts, and reused from there when \
they match.\n\
Resume an interrupted run with the same command plus --resume: the result is bit-identical to an \
uninterrupted run on CPU."
)]
struct DistillArgs {
    /// Method: random, herding, dm, dc, dsa, mtt or bptt.
    #[arg(long)]
    method: String,
    /// Images per class.
    #[arg(long, default_value_t = 10)]
    ipc: usize,
    #[command(flatten)]
    data: DataArgs,
    /// Iterations (default: 1,000 for dm, whose full budget is 20,000; 1,000 for dc, dsa and
    /// bptt; 5,000 for mtt; none for random/herding).
    #[arg(long)]
    iterations: Option<usize>,
    /// Seed of the initial set, of every iteration's draws and of herding's feature model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image learning rate (dm: 1.0, dc/dsa: 0.1, mtt: 1000, bptt: 100).
    #[arg(long, visible_alias = "lr-img")]
    lr: Option<f32>,
    /// Image momentum (every method: 0.5).
    #[arg(long)]
    momentum: Option<f32>,
    /// Real images per class per iteration (dm, dc, dsa), or in bptt's outer loss batch.
    #[arg(long, default_value_t = 256)]
    batch_real: usize,
    /// No differentiable siamese augmentation in dm and mtt (default: the standard DSA
    /// strategy; without flip on MNIST). dsa always augments; dc and bptt never do.
    #[arg(long)]
    no_dsa: bool,
    /// Inner steps: mtt's student steps N (20), bptt's unrolled training steps (100).
    #[arg(long)]
    syn_steps: Option<usize>,
    /// Synthetic minibatch of mtt's student / bptt's inner training (default: the whole set).
    #[arg(long)]
    batch_syn: Option<usize>,
    /// Learning rate of the learned lr (mtt, bptt with --learn-lr).
    #[arg(long, default_value_t = 1e-5)]
    lr_lr: f32,
    /// mtt: expert trajectories written by `ddlens experts` (default: generate them into
    /// DIR/experts first).
    #[arg(long, value_name = "EXPERTS_DIR")]
    experts: Option<PathBuf>,
    /// mtt: experts to generate when --experts is not given.
    #[arg(long, default_value_t = 10)]
    num_experts: usize,
    /// mtt: epochs per generated expert (reference 50).
    #[arg(long, default_value_t = 50)]
    expert_epochs: usize,
    /// mtt: expert epochs M between the student's start and its target.
    #[arg(long, default_value_t = 2)]
    expert_epochs_ahead: usize,
    /// mtt: start epochs are drawn from 0..this (clamped so that the target exists).
    #[arg(long, default_value_t = 20)]
    max_start_epoch: usize,
    /// bptt: RaT-BPTT, differentiating only the last M steps of a randomly long unroll.
    #[arg(long, value_name = "M")]
    window: Option<usize>,
    /// bptt: learn the inner lr too (stored in the set, used by `ddlens eval`).
    #[arg(long)]
    learn_lr: bool,
    /// herding: features from these parameters (safetensors from `ddlens train`) instead of
    /// training a model for one epoch of P_real.
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "ddlens-out/distill")]
    out: PathBuf,
    /// Write the checkpoint DIR/<method>-ipc<k>.ckpt every this many iterations (and at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Continue from the checkpoint of an earlier run with the same settings.
    #[arg(long)]
    resume: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_provider(s: &str) -> std::result::Result<ProviderChoice, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_dataset(s: &str) -> std::result::Result<DatasetName, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = RuntimeConfig {
        library: cli.runtime.ort_lib,
        provider: cli.runtime.provider,
        threads: cli.runtime.threads,
    };
    if let Command::Doctor { json } = cli.command {
        return doctor(&config, json);
    }
    let result = runtime::init(config).and_then(|_| match cli.command {
        Command::Train(args) => cmd_train(args),
        Command::Eval(args) => cmd_eval(args),
        Command::Distill(args) => cmd_distill(args),
        Command::Experts(args) => cmd_experts(args),
        Command::Analyze(which) => analyze::cmd_analyze(which),
        Command::Report(args) => report::cmd_report(args),
        Command::Demo(args) => demo::cmd_demo(args),
        Command::Doctor { .. } => unreachable!("handled above"),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn doctor(config: &RuntimeConfig, json: bool) -> ExitCode {
    let report = ddlens::doctor::run(config);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", report.render());
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn open_model_and_data(args: &DataArgs) -> Result<(Bundle, Splits)> {
    let bundle = Bundle::open(resolve_bundle(&args.model)?)?;
    let splits = data::load(args.dataset, args.data_dir.as_deref())?;
    splits.train.check_against(bundle.manifest())?;
    Ok((bundle, splits))
}

/// A hook that drives a progress bar and shows the running loss.
fn progress_hook(bar: &Progress) -> impl FnMut(&StepContext<'_>) -> Result<Control> + '_ {
    move |ctx| {
        if ctx.step > 0 {
            bar.set(ctx.step as u64, format!("loss {:.4}", ctx.loss));
        }
        Ok(Control::Continue)
    }
}

fn cmd_train(args: TrainArgs) -> Result<()> {
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let (train_set, source) = match (&args.distilled, args.ipc) {
        (Some(path), _) => (
            read_distilled(path)?.data,
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
    let bar = Progress::new("train", total as u64);
    let mut hook = progress_hook(&bar);
    let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
    let start = Instant::now();
    let out = train::train(
        &bundle,
        bundle.init_params(args.seed),
        &train_set,
        &config,
        hooks,
    )?;
    let train_secs = start.elapsed().as_secs_f64();
    bar.finish();
    let eval = train::evaluate(&bundle, &out.params, &splits.test)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let params_path = args.out.join("params.safetensors");
    train::save_params(&params_path, bundle.manifest(), &out.params)?;
    let images_seen: usize = out.log.len()
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
        "images_per_second": images_seen as f64 / train_secs.max(1e-9),
        "test": eval,
        "params": params_path,
        "loss_per_step": out.log.iter().map(|s| s.loss).collect::<Vec<_>>(),
    });
    let log_path = args.out.join("train.json");
    train::write_atomic(
        &log_path,
        serde_json::to_string_pretty(&report)
            .expect("json")
            .as_bytes(),
    )?;
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

fn read_distilled(path: &Path) -> Result<DistilledSet> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => DistilledSet::import_npz(path, None, Default::default()),
        Some("npy") => {
            let labels = path.with_file_name("labels.npy");
            DistilledSet::import_npy(path, &labels, None, Default::default())
        }
        _ => DistilledSet::read(path),
    }
}

fn cmd_eval(args: EvalArgs) -> Result<()> {
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let mut sets = Vec::new();
    let (per_class, learned_lr) = match (&args.distilled, args.ipc) {
        (Some(path), _) => {
            let set = read_distilled(path)?;
            set.data.check_against(bundle.manifest())?;
            let counts = set.data.class_counts();
            sets.push((path.display().to_string(), set.data));
            (counts, set.lr)
        }
        (None, Some(ipc)) => (vec![ipc; splits.train.num_classes()], None),
        (None, None) => return Err(Error::invalid("distilled", "give a distilled set or --ipc")),
    };
    let lr = args.lr.or(learned_lr).unwrap_or(0.01);
    if !args.no_baseline || sets.is_empty() {
        let idx = balanced_like(&splits.train, &per_class, args.seed)?;
        sets.push(("random real subset".to_string(), splits.train.select(&idx)?));
    }
    let dsa = args.dsa.then(|| match args.data.dataset {
        DatasetName::Mnist => Dsa::default().without(AugOp::Flip),
        _ => Dsa::default(),
    });
    let protocol = train::StandardEval {
        runs: args.runs,
        epochs: args
            .epochs
            .unwrap_or_else(|| train::StandardEval::protocol_epochs(dsa.is_some())),
        lr,
        seed: args.seed,
        augment: dsa.as_ref().map(Dsa::strategy),
    };
    protocol.validate()?;
    let bar = Progress::new("eval", 0);
    let mut summaries = Vec::new();
    for (label, train_set) in &sets {
        let mut progress = |run: usize, step: usize, total: usize| {
            if step == 0 {
                bar.restart(&format!("run {}/{}", run + 1, protocol.runs), total as u64);
            }
            bar.set(step as u64, label.clone());
        };
        let s = train::standard_evaluation(
            &bundle,
            train_set,
            &splits.test,
            label,
            &protocol,
            &mut progress,
        )?;
        summaries.push(s);
    }
    bar.finish();
    if args.json {
        println!(
            "{}",
            json!({
                "model": bundle.name(),
                "epochs": protocol.epochs,
                "lr": lr,
                "protocol": protocol,
                "results": summaries,
            })
        );
    } else {
        println!(
            "standard evaluation on {} ({} runs, {} epochs, lr {lr}, {}):",
            bundle.name(),
            protocol.runs,
            protocol.epochs,
            protocol
                .augment
                .as_deref()
                .map_or_else(|| "no augmentation".to_string(), |s| format!("DSA {s}"))
        );
        for s in &summaries {
            println!(
                "  {:<40} {:>5} images  {:.2} ± {:.2} %",
                s.label,
                s.train_size,
                s.mean * 100.0,
                s.std * 100.0
            );
        }
    }
    Ok(())
}

/// A random real subset with the same number of images per class as `per_class`.
fn balanced_like(train: &ddlens::Dataset, per_class: &[usize], seed: u64) -> Result<Vec<usize>> {
    let max = per_class.iter().copied().max().unwrap_or(0);
    let idx = data::class_balanced(train, max, seed)?;
    // Keep, per class, as many as the distilled set has (sets are usually balanced already).
    let mut taken = vec![0usize; per_class.len()];
    Ok(idx
        .into_iter()
        .filter(|&i| {
            let c = train.labels()[i] as usize;
            taken[c] += 1;
            taken[c] <= per_class.get(c).copied().unwrap_or(0)
        })
        .collect())
}

/// Every method name `ddlens distill --method` knows.
const DISTILL_METHODS: [&str; 7] = ["random", "herding", "dm", "dc", "dsa", "mtt", "bptt"];

/// What a distillation produced, before it is written.
struct Distilled {
    syn: Synthetic,
    log: Option<RunLog>,
    settings: serde_json::Value,
}

fn cmd_distill(args: DistillArgs) -> Result<()> {
    let method = args.method.to_ascii_lowercase();
    if !DISTILL_METHODS.contains(&method.as_str()) {
        return Err(Error::invalid(
            "method",
            format!(
                "unknown method `{}`; available: {}",
                args.method,
                DISTILL_METHODS.join(", ")
            ),
        ));
    }
    if args.ipc == 0 {
        return Err(Error::invalid("ipc", "must be at least 1"));
    }
    let (bundle, splits) = open_model_and_data(&args.data)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stem = format!("{method}-ipc{}", args.ipc);
    let start = Instant::now();
    let distilled = match method.as_str() {
        "random" => Distilled {
            syn: distill::random_set(&splits.train, args.ipc, args.seed)?,
            log: None,
            settings: json!({}),
        },
        "herding" => distill_herding(&args, &bundle, &splits.train)?,
        "dm" => {
            let config = DmConfig {
                batch_real: args.batch_real,
                lr: args.lr.unwrap_or(1.0),
                momentum: args.momentum.unwrap_or(0.5),
                dsa: dsa_for(&args),
            };
            let settings = serde_json::to_value(&config).expect("config serialises");
            let mut dm = Dm::new(config)?;
            run_iterative(
                &args,
                &stem,
                &bundle,
                &splits.train,
                &mut dm,
                settings,
                1000,
            )?
        }
        "dc" | "dsa" => {
            let mut config = DcConfig::for_ipc(args.ipc)?;
            config.batch_real = args.batch_real;
            config.lr_img = args.lr.unwrap_or(config.lr_img);
            config.momentum_img = args.momentum.unwrap_or(config.momentum_img);
            if method == "dsa" {
                if args.no_dsa {
                    return Err(Error::invalid(
                        "no-dsa",
                        "dsa without augmentation is dc; use --method dc",
                    ));
                }
                config = config.with_dsa(dsa_for(&args).expect("augmentation is on"));
            }
            let settings = config.settings();
            let mut dc = Dc::new(config)?;
            run_iterative(
                &args,
                &stem,
                &bundle,
                &splits.train,
                &mut dc,
                settings,
                1000,
            )?
        }
        "mtt" => {
            let experts = open_or_generate_experts(&args, &bundle, &splits.train)?;
            let config = MttConfig {
                syn_steps: args.syn_steps.unwrap_or(20),
                expert_epochs: args.expert_epochs_ahead,
                max_start_epoch: args.max_start_epoch,
                batch_syn: args.batch_syn,
                lr_img: args.lr.unwrap_or(1000.0),
                lr_lr: args.lr_lr,
                lr_init: experts.index().lr,
                momentum: args.momentum.unwrap_or(0.5),
                dsa: dsa_for(&args),
            };
            let index = experts.index().clone();
            let mut settings = config.settings();
            settings["experts"] = json!(index);
            let mut mtt = Mtt::new(config, Box::new(experts))?;
            run_iterative(
                &args,
                &stem,
                &bundle,
                &splits.train,
                &mut mtt,
                settings,
                5000,
            )?
        }
        "bptt" => {
            let defaults = BpttConfig::default();
            let config = BpttConfig {
                steps: args.syn_steps.unwrap_or(defaults.steps),
                batch_syn: args.batch_syn,
                learn_lr: args.learn_lr,
                lr_lr: args.lr_lr,
                lr_img: args.lr.unwrap_or(defaults.lr_img),
                momentum_img: args.momentum.unwrap_or(defaults.momentum_img),
                batch_real: args.batch_real,
                window: args.window,
                ..defaults
            };
            let settings = config.settings();
            let mut bptt = Bptt::new(config)?;
            run_iterative(
                &args,
                &stem,
                &bundle,
                &splits.train,
                &mut bptt,
                settings,
                1000,
            )?
        }
        other => unreachable!("`{other}` was checked against DISTILL_METHODS"),
    };
    write_distilled(&args, &method, &stem, &bundle, distilled, start)
}

/// The augmentation of iterative methods: none with `--no-dsa`, else the standard strategy
/// (without flips on MNIST, whose mirrored digits are not digits).
fn dsa_for(args: &DistillArgs) -> Option<Dsa> {
    if args.no_dsa {
        return None;
    }
    let dsa = Dsa::default();
    Some(match args.data.dataset {
        DatasetName::Mnist => dsa.without(AugOp::Flip),
        _ => dsa,
    })
}

/// The augmentation strategy's name for settings and logs (`none` without augmentation).
fn strategy(dsa: Option<&Dsa>) -> String {
    dsa.map_or_else(|| "none".to_string(), Dsa::strategy)
}

/// The expert settings of `ddlens experts` and of MTT's own generation.
fn expert_config(epochs: usize, lr: f32, batch: usize, dsa: Option<Dsa>) -> ExpertConfig {
    ExpertConfig {
        lr,
        batch,
        dsa,
        ..ExpertConfig::new(epochs)
    }
}

/// Trains `n` experts into `dir` (continuing an interrupted generation with the same
/// settings), with a progress bar over all epochs.
fn generate_experts_into(
    dir: &Path,
    bundle: &Bundle,
    train_set: &ddlens::Dataset,
    n: usize,
    config: &ExpertConfig,
    seed: u64,
) -> Result<ExpertIndex> {
    if n == 0 {
        return Err(Error::invalid("num-experts", "must be at least 1"));
    }
    let bar = Progress::new("experts", (n * config.epochs) as u64);
    let mut progress = |expert: usize, epoch: usize| {
        bar.set(
            (expert * config.epochs + epoch) as u64,
            format!("expert {}/{n}, epoch {epoch}/{}", expert + 1, config.epochs),
        );
        Ok(())
    };
    let index =
        distill::generate_experts_into(dir, bundle, train_set, n, config, seed, &mut progress)?;
    bar.finish();
    Ok(index)
}

/// MTT's experts: `--experts DIR`, or those generated earlier into `<out>/experts` with the
/// same settings, or freshly generated there.
fn open_or_generate_experts(
    args: &DistillArgs,
    bundle: &Bundle,
    train_set: &ddlens::Dataset,
) -> Result<ExpertDir> {
    if let Some(dir) = &args.experts {
        return ExpertDir::open(dir, bundle.manifest());
    }
    let dir = args.out.join("experts");
    let config = expert_config(args.expert_epochs, 0.01, 256, dsa_for(args));
    if let Ok(found) = ExpertDir::open(&dir, bundle.manifest()) {
        let i = found.index();
        if i.experts == args.num_experts
            && i.epochs == config.epochs
            && i.seed == args.seed
            && i.augment == strategy(config.dsa.as_ref())
        {
            eprintln!(
                "reusing {} experts of {} epochs in {}",
                i.experts,
                i.epochs,
                dir.display()
            );
            return Ok(found);
        }
    }
    eprintln!(
        "generating {} experts of {} epochs into {} (reuse them with --experts)",
        args.num_experts,
        config.epochs,
        dir.display()
    );
    generate_experts_into(
        &dir,
        bundle,
        train_set,
        args.num_experts,
        &config,
        args.seed,
    )?;
    ExpertDir::open(&dir, bundle.manifest())
}

fn cmd_experts(args: ExpertsArgs) -> Result<()> {
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let dsa = (!args.no_dsa).then(|| match args.data.dataset {
        DatasetName::Mnist => Dsa::default().without(AugOp::Flip),
        _ => Dsa::default(),
    });
    let config = expert_config(args.epochs, args.lr, args.batch_size, dsa);
    let start = Instant::now();
    let index = generate_experts_into(
        &args.out,
        &bundle,
        &splits.train,
        args.num_experts,
        &config,
        args.seed,
    )?;
    if args.json {
        println!("{}", json!({ "dir": args.out, "index": index }));
    } else {
        println!(
            "{} experts of {} epochs for {} in {:.1} s\nwrote {}",
            index.experts,
            index.epochs,
            bundle.name(),
            start.elapsed().as_secs_f64(),
            args.out.display()
        );
    }
    Ok(())
}

/// Herding in the feature space of `--params`, or of a model trained for one epoch of P_real.
fn distill_herding(
    args: &DistillArgs,
    bundle: &Bundle,
    train_set: &ddlens::Dataset,
) -> Result<Distilled> {
    let params = match &args.params {
        Some(path) => train::load_params(path, bundle.manifest())?,
        None => {
            let config = TrainConfig::p_real(1, args.seed);
            let bar = Progress::new("features", config.total_steps(train_set.len()) as u64);
            let mut hook = progress_hook(&bar);
            let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
            let out = train::train(
                bundle,
                bundle.init_params(args.seed),
                train_set,
                &config,
                hooks,
            )?;
            bar.finish();
            out.params
        }
    };
    let bar = Progress::new("herding", train_set.num_classes() as u64);
    let syn = distill::herding_set(bundle, &params, train_set, args.ipc, &mut |done, _| {
        bar.set(done as u64, "classes")
    })?;
    bar.finish();
    let source = match &args.params {
        Some(p) => p.display().to_string(),
        None => "P_real, 1 epoch".to_string(),
    };
    Ok(Distilled {
        syn,
        log: None,
        settings: json!({ "feature_model": source }),
    })
}

/// Runs an iterative method from the seeded real initialisation, with checkpoints and resume.
fn run_iterative(
    args: &DistillArgs,
    stem: &str,
    bundle: &Bundle,
    train_set: &ddlens::Dataset,
    method: &mut dyn Method,
    settings: serde_json::Value,
    default_iterations: usize,
) -> Result<Distilled> {
    let config = RunConfig {
        iterations: args.iterations.unwrap_or(default_iterations),
        seed: args.seed,
        checkpoint_every: Some(args.checkpoint_every),
        checkpoint: Some(args.out.join(format!("{stem}.ckpt"))),
        settings: settings.clone(),
    };
    let mut syn = Synthetic::from_real(train_set, args.ipc, args.seed)?;
    let bar = Progress::new(method.name(), config.iterations as u64);
    let log = distill::run(
        method,
        &mut syn,
        bundle,
        train_set,
        &config,
        args.resume,
        &mut |it, _, loss| bar.set(it as u64, format!("loss {loss:.4}")),
    )?;
    bar.finish();
    Ok(Distilled {
        syn,
        log: Some(log),
        settings,
    })
}

/// Writes the set (safetensors), its picture (PNG) and the run log (JSON), and reports.
fn write_distilled(
    args: &DistillArgs,
    method: &str,
    stem: &str,
    bundle: &Bundle,
    d: Distilled,
    start: Instant,
) -> Result<()> {
    let set_path = args.out.join(format!("{stem}.safetensors"));
    let png_path = args.out.join(format!("{stem}.png"));
    let log_path = args.out.join(format!("{stem}.json"));
    let meta = DistilledMeta {
        method: method.to_string(),
        ipc: args.ipc,
        dataset: args.data.dataset.as_str().to_string(),
        model: bundle.name().to_string(),
        seed: Some(args.seed),
        extra: Default::default(),
    };
    d.syn.to_distilled(meta)?.write(&set_path)?;
    let normalizer = Normalizer::for_dataset(args.data.dataset.as_str())
        .unwrap_or_else(|| Normalizer::identity(d.syn.images.dim().1));
    let labels = d.syn.labels.to_vec();
    distill::write_grid_png(
        &png_path,
        d.syn.images.view(),
        &labels,
        d.syn.num_classes,
        &normalizer,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let losses = d.log.as_ref().map(|l| l.losses.clone()).unwrap_or_default();
    let report = json!({
        "method": method,
        "ipc": args.ipc,
        "dataset": args.data.dataset.as_str(),
        "model": bundle.name(),
        "seed": args.seed,
        "settings": d.settings,
        "iterations": losses.len(),
        "resumed_from": d.log.as_ref().map(|l| l.resumed_from),
        "wall_seconds": seconds,
        "final_loss": losses.last(),
        "loss_per_iteration": losses,
        "files": { "set": set_path, "png": png_path, "log": log_path,
                   "checkpoint": d.log.as_ref().map(|_| args.out.join(format!("{stem}.ckpt"))) },
    });
    train::write_atomic(
        &log_path,
        serde_json::to_string_pretty(&report)
            .expect("json")
            .as_bytes(),
    )?;
    if args.json {
        println!("{report}");
    } else {
        let loss = report["final_loss"]
            .as_f64()
            .map_or(String::new(), |l| format!(", final loss {l:.4}"));
        println!(
            "{method}: {} images ({} per class) for {} in {seconds:.1} s{loss}\nwrote {}, {} and {}",
            d.syn.len(),
            args.ipc,
            bundle.name(),
            set_path.display(),
            png_path.display(),
            log_path.display()
        );
    }
    Ok(())
}
