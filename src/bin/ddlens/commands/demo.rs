//! `ddlens demo`: the main job end to end on the embedded default (Fashion-MNIST, ConvNet-3).
//! Takes distilled sets from the zoo (really distilled: zoo/README.md says how each was
//! made), draws an independent random real set of each size as a reference, runs every
//! analysis of the paper on them as one suite ([`ddlens::analysis::suite`]), prints the
//! verdict table and writes the HTML report. `--live-iterations N` also distils a DM set live,
//! to show how. Rerunning resumes: finished analyses whose inputs did not change are kept
//! (`--fresh` starts over).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bar::Bar;
use clap::Args;
use ddlens::analysis::suite::{self, Suite, SuiteSets};
use ddlens::analysis::{Budget, NamedSet, RealData, RunInfo};
use ddlens::data::{resolve_set, DistilledMeta, Normalizer, Splits, ZOO_PREFIX};
use ddlens::distill::{self, DistillJob, MethodKind};
use ddlens::{Bundle, Error, Result};

use crate::args::{open_model_and_data, read_set, DataArgs};

/// The zoo sets the demo analyses by default: IPC 1 from four methods. IPC-10 sets (`--sets
/// dm-ipc10,...`) cost several minutes more each in every training-based analysis, which the
/// demo's 30 minutes on 2 cores cannot hold.
const DEMO_SETS: &[&str] = &["bptt-ipc1", "dc-ipc1", "dm-ipc1", "mtt-ipc1"];

/// The smoke preview's sets: one method that unrolls training and one that matches features,
/// so that the preview fits its five minutes.
const SMOKE_SETS: &[&str] = &["bptt-ipc1", "dm-ipc1"];

/// Options of `ddlens demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Zoo sets to analyse, comma-separated; those not in the zoo yet are skipped with a note
    /// (default: bptt-ipc1,dc-ipc1,dm-ipc1,mtt-ipc1; with `--budget smoke`: bptt-ipc1,dm-ipc1).
    #[arg(long, value_delimiter = ',')]
    pub sets: Option<Vec<String>>,
    /// Also distil a DM set live for this many iterations and analyse it (0: none). A few
    /// dozen iterations show how; the zoo's sets are the ones that carry conclusions.
    #[arg(long, default_value_t = 0)]
    pub live_iterations: usize,
    /// Images per class of the live set.
    #[arg(long, default_value_t = 10)]
    pub ipc: usize,
    /// Analysis budget: cpu (default: conclusive verdicts in about 30 minutes on 2 cores),
    /// smoke (a 5-minute preview whose verdicts are previews) or paper.
    #[arg(long, default_value = "cpu", value_parser = parse_budget)]
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

impl DemoArgs {
    /// The zoo sets to analyse: `--sets`, or the budget's default.
    fn sets(&self) -> Vec<String> {
        let default = match self.budget {
            Budget::Smoke => SMOKE_SETS,
            Budget::Cpu | Budget::Paper => DEMO_SETS,
        };
        self.sets
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
    }
}

