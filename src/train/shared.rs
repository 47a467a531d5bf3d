//! P_real runs shared by the analyses of one suite.
//!
//! Recognition (its ConvNet-3), recognition over training and curvature each train the
//! analysis model with P_real from the same seed on the same real data: one run, up to where
//! each stops. A P_real step is the analyses' largest single cost (ConvNet-3 at batch 256:
//! 1.36 s on 2 idle cores of the AMD EPYC machine), so inside a [`SharedRuns`] scope the
//! first of them records its parameters at the steps that matter, and the others replay those
//! into their hooks instead of training again. The replayed parameters are the trained ones
//! bit for bit (training is deterministic on the CPU), so a result never depends on whether
//! its run was shared. Outside a scope [`train_at`] trains as [`train`] does.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use super::config::TrainConfig;
use super::hooks::{Control, Hook, StepContext};
use super::trainer::train;
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// A recorded run keeps its parameters at every multiple of this step (and at the steps its
/// first caller asked for): the analyses' steps are multiples of 10 at the demo's settings,
/// and ConvNet-3's parameters are 1.4 MB per record.
pub const RECORD_EVERY: usize = 10;

/// Parameters, state, loss and learning rate of a recorded step.
#[derive(Clone)]
struct Record {
    params: Params,
    state: Params,
    loss: f32,
    lr: f32,
}

/// One recorded run: what identifies it and its records by step.
struct Recorded {
    key: u64,
    records: BTreeMap<usize, Record>,
}

/// Open scopes, and the runs recorded while any is open.
struct Store {
    scopes: usize,
    runs: Vec<Recorded>,
}

static STORE: Mutex<Store> = Mutex::new(Store {
    scopes: 0,
    runs: Vec::new(),
});

fn store() -> std::sync::MutexGuard<'static, Store> {
    STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// While a value of this type lives, [`train_at`] records and replays runs; the records are
/// dropped when the last scope ends. [`crate::analysis::suite::Suite::run`] opens one.
pub struct SharedRuns {
    _private: (),
}

impl SharedRuns {
    /// Opens a scope.
    pub fn open() -> SharedRuns {
        store().scopes += 1;
        SharedRuns { _private: () }
    }

    /// The number of runs recorded in the open scopes (for tests and progress notes).
    pub fn recorded() -> usize {
        store().runs.len()
    }
}

impl Drop for SharedRuns {
    fn drop(&mut self) {
        let mut s = store();
        s.scopes = s.scopes.saturating_sub(1);
        if s.scopes == 0 {
            s.runs.clear();
        }
    }
}

/// Trains `bundle.init_params(init_seed)` on `data` with `config` and returns the final
/// parameters; `hooks` act only at `steps` (they may be called at other steps too). Inside a
/// [`SharedRuns`] scope a run recorded earlier with the same model, data, seed and settings
/// that holds every step of `steps` and the last one is replayed into the hooks instead.
pub fn train_at(
    bundle: &Bundle,
    init_seed: u64,
    data: &Dataset,
    config: &TrainConfig,
    steps: &[usize],
    hooks: &mut [&mut dyn Hook],
) -> Result<Params> {
    let total = config.total_steps(data.len());
    if let Some(&s) = steps.iter().find(|&&s| s > total) {
        return Err(Error::invalid(
            "steps",
            format!("step {s} is past the run's last step {total}"),
        ));
    }
    if store().scopes == 0 {
        let init = bundle.init_params(init_seed);
        return Ok(train(bundle, init, data, config, hooks)?.params);
    }
    let key = run_key(bundle, init_seed, data, config)?;
    let wanted: Vec<usize> = steps.iter().copied().chain([total]).collect();
    if let Some(records) = recorded(key, &wanted) {
        return replay(bundle, &records, steps, total, hooks);
    }
    let mut rec = Recording {
        wanted: &wanted,
        records: BTreeMap::new(),
        inner: hooks,
    };
    let init = bundle.init_params(init_seed);
    let out = train(bundle, init, data, config, &mut [&mut rec])?;
    if !out.stopped_early {
        keep_run(key, rec.records);
    }
    Ok(out.params)
}

