//! `ddlens demo`: the main job end to end on the embedded default (Fashion-MNIST, ConvNet-3).
//! Distils a DM set (IPC 10, small budget) next to a random real set of the same size, runs
//! every analysis at small scale on both, and writes the HTML report. Every stage keeps its
//! output: rerunning the command resumes the distillation from its checkpoint and skips the
//! analyses whose results already exist (`--fresh` starts over).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bar::Bar;
use clap::Args;
use ddlens::analysis::curvature::Curvature;
use ddlens::analysis::influence::Influence;
use ddlens::analysis::{self, Analysis, Budget, NamedSet, RealData, RunInfo};
use ddlens::data::{DistilledMeta, Normalizer, Splits};
use ddlens::distill::{self, DistillJob, MethodKind};
use ddlens::{Bundle, Error, Result};

use crate::args::{open_model_and_data, DataArgs};

/// Options of `ddlens demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// DM iterations (its full budget is 20,000; a few dozen already beat random real images).
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Images per class of the distilled and the random set.
    #[arg(long, default_value_t = 10)]
    pub ipc: usize,
    /// Analysis budget: smoke (default, minutes in all), cpu (about an hour) or paper.
    #[arg(long, default_value = "smoke", value_parser = parse_budget)]
    pub budget: Budget,
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: sets/, analysis/ (results and figures) and report.html.
    #[arg(long, default_value = "ddlens-out/demo")]
    pub out: PathBuf,
    /// Recompute everything instead of reusing earlier results in the output folder.
    #[arg(long)]
    pub fresh: bool,
}

fn parse_budget(s: &str) -> std::result::Result<Budget, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Settings that fit the demo's 15 minutes on 2 cores with the smoke budget on ConvNet-3
/// (measured; see README). Larger budgets use the analyses' own defaults.
fn demo_overrides(analysis: &str, budget: Budget) -> Option<&'static str> {
    if budget != Budget::Smoke {
        return None;
    }
    match analysis {
        n if n == Curvature::NAME => Some(
            r#"{"steps": [0, 10, 25], "spectrum_steps": [25], "train_images": 256, "batch": 256}"#,
        ),
        n if n == Influence::NAME => Some(
            r#"{"steps": 30, "images": 4, "loo_images": 2, "shift_lanczos_iters": 8, "test_images": 300, "feature_steps": 30}"#,
        ),
        _ => None,
    }
}

struct Stages {
    total: usize,
    done: usize,
    start: Instant,
}

impl Stages {
    fn begin(&mut self, what: &str) -> Instant {
        self.done += 1;
        eprintln!(
            "[demo {}/{} at {:>4.0} s] {what}",
            self.done,
            self.total,
            self.start.elapsed().as_secs_f64()
        );
        Instant::now()
    }
}

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> Result<()> {
    let sets_dir = args.out.join("sets");
    let analysis_dir = args.out.join("analysis");
    for d in [&sets_dir, &analysis_dir] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let mut stages = Stages {
        total: 3 + analysis::ANALYSES.len(),
        done: 0,
        start: Instant::now(),
    };
    stages.begin(&format!(
        "loading {} and {}",
        args.data.dataset, args.data.model
    ));
    let (bundle, splits) = open_model_and_data(&args.data)?;

    let t = stages.begin(&format!(
        "distilling DM, {} images per class, {} iterations (plus a random real set of the same size)",
        args.ipc, args.iterations
    ));
    let sets = distill_sets(&args, &bundle, &splits, &sets_dir, &analysis_dir)?;
    eprintln!("      done in {:.0} s", t.elapsed().as_secs_f64());

    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: args.data.dataset.to_string(),
        budget: args.budget,
        seed: args.seed,
    };
    let real = RealData {
        train: &splits.train,
        test: &splits.test,
    };
    let ctx = Ctx {
        bundle: &bundle,
        real,
        sets: &sets,
        info: &info,
        dir: &analysis_dir,
        fresh: args.fresh,
    };
    for entry in &analysis::ANALYSES {
        let t = stages.begin(&format!("analysis: {}", entry.name));
        run_one(entry, &ctx)?;
        eprintln!("      done in {:.0} s", t.elapsed().as_secs_f64());
    }

    stages.begin("writing the report");
    let report = args.out.join("report.html");
    ddlens::analysis::write_report(
        &analysis_dir,
        &report,
        "What has the distilled data learned? (ddlens demo)",
    )?;
    eprintln!(
        "demo finished in {:.0} s",
        stages.start.elapsed().as_secs_f64()
    );
    println!("report: {}", report.display());
    Ok(())
}

