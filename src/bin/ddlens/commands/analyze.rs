//! `ddlens analyze <name>`: any analysis of the library's registry ([`analysis::ANALYSES`]).
//! Every analysis shares [`CommonArgs`] (model, data, the distilled sets, budget, seed, output
//! folder, `--set key=value` overrides) and runs through [`run`], which loads everything,
//! drives a progress bar and writes `OUT/<name>.json` plus the PNG figures.

use std::path::PathBuf;

use crate::bar::Bar;
use clap::Args;
use ddlens::analysis::agreement::Agreement;
use ddlens::analysis::recognition::Recognition;
use ddlens::analysis::sharded::ShardRequest;
use ddlens::analysis::{self, Analysis, Budget, NamedSet, RealData, RunInfo, UnitFns, Verdict};
use ddlens::shard::{Shard, UnitStore};
use ddlens::{Error, Result};

use crate::args::{open_model_and_data, read_set, real_space, DataArgs};

/// `ddlens analyze NAME SET...`: any analysis of the library's registry.
#[derive(Args)]
pub(crate) struct AnalyzeArgs {
    /// The analysis (see the list below).
    #[arg(value_name = "ANALYSIS", value_parser = analysis_names())]
    pub name: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// agreement: train only shard I of N of the pool jobs (pool A members then pool B runs;
    /// job j when j % N == I) and write their test predictions to
    /// OUT/agreement-pool-<I>of<N>.safetensors; no result is computed and no set is needed.
    /// Same settings and seed in every shard. In a Slurm array task (SLURM_ARRAY_TASK_ID set)
    /// without --merge, the task's shard is the default.
    #[arg(long, value_name = "I/N", value_parser = crate::args::parse_shard, conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// mixing, sensitivity, influence: the analysis as units (one training each): run the
    /// units of --shard (default: the Slurm array task's, else all) that DIR does not hold
    /// yet, one file each; `ddlens gather DIR` (or --merge DIR) then writes the result to
    /// --out. Same arguments in every shard.
    #[arg(long, value_name = "DIR", conflicts_with = "merge")]
    pub units: Option<PathBuf>,
    /// agreement: gather the pool files of all N shards (files, or folders holding
    /// agreement-pool-*.safetensors; repeatable or comma-separated), train the distilled-set
    /// models and write the result, identical to an unsharded run.
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub merge: Vec<PathBuf>,
}

/// The registry's analyses as clap's possible values, each with its one-line description.
fn analysis_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        analysis::ANALYSES
            .iter()
            .map(|e| clap::builder::PossibleValue::new(e.name).help(e.about)),
    )
}

/// Options every analysis takes.
#[derive(Args)]
pub(crate) struct CommonArgs {
    /// Distilled sets to analyse (safetensors, .npz, images.npy with labels.npy beside it, a
    /// .pt set of MTT, DC, DSA or DM, or zoo:NAME for a set of the zoo);
    /// several are compared side by side.
    #[arg(value_name = "SET")]
    pub sets: Vec<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Compute budget: paper (the paper's protocol), cpu (minutes on 2 cores) or smoke.
    #[arg(long, default_value = "cpu", value_parser = parse_budget)]
    pub budget: Budget,
    /// Seed of every random draw of the analysis.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Override a setting of the analysis: `--set key=JSON` (e.g. `--set ks=[0,2,10]`); see
    /// docs/analyses.md for every key. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output folder (`<name>.json` and the figures).
    #[arg(long, default_value = "ddlens-out/analysis")]
    pub out: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// ZCA-whiten the real data (fitted on the training split, eps 0.1), as MTT's --zca does;
    /// automatic for sets whose metadata says `zca = true` (`ddlens import` of MTT CIFAR sets).
    #[arg(long)]
    pub zca: bool,
}

fn parse_budget(s: &str) -> std::result::Result<Budget, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Runs the chosen analysis.
pub(crate) fn cmd_analyze(mut args: AnalyzeArgs) -> Result<()> {
    let entry = analysis::find(&args.name)?;
    if entry.name == Agreement::NAME {
        if args.units.is_some() {
            return Err(Error::invalid(
                "--units",
                "agreement shards write pool files: use --shard I/N, then --merge",
            ));
        }
        if args.shard.is_none() && args.merge.is_empty() {
            // In a Slurm array task, the task's shard (ddlens::shard::ArrayTask).
            args.shard = Shard::from_env()?;
        }
        if args.shard.is_some() || !args.merge.is_empty() {
            return run_agreement_shards(&args);
        }
    }
    if let Some(fns) = entry.units {
        if args.units.is_some() || !args.merge.is_empty() {
            return run_units(entry, fns, &args);
        }
        if args.shard.is_some() {
            return Err(Error::invalid(
                "--shard",
                format!(
                    "{} needs --units DIR with --shard (the folder of its units)",
                    entry.name
                ),
            ));
        }
    } else if args.shard.is_some() || !args.merge.is_empty() || args.units.is_some() {
        return Err(Error::invalid(
            "shard",
            format!(
                "--shard, --units and --merge apply to agreement and to the analyses made of \
                 units ({}), not to {}",
                sharded_names().join(", "),
                entry.name
            ),
        ));
    }
    if entry.name == Recognition::NAME {
        default_params_out(&mut args.common);
    }
    run(entry, &args.common)
}

/// The analyses that run as units (`--units DIR`).
fn sharded_names() -> Vec<&'static str> {
    analysis::ANALYSES
        .iter()
        .filter(|e| e.units.is_some())
        .map(|e| e.name)
        .collect()
}

