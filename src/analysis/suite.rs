//! A suite: every analysis (or a chosen few) on the same sets, into one folder, ending in the
//! verdict table and the HTML report. `ddlens demo` is a suite over zoo sets; any caller with
//! its own sets runs the same job.
//!
//! The analyses of a suite share their P_real runs ([`SharedRuns`]): a run that one of them
//! trained is replayed, not trained again, by the next that needs it.
//!
//! A suite resumes: an analysis whose `<name>.json` in the folder was made with the same model,
//! dataset, budget, seed, sets and settings is kept, not rerun.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::{find, Entry, NamedSet, RealData, Request, RunInfo, Verdict, ANALYSES};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::train::SharedRuns;

/// Which sets an analysis sees: analyses with their own random real baseline get the judged
/// sets alone; the others get the references (random real draws) too.
#[derive(Debug, Clone)]
pub struct SuiteSets {
    /// The sets under study (distilled sets).
    pub judged: Vec<NamedSet>,
    /// Random real references (named `random…`, so verdicts show them without judging them).
    pub references: Vec<NamedSet>,
}

impl SuiteSets {
    fn for_entry(&self, entry: &Entry) -> Vec<NamedSet> {
        let mut sets = self.judged.clone();
        if !entry.own_baseline {
            sets.extend(self.references.iter().cloned());
        }
        sets
    }
}

/// One analysis of a suite and its settings.
#[derive(Debug, Clone)]
pub struct SuiteItem {
    /// The analysis.
    pub entry: &'static Entry,
    /// A JSON object of settings over the budget's defaults (`None`: the defaults).
    pub options: Option<String>,
}

/// The suite job.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The analyses, in order.
    pub items: Vec<SuiteItem>,
    /// Model, dataset, budget and seed.
    pub info: RunInfo,
    /// Folder for the results and figures.
    pub dir: PathBuf,
    /// Rerun analyses whose results already exist.
    pub fresh: bool,
}

/// One analysis's outcome in a suite.
#[derive(Debug, Clone)]
pub struct SuiteOutcome {
    /// The analysis name.
    pub name: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// Seconds it took (0 when an earlier result was kept).
    pub seconds: f64,
    /// Whether an earlier result was kept.
    pub kept: bool,
    /// The process's peak resident memory while it ran, in bytes (`None` when kept, or where
    /// the platform does not say; [`crate::runtime::peak_rss`]).
    pub peak_rss: Option<u64>,
}

impl Suite {
    /// Every analysis of the registry with the budget's defaults.
    pub fn all(info: RunInfo, dir: impl Into<PathBuf>) -> Suite {
        Suite {
            items: ANALYSES
                .iter()
                .map(|entry| SuiteItem {
                    entry,
                    options: None,
                })
                .collect(),
            info,
            dir: dir.into(),
            fresh: false,
        }
    }

    /// Replaces the settings of analysis `name` (an error names an unknown analysis).
    pub fn set_options(&mut self, name: &str, options: impl Into<String>) -> Result<()> {
        let entry = find(name)?;
        let item = self
            .items
            .iter_mut()
            .find(|i| i.entry.name == entry.name)
            .ok_or_else(|| Error::invalid("analysis", format!("`{name}` is not in the suite")))?;
        item.options = Some(options.into());
        Ok(())
    }