struct Ctx<'a> {
    bundle: &'a Bundle,
    real: RealData<'a>,
    sets: &'a [NamedSet],
    info: &'a RunInfo,
    dir: &'a Path,
    fresh: bool,
}

/// Analyses that build their own random real baseline get the distilled set alone; every
/// other analysis compares it with the random real set.
fn sets_for<'a>(entry: &analysis::Entry, sets: &'a [NamedSet]) -> &'a [NamedSet] {
    if entry.own_baseline {
        &sets[..1]
    } else {
        sets
    }
}

fn run_one(entry: &analysis::Entry, ctx: &Ctx<'_>) -> Result<()> {
    let json = ctx.dir.join(format!("{}.json", entry.name));
    if !ctx.fresh && same_run(&json, ctx.info) {
        eprintln!("      kept {} (use --fresh to recompute)", json.display());
        return Ok(());
    }
    let request = analysis::Request {
        info: ctx.info,
        options: demo_overrides(entry.name, ctx.info.budget),
        out_dir: Some(ctx.dir),
    };
    let bar = Bar::new(entry.name, 1);
    let mut progress = &bar;
    (entry.run)(
        ctx.bundle,
        ctx.real,
        sets_for(entry, ctx.sets),
        &request,
        &mut progress,
    )?;
    bar.finish();
    Ok(())
}

/// Whether `json` holds a result made with the same model, dataset, budget and seed.
fn same_run(json: &Path, info: &RunInfo) -> bool {
    let Ok(text) = std::fs::read_to_string(json) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    serde_json::to_value(info).is_ok_and(|i| v["info"] == i)
}

/// Offset of the random baseline's seed from the run's seed.
const RANDOM_BASELINE_STREAM: u64 = 0x5EED_BA5E;

/// The DM set (resumed from its checkpoint when one matches) and the random baseline, written
/// to `sets_dir`, with their pictures copied next to the analyses for the report.
fn distill_sets(
    args: &DemoArgs,
    bundle: &Bundle,
    splits: &Splits,
    sets_dir: &Path,
    analysis_dir: &Path,
) -> Result<Vec<NamedSet>> {
    let stem = format!("dm-ipc{}", args.ipc);
    let ckpt = sets_dir.join(format!("{stem}.ckpt"));
    if args.fresh {
        let _ = std::fs::remove_file(&ckpt);
    }
    let mut job = DistillJob::new(MethodKind::Dm, args.ipc)?;
    job.iterations = Some(args.iterations);
    job.seed = args.seed;
    job.checkpoint = Some(ckpt.clone());
    job.checkpoint_every = 10;
    job.resume = ckpt.exists();
    let bar = Bar::new("dm", args.iterations as u64);
    let syn = job.run(bundle, &splits.train, &mut &bar)?.syn;
    bar.finish();
    // The baseline is a draw of its own: with the run's seed it would be exactly DM's starting
    // images (both draw class-balanced with that seed), and the two grids would look alike.
    let random_seed = args.seed.wrapping_add(RANDOM_BASELINE_STREAM);
    let random = distill::random_set(&splits.train, args.ipc, random_seed)?;
    let mut out = Vec::new();
    for (name, method, s, seed) in [
        (stem.clone(), "dm", syn, args.seed),
        (
            format!("random-ipc{}", args.ipc),
            "random",
            random,
            random_seed,
        ),
    ] {
        let meta = DistilledMeta {
            method: method.to_string(),
            ipc: args.ipc,
            dataset: args.data.dataset.as_str().to_string(),
            model: bundle.name().to_string(),
            seed: Some(seed),
            extra: Default::default(),
        };
        let set = s.to_distilled(meta)?;
        set.write(&sets_dir.join(format!("{name}.safetensors")))?;
        let normalizer = Normalizer::for_dataset(args.data.dataset.as_str())
            .unwrap_or_else(|| Normalizer::identity(set.data.input_shape()[0]));
        let labels = set.data.labels().to_vec();
        ddlens::report::write_grid_png(
            &analysis_dir.join(format!("set-{name}.png")),
            set.data.images().view(),
            &labels,
            set.data.num_classes(),
            &normalizer,
        )?;
        out.push(NamedSet::from_distilled(name, set));
    }
    Ok(out)
}