/// Turns `--set key=value` pairs into one JSON object; a value that is not JSON is a string.
fn overrides_json(pairs: &[String]) -> Result<Option<String>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::invalid("--set", format!("`{pair}` is not KEY=VALUE")))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        map.insert(key.trim().to_string(), value);
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

/// Reads the sets named on the command line (each checked against the dataset unless
/// `--force`); two files with the same stem get the parent folder's name prefixed so legends
/// stay distinct. Also says, per set, whether it needs ZCA-whitened real data.
pub(crate) fn read_sets(paths: &[PathBuf], data: &DataArgs) -> Result<(Vec<NamedSet>, Vec<bool>)> {
    let mut needs_zca = Vec::new();
    let mut sets: Vec<NamedSet> = paths
        .iter()
        .map(|p| {
            let set = read_set(p, data)?;
            needs_zca.push(set.needs_zca());
            let name = p.file_stem().map_or_else(
                || p.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            Ok(NamedSet::from_distilled(name, set))
        })
        .collect::<Result<_>>()?;
    for i in 0..sets.len() {
        if sets.iter().filter(|s| s.name == sets[i].name).count() > 1 {
            let parent = paths[i]
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| i.to_string());
            sets[i].name = format!("{parent}/{}", sets[i].name);
        }
    }
    Ok((sets, needs_zca))
}

/// Loads model, data and sets, runs the analysis with a progress bar and writes its results.
fn run(entry: &analysis::Entry, args: &CommonArgs) -> Result<()> {
    let l = load(args)?;
    let bar = Bar::new(entry.name, 1);
    let mut progress = &bar;
    let request = analysis::Request {
        info: &l.info,
        options: l.overrides.as_deref(),
        out_dir: Some(&args.out),
    };
    let (json, saved) = (entry.run)(&l.bundle, l.real(), &l.sets, &request, &mut progress)?;
    bar.finish();
    let saved = saved.expect("an output folder was given");
    report(&json, &saved, args.json)
}

// ---- recognition and agreement: their extra options ----

/// `recognition`: unless `--set params_out=...` says otherwise, the parameters of the models
/// trained by the analysis go to `OUT/recognition-params/<bundle>.safetensors`, ready for
/// `--set params=...` next time.
fn default_params_out(args: &mut CommonArgs) {
    if !args.overrides.iter().any(|o| {
        o.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "params_out")
    }) {
        let dir = args.out.join("recognition-params");
        let value = serde_json::Value::String(dir.display().to_string());
        args.overrides.push(format!("params_out={value}"));
    }
}