/// Records the parameters at the multiples of [`RECORD_EVERY`] and at `wanted`, and calls the
/// caller's hooks.
struct Recording<'w, 'h, 'x> {
    wanted: &'w [usize],
    records: BTreeMap<usize, Record>,
    inner: &'h mut [&'x mut dyn Hook],
}

impl Hook for Recording<'_, '_, '_> {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        if ctx.step.is_multiple_of(RECORD_EVERY) || self.wanted.contains(&ctx.step) {
            let r = Record {
                params: ctx.params.clone(),
                state: ctx.state.clone(),
                loss: ctx.loss,
                lr: ctx.lr,
            };
            self.records.insert(ctx.step, r);
        }
        let mut control = Control::Continue;
        for h in self.inner.iter_mut() {
            if h.on_step(ctx)? == Control::Stop {
                control = Control::Stop;
            }
        }
        Ok(control)
    }
}

/// The records of run `key` at `wanted`, when a recorded run holds them all.
fn recorded(key: u64, wanted: &[usize]) -> Option<BTreeMap<usize, Record>> {
    let s = store();
    let run = s.runs.iter().find(|r| r.key == key)?;
    let out: Option<BTreeMap<usize, Record>> = wanted
        .iter()
        .map(|&w| Some((w, run.records.get(&w)?.clone())))
        .collect();
    out
}

/// Keeps a finished run, replacing a shorter one with the same key.
fn keep_run(key: u64, records: BTreeMap<usize, Record>) {
    let mut s = store();
    if s.scopes == 0 {
        return;
    }
    let last = |r: &BTreeMap<usize, Record>| r.keys().next_back().copied().unwrap_or(0);
    match s.runs.iter_mut().find(|r| r.key == key) {
        Some(old) if last(&old.records) >= last(&records) => {
            for (k, v) in records {
                old.records.entry(k).or_insert(v);
            }
        }
        Some(old) => old.records = records,
        None => s.runs.push(Recorded { key, records }),
    }
}

/// Calls the hooks at `steps` with the recorded parameters; returns those of step `total`.
fn replay(
    bundle: &Bundle,
    records: &BTreeMap<usize, Record>,
    steps: &[usize],
    total: usize,
    hooks: &mut [&mut dyn Hook],
) -> Result<Params> {
    let mut order = steps.to_vec();
    order.sort_unstable();
    order.dedup();
    'steps: for step in order {
        let r = &records[&step];
        let ctx = StepContext {
            step,
            total_steps: total,
            loss: r.loss,
            lr: r.lr,
            params: &r.params,
            state: &r.state,
            bundle,
        };
        for h in hooks.iter_mut() {
            if h.on_step(&ctx)? == Control::Stop {
                break 'steps;
            }
        }
    }
    Ok(records[&total].params.clone())
}

/// What identifies a run: the model, the initialisation seed, every training setting but the
/// step limit (a longer run holds a shorter one), and the data's contents.
fn run_key(bundle: &Bundle, init_seed: u64, data: &Dataset, config: &TrainConfig) -> Result<u64> {
    let mut h = DefaultHasher::new();
    bundle.name().hash(&mut h);
    bundle.manifest().num_parameters().hash(&mut h);
    init_seed.hash(&mut h);
    let unlimited = TrainConfig {
        max_steps: None,
        ..config.clone()
    };
    serde_json::to_string(&unlimited)
        .map_err(|e| Error::Internal(format!("cannot serialise the training settings: {e}")))?
        .hash(&mut h);
    data.images().shape().hash(&mut h);
    for v in data.images().iter() {
        v.to_bits().hash(&mut h);
    }
    data.labels().iter().for_each(|y| y.hash(&mut h));
    Ok(h.finish())
}