fn parse_budget(s: &str) -> std::result::Result<Budget, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// The demo's settings over each budget's defaults: what fits its time on 2 cores (measured;
/// docs/analyses.md, "demo"). `None`: the budget's defaults. Recognition keeps the real-trained
/// models it trains in `models_dir`, and influence takes its feature model from there instead
/// of training another (each is 100 P_real steps of ConvNet-3, minutes on a CPU).
fn demo_overrides(
    analysis: &str,
    budget: Budget,
    models_dir: &Path,
    model: &str,
) -> Option<String> {
    let fixed = match (budget, analysis) {
        // The smoke budget previews every analysis, on SMOKE_SETS, in under five minutes on 2
        // cores (530 s on three sets with each analysis's own smoke settings and larger
        // curvature and influence settings); its verdicts are previews.
        (Budget::Smoke, "mixing") => r#"{"ks": [0, 5], "runs": 3}"#,
        (Budget::Smoke, "agreement") => r#"{"pool_b_runs": 1, "test_images": 300}"#,
        (Budget::Smoke, "curvature") => {
            r#"{"steps": [0, 20], "spectrum_steps": [20], "train_images": 64, "batch": 64, "max_probes": 4}"#
        }
        (Budget::Smoke, "influence") => {
            r#"{"steps": 20, "images": 4, "loo_images": 1, "shift_lanczos_iters": 8, "test_images": 200, "feature_steps": 20}"#
        }
        // Full-batch steps cost in proportion to the set plus its extras: k = 10 alone was
        // 70% of mixing's 19 minutes for one IPC-1 set (5 runs, 1 shared thread). Paired runs
        // vary by about a point, so 3 runs already give an interval; k = 5 is the largest k
        // the verdict reads.
        (Budget::Cpu, "mixing") => r#"{"ks": [0, 5], "runs": 3}"#,
        // Up to the paper's step 100, every 10 steps (each record evaluates 1,000 test
        // images): the same P_real run as recognition's ConvNet-3 and curvature's, so the
        // suite trains it once.
        (Budget::Cpu, "recognition-over-training") => r#"{"steps": 100, "every": 10}"#,
        // The paper's window (60-100) and a smaller real sample in quarter-size Hessian
        // batches: the cpu default (512 images, 7 steps) alone takes longer than the whole
        // demo, and the peak RSS grows with the batch (1 thread, 2 steps × 6 probes: 1.95 GB
        // at batch 64, 2.16 GB at 128, and batch 64 was not slower).
        (Budget::Cpu, "curvature") => {
            r#"{"steps": [0, 60, 80, 100], "spectrum_steps": [100], "train_images": 256, "batch": 64, "max_probes": 16}"#
        }
        // Leave-one-out for half of an IPC-1 set's images (the verdict reads the top-k
        // consistency, which every image gets) against 500 test images.
        (Budget::Cpu, "influence") => r#"{"loo_images": 5, "test_images": 500}"#,
        _ => "{}",
    };
    let mut options: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(fixed).expect("the demo's settings are JSON objects");
    let path = |p: &Path| serde_json::Value::String(p.display().to_string());
    match (budget, analysis) {
        (Budget::Cpu | Budget::Paper, "recognition") => {
            options.insert("params_out".into(), path(models_dir));
        }
        (Budget::Cpu | Budget::Paper, "influence") => {
            let feature = models_dir.join(format!("{model}.safetensors"));
            options.insert("feature_params".into(), path(&feature));
        }
        _ => {}
    }
    (!options.is_empty()).then(|| serde_json::Value::Object(options).to_string())
}

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> Result<()> {
    let start = Instant::now();
    let sets_dir = args.out.join("sets");
    let analysis_dir = args.out.join("analysis");
    for d in [&sets_dir, &analysis_dir] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    // The settings name files in it (recognition's models, influence's feature model), and a
    // saved result is kept only when its settings match: one spelling for the same folder,
    // or `--out ddlens-out/x` would recompute what `--out /abs/ddlens-out/x` saved.
    let analysis_dir =
        std::fs::canonicalize(&analysis_dir).map_err(|e| Error::io(&analysis_dir, e))?;
    eprintln!(
        "[demo] loading {} and {}",
        args.data.dataset, args.data.model
    );
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let mut judged = zoo_sets(&args)?;
    if args.live_iterations > 0 {
        judged.push(live_set(&args, &bundle, &splits, &sets_dir)?);
    }
    if judged.is_empty() {
        return Err(Error::invalid(
            "sets",
            format!(
                "none of {} is in the zoo (zoo/README.md: `scripts/zoo run` makes them); \
                 give --sets or --live-iterations",
                args.sets().join(", ")
            ),
        ));
    }
    let references = random_references(&args, &judged, &splits)?;
    for s in judged.iter().chain(&references) {
        write_grid(&analysis_dir, s, &args)?;
    }
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: args.data.dataset.to_string(),
        budget: args.budget,
        seed: args.seed,
    };
    let mut suite = Suite::all(info, &analysis_dir);
    suite.fresh = args.fresh;
    let models_dir = analysis_dir.join("real-models");
    for item in suite.items.iter_mut() {
        item.options = demo_overrides(item.entry.name, args.budget, &models_dir, bundle.name());
    }
    let names: Vec<&str> = judged.iter().map(|s| s.name.as_str()).collect();
    let refs: Vec<&str> = references.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "[demo] analysing {} beside the random real references {} (budget {})",
        names.join(", "),
        refs.join(", "),
        args.budget
    );
    let real = RealData {
        train: &splits.train,
        test: &splits.test,
    };
    let sets = SuiteSets { judged, references };
    let total = suite.items.len();
    let mut started = |k: usize, name: &str| {
        eprintln!(
            "[demo {}/{total} at {:>4.0} s] {name}",
            k + 1,
            start.elapsed().as_secs_f64()
        );
    };
    let bar = Bar::new("analysis", 1);
    let outcomes = suite.run(&bundle, real, &sets, &mut started, &mut &bar)?;
    bar.finish();
    let report = args.out.join("report.html");
    ddlens::analysis::write_report(
        &analysis_dir,
        &report,
        "What has the distilled data learned? (ddlens demo)",
    )?;
    let conclusive = outcomes
        .iter()
        .filter(|o| o.verdict.state.is_conclusive())
        .count();
    eprintln!("{}", suite::cost_table(&outcomes));
    println!("{}", suite::verdict_table(&outcomes));
    println!(
        "{conclusive} of {} verdicts conclusive (budget {}{}); demo finished in {:.0} s",
        outcomes.len(),
        args.budget,
        if args.budget == Budget::Smoke {
            ": a preview, not conclusions"
        } else {
            ""
        },
        start.elapsed().as_secs_f64()
    );
    println!("report: {}", report.display());
    Ok(())
}

