//! `ddlens analyze <name>`: any analysis of the library's registry ([`analysis::ANALYSES`]).
//! Every analysis shares [`CommonArgs`] (model, data, the distilled sets, budget, seed, output
//! folder, `--set key=value` overrides) and runs through [`run`], which loads everything,
//! drives a progress bar and writes `OUT/<name>.json` plus the PNG figures.

use std::path::PathBuf;

use crate::bar::Bar;
use clap::Args;
use ddlens::analysis::agreement::Agreement;
use ddlens::analysis::recognition::Recognition;
use ddlens::analysis::{self, Analysis, Budget, NamedSet, RealData, RunInfo, Verdict};
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
    /// Same settings and seed in every shard.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "merge")]
    pub shard: Option<analysis::agreement::Shard>,
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
    if entry.name == Agreement::NAME && (args.shard.is_some() || !args.merge.is_empty()) {
        return run_agreement_shards(&args);
    }
    if args.shard.is_some() || !args.merge.is_empty() {
        return Err(Error::invalid(
            "shard",
            format!(
                "--shard and --merge apply to agreement, not to {}",
                entry.name
            ),
        ));
    }
    if entry.name == Recognition::NAME {
        default_params_out(&mut args.common);
    }
    run(entry, &args.common)
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
fn read_sets(paths: &[PathBuf], data: &DataArgs) -> Result<(Vec<NamedSet>, Vec<bool>)> {
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
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let (sets, needs_zca) = read_sets(&args.sets, &args.data)?;
    let splits = real_space(splits, &args.data, args.zca, &needs_zca)?;
    for s in &sets {
        s.data.check_against(bundle.manifest())?;
    }
    let overrides = overrides_json(&args.overrides)?;
    let info = RunInfo {
        model: bundle.name().to_string(),
        dataset: args.data.dataset.to_string(),
        budget: args.budget,
        seed: args.seed,
    };
    let bar = Bar::new(entry.name, 1);
    let mut progress = &bar;
    let real = RealData {
        train: &splits.train,
        test: &splits.test,
    };
    let request = analysis::Request {
        info: &info,
        options: overrides.as_deref(),
        out_dir: Some(&args.out),
    };
    let (json, saved) = (entry.run)(&bundle, real, &sets, &request, &mut progress)?;
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

fn parse_shard(s: &str) -> std::result::Result<analysis::agreement::Shard, String> {
    s.parse().map_err(|e: Error| e.to_string())
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
        let pool = ag::train_pool_shard(&bundle, real, &config, shard, &mut progress)?;
        bar.finish();
        std::fs::create_dir_all(&common.out).map_err(|e| Error::io(&common.out, e))?;
        let path = common.out.join(shard.file_name());
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
    }
    out.push_str(&format!("\n  => {}", v.reason));
    out
}
