//! MTT's expert trajectories as a sharded job ([`crate::shard`]): expert `i` is unit `i`,
//! seeded by its index alone (stream `i` of the seed), so any split over processes (or Slurm
//! array tasks) trains the same experts.
//!
//! The unit store is the experts folder itself: `DIR/job.json` and `DIR/units/` beside the
//! usual `DIR/expert-NNNN/` folders. Each shard trains its experts there (resuming any that an
//! earlier, killed task left unfinished, as [`super::generate_experts_into`] does) and writes
//! a unit file when one is finished; [`gather_experts`] checks that every expert is finished
//! and from the same settings and then writes `DIR/experts.json`, so that the folder holds
//! the files of a one-process generation, byte for byte, and MTT reads it as usual.

use std::path::Path;

use serde_json::json;

use super::expert::{check_inputs, expert_index, write_index, ExpertConfig, ExpertIndex};
use super::expert_store::{read_state, train_expert_into, Settings};
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shard::{JobSpec, Shard, ShardRun, UnitStore};
use crate::train::content_hash;

/// The `kind` of an expert unit store.
pub const EXPERTS_KIND: &str = "experts";

/// The job of `n` experts: the index they will have and the real training set's size and
/// labels (hashed).
pub fn experts_spec(
    bundle: &Bundle,
    real: &Dataset,
    n: usize,
    config: &ExpertConfig,
    seed: u64,
) -> JobSpec {
    let index = expert_index(bundle.manifest(), n, config.epochs, config, seed);
    JobSpec {
        kind: EXPERTS_KIND.to_string(),
        units: n,
        settings: json!({
            "index": index,
            "parameters": bundle.manifest().num_parameters(),
            "train": { "len": real.len(), "content": content_hash(real, false) },
        }),
    }
}

/// Trains the experts of `shard` that the store in `dir` (created for this job, or checked
/// against it) does not hold yet, each to the end, continuing a saved state; a unit file is
/// written when an expert is finished. The index is not written ([`gather_experts`] does).
/// `announce` sees the store before the first expert. `progress` counts the shard's epochs.
#[allow(clippy::too_many_arguments)]
pub fn run_expert_shard(
    dir: &Path,
    bundle: &Bundle,
    real: &Dataset,
    n: usize,
    config: &ExpertConfig,
    seed: u64,
    shard: Shard,
    announce: &dyn Fn(&UnitStore),
    progress: &mut dyn Progress,
) -> Result<(UnitStore, ShardRun)> {
    if n == 0 {
        return Err(Error::invalid("num_experts", "must be at least 1"));
    }
    check_inputs(bundle, real, config)?;
    let store = UnitStore::create(dir, experts_spec(bundle, real, n, config, seed))?;
    announce(&store);
    let settings = Settings::new(bundle.manifest(), config, seed);
    let mine: Vec<usize> = shard.units(n).collect();
    let epochs = config.epochs;
    let total = mine.len().saturating_mul(epochs);
    let mut out = ShardRun::default();
    progress.report("experts", 0, total)?;
    for (k, &i) in mine.iter().enumerate() {
        if store.done(i) {
            out.skipped.push(i);
            progress.report("experts", (k + 1) * epochs, total)?;
            continue;
        }
        let state = read_state(dir, i, &settings)?;
        train_expert_into(
            dir,
            bundle,
            real,
            config,
            &settings,
            i,
            state.as_ref(),
            &mut |epoch| {
                progress.note(&format!("expert {i}, epoch {epoch}/{epochs}"));
                progress.report("experts", k * epochs + epoch, total)
            },
        )?;
        store.write(i, json!({ "epochs": epochs }))?;
        out.ran.push(i);
    }
    Ok((store, out))
}

/// Writes `DIR/experts.json` once every expert of the store in `dir` is finished (an error
/// names the missing experts, or the unit or state file computed with other settings), the
/// same index a one-process generation writes. Needs neither the model nor the data.
pub fn gather_experts(dir: &Path) -> Result<ExpertIndex> {
    let store = UnitStore::open(dir)?;
    let job = dir.join("job.json");
    let bad = |message: String| Error::Data {
        origin: job.display().to_string(),
        message,
    };
    if store.spec().kind != EXPERTS_KIND {
        return Err(bad(format!("a `{}` job, not experts", store.spec().kind)));
    }
    let index: ExpertIndex = serde_json::from_value(store.spec().settings["index"].clone())
        .map_err(|e| bad(format!("settings.index is not an expert index: {e}")))?;
    if index.experts != store.spec().units {
        return Err(bad(format!(
            "{} experts for {} units",
            index.experts,
            store.spec().units
        )));
    }
    for (i, unit) in store.gather()?.iter().enumerate() {
        if unit["epochs"] != index.epochs {
            return Err(Error::Data {
                origin: store.path(i).display().to_string(),
                message: format!("not an expert of {} epochs", index.epochs),
            });
        }
        finished(dir, i, &index)?;
    }
    write_index(dir, &index)?;
    Ok(index)
}

/// Checks that expert `i`'s state says it is finished (a unit file copied in without its
/// expert folder would otherwise give an index over missing checkpoints).
fn finished(dir: &Path, i: usize, index: &ExpertIndex) -> Result<()> {
    let settings = Settings::from_index(index);
    let path = dir.join(format!("expert-{i:04}")).join("state.json");
    match read_state(dir, i, &settings)? {
        Some(s) if s.epoch == index.epochs => Ok(()),
        Some(s) => Err(Error::Data {
            origin: path.display().to_string(),
            message: format!("{} of {} epochs done", s.epoch, index.epochs),
        }),
        None => Err(Error::Data {
            origin: path.display().to_string(),
            message: "missing: the expert's unit file is there but not its state".into(),
        }),
    }
}
