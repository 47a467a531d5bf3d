//! Resumable generation of expert trajectories into a folder. Generating the reference
//! buffer (tens of experts of 50 epochs) takes hours on a CPU, so each expert's state is
//! saved after every epoch and an interrupted generation continues where it stopped, to the
//! same files bit for bit.
//!
//! # On disk (besides the layout of [`super::expert`])
//! ```text
//! dir/expert-0000/state.json            settings, epochs done, position of the random stream
//! dir/expert-0000/velocity.safetensors  SGD velocity (only with momentum)
//! ```
//! After an epoch, its parameter file, the velocity and then the state are written, each
//! atomically: a crash between them only repeats that epoch. The index is written last.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::expert::{
    check_inputs, checkpoint_path, expert_rng, expert_sgd, write_expert_index, ExpertConfig,
    ExpertIndex, ExpertRun,
};
use crate::augment::Dsa;
use crate::bundle::{Bundle, Manifest};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::progress::Progress;
use crate::train::{load_params, save_params};

/// The `format` field of an expert's `state.json`.
pub const EXPERT_STATE_FORMAT: &str = "ddlens-expert-state";

/// The settings an expert's files depend on; resuming with other settings is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    model: String,
    epochs: usize,
    lr: f32,
    momentum: f32,
    batch: usize,
    augment: String,
    seed: u64,
}

impl Settings {
    /// The settings an index records (the same fields).
    pub(super) fn from_index(index: &ExpertIndex) -> Settings {
        Settings {
            model: index.model.clone(),
            epochs: index.epochs,
            lr: index.lr,
            momentum: index.momentum,
            batch: index.batch,
            augment: index.augment.clone(),
            seed: index.seed,
        }
    }

    pub(super) fn new(manifest: &Manifest, config: &ExpertConfig, seed: u64) -> Settings {
        Settings {
            model: manifest.name.clone(),
            epochs: config.epochs,
            lr: config.lr,
            momentum: config.momentum,
            batch: config.batch,
            augment: config
                .dsa
                .as_ref()
                .map_or_else(|| "none".to_string(), Dsa::strategy),
            seed,
        }
    }
}

/// `expert-XXXX/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpertState {
    format: String,
    settings: Settings,
    /// Epochs done (`epoch-<epoch>.safetensors` holds the parameters after them).
    pub(super) epoch: usize,
    /// Word position of the expert's ChaCha8 stream (a decimal u128: JSON numbers are not).
    rng_word_pos: String,
    /// Whether `velocity.safetensors` belongs to this state.
    velocity: bool,
}

fn state_path(dir: &Path, expert: usize) -> PathBuf {
    dir.join(format!("expert-{expert:04}")).join("state.json")
}

fn velocity_path(dir: &Path, expert: usize) -> PathBuf {
    dir.join(format!("expert-{expert:04}"))
        .join("velocity.safetensors")
}

/// Reads an expert's state, if it has one; a state written with other settings is an error
/// naming the file and the setting, so that no finished work is overwritten by mistake.
pub(super) fn read_state(
    dir: &Path,
    expert: usize,
    want: &Settings,
) -> Result<Option<ExpertState>> {
    let path = state_path(dir, expert);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let state: ExpertState = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bundle(&path, format!("not an expert state: {e}")))?;
    if state.format != EXPERT_STATE_FORMAT {
        return Err(Error::bundle(
            &path,
            format!(
                "format is `{}`, expected `{EXPERT_STATE_FORMAT}`",
                state.format
            ),
        ));
    }
    if &state.settings != want {
        return Err(Error::bundle(
            &path,
            format!(
                "this folder holds experts generated with other settings ({:?}, asked for \
                 {:?}); use another output folder or delete this one",
                state.settings, want
            ),
        ));
    }
    if state.epoch > want.epochs {
        return Err(Error::bundle(
            &path,
            format!(
                "{} epochs done, more than the {} asked for",
                state.epoch, want.epochs
            ),
        ));
    }
    Ok(Some(state))
}

/// Rebuilds the run an expert's state describes.
fn resume_run(
    dir: &Path,
    bundle: &Bundle,
    config: &ExpertConfig,
    settings: &Settings,
    expert: usize,
    state: &ExpertState,
) -> Result<ExpertRun> {
    let path = state_path(dir, expert);
    let pos: u128 = state.rng_word_pos.parse().map_err(|_| {
        Error::bundle(
            &path,
            format!("rng_word_pos `{}` is not an integer", state.rng_word_pos),
        )
    })?;
    let mut rng = expert_rng(settings.seed, expert);
    rng.set_word_pos(pos);
    let mut sgd = expert_sgd(config);
    if state.velocity {
        sgd.set_velocity(Some(load_params(
            &velocity_path(dir, expert),
            bundle.manifest(),
        )?));
    }
    Ok(ExpertRun {
        index: expert,
        epoch: state.epoch,
        params: load_params(
            &checkpoint_path(dir, expert, state.epoch),
            bundle.manifest(),
        )?,
        sgd,
        rng,
    })
}

