//! The analyses of "What is Dataset Distillation Learning?" (Yang et al., ICML 2024), for any
//! distilled sets. Each analysis is one file with a config (`paper()` defaults, scaled down by a
//! [`Budget`]), one entry function and a serialisable result that knows its figure; [`save`]
//! writes the result folder (`<name>.json` + PNG figures) that `ddlens report` reads.
//!
//! Shared vocabulary: a [`NamedSet`] is a training set under study (a distilled set or a random
//! real baseline), [`RealData`] the real train/test splits, [`Progress`] the callback through
//! which long analyses report progress and can be cancelled.

pub mod agreement;
pub mod curvature;
pub mod hessian;
pub mod influence;
pub mod influence_units;
pub mod kde;
pub mod mixing;
pub mod pixels;
pub mod recognition;
pub mod recognition_over_training;
mod registry;
pub mod sensitivity;
pub mod sharded;
pub mod suite;
mod support;

pub use crate::verdict::{State, Verdict};
pub use registry::{find, names, write_report, Entry, Request, ANALYSES};
pub use sharded::{Sharded, UnitFns};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::data::{Dataset, DistilledSet};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::report::plot::{self, BarChart, Heatmap, LineChart};

/// Version of the result files' envelope (`format_version` in every `<analysis>.json`).
pub const RESULT_FORMAT_VERSION: u32 = 1;

/// How much compute an analysis may spend. `Paper` is the paper's protocol; `Cpu` scales run
/// counts, pool sizes and step counts down so that one analysis takes minutes on a laptop;
/// `Smoke` is for tests and the demo's quickest path. Each config documents what it scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// The paper's protocol (GPU hours).
    Paper,
    /// Minutes on 2 CPU cores.
    Cpu,
    /// Seconds: tests and smoke runs, not for conclusions.
    Smoke,
}

impl FromStr for Budget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Budget> {
        match s {
            "paper" => Ok(Budget::Paper),
            "cpu" => Ok(Budget::Cpu),
            "smoke" => Ok(Budget::Smoke),
            other => Err(Error::invalid(
                "budget",
                format!("unknown budget `{other}`; use paper, cpu or smoke"),
            )),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Budget::Paper => "paper",
            Budget::Cpu => "cpu",
            Budget::Smoke => "smoke",
        })
    }
}

/// A training set under analysis, by name: a distilled set, or a random real baseline.
#[derive(Debug, Clone)]
pub struct NamedSet {
    /// Display name (`dm-ipc10`, `random`...), used in legends and JSON keys.
    pub name: String,
    /// Normalised images and labels.
    pub data: Dataset,
    /// The set's learned learning rate (MTT, BPTT with a learned lr), if any.
    pub lr: Option<f32>,
}

impl NamedSet {
    /// A named set from a distilled-set file's contents.
    pub fn from_distilled(name: impl Into<String>, set: DistilledSet) -> NamedSet {
        NamedSet {
            name: name.into(),
            data: set.data,
            lr: set.lr,
        }
    }

    /// Reads a distilled-set file (safetensors, `.npz`, or `images.npy` with `labels.npy`),
    /// naming it after the file stem.
    pub fn read(path: &Path) -> Result<NamedSet> {
        let set = DistilledSet::read_any(path)?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        Ok(NamedSet::from_distilled(name, set))
    }
}

/// The real data an analysis compares against.
#[derive(Debug, Clone, Copy)]
pub struct RealData<'a> {
    /// The real training split (normalised).
    pub train: &'a Dataset,
    /// The real test split (normalised).
    pub test: &'a Dataset,
}

pub use crate::progress::Progress;

/// A progress callback that ignores every report (the same as [`crate::progress::Silent`]).
pub fn no_progress(_stage: &str, _done: usize, _total: usize) -> Result<()> {
    Ok(())
}

/// A figure of an analysis, drawn by [`save`].
#[derive(Debug, Clone)]
pub enum Figure {
    /// Curves on shared axes.
    Lines(LineChart),
    /// An annotated matrix.
    Heatmap(Heatmap),
    /// Grouped bars.
    Bars(BarChart),
    /// An already encoded PNG (image grids).
    Png(Vec<u8>),
}

