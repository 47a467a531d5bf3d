//! The list of analyses, written once. Everything that offers "any analysis" goes through
//! here: `ddlens analyze <name>`, `ddlens demo`, the report's order and text, and the C ABI's
//! `ddl_analysis_names` / `ddl_analyze`. Adding an analysis is its own file, one line in
//! [`ANALYSES`] and its section of docs/analyses.md.

use std::path::Path;

use serde_json::Value;

use super::{
    agreement, config_with, curvature, influence, mixing, pixels, recognition,
    recognition_over_training, run_and_save, sensitivity, Analysis, NamedSet, RealData, RunInfo,
    SavedFiles, Sharded, UnitFns, Verdict,
};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::report::summary::Summary;

/// How to run one analysis, besides the model, the data and the sets.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Model, dataset, budget and seed (the budget's defaults, seeded, are the settings).
    pub info: &'a RunInfo,
    /// A JSON object of settings overriding the budget's defaults (`None`/`""`: none).
    pub options: Option<&'a str>,
    /// Folder for `<name>.json` and the figures (`None`: write nothing).
    pub out_dir: Option<&'a Path>,
}

/// Runs an analysis from a [`Request`]: the result as JSON and the files written.
pub type RunFn = fn(
    &Bundle,
    RealData<'_>,
    &[NamedSet],
    &Request<'_>,
    &mut dyn Progress,
) -> Result<(Value, Option<SavedFiles>)>;

/// One analysis as front-ends see it.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Its name ([`Analysis::NAME`]).
    pub name: &'static str,
    /// One line on what it measures.
    pub about: &'static str,
    /// Whether it builds its own random real baseline ([`Analysis::OWN_BASELINE`]).
    pub own_baseline: bool,
    /// Revision of its method ([`Analysis::REVISION`]).
    pub revision: u32,
    /// Runs it.
    pub run: RunFn,
    /// The report's text for a saved result (its JSON read back into the typed result; an
    /// error names the analysis and what did not fit).
    pub summary: fn(&Value) -> Result<Summary>,
    /// The verdict of a saved result (recomputed from the typed result, so that it always
    /// follows the current rule).
    pub verdict: fn(&Value) -> Result<Verdict>,
    /// For an analysis made of independent units ([`super::Sharded`]): a shard's units and
    /// the gather of a finished folder of units.
    pub units: Option<UnitFns>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

fn run<A: Analysis>(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    request: &Request<'_>,
    progress: &mut dyn Progress,
) -> Result<(Value, Option<SavedFiles>)> {
    let info = request.info;
    let config = config_with::<A>(info.budget, info.seed, request.options)?;
    run_and_save::<A>(model, real, sets, &config, info, request.out_dir, progress)
}

fn typed<A: Analysis>(result: &Value) -> Result<A::Output> {
    serde_json::from_value(result.clone()).map_err(|e| Error::Data {
        origin: format!("{}.json", A::NAME),
        message: format!("the result does not read back: {e}"),
    })
}

fn summary<A: Analysis>(result: &Value) -> Result<Summary> {
    Ok(A::summary(&typed::<A>(result)?))
}

fn verdict<A: Analysis>(result: &Value) -> Result<Verdict> {
    Ok(A::verdict(&typed::<A>(result)?))
}

const fn entry<A: Analysis>() -> Entry {
    Entry {
        name: A::NAME,
        about: A::ABOUT,
        own_baseline: A::OWN_BASELINE,
        revision: A::REVISION,
        run: run::<A>,
        summary: summary::<A>,
        verdict: verdict::<A>,
        units: None,
    }
}

const fn sharded<A: Sharded>() -> Entry {
    Entry {
        units: Some(UnitFns::of::<A>()),
        ..entry::<A>()
    }
}

/// Every analysis, in the paper's order (the report's order).
pub static ANALYSES: [Entry; 8] = [
    sharded::<mixing::Mixing>(),
    sharded::<sensitivity::Sensitivity>(),
    entry::<pixels::Pixels>(),
    entry::<recognition::Recognition>(),
    entry::<agreement::Agreement>(),
    entry::<recognition_over_training::RecognitionOverTraining>(),
    entry::<curvature::Curvature>(),
    sharded::<influence::Influence>(),
];

/// Every analysis name, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ANALYSES.iter().map(|e| e.name)
}

/// The analysis called `name`; an unknown name is an error listing the known ones.
pub fn find(name: &str) -> Result<&'static Entry> {
    ANALYSES.iter().find(|e| e.name == name).ok_or_else(|| {
        Error::invalid(
            "analysis",
            format!(
                "unknown analysis `{name}`; available: {}",
                names().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

/// Writes the HTML report of the results in `dir` to `out` (atomically), in the paper's order
/// with each analysis's own text; returns the number of bytes.
pub fn write_report(dir: &Path, out: &Path, title: &str) -> Result<usize> {
    let order: Vec<&str> = names().collect();
    let summarize = |analysis: &str, result: &Value| {
        let summary_and_verdict = find(analysis).and_then(|e| {
            let mut s = (e.summary)(result)?;
            s.verdict = (e.verdict)(result).ok();
            Ok(s)
        });
        match summary_and_verdict {
            Ok(s) => s,
            Err(e) => Summary {
                title: analysis.to_string(),
                question: format!("(no summary: {e})"),
                ..Summary::default()
            },
        }
    };
    crate::report::write_report(dir, out, title, &order, &summarize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let all: Vec<&str> = names().collect();
        for (i, n) in all.iter().enumerate() {
            assert!(!all[..i].contains(n), "{n} twice");
            assert_eq!(find(n).unwrap().name, *n);
        }
        let e = find("nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("influence"), "{e}");
    }
}
