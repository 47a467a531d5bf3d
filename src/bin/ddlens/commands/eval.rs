//! `ddlens eval`: the standard evaluation of a distilled set beside a random real subset.

use std::path::PathBuf;

use clap::Args;
use ddlens::augment::Dsa;
use ddlens::data;
use ddlens::shard::{Shard, UnitStore};
use ddlens::train::{self, EvalJob, EvalSummary};
use ddlens::{Error, Result};

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
    /// Sharded run: write each run (unit `set × runs + run`) to DIR/units/ as soon as it is
    /// done, skipping runs already there; `ddlens gather DIR` then writes the result. Every
    /// shard must get the same settings.
    #[arg(long, value_name = "DIR")]
    pub units: Option<PathBuf>,
    /// With --units: run only the units u with u % N == I (default: from Slurm's
    /// SLURM_ARRAY_TASK_* variables in an array task, else every unit).
    #[arg(long, value_name = "I/N", value_parser = crate::args::parse_shard, requires = "units")]
    pub shard: Option<Shard>,
    /// DD-Ranking's metrics (docs/evaluation.md): evaluates the set and the random real
    /// subset with both protocols (no augmentation, 300 epochs; DSA, 1000 epochs; --epochs
    /// sets both) and prints IOR and the augmentation-robust score, plus HLR and the
    /// label-robust score with --full-accuracy.
    #[arg(long, conflicts_with_all = ["no_baseline", "dsa", "units", "ipc"], requires = "distilled")]
    pub dd_ranking: bool,
    /// With --dd-ranking: test accuracy (a fraction, e.g. 0.931) of the model trained on the
    /// whole training set, one value or one per run (comma-separated), e.g. from `ddlens
    /// train` or the zoo's full-data row.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ACC",
        requires = "dd_ranking"
    )]
    pub full_accuracy: Vec<f64>,
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
    let protocol_with = |dsa: Option<&Dsa>| train::StandardEval {
        runs: args.runs,
        epochs: args
            .epochs
            .unwrap_or_else(|| train::StandardEval::protocol_epochs(dsa.is_some())),
        lr,
        seed: args.seed,
        augment: dsa.map(Dsa::strategy),
    };
    let dsa = (args.dsa || args.dd_ranking).then(|| Dsa::standard_for(Some(args.data.dataset)));
    if args.dd_ranking {
        let plain = protocol_with(None);
        let augmented = protocol_with(dsa.as_ref());
        return run_dd_ranking(&args, &bundle, &sets, &splits.test, [&plain, &augmented]);
    }
    let protocol = protocol_with(dsa.as_ref());
    protocol.validate()?;
    let job = EvalJob {
        model: bundle.name(),
        sets: &sets,
        test: &splits.test,
        protocol: &protocol,
    };
    let mut bar = Bar::new("eval", 0);
    if let Some(dir) = &args.units {
        return run_units(&job, &bundle, dir, args.shard, &mut bar);
    }
    let summaries = job.run(&bundle, &mut bar)?;
    bar.finish();
    let protocol_json = serde_json::to_value(&protocol).expect("the protocol serialises");
    let report = train::eval_report(bundle.name(), &protocol_json, &summaries);
    if args.json {
        println!("{report}");
        Ok(())
    } else {
        print_report(&report)
    }
}

/// `--dd-ranking`: both protocols on the set and the random subset, then DD-Ranking's metrics.
fn run_dd_ranking(
    args: &EvalArgs,
    bundle: &ddlens::Bundle,
    sets: &[(String, ddlens::Dataset)],
    test: &ddlens::Dataset,
    protocols: [&train::StandardEval; 2],
) -> Result<()> {
    let mut reports = Vec::new();
    let mut summaries = Vec::new();
    for protocol in protocols {
        protocol.validate()?;
        let job = EvalJob {
            model: bundle.name(),
            sets,
            test,
            protocol,
        };
        let mut bar = Bar::new("eval", 0);
        let s = job.run(bundle, &mut bar)?;
        bar.finish();
        let protocol_json = serde_json::to_value(protocol).expect("the protocol serialises");
        reports.push(train::eval_report(bundle.name(), &protocol_json, &s));
        summaries.push(s);
    }
    let full = (!args.full_accuracy.is_empty()).then_some(args.full_accuracy.as_slice());
    let ranking = train::dd_ranking_of(&summaries[0], Some(&summaries[1]), full)?;
    let report = serde_json::json!({
        "plain": reports[0],
        "augmented": reports[1],
        "dd_ranking": ranking,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    print_report(&reports[0])?;
    print_report(&reports[1])?;
    print_dd_ranking(&ranking);
    Ok(())
}

/// DD-Ranking's metrics as lines: mean ± std over rounds and the 95% interval.
pub(crate) fn print_dd_ranking(r: &train::DdRanking) {
    println!("DD-Ranking metrics (per round, then mean ± std [95% interval]; docs/evaluation.md):");
    let line = |name: &str, m: &train::Metric, scale: f64, unit: &str| {
        let ci = &m.interval;
        let interval = if ci.lo.is_finite() && ci.hi.is_finite() {
            format!("[{:.2}, {:.2}]", ci.lo * scale, ci.hi * scale)
        } else {
            "[no interval from one round]".into()
        };
        println!(
            "  {name:<34} {:.2} ± {:.2}{unit}  {interval}  n = {}",
            m.mean * scale,
            m.std * scale,
            m.rounds.len()
        );
    };
    line("IOR (improvement over random)", &r.ior, 100.0, " pp");
    match (&r.hlr, &r.lrs) {
        (Some(hlr), Some(lrs)) => {
            line("HLR (hard-label recovery)", hlr, 100.0, " pp");
            line("LRS (label-robust score, 0-100)", lrs, 1.0, "");
        }
        _ => println!(
            "  HLR and LRS: need --full-accuracy (the test accuracy of a model trained on the \
             whole training set)"
        ),
    }
    if let Some(ars) = &r.ars {
        line("ARS (augmentation-robust, 0-100)", ars, 1.0, "");
    }
}

/// `--units DIR`: the shard's runs that DIR does not hold yet, one file each.
fn run_units(
    job: &EvalJob<'_>,
    bundle: &ddlens::Bundle,
    dir: &std::path::Path,
    shard: Option<Shard>,
    bar: &mut Bar,
) -> Result<()> {
    let shard = Shard::resolve(shard)?.unwrap_or(Shard::WHOLE);
    let store = UnitStore::create(dir, job.spec())?;
    eprintln!("eval: {}", shard.describe(job.units()));
    let done = job.run_shard(bundle, &store, shard, bar)?;
    bar.finish();
    crate::commands::gather::print_shard_run(&store, &done.ran, &done.skipped);
    Ok(())
}

/// The result of `eval` (or of `gather` over eval units) as a table, with the protocol in
/// the heading.
pub(crate) fn print_report(report: &serde_json::Value) -> Result<()> {
    let p = &report["protocol"];
    let summaries: Vec<EvalSummary> = serde_json::from_value(report["results"].clone())
        .map_err(|e| Error::Internal(format!("the eval result does not read back: {e}")))?;
    println!(
        "standard evaluation on {} ({} runs, {} epochs, lr {}, {}):",
        report["model"].as_str().unwrap_or("?"),
        p["runs"],
        p["epochs"],
        p["lr"].as_f64().unwrap_or(f64::NAN) as f32,
        p["augment"]
            .as_str()
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