impl Figure {
    /// Draws the figure to `path` (PNG).
    pub fn write(&self, path: &Path) -> Result<()> {
        match self {
            Figure::Lines(c) => plot::write_line_chart(path, c),
            Figure::Heatmap(h) => plot::write_heatmap(path, h),
            Figure::Bars(b) => plot::write_bar_chart(path, b),
            Figure::Png(bytes) => write_atomic(path, bytes),
        }
    }
}

/// What every result file records besides the result itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Model bundle name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Budget the analysis ran with.
    pub budget: Budget,
    /// Seed.
    pub seed: u64,
}

/// The files [`save`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SavedFiles {
    /// The JSON result.
    pub json: PathBuf,
    /// The figures, in the order given.
    pub figures: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    format: &'static str,
    format_version: u32,
    analysis: &'a str,
    info: &'a RunInfo,
    figures: Vec<String>,
    result: &'a T,
}

/// Writes `<dir>/<analysis>.json` (an envelope with `analysis`, `info`, `figures` and the
/// `result`) and each figure as `<dir>/<analysis>[-<suffix>].png`, atomically.
/// `figures` pairs a file-name suffix (empty for the main figure) with the figure.
pub fn save<T: Serialize>(
    dir: &Path,
    analysis: &str,
    info: &RunInfo,
    result: &T,
    figures: &[(String, Figure)],
) -> Result<SavedFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::with_capacity(figures.len());
    for (suffix, fig) in figures {
        let name = if suffix.is_empty() {
            format!("{analysis}.png")
        } else {
            format!("{analysis}-{suffix}.png")
        };
        let path = dir.join(&name);
        fig.write(&path)?;
        paths.push(path);
    }
    let env = Envelope {
        format: "ddlens-analysis",
        format_version: RESULT_FORMAT_VERSION,
        analysis,
        info,
        figures: paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
        result,
    };
    let json = dir.join(format!("{analysis}.json"));
    let text = serde_json::to_vec_pretty(&env)
        .map_err(|e| Error::invalid("result", format!("cannot serialise: {e}")))?;
    write_atomic(&json, &text)?;
    Ok(SavedFiles {
        json,
        figures: paths,
    })
}

/// One analysis, as the CLI, the C ABI and the report see it: a name, a JSON-serialisable
/// config with per-budget defaults, an entry point and the figures of its result. Each
/// analysis file implements it on a unit struct next to its plain entry function.
pub trait Analysis {
    /// The name used by `ddlens analyze <name>`, in file names and in `ddl_analyze`.
    const NAME: &'static str;
    /// One line on what it measures (CLI help, `ddl_analysis_names`).
    const ABOUT: &'static str;
    /// Whether it builds its own random real baseline (so callers pass the distilled sets
    /// alone rather than beside a random real set).
    const OWN_BASELINE: bool = false;
    /// Revision of the method, raised when a change alters its results for the same settings
    /// (influence 2: the consistency baseline matches the top-k's class composition). A suite
    /// recomputes a saved result of an older revision rather than keeping it.
    const REVISION: u32 = 1;
    /// Settings; fields a caller does not give keep the budget's defaults.
    type Config: Serialize + DeserializeOwned + Clone;
    /// The result, written as the `result` of `<name>.json` and read back by the report.
    type Output: Serialize + DeserializeOwned;

    /// The defaults for a budget ([`Budget::Paper`] is the paper's protocol), with every
    /// random draw of the analysis seeded from `seed`.
    fn config(budget: Budget, seed: u64) -> Self::Config;

    /// Runs the analysis of `sets` (in order) against `real` with `model`.
    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &Self::Config,
        progress: &mut dyn Progress,
    ) -> Result<Self::Output>;

    /// The figures of a result, as `(file-name suffix, figure)`; suffix `""` is the main one.
    fn figures(output: &Self::Output) -> Result<Vec<(String, Figure)>>;

    /// The report's text for a result (read back from the `result` of `<name>.json`).
    fn summary(output: &Self::Output) -> crate::report::summary::Summary;

    /// What the result says about the paper's claim this analysis tests, from the intervals
    /// it recorded (see [`crate::verdict`]).
    fn verdict(output: &Self::Output) -> Verdict;
}