/// The zoo sets of `--sets` that exist (a note for each that does not).
fn zoo_sets(args: &DemoArgs) -> Result<Vec<NamedSet>> {
    let mut out = Vec::new();
    for name in &args.sets() {
        match resolve_set(Path::new(&format!("{ZOO_PREFIX}{name}"))) {
            Ok(file) => {
                let set = read_set(&file, &args.data)?;
                out.push(NamedSet::from_distilled(name.clone(), set));
            }
            Err(_) => eprintln!(
                "[demo] {name} is not in the zoo yet (`scripts/zoo run` distils it); skipped"
            ),
        }
    }
    Ok(out)
}

/// One independent random real draw per set size among `judged` (`random-ipc<n>`): the
/// reference beside which the analyses without their own baseline show the sets.
fn random_references(
    args: &DemoArgs,
    judged: &[NamedSet],
    splits: &Splits,
) -> Result<Vec<NamedSet>> {
    let mut ipcs: Vec<usize> = judged
        .iter()
        .map(|s| s.data.class_counts().into_iter().max().unwrap_or(0))
        .collect();
    ipcs.sort_unstable();
    ipcs.dedup();
    let seed = args.seed.wrapping_add(RANDOM_BASELINE_STREAM);
    ipcs.into_iter()
        .map(|ipc| {
            let syn = distill::random_set(&splits.train, ipc, seed)?;
            let set = syn.to_distilled(meta(args, "random", ipc, seed))?;
            Ok(NamedSet::from_distilled(format!("random-ipc{ipc}"), set))
        })
        .collect()
}

fn meta(args: &DemoArgs, method: &str, ipc: usize, seed: u64) -> DistilledMeta {
    DistilledMeta {
        method: method.to_string(),
        ipc,
        dataset: args.data.dataset.as_str().to_string(),
        model: args.data.model.clone(),
        seed: Some(seed),
        extra: Default::default(),
    }
}

/// The image grid of a set next to the analyses, for the report.
fn write_grid(dir: &Path, s: &NamedSet, args: &DemoArgs) -> Result<()> {
    let normalizer = Normalizer::for_dataset(args.data.dataset.as_str())
        .unwrap_or_else(|| Normalizer::identity(s.data.input_shape()[0]));
    let labels = s.data.labels().to_vec();
    let what = if s.name.starts_with("random") {
        "random real images (reference)"
    } else {
        "distilled images"
    };
    ddlens::report::write_grid_png(
        &dir.join(format!("set-{}.png", s.name)),
        s.data.images().view(),
        &labels,
        s.data.num_classes(),
        &normalizer,
        &format!("{}: {what}, one row per class", s.name),
        Some(args.data.dataset.class_names()),
    )?;
    Ok(())
}

/// Offset of the random baseline's seed from the run's seed.
const RANDOM_BASELINE_STREAM: u64 = 0x5EED_BA5E;

/// A DM set distilled live for `--live-iterations` (resumed from its checkpoint when one
/// matches), written to `sets_dir`.
fn live_set(
    args: &DemoArgs,
    bundle: &Bundle,
    splits: &Splits,
    sets_dir: &Path,
) -> Result<NamedSet> {
    let stem = format!("dm-live-ipc{}", args.ipc);
    let ckpt = sets_dir.join(format!("{stem}.ckpt"));
    if args.fresh {
        let _ = std::fs::remove_file(&ckpt);
    }
    let mut job = DistillJob::new(MethodKind::Dm, args.ipc)?;
    job.iterations = Some(args.live_iterations);
    job.seed = args.seed;
    job.checkpoint = Some(ckpt.clone());
    job.checkpoint_every = 10;
    job.resume = ckpt.exists();
    eprintln!("[demo] distilling live: {}", job.describe());
    let bar = Bar::new("dm", args.live_iterations as u64);
    let syn = job.run(bundle, &splits.train, &mut &bar)?.syn;
    bar.finish();
    let set = syn.to_distilled(DistilledMeta {
        model: bundle.name().to_string(),
        ..meta(args, "dm", args.ipc, args.seed)
    })?;
    set.write(&sets_dir.join(format!("{stem}.safetensors")))?;
    Ok(NamedSet::from_distilled(stem, set))
}
