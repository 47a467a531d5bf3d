//! Standard evaluations saved as `ddlens eval --json` wrote them, read back so that
//! DD-Ranking's metrics ([`super::ranking`]) can be computed from runs made earlier, in other
//! processes or on other machines (the zoo's table, a cluster's gathered units) without
//! training again.
//!
//! A DD-Ranking protocol needs the distilled set and a random real subset evaluated the same
//! way. They come either from one report holding both (`ddlens eval SET`, whose second result
//! is the random baseline) or from two reports of one set each (`--no-baseline`, and `ddlens
//! eval --ipc N` for the random subset). The reports must agree on the model, the epochs, the
//! augmentation and the number of runs, else run `i` of one would not pair with run `i` of the
//! other; the learning rate may differ (a set's learned lr is its own).

use std::path::Path;

use serde_json::Value;

use super::protocol::EvalSummary;
use super::ranking::{dd_ranking_of, DdRanking};
use crate::error::{Error, Result};

/// A saved standard evaluation: what `ddlens eval --json` prints (or `ddlens gather` writes).
#[derive(Debug, Clone)]
pub struct SavedEval {
    /// Where it was read from, for messages.
    pub origin: String,
    /// The bundle's name.
    pub model: String,
    /// The protocol as saved (`runs`, `epochs`, `lr`, `augment`, `seed`).
    pub protocol: Value,
    /// One summary per evaluated set, in the report's order.
    pub results: Vec<EvalSummary>,
}

impl SavedEval {
    /// Reads a report from `path`; errors name the file and the field.
    pub fn read(path: &Path) -> Result<SavedEval> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Data {
            origin: origin.clone(),
            message: format!("cannot read the evaluation report: {e}"),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| Error::Data {
            origin: origin.clone(),
            message: format!("not JSON ({e}); expected the output of `ddlens eval --json`"),
        })?;
        SavedEval::from_value(origin, &value)
    }

    /// A report from its JSON value; `origin` names it in errors.
    pub fn from_value(origin: impl Into<String>, value: &Value) -> Result<SavedEval> {
        let origin = origin.into();
        let bad = |what: &str| Error::Data {
            origin: origin.clone(),
            message: format!("{what}; expected the output of `ddlens eval --json`"),
        };
        let model = value["model"]
            .as_str()
            .ok_or_else(|| bad("no `model`"))?
            .to_string();
        let protocol = value["protocol"].clone();
        if !protocol.is_object() {
            return Err(bad("no `protocol`"));
        }
        let results: Vec<EvalSummary> = serde_json::from_value(value["results"].clone())
            .map_err(|e| bad(&format!("`results` is not a list of set summaries ({e})")))?;
        if results.is_empty() {
            return Err(bad("`results` is empty"));
        }
        Ok(SavedEval {
            origin,
            model,
            protocol,
            results,
        })
    }
}

/// The settings two reports must share for their runs to pair.
const PAIRED_SETTINGS: [&str; 3] = ["epochs", "augment", "runs"];

/// One protocol's `[distilled, random]` summaries from one report (holding both, the set
/// first) or two (one set each: the distilled set's, then the random subset's), after checking
/// that they were evaluated alike.
pub fn protocol_pair(reports: &[SavedEval]) -> Result<[EvalSummary; 2]> {
    match reports {
        [one] => match one.results.as_slice() {
            [set, random] => Ok([set.clone(), random.clone()]),
            r => Err(Error::Data {
                origin: one.origin.clone(),
                message: format!(
                    "{} evaluated sets; give a report of the set beside its random real subset \
                     (`ddlens eval SET --json`), or two reports, the set's then the random \
                     subset's",
                    r.len()
                ),
            }),
        },
        [set, random] => {
            check_alike(set, random)?;
            let first = |r: &SavedEval| -> Result<EvalSummary> {
                match r.results.as_slice() {
                    [s] => Ok(s.clone()),
                    _ => Err(Error::Data {
                        origin: r.origin.clone(),
                        message: format!(
                            "{} evaluated sets; with two reports, each holds one set (`ddlens \
                             eval --no-baseline --json`)",
                            r.results.len()
                        ),
                    }),
                }
            };
            Ok([first(set)?, first(random)?])
        }
        _ => Err(Error::invalid(
            "reports",
            format!(
                "{} reports for one protocol; give one (set and random subset) or two (set, \
                 then random subset)",
                reports.len()
            ),
        )),
    }
}

/// Both reports used the same model and protocol (up to the learning rate).
fn check_alike(a: &SavedEval, b: &SavedEval) -> Result<()> {
    if a.model != b.model {
        return Err(Error::Data {
            origin: b.origin.clone(),
            message: format!(
                "evaluated with model `{}` but {} with `{}`: DD-Ranking compares sets trained \
                 the same way",
                b.model, a.origin, a.model
            ),
        });
    }
    for key in PAIRED_SETTINGS {
        if a.protocol[key] != b.protocol[key] {
            return Err(Error::Data {
                origin: b.origin.clone(),
                message: format!(
                    "protocol.{key} is {} but {} in {}: DD-Ranking pairs runs evaluated the \
                     same way",
                    b.protocol[key], a.protocol[key], a.origin
                ),
            });
        }
    }
    Ok(())
}

/// DD-Ranking's metrics from saved reports: the protocol without augmentation (`plain`), with
/// augmentation (`augmented`, for ARS; it must use augmentation and `plain` must not), and
/// the full-data accuracy (`full`, for HLR and LRS). Each protocol is one or two reports as
/// [`protocol_pair`] takes them.
pub fn dd_ranking_from_saved(
    plain: &[SavedEval],
    augmented: Option<&[SavedEval]>,
    full: Option<&[f64]>,
) -> Result<DdRanking> {
    check_augmentation(plain, false)?;
    let p = protocol_pair(plain)?;
    let a = match augmented {
        Some(reports) => {
            check_augmentation(reports, true)?;
            let a = protocol_pair(reports)?;
            check_alike_models(&plain[0], &reports[0])?;
            Some(a)
        }
        None => None,
    };
    dd_ranking_of(&p, a.as_ref().map(|a| a.as_slice()), full)
}

/// Every report of a protocol is (`augmented`) or is not augmented.
fn check_augmentation(reports: &[SavedEval], augmented: bool) -> Result<()> {
    for r in reports {
        if r.protocol["augment"].is_null() == augmented {
            let (is, should) = if augmented {
                ("without", "with")
            } else {
                ("with", "without")
            };
            return Err(Error::Data {
                origin: r.origin.clone(),
                message: format!(
                    "evaluated {is} augmentation, but this protocol is the one {should} it"
                ),
            });
        }
    }
    Ok(())
}

fn check_alike_models(a: &SavedEval, b: &SavedEval) -> Result<()> {
    if a.model == b.model {
        return Ok(());
    }
    Err(Error::Data {
        origin: b.origin.clone(),
        message: format!(
            "evaluated with model `{}` but {} with `{}`",
            b.model, a.origin, a.model
        ),
    })
}