/// `agreement` as one shard of the pools, or as the merge of the shards.
fn run_agreement_shards(args: &AnalyzeArgs) -> Result<()> {
    use analysis::agreement as ag;
    let common = &args.common;
    let (bundle, splits) = open_model_and_data(&common.data)?;
    // A shard reads no set; the merge's sets must be in the space the shards trained in.
    let (sets, needs_zca) = match args.shard {
        Some(_) => (Vec::new(), Vec::new()),
        None => read_sets(&common.sets, &common.data)?,
    };
    let splits = real_space(splits, &common.data, common.zca, &needs_zca)?;
    let overrides = overrides_json(&common.overrides)?;
    let config =
        analysis::config_with::<Agreement>(common.budget, common.seed, overrides.as_deref())?;
    let real = RealData {
        train: &splits.train,
        test: &splits.test,
    };
    let bar = Bar::new(Agreement::NAME, 1);
    let mut progress = &bar;
    if let Some(shard) = args.shard {
        eprintln!("agreement pool jobs: {}", shard.describe(config.jobs()));
        std::fs::create_dir_all(&common.out).map_err(|e| Error::io(&common.out, e))?;
        let path = common.out.join(shard.file_name());
        if path.exists() {
            eprintln!(
                "continuing from {} (its finished jobs are kept)",
                path.display()
            );
        }
        let pool = ag::train_pool_shard_into(&bundle, real, &config, shard, &path, &mut progress)?;
        bar.finish();
        pool.write(&path)?;
        eprintln!(
            "wrote {} ({} pool members of shard {shard})",
            path.display(),
            pool.members.len()
        );
        return Ok(());
    }
    for s in &sets {
        s.data.check_against(bundle.manifest())?;
    }
    let shards = ag::read_pool_files(&args.merge)?;
    let fingerprint = ag::pool_fingerprint(&bundle, real, &config)?;
    let pool = ag::merge_pool(&shards, &fingerprint, &config)?;
    let output = ag::agreement_from_pool(&bundle, real, &sets, &config, &pool, &mut progress)?;
    bar.finish();
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: common.data.dataset.to_string(),
        budget: common.budget,
        seed: common.seed,
    };
    let (json, saved) = analysis::save_result::<Agreement>(&common.out, &info, &output)?;
    report(&json, &saved, common.json)
}

// ---- analyses made of units (mixing, sensitivity, influence): --units DIR ----

/// What `ddlens gather` needs to redo the set-up: the arguments of the sharded runs, with
/// absolute paths so that the gather may run from any folder.
fn run_json(common: &CommonArgs) -> serde_json::Value {
    let abs = |p: &PathBuf| {
        if p.to_string_lossy().starts_with("zoo:") {
            p.clone()
        } else {
            std::path::absolute(p).unwrap_or_else(|_| p.clone())
        }
    };
    let model = PathBuf::from(&common.data.model);
    let model = if model.exists() {
        abs(&model).display().to_string()
    } else {
        common.data.model.clone()
    };
    serde_json::json!({
        "model": model,
        "dataset": common.data.dataset.to_string(),
        "data_dir": common.data.data_dir.as_ref().map(abs),
        "force": common.data.force,
        "zca": common.zca,
        "sets": common.sets.iter().map(abs).collect::<Vec<_>>(),
        "budget": common.budget.to_string(),
        "seed": common.seed,
        "overrides": common.overrides,
        "out": abs(&common.out),
    })
}

/// The arguments recorded by [`run_json`], for `ddlens gather`.
pub(crate) fn args_from(run: &serde_json::Value) -> Result<CommonArgs> {
    let bad = |key: &str| {
        Error::invalid(
            "job.json",
            format!("settings.run.{key} is missing or unreadable"),
        )
    };
    let text = |key: &str| {
        run[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(key))
    };
    let list = |key: &str| -> Result<Vec<String>> {
        serde_json::from_value(run[key].clone()).map_err(|_| bad(key))
    };
    Ok(CommonArgs {
        sets: list("sets")?.into_iter().map(PathBuf::from).collect(),
        data: DataArgs {
            dataset: text("dataset")?.parse()?,
            data_dir: run["data_dir"].as_str().map(PathBuf::from),
            model: text("model")?,
            force: run["force"].as_bool().ok_or_else(|| bad("force"))?,
        },
        budget: text("budget")?.parse()?,
        seed: run["seed"].as_u64().ok_or_else(|| bad("seed"))?,
        overrides: list("overrides")?,
        out: PathBuf::from(text("out")?),
        json: false,
        // Absent from stores written before ZCA existed: no whitening.
        zca: run["zca"].as_bool().unwrap_or(false),
    })
}

/// `--units DIR`: the shard's units; `--merge DIR`: the result from a finished folder.
fn run_units(entry: &analysis::Entry, fns: UnitFns, args: &AnalyzeArgs) -> Result<()> {
    if let Some(dir) = &args.units {
        return shard_units(entry, fns, &args.common, dir, args.shard);
    }
    if args.merge.len() != 1 {
        return Err(Error::invalid(
            "--merge",
            format!("{} merges one --units folder", entry.name),
        ));
    }
    let store = UnitStore::open(&args.merge[0])?;
    gather_units(&store, &args.common)
}

/// What every analysis run needs: model, real data, sets, the run's description and the
/// `--set` overrides as one JSON object.
struct Loaded {
    bundle: ddlens::Bundle,
    splits: ddlens::data::Splits,
    sets: Vec<NamedSet>,
    info: RunInfo,
    overrides: Option<String>,
}