/// Saves the parameters after `run.epoch` epochs, the velocity, then the state.
fn save_progress(
    dir: &Path,
    manifest: &Manifest,
    settings: &Settings,
    run: &ExpertRun,
) -> Result<()> {
    save_params(
        &checkpoint_path(dir, run.index, run.epoch),
        manifest,
        &run.params,
    )?;
    if let Some(v) = run.sgd.velocity() {
        save_params(&velocity_path(dir, run.index), manifest, v)?;
    }
    let state = ExpertState {
        format: EXPERT_STATE_FORMAT.to_string(),
        settings: settings.clone(),
        epoch: run.epoch,
        rng_word_pos: run.rng.get_word_pos().to_string(),
        velocity: run.sgd.velocity().is_some(),
    };
    let json =
        serde_json::to_vec_pretty(&state).map_err(|e| Error::invalid("experts", e.to_string()))?;
    write_atomic(&state_path(dir, run.index), &json)
}

/// The states of the experts among the first `n` that `dir` already holds, by index. The folder
/// is listed rather than probed once per expert asked for, so that an absurd `n` (say 2^40,
/// through the C ABI) costs nothing before the first progress report.
fn existing_states(
    dir: &Path,
    n: usize,
    settings: &Settings,
) -> Result<std::collections::BTreeMap<usize, ExpertState>> {
    // A folder that cannot be listed holds no experts; creating it reports the problem.
    let mut found: Vec<usize> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?
                .strip_prefix("expert-")?
                .parse::<usize>()
                .ok()
        })
        .filter(|&i| i < n)
        .collect();
    found.sort_unstable();
    found.dedup();
    let mut states = std::collections::BTreeMap::new();
    for i in found {
        if let Some(state) = read_state(dir, i, settings)? {
            states.insert(i, state);
        }
    }
    Ok(states)
}

/// Generates `n` experts into `dir` (created if needed), continuing any expert an earlier,
/// interrupted call with the same settings left unfinished, and writes the index last. The
/// result is bit-identical to an uninterrupted generation ([`super::generate_experts`] and
/// [`super::save_experts`]). `progress` counts epochs over all experts (`experts`, done,
/// `n * epochs`; from the resumed count), before the first epoch and after every one, with the
/// expert as a note; an error it returns stops the generation, which can then be resumed. Errors before any training if `dir` holds experts made with other settings.
pub fn generate_experts_into(
    dir: &Path,
    bundle: &Bundle,
    real: &Dataset,
    n: usize,
    config: &ExpertConfig,
    seed: u64,
    progress: &mut dyn Progress,
) -> Result<ExpertIndex> {
    if n == 0 {
        return Err(Error::invalid("num_experts", "must be at least 1"));
    }
    check_inputs(bundle, real, config)?;
    let settings = Settings::new(bundle.manifest(), config, seed);
    let states = existing_states(dir, n, &settings)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The index is what makes a folder usable: never leave one beside unfinished experts.
    let index_file = dir.join("experts.json");
    let complete = states.len() == n && states.values().all(|s| s.epoch == config.epochs);
    if index_file.exists() && !complete {
        std::fs::remove_file(&index_file).map_err(|e| Error::io(&index_file, e))?;
    }
    let epochs = config.epochs;
    let total = n.checked_mul(epochs).ok_or_else(|| {
        Error::invalid(
            "epochs",
            format!("{n} experts of {epochs} epochs is too many"),
        )
    })?;
    let done_before: usize = states.values().map(|s| s.epoch).sum();
    progress.report("experts", done_before, total)?;
    for i in 0..n {
        train_expert_into(
            dir,
            bundle,
            real,
            config,
            &settings,
            i,
            states.get(&i),
            &mut |epoch| {
                progress.note(&format!("expert {}/{n}, epoch {epoch}/{epochs}", i + 1));
                progress.report("experts", i * epochs + epoch, total)
            },
        )?;
    }
    write_expert_index(dir, bundle.manifest(), n, config.epochs, config, seed)
}

/// Trains expert `i` into `dir` up to `config.epochs` epochs, continuing from `state` (its
/// saved state, if any) and saving after every epoch; `on_epoch(epochs done)` follows each
/// save and may stop the training with an error (it can be resumed).
#[allow(clippy::too_many_arguments)]
pub(super) fn train_expert_into(
    dir: &Path,
    bundle: &Bundle,
    real: &Dataset,
    config: &ExpertConfig,
    settings: &Settings,
    i: usize,
    state: Option<&ExpertState>,
    on_epoch: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<()> {
    let mut run = match state {
        Some(s) => resume_run(dir, bundle, config, settings, i, s)?,
        None => {
            let sub = dir.join(format!("expert-{i:04}"));
            std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
            let run = ExpertRun::start(bundle, config, settings.seed, i);
            save_progress(dir, bundle.manifest(), settings, &run)?;
            run
        }
    };
    while run.epoch < config.epochs {
        run.train_epoch(bundle, real, config)?;
        save_progress(dir, bundle.manifest(), settings, &run)?;
        on_epoch(run.epoch)?;
    }
    Ok(())
}
