//! `ddlens eval`: the standard evaluation of a distilled set beside a random real subset.

use std::path::PathBuf;

use clap::Args;
use ddlens::augment::Dsa;
use ddlens::data;
use ddlens::train;
use ddlens::{Error, Result};
use serde_json::json;

use crate::args::{open_model_and_data, read_set, real_space, DataArgs};
use crate::bar::Bar;

/// Options of `ddlens eval`.
#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Distilled set to evaluate (safetensors, .npz, images.npy with labels.npy beside it, a
    /// .pt set of MTT, DC, DSA or DM, or zoo:NAME for a set of the zoo, e.g. zoo:bptt-ipc1).
    /// Without it, only a random real subset of `--ipc` images per class is evaluated.
    #[arg(required_unless_present = "ipc")]
    pub distilled: Option<PathBuf>,
    /// Images per class of the random real subset when no distilled set is given.
    #[arg(long, conflicts_with = "distilled")]
    pub ipc: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of runs (fresh models).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Epochs per run (default: the protocol's 300, or 1000 with --dsa).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train every run with DSA augmentation, a fresh draw per image and minibatch (the
    /// standard strategy; without flip on MNIST), 1000 epochs unless --epochs says otherwise.
    #[arg(long)]
    pub dsa: bool,
    /// Learning rate (default: the set's learned lr, else 0.01).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Seed of the first run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the random real baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// ZCA-whiten the real data (fitted on the training split, eps 0.1), as MTT's --zca does;
    /// automatic for a set whose metadata says `zca = true` (`ddlens import` of MTT CIFAR sets).
    #[arg(long)]
    pub zca: bool,
}

/// Runs the protocol on the set (and the baseline) and prints mean ± std.
pub(crate) fn run(args: EvalArgs) -> Result<()> {
    let (bundle, mut splits) = open_model_and_data(&args.data)?;
    let mut sets = Vec::new();
    let (per_class, learned_lr) = match (&args.distilled, args.ipc) {
        (Some(path), _) => {
            let set = read_set(path, &args.data)?;
            splits = real_space(splits, &args.data, args.zca, &[set.needs_zca()])?;
            set.data.check_against(bundle.manifest())?;
            let counts = set.data.class_counts();
            sets.push((path.display().to_string(), set.data));
            (counts, set.lr)
        }
        (None, Some(0)) => {
            return Err(Error::invalid(
                "ipc",
                "must be at least 1 (images per class of the random real subset)",
            ))
        }
        (None, Some(ipc)) => {
            splits = real_space(splits, &args.data, args.zca, &[])?;
            (vec![ipc; splits.train.num_classes()], None)
        }
        (None, None) => return Err(Error::invalid("distilled", "give a distilled set or --ipc")),
    };
    let lr = args.lr.or(learned_lr).unwrap_or(0.01);
    if !args.no_baseline || sets.is_empty() {
        let idx = balanced_like(&splits.train, &per_class, args.seed)?;
        sets.push(("random real subset".to_string(), splits.train.select(&idx)?));
    }
    let dsa = args.dsa.then(|| Dsa::standard_for(Some(args.data.dataset)));
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
    let mut bar = Bar::new("eval", 0);
    let mut summaries = Vec::new();
    for (label, train_set) in &sets {
        let s = train::standard_evaluation(
            &bundle,
            train_set,
            &splits.test,
            label,
            &protocol,
            &mut bar,
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
        println!("  final-epoch test accuracy: mean ± std over runs [95% interval of the mean]");
        for s in &summaries {
            let ci = &s.interval;
            let interval = if ci.lo.is_finite() && ci.hi.is_finite() {
                format!("[{:.2}, {:.2}]", ci.lo * 100.0, ci.hi * 100.0)
            } else {
                "[no interval from one run]".into()
            };
            println!(
                "  {:<40} {:>5} images  {:.2} ± {:.2} %  {interval}  n = {}",
                s.label,
                s.train_size,
                s.mean * 100.0,
                s.std * 100.0,
                s.accuracies.len()
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
