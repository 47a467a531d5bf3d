//! `influence`'s leave-one-out retrainings as a sharded job ([`crate::shard`]): the paper's
//! 101 trainings per set are independent, each from the shared initialisation `seed`, so they
//! run as units in any number of processes (or Slurm array tasks) and the analysis then reads
//! their test losses instead of training ([`influence_from_units`]), giving the result of one
//! process bit for bit.
//!
//! Unit ids: the sets in order, within a set the images of [`loo_images`] in order.

use serde_json::{json, Value};

use super::influence::{
    influence_with, loo_images, loo_losses, sample, InfluenceConfig, InfluenceResult,
};
use super::{NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::shard::{JobSpec, Shard, ShardRun, UnitStore};
use crate::train::content_hash;

/// The `kind` of an influence unit store.
pub const INFLUENCE_KIND: &str = "influence";

/// The leave-one-out units of `sets`: `(set, k, image)` per unit id.
pub fn loo_units(sets: &[NamedSet], config: &InfluenceConfig) -> Vec<(usize, usize, usize)> {
    sets.iter()
        .enumerate()
        .flat_map(|(s, set)| {
            loo_images(&set.data, config)
                .into_iter()
                .enumerate()
                .map(move |(k, i)| (s, k, i))
        })
        .collect()
}

/// The job: the model, the settings, each set's name and content, the test sample, and
/// `run`, what a front-end needs to redo the analysis at the gather (paths, budget...).
pub fn loo_spec(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &InfluenceConfig,
    run: Value,
) -> Result<JobSpec> {
    let test = real
        .test
        .select(&sample(real.test, config.test_images, config.seed)?)?;
    let sets_json: Vec<Value> = sets
        .iter()
        .map(|s| json!({ "name": s.name, "content": content_hash(&s.data, true) }))
        .collect();
    Ok(JobSpec {
        kind: INFLUENCE_KIND.to_string(),
        units: loo_units(sets, config).len(),
        settings: json!({
            "model": model.name(),
            "parameters": model.manifest().num_parameters(),
            "config": config,
            "sets": sets_json,
            "test": { "len": test.len(), "content": content_hash(&test, false) },
            "run": run,
        }),
    })
}

/// Trains the leave-one-out units of `shard` that `store` does not hold yet; each writes
/// its per-example test losses as soon as it is done.
pub fn run_loo_shard(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &InfluenceConfig,
    store: &UnitStore,
    shard: Shard,
    progress: &mut dyn Progress,
) -> Result<ShardRun> {
    let units = loo_units(sets, config);
    if store.spec().units != units.len() || store.spec().kind != INFLUENCE_KIND {
        return Err(Error::Internal(
            "the unit store was opened for another job".into(),
        ));
    }
    let test = real
        .test
        .select(&sample(real.test, config.test_images, config.seed)?)?;
    let init = model.init_params(config.seed);
    let mine: Vec<usize> = shard.units(units.len()).collect();
    let mut out = ShardRun::default();
    progress.report("leave-one-out", 0, mine.len())?;
    for (n, &u) in mine.iter().enumerate() {
        if store.done(u) {
            out.skipped.push(u);
        } else {
            let (s, _, i) = units[u];
            progress.note(&format!("{} without image {i}", sets[s].name));
            let losses = loo_losses(model, &init, &sets[s].data, i, &test, config)?;
            store.write(u, json!({ "losses": losses }))?;
            out.ran.push(u);
        }
        progress.report("leave-one-out", n + 1, mine.len())?;
    }
    Ok(out)
}

/// The whole analysis, with the leave-one-out losses read from a finished `store` (every
/// unit present and from these settings, else an error naming the missing units or the
/// file).
pub fn influence_from_units(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &InfluenceConfig,
    store: &UnitStore,
    progress: &mut dyn Progress,
) -> Result<InfluenceResult> {
    let units = loo_units(sets, config);
    let results = store.gather()?;
    if results.len() != units.len() {
        return Err(Error::Data {
            origin: store.dir().display().to_string(),
            message: format!(
                "{} units for {} leave-one-out retrainings",
                results.len(),
                units.len()
            ),
        });
    }
    let mut loo: Vec<Vec<Vec<f32>>> = vec![Vec::new(); sets.len()];
    for (u, (r, &(s, _, _))) in results.iter().zip(&units).enumerate() {
        let losses: Vec<f32> =
            serde_json::from_value(r["losses"].clone()).map_err(|e| Error::Data {
                origin: store.path(u).display().to_string(),
                message: format!("`losses` is not a list of numbers: {e}"),
            })?;
        loo[s].push(losses);
    }
    influence_with(model, real, sets, config, Some(&loo), progress)
}
