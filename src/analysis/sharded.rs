//! Analyses whose work is a set of independent units (a leave-one-out retraining, one run of
//! one (set, k), one run of one (set, setup)), run as a sharded job ([`crate::shard`]).
//!
//! An analysis implements [`Sharded`] on top of [`Analysis`]: a [`Sharded::Plan`] (what every
//! process sets up from the inputs: draws, test sample, the list of units), the units' count,
//! one unit's result ([`Sharded::run_unit`], seeded from the unit's id only) and the result
//! from every unit's result ([`Sharded::assemble`]). Everything else is generic and lives
//! here: the job's settings ([`spec`]), a shard's units into a [`UnitStore`] ([`run_shard`]),
//! the result from a finished store ([`from_store`], the same bytes as one process) and the
//! whole analysis in one process ([`run_all`]). [`UnitFns`] is the same for front-ends, by
//! registry entry ([`super::Entry::units`]), so `ddlens analyze NAME --units DIR` and
//! `ddlens gather DIR` know no analysis by name.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{config_with, save_result, Analysis, NamedSet, Progress, RealData, Request};
use super::{result_json, SavedFiles};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::progress::Offset;
use crate::shard::{JobSpec, Shard, ShardRun, UnitStore};
use crate::train::content_hash;

/// An [`Analysis`] made of independent units; see the module documentation.
pub trait Sharded: Analysis {
    /// What a process sets up once from the inputs before running units or assembling.
    type Plan<'a>;
    /// One unit's result, as its unit file records it (`serde_json::to_value` of it).
    type Unit: Serialize + DeserializeOwned;

    /// Validates `config` and sets the job up.
    fn plan<'a>(
        model: &'a Bundle,
        real: RealData<'a>,
        sets: &'a [NamedSet],
        config: &'a Self::Config,
    ) -> Result<Self::Plan<'a>>;

    /// Number of units, ids `0..units`.
    fn units(plan: &Self::Plan<'_>) -> usize;

    /// Everything the units depend on, as a JSON object (see [`base_settings`]); the job's
    /// fingerprint is computed from it.
    fn settings(plan: &Self::Plan<'_>) -> Result<Value>;

    /// Progress steps of unit `u` (training steps, say), so that a one-process run reports
    /// one continuous count; 1 unless overridden.
    fn cost(_plan: &Self::Plan<'_>, _u: usize) -> usize {
        1
    }

    /// The sum of [`Sharded::cost`] over all units (override where units are many: the
    /// default visits each).
    fn total_cost(plan: &Self::Plan<'_>) -> usize {
        (0..Self::units(plan)).fold(0, |t: usize, u| t.saturating_add(Self::cost(plan, u)))
    }

    /// Runs unit `u`; its random draws depend on the job's seed and on `u` only.
    fn run_unit(plan: &Self::Plan<'_>, u: usize, progress: &mut dyn Progress)
        -> Result<Self::Unit>;

    /// The result from every unit's result, in id order.
    fn assemble(
        plan: &Self::Plan<'_>,
        units: Vec<Self::Unit>,
        progress: &mut dyn Progress,
    ) -> Result<Self::Output>;
}

/// The settings every sharded analysis records: the model's name and parameter count, the
/// config, and each set's name and content hash.
pub fn base_settings<C: Serialize>(model: &Bundle, sets: &[NamedSet], config: &C) -> Value {
    let sets: Vec<Value> = sets
        .iter()
        .map(|s| json!({ "name": s.name, "content": content_hash(&s.data, true) }))
        .collect();
    json!({
        "model": model.name(),
        "parameters": model.manifest().num_parameters(),
        "config": config,
        "sets": sets,
    })
}

/// The job of `plan`: kind [`Analysis::NAME`], [`Sharded::units`] units, and
/// [`Sharded::settings`] with `run` (what a front-end needs to redo the set-up at the gather:
/// paths, budget...) under `run`.
pub fn spec<A: Sharded>(plan: &A::Plan<'_>, run: Value) -> Result<JobSpec> {
    let mut settings = A::settings(plan)?;
    let Value::Object(fields) = &mut settings else {
        return Err(Error::Internal(format!(
            "{}: the job's settings are not a JSON object",
            A::NAME
        )));
    };
    fields.insert("run".into(), run);
    Ok(JobSpec {
        kind: A::NAME.to_string(),
        units: A::units(plan),
        settings,
    })
}

/// The whole analysis in this process: every unit in id order, then [`Sharded::assemble`].
/// `progress` counts [`Sharded::cost`] over all units under the analysis's name.
pub fn run_all<A: Sharded>(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &A::Config,
    progress: &mut dyn Progress,
) -> Result<A::Output> {
    let plan = A::plan(model, real, sets, config)?;
    let n = A::units(&plan);
    let total = A::total_cost(&plan);
    progress.report(A::NAME, 0, total)?;
    let mut results = Vec::new(); // `n` follows the caller's run counts: no reservation
    let mut offset = 0;
    for u in 0..n {
        let mut sub = Offset {
            inner: &mut *progress,
            offset,
            total,
        };
        results.push(A::run_unit(&plan, u, &mut sub)?);
        offset = offset.saturating_add(A::cost(&plan, u));
        progress.report(A::NAME, offset, total)?;
    }
    A::assemble(&plan, results, progress)
}

/// Runs the units of `shard` that `store` does not hold yet, each written as soon as it is
/// done (so a killed task loses at most the unit it was running). `progress` counts units.
pub fn run_shard<A: Sharded>(
    plan: &A::Plan<'_>,
    store: &UnitStore,
    shard: Shard,
    progress: &mut dyn Progress,
) -> Result<ShardRun> {
    let n = A::units(plan);
    if store.spec().kind != A::NAME || store.spec().units != n {
        return Err(Error::Internal(format!(
            "the unit store was opened for another job than {}",
            A::NAME
        )));
    }
    let mine = shard.units(n).size_hint().0; // exact for a stepped range, O(1)
    let stage = format!("{} units", A::NAME);
    let mut out = ShardRun::default();
    progress.report(&stage, 0, mine)?;
    for (k, u) in shard.units(n).enumerate() {
        if store.done(u) {
            out.skipped.push(u);
        } else {
            progress.note(&format!("unit {u}"));
            let mut within = Within {
                inner: &mut *progress,
                stage: &stage,
                done: k,
                total: mine,
            };
            let result = A::run_unit(plan, u, &mut within)?;
            let value = serde_json::to_value(&result)
                .map_err(|e| Error::Internal(format!("unit {u} does not serialise: {e}")))?;
            store.write(u, value)?;
            out.ran.push(u);
        }
        progress.report(&stage, k + 1, mine)?;
    }
    Ok(out)
}

/// A unit's progress inside a shard's count of units: every report repeats the shard's
/// count (so that a cancellation still stops the unit), notes pass through.
struct Within<'a> {
    inner: &'a mut dyn Progress,
    stage: &'a str,
    done: usize,
    total: usize,
}

impl Progress for Within<'_> {
    fn report(&mut self, _stage: &str, _done: usize, _total: usize) -> Result<()> {
        self.inner.report(self.stage, self.done, self.total)
    }

    fn note(&mut self, detail: &str) {
        self.inner.note(detail);
    }
}