/// Loads model, real data (whitened when asked) and sets (checked against the model).
fn load(common: &CommonArgs) -> Result<Loaded> {
    let (bundle, splits) = open_model_and_data(&common.data)?;
    let (sets, needs_zca) = read_sets(&common.sets, &common.data)?;
    let splits = real_space(splits, &common.data, common.zca, &needs_zca)?;
    for s in &sets {
        s.data.check_against(bundle.manifest())?;
    }
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: common.data.dataset.to_string(),
        budget: common.budget,
        seed: common.seed,
    };
    Ok(Loaded {
        bundle,
        splits,
        sets,
        info,
        overrides: overrides_json(&common.overrides)?,
    })
}

impl Loaded {
    fn real(&self) -> RealData<'_> {
        RealData {
            train: &self.splits.train,
            test: &self.splits.test,
        }
    }
}

/// Runs the units of `shard` (default: the Slurm array task's, else all) into `dir`.
fn shard_units(
    entry: &analysis::Entry,
    fns: UnitFns,
    common: &CommonArgs,
    dir: &std::path::Path,
    shard: Option<Shard>,
) -> Result<()> {
    let shard = Shard::resolve(shard)?.unwrap_or(Shard::WHOLE);
    let l = load(common)?;
    let request = analysis::Request {
        info: &l.info,
        options: l.overrides.as_deref(),
        out_dir: None,
    };
    let announce = |store: &UnitStore| {
        eprintln!(
            "{} units: {}",
            entry.name,
            shard.describe(store.spec().units)
        );
    };
    let job = ShardRequest {
        dir,
        shard,
        run: run_json(common),
        announce: &announce,
    };
    let bar = Bar::new(entry.name, 1);
    let mut progress = &bar;
    let (store, done) =
        (fns.run_shard)(&l.bundle, l.real(), &l.sets, &request, &job, &mut progress)?;
    bar.finish();
    super::gather::print_shard_run(&store, &done.ran, &done.skipped);
    Ok(())
}

/// The result of the analysis of a finished store, with the arguments `common` (which must
/// be those of the sharded runs), written to `common.out`.
pub(crate) fn gather_units(store: &UnitStore, common: &CommonArgs) -> Result<()> {
    let entry = analysis::find(&store.spec().kind)?;
    let fns = entry.units.ok_or_else(|| Error::Data {
        origin: store.dir().join("job.json").display().to_string(),
        message: format!("`{}` does not run as units", entry.name),
    })?;
    let l = load(common)?;
    let request = analysis::Request {
        info: &l.info,
        options: l.overrides.as_deref(),
        out_dir: Some(&common.out),
    };
    let bar = Bar::new(entry.name, 1);
    let mut progress = &bar;
    let (json, saved) = (fns.gather)(&l.bundle, l.real(), &l.sets, &request, store, &mut progress)?;
    bar.finish();
    let saved = saved.expect("an output folder was given");
    report(&json, &saved, common.json)
}

/// Prints the result (`--json`) or the files written and the verdict.
fn report(json: &serde_json::Value, saved: &analysis::SavedFiles, as_json: bool) -> Result<()> {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(json).expect("JSON value prints")
        );
        return Ok(());
    }
    eprintln!("wrote {}", saved.json.display());
    for f in &saved.figures {
        eprintln!("wrote {}", f.display());
    }
    if let Some(v) = json.get("verdict") {
        let verdict: Verdict = serde_json::from_value(v.clone())
            .map_err(|e| Error::Internal(format!("the verdict does not read back: {e}")))?;
        eprintln!("{}", describe(&verdict));
    }
    Ok(())
}

/// The verdict in a few lines: the state and finding, the claim, and each set's effect.
pub(crate) fn describe(v: &Verdict) -> String {
    let mut out = format!(
        "verdict: {} — {}\n  claim: {}\n  effect: {}",
        v.state.to_string().to_uppercase(),
        v.finding,
        v.claim,
        v.effect
    );
    for s in &v.sets {
        let effect = s
            .effect
            .map_or_else(|| "not measured".into(), |e| e.display(3));
        let tag = if s.reference { " (reference)" } else { "" };
        out.push_str(&format!(
            "\n  {}{tag}: {} {effect} — {}",
            s.set, s.state, s.reason
        ));
        if let Some(against) = s.against_text() {
            out.push_str(&format!("\n    {against}"));
        }
    }
    out.push_str(&format!("\n  => {}", v.reason));
    out
}
