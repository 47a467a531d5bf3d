//! The standard evaluation of several training sets as a sharded job ([`crate::shard`]):
//! unit `u` is run `u % runs` of set `u / runs`, seeded by the run alone
//! ([`standard_evaluation_run`]), so any split over processes, gathered, gives the summaries
//! of one process, and [`eval_report`] the same bytes.

use serde_json::{json, Value};

use super::protocol::{standard_evaluation, standard_evaluation_run, EvalSummary, StandardEval};
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::shard::{JobSpec, Shard, ShardRun, UnitStore};

/// The `kind` of a standard-evaluation unit store.
pub const EVAL_KIND: &str = "eval";

/// A standard evaluation of named training sets (e.g. a distilled set beside a random real
/// subset), all with the same protocol and test set.
pub struct EvalJob<'a> {
    /// The model bundle's name (recorded in the result).
    pub model: &'a str,
    /// The training sets and their labels, evaluated in this order.
    pub sets: &'a [(String, Dataset)],
    /// The test set.
    pub test: &'a Dataset,
    /// The protocol (runs, epochs, lr, seed, augmentation).
    pub protocol: &'a StandardEval,
}

impl EvalJob<'_> {
    /// Number of units: sets × runs.
    pub fn units(&self) -> usize {
        self.sets.len().saturating_mul(self.protocol.runs)
    }

    /// The set and the run of unit `u`.
    pub fn unit(&self, u: usize) -> (usize, usize) {
        (u / self.protocol.runs, u % self.protocol.runs)
    }

    /// The whole evaluation in this process: one summary per set.
    pub fn run(&self, bundle: &Bundle, progress: &mut dyn Progress) -> Result<Vec<EvalSummary>> {
        self.sets
            .iter()
            .map(|(label, set)| {
                standard_evaluation(bundle, set, self.test, label, self.protocol, progress)
            })
            .collect()
    }

    /// What the units depend on and what the gather needs: the model, the protocol, each
    /// set's label, size and a hash of its images and labels, and the test set's size and
    /// labels hash.
    pub fn spec(&self) -> JobSpec {
        let sets: Vec<Value> = self
            .sets
            .iter()
            .map(|(label, d)| {
                json!({ "label": label, "train_size": d.len(), "content": content_hash(d, true) })
            })
            .collect();
        JobSpec {
            kind: EVAL_KIND.to_string(),
            units: self.units(),
            settings: json!({
                "model": self.model,
                "protocol": self.protocol,
                "sets": sets,
                "test": { "len": self.test.len(), "content": content_hash(self.test, false) },
            }),
        }
    }

    /// Trains the units of `shard` that `store` does not hold yet, each written to the store
    /// as soon as it is done (so a killed task loses at most the unit it was training).
    pub fn run_shard(
        &self,
        bundle: &Bundle,
        store: &UnitStore,
        shard: Shard,
        progress: &mut dyn Progress,
    ) -> Result<ShardRun> {
        self.protocol.validate()?;
        if store.spec() != &self.spec() {
            return Err(Error::Internal(
                "the unit store was opened for another evaluation".into(),
            ));
        }
        let mut out = ShardRun::default();
        for u in shard.units(self.units()) {
            if store.done(u) {
                out.skipped.push(u);
                continue;
            }
            let (s, run) = self.unit(u);
            let (label, set) = &self.sets[s];
            progress.note(label);
            let accuracy =
                standard_evaluation_run(bundle, set, self.test, self.protocol, run, progress)?;
            store.write(u, json!({ "accuracy": accuracy }))?;
            out.ran.push(u);
        }
        Ok(out)
    }
}

/// The summaries of a finished store of [`EVAL_KIND`] and the protocol's JSON, after
/// [`UnitStore::gather`]'s checks.
pub fn gather_eval(store: &UnitStore) -> Result<Value> {
    let spec = store.spec();
    let bad = |message: &str| Error::Data {
        origin: store.dir().join("job.json").display().to_string(),
        message: message.to_string(),
    };
    if spec.kind != EVAL_KIND {
        return Err(bad("not a standard-evaluation job"));
    }
    let settings = &spec.settings;
    let runs = settings["protocol"]["runs"]
        .as_u64()
        .ok_or_else(|| bad("no protocol.runs"))? as usize;
    let sets = settings["sets"].as_array().ok_or_else(|| bad("no sets"))?;
    if runs == 0 || sets.len().saturating_mul(runs) != spec.units {
        return Err(bad("sets × runs is not the unit count"));
    }
    let results = store.gather()?;
    let mut summaries = Vec::with_capacity(sets.len());
    for (s, set) in sets.iter().enumerate() {
        let accuracies = (0..runs)
            .map(|run| {
                let u = s * runs + run;
                results[u]["accuracy"].as_f64().ok_or_else(|| Error::Data {
                    origin: store.path(u).display().to_string(),
                    message: "no `accuracy` number in the result".into(),
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        let label = set["label"]
            .as_str()
            .ok_or_else(|| bad("a set has no label"))?;
        let size = set["train_size"]
            .as_u64()
            .ok_or_else(|| bad("a set has no train_size"))? as usize;
        summaries.push(EvalSummary::from_runs(label, size, accuracies));
    }
    let model = settings["model"].as_str().ok_or_else(|| bad("no model"))?;
    Ok(eval_report(model, &settings["protocol"], &summaries))
}

/// The result of a standard evaluation as `ddlens eval --json` prints it: model, epochs, lr,
/// protocol and one summary per set. `protocol` is the protocol's JSON (`serde_json::to_value`
/// of a [`StandardEval`]).
pub fn eval_report(model: &str, protocol: &Value, summaries: &[EvalSummary]) -> Value {
    json!({
        "model": model,
        "epochs": protocol["epochs"],
        "lr": protocol["lr"],
        "protocol": protocol,
        "results": summaries,
    })
}

/// FNV-1a 64 over the labels (and the image bytes when `images`), as 16 hex digits: what a
/// unit store's settings record of a data set.
pub(crate) fn content_hash(d: &Dataset, images: bool) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for &y in d.labels() {
        eat(&y.to_le_bytes());
    }
    if images {
        for &v in d.images() {
            eat(&v.to_le_bytes());
        }
    }
    format!("{h:016x}")
}