    /// Runs every analysis in order (`progress` sees each one's own stages; `started` is
    /// called before each with its index and name), keeping results that already match.
    pub fn run(
        &self,
        model: &Bundle,
        real: RealData<'_>,
        sets: &SuiteSets,
        started: &mut dyn FnMut(usize, &str),
        progress: &mut dyn Progress,
    ) -> Result<Vec<SuiteOutcome>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        // Recognition, recognition over training and curvature train the same P_real run:
        // train it once (crate::train::SharedRuns).
        let _shared = SharedRuns::open();
        let mut out = Vec::with_capacity(self.items.len());
        for (k, item) in self.items.iter().enumerate() {
            started(k, item.entry.name);
            let sets = sets.for_entry(item.entry);
            let stamp = stamp(&sets, item.options.as_deref(), item.entry.revision);
            let json = self.dir.join(format!("{}.json", item.entry.name));
            let t = Instant::now();
            let measured = crate::runtime::reset_peak_rss();
            let (result, kept) = match self.kept_result(&json, &stamp) {
                Some(result) => (result, true),
                None => {
                    let request = Request {
                        info: &self.info,
                        options: item.options.as_deref(),
                        out_dir: Some(&self.dir),
                    };
                    let (result, _) = (item.entry.run)(model, real, &sets, &request, progress)?;
                    write_stamp(&json, &stamp)?;
                    (result, false)
                }
            };
            out.push(SuiteOutcome {
                name: item.entry.name,
                verdict: (item.entry.verdict)(&result)?,
                seconds: if kept { 0.0 } else { t.elapsed().as_secs_f64() },
                kept,
                peak_rss: (measured && !kept).then(crate::runtime::peak_rss).flatten(),
            });
        }
        Ok(out)
    }

    /// The saved result in `json` when it was made with this suite's info and `stamp`.
    fn kept_result(&self, json: &Path, stamp: &Value) -> Option<Value> {
        if self.fresh {
            return None;
        }
        let envelope: Value = serde_json::from_str(&std::fs::read_to_string(json).ok()?).ok()?;
        let same_info = serde_json::to_value(&self.info).ok()? == envelope["info"];
        let stamp_file = stamp_path(json);
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(stamp_file).ok()?).ok()?;
        (same_info && &saved == stamp).then(|| envelope["result"].clone())
    }
}

/// What must match for a saved result to be kept: the sets (names, sizes and a checksum of
/// their pixels), the settings and the method's revision. Revision 1 is left out, so that the
/// stamps written before revisions existed still keep their results.
fn stamp(sets: &[NamedSet], options: Option<&str>, revision: u32) -> Value {
    let sets: Vec<Value> = sets
        .iter()
        .map(|s| {
            let sum: f64 = s.data.images().iter().map(|&x| f64::from(x)).sum();
            serde_json::json!({"name": s.name, "images": s.data.len(), "checksum": sum})
        })
        .collect();
    let mut stamp = serde_json::json!({"sets": sets, "options": options});
    if revision > 1 {
        stamp["revision"] = revision.into();
    }
    stamp
}

fn stamp_path(json: &Path) -> PathBuf {
    json.with_extension("inputs")
}

fn write_stamp(json: &Path, stamp: &Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(stamp)
        .map_err(|e| Error::Internal(format!("cannot serialise the suite stamp: {e}")))?;
    crate::io::write_atomic(&stamp_path(json), &text)
}

/// Each analysis's wall time and peak resident memory, as aligned text.
pub fn cost_table(outcomes: &[SuiteOutcome]) -> String {
    let mut out = format!(
        "{:<26} {:>9} {:>13}\n",
        "analysis", "seconds", "peak RSS (GB)"
    );
    for o in outcomes {
        let (secs, rss) = if o.kept {
            ("kept".to_string(), "-".to_string())
        } else {
            let rss = o
                .peak_rss
                .map_or("-".into(), |b| format!("{:.2}", b as f64 / 1e9));
            (format!("{:.0}", o.seconds), rss)
        };
        out.push_str(&format!("{:<26} {secs:>9} {rss:>13}\n", o.name));
    }
    out
}

/// The verdict table of a suite, as aligned text (what `ddlens demo` prints).
pub fn verdict_table(outcomes: &[SuiteOutcome]) -> String {
    let rows: Vec<(&str, Verdict)> = outcomes
        .iter()
        .map(|o| (o.name, o.verdict.clone()))
        .collect();
    crate::verdict::table(&rows)
}