/// The budget's defaults of `A` with the fields of the JSON object `overrides` replaced
/// (`None` or `""` keeps the defaults). Unknown or mistyped fields are errors naming the
/// analysis and the field.
pub fn config_with<A: Analysis>(
    budget: Budget,
    seed: u64,
    overrides: Option<&str>,
) -> Result<A::Config> {
    let base = A::config(budget, seed);
    let Some(text) = overrides.filter(|t| !t.trim().is_empty()) else {
        return Ok(base);
    };
    let arg = format!("{} options", A::NAME);
    let patch: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(&arg, format!("not valid JSON: {e}")))?;
    let serde_json::Value::Object(patch) = patch else {
        return Err(Error::invalid(&arg, "must be a JSON object"));
    };
    let mut merged = serde_json::to_value(&base)
        .map_err(|e| Error::Internal(format!("{arg}: cannot serialise the defaults: {e}")))?;
    let base_json = merged.clone();
    let patch_keys: Vec<String> = patch.keys().cloned().collect();
    let fields_given = serde_json::Value::Object(patch.clone());
    let serde_json::Value::Object(fields) = &mut merged else {
        return Err(Error::invalid(&arg, "the config is not a JSON object"));
    };
    for (key, value) in patch {
        if !fields.contains_key(&key) {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(Error::invalid(
                &arg,
                format!("unknown field `{key}`; known fields: {}", known.join(", ")),
            ));
        }
        fields.insert(key, value);
    }
    serde_json::from_value(merged).map_err(|e| {
        // Name the field at fault: the first override that does not fit on its own.
        let field = patch_keys.iter().find(|key| {
            let mut one = base_json.clone();
            one[key.as_str()] = fields_given[key.as_str()].clone();
            serde_json::from_value::<A::Config>(one).is_err()
        });
        match field {
            Some(key) => Error::invalid(&arg, format!("field `{key}`: {e}")),
            None => Error::invalid(&arg, e.to_string()),
        }
    })
}

/// The result as JSON with its [`Verdict`] under `verdict`: what `<name>.json` holds as its
/// `result` and what `ddl_analyze` hands to C callers.
pub fn result_json<A: Analysis>(output: &A::Output) -> Result<serde_json::Value> {
    // Through text, so that f32 fields read back exactly as the file writes them (a direct
    // `to_value` widens them to f64 and prints more digits).
    let mut json: serde_json::Value = serde_json::to_string(output)
        .and_then(|text| serde_json::from_str(&text))
        .map_err(|e| Error::invalid("result", format!("cannot serialise: {e}")))?;
    if let serde_json::Value::Object(fields) = &mut json {
        let verdict = serde_json::to_value(A::verdict(output))
            .map_err(|e| Error::Internal(format!("cannot serialise the verdict: {e}")))?;
        fields.insert("verdict".into(), verdict);
    }
    Ok(json)
}

/// [`save`]s a result of `A` (with its verdict, [`result_json`]) and its figures in `dir`.
pub fn save_result<A: Analysis>(
    dir: &Path,
    info: &RunInfo,
    output: &A::Output,
) -> Result<(serde_json::Value, SavedFiles)> {
    let json = result_json::<A>(output)?;
    let figures = A::figures(output)?;
    let saved = save(dir, A::NAME, info, &json, &figures)?;
    Ok((json, saved))
}

/// Runs `A` and, when `out_dir` is given, saves its JSON and figures there
/// ([`save_result`]). Returns the result as JSON with its verdict ([`result_json`]) and the
/// files written.
pub fn run_and_save<A: Analysis>(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &A::Config,
    info: &RunInfo,
    out_dir: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<(serde_json::Value, Option<SavedFiles>)> {
    let output = A::run(model, real, sets, config, progress)?;
    match out_dir {
        Some(dir) => {
            let (json, saved) = save_result::<A>(dir, info, &output)?;
            Ok((json, Some(saved)))
        }
        None => Ok((result_json::<A>(&output)?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_setting_is_named_and_an_unknown_one_listed() {
        let bad = r#"{"batch": 8, "max_probes": "abc"}"#;
        let e = config_with::<curvature::Curvature>(Budget::Smoke, 0, Some(bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("curvature options") && e.contains("field `max_probes`"),
            "{e}"
        );
        let e = config_with::<curvature::Curvature>(Budget::Smoke, 0, Some(r#"{"probes": 3}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `probes`") && e.contains("max_probes"),
            "{e}"
        );
        let ok =
            config_with::<curvature::Curvature>(Budget::Smoke, 0, Some(r#"{"max_probes": 3}"#));
        assert_eq!(ok.unwrap().max_probes, 3);
    }
}