/// The result from a finished `store`: the job must be the one `plan` describes (with the
/// store's own `run`, so the output folder or the spelling of the arguments does not
/// matter), every unit present and from these settings; errors name the missing units or
/// the file at fault.
pub fn from_store<A: Sharded>(
    plan: &A::Plan<'_>,
    store: &UnitStore,
    progress: &mut dyn Progress,
) -> Result<A::Output> {
    let job = spec::<A>(plan, store.spec().settings["run"].clone())?;
    if job.fingerprint() != store.spec().fingerprint() {
        return Err(Error::Data {
            origin: store.dir().join("job.json").display().to_string(),
            message: "the units were computed with other arguments, sets or data than these \
                      (give the sharded runs' arguments, or use `ddlens gather DIR`)"
                .into(),
        });
    }
    let results = store
        .gather()?
        .into_iter()
        .enumerate()
        .map(|(u, v)| {
            serde_json::from_value(v).map_err(|e| Error::Data {
                origin: store.path(u).display().to_string(),
                message: format!("not a {} unit result: {e}", A::NAME),
            })
        })
        .collect::<Result<Vec<A::Unit>>>()?;
    A::assemble(plan, results, progress)
}

/// Runs the units of a shard: the store is created (or checked) in `dir` for the job, and
/// `announce` sees it before the first unit (to print which units the shard takes).
pub type RunShardFn = fn(
    &Bundle,
    RealData<'_>,
    &[NamedSet],
    &Request<'_>,
    &ShardRequest<'_>,
    &mut dyn Progress,
) -> Result<(UnitStore, ShardRun)>;

/// Writes the result of a finished store like a one-process run ([`Request::out_dir`]).
pub type GatherFn = fn(
    &Bundle,
    RealData<'_>,
    &[NamedSet],
    &Request<'_>,
    &UnitStore,
    &mut dyn Progress,
) -> Result<(Value, Option<SavedFiles>)>;

/// Where and which units a sharded run computes.
pub struct ShardRequest<'a> {
    /// The folder of units (created if needed).
    pub dir: &'a std::path::Path,
    /// The units of this process.
    pub shard: Shard,
    /// What a front-end needs to redo the set-up at the gather (recorded as `settings.run`).
    pub run: Value,
    /// Called with the store before the first unit.
    pub announce: &'a dyn Fn(&UnitStore),
}

/// A [`Sharded`] analysis for front-ends, by registry entry.
#[derive(Clone, Copy)]
pub struct UnitFns {
    /// A shard's units.
    pub run_shard: RunShardFn,
    /// The result of a finished store.
    pub gather: GatherFn,
}

impl UnitFns {
    /// The functions of `A`.
    pub const fn of<A: Sharded>() -> UnitFns {
        UnitFns {
            run_shard: run_shard_entry::<A>,
            gather: gather_entry::<A>,
        }
    }
}

fn run_shard_entry<A: Sharded>(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    request: &Request<'_>,
    job: &ShardRequest<'_>,
    progress: &mut dyn Progress,
) -> Result<(UnitStore, ShardRun)> {
    let config = config_with::<A>(request.info.budget, request.info.seed, request.options)?;
    let plan = A::plan(model, real, sets, &config)?;
    let store = UnitStore::create(job.dir, spec::<A>(&plan, job.run.clone())?)?;
    (job.announce)(&store);
    let done = run_shard::<A>(&plan, &store, job.shard, progress)?;
    Ok((store, done))
}

fn gather_entry<A: Sharded>(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    request: &Request<'_>,
    store: &UnitStore,
    progress: &mut dyn Progress,
) -> Result<(Value, Option<SavedFiles>)> {
    let config = config_with::<A>(request.info.budget, request.info.seed, request.options)?;
    let plan = A::plan(model, real, sets, &config)?;
    let output = from_store::<A>(&plan, store, progress)?;
    match request.out_dir {
        Some(dir) => {
            let (json, saved) = save_result::<A>(dir, request.info, &output)?;
            Ok((json, Some(saved)))
        }
        None => Ok((result_json::<A>(&output)?, None)),
    }
}
