//! Verdicts: what a result says about a claim of the paper, computed from intervals. (Below
//! the analyses and the report, which both use it; it knows only `stats`.)
//!
//! Each analysis tests one claim of the paper ([`Claim`]). For every distilled set it
//! measures one *effect* with a 95% interval (`stats`); the set's verdict is
//!
//! * `supports` when the interval lies entirely on the claim's side of "no effect",
//! * `contradicts` when it lies entirely on the other side,
//! * `inconclusive` when it includes no effect, when there is no interval (one run), or when
//!   the settings do not measure what the claim is about (curvature steps short of the
//!   paper's window, a recognition run stopped before the paper's step...).
//!
//! The analysis's verdict combines its sets: the paper states each claim for every method, so
//! one set that contradicts it contradicts the claim; otherwise one set that supports it
//! supports it; otherwise it is inconclusive. A set named `random` or `random-…` (a random
//! real subset, such as the zoo's `random-ipc10`) is a reference: its effect is shown beside
//! the others but it does not take part in the verdict. The verdict is stored in the result JSON
//! (`result.verdict`), printed by `ddlens analyze`, returned by `ddl_analyze` and shown in the
//! report.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stats::Interval;

/// What the numbers say about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The interval lies on the claim's side of "no effect".
    Supports,
    /// The interval lies on the other side.
    Contradicts,
    /// The interval includes no effect, or the settings cannot measure the claim.
    Inconclusive,
}

impl State {
    /// Whether the numbers decide the claim either way.
    pub fn is_conclusive(self) -> bool {
        self != State::Inconclusive
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Supports => "supports",
            State::Contradicts => "contradicts",
            State::Inconclusive => "inconclusive",
        })
    }
}

/// Which side of "no effect" the claim predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The claim predicts an effect above `null`.
    Above,
    /// The claim predicts an effect below `null`.
    Below,
}

/// A claim of the paper and the effect that tests it.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Short name of the finding (the verdict table's row).
    pub finding: &'static str,
    /// The claim in the paper's words, with its published numbers.
    pub claim: &'static str,
    /// What the effect is and its unit.
    pub effect: &'static str,
    /// The value of "no effect".
    pub null: f64,
    /// Which side of `null` the claim predicts.
    pub side: Side,
}

impl Claim {
    /// The verdict for one set from its effect: supports, contradicts or inconclusive, with
    /// the reason in words. A reference set ([`is_reference`]) is judged too, and marked.
    pub fn judge(&self, set: &str, effect: Interval) -> SetVerdict {
        let state = if !effect.excludes(self.null) {
            State::Inconclusive
        } else if (effect.lo > self.null) == (self.side == Side::Above) {
            State::Supports
        } else {
            State::Contradicts
        };
        let reason = match state {
            State::Inconclusive if !(effect.lo.is_finite() && effect.hi.is_finite()) => {
                format!("no interval from n = {} (give more runs)", effect.n)
            }
            State::Inconclusive => format!(
                "the interval [{:.3}, {:.3}] includes no effect ({})",
                effect.lo, effect.hi, self.null
            ),
            _ => format!(
                "the interval [{:.3}, {:.3}] excludes no effect ({})",
                effect.lo, effect.hi, self.null
            ),
        };
        SetVerdict {
            set: set.to_string(),
            state,
            effect: Some(effect),
            reason,
            reference: is_reference(set),
        }
    }

    /// A set whose effect the settings cannot measure: inconclusive, with `reason`.
    pub fn unmeasured(&self, set: &str, reason: impl Into<String>) -> SetVerdict {
        SetVerdict {
            set: set.to_string(),
            state: State::Inconclusive,
            effect: None,
            reason: reason.into(),
            reference: is_reference(set),
        }
    }

    /// The analysis's verdict from its sets' (see the module docs for the rule).
    pub fn combine(&self, sets: Vec<SetVerdict>) -> Verdict {
        let judged: Vec<&SetVerdict> = sets.iter().filter(|s| !s.reference).collect();
        let named = |state: State| -> Vec<&str> {
            judged
                .iter()
                .filter(|s| s.state == state)
                .map(|s| s.set.as_str())
                .collect()
        };
        let (supports, contradicts) = (named(State::Supports), named(State::Contradicts));
        let (state, reason) = if judged.is_empty() {
            (State::Inconclusive, "no distilled set was measured".into())
        } else if !contradicts.is_empty() {
            (
                State::Contradicts,
                format!("contradicted by {}", contradicts.join(", ")),
            )
        } else if !supports.is_empty() {
            let rest = judged.len() - supports.len();
            (
                State::Supports,
                if rest == 0 {
                    format!("supported by every set ({})", supports.join(", "))
                } else {
                    format!(
                        "supported by {}; {} inconclusive",
                        supports.join(", "),
                        rest
                    )
                },
            )
        } else if judged.len() == 1 {
            (State::Inconclusive, judged[0].reason.clone())
        } else {
            (State::Inconclusive, "no set decides it".into())
        };
        Verdict {
            finding: self.finding.into(),
            claim: self.claim.into(),
            effect: self.effect.into(),
            state,
            reason,
            sets,
        }
    }
}

/// The verdict on one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetVerdict {
    /// The set.
    pub set: String,
    /// Its verdict.
    pub state: State,
    /// The effect with its 95% interval and n (`None` when it was not measured).
    pub effect: Option<Interval>,
    /// Why, in words.
    pub reason: String,
    /// A random real reference set: shown, not part of the verdict.
    #[serde(default)]
    pub reference: bool,
}

/// Whether a set of this name is a random real reference rather than a distilled set.
pub fn is_reference(name: &str) -> bool {
    name == "random" || name.starts_with("random-") || name.starts_with("random_")
}

/// What one analysis's result says about the paper's claim it tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Short name of the finding.
    pub finding: String,
    /// The paper's claim.
    pub claim: String,
    /// What the effect is and its unit.
    pub effect: String,
    /// The verdict over all sets.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// Each set's verdict.
    pub sets: Vec<SetVerdict>,
}

impl Verdict {
    /// One line: `state: finding (reason)`.
    pub fn line(&self) -> String {
        format!("{}: {} ({})", self.state, self.finding, self.reason)
    }

    /// The effect of each set as `set effect [lo, hi] (n)`, for tables.
    pub fn effects(&self) -> Vec<(String, String)> {
        self.sets
            .iter()
            .map(|s| {
                let effect = s
                    .effect
                    .map_or_else(|| "not measured".into(), |e| e.display(3));
                let name = if s.reference {
                    format!("{} (reference)", s.set)
                } else {
                    s.set.clone()
                };
                (name, effect)
            })
            .collect()
    }
}

/// A verdict table: one row per verdict (`finding`, `verdict`, `effect ± interval (n)` per
/// set, reason), as plain text with aligned columns.
pub fn table(verdicts: &[(&str, Verdict)]) -> String {
    let mut rows = vec![[
        "analysis".to_string(),
        "verdict".into(),
        "effect [95% interval] (n), per set".into(),
        "reason".into(),
    ]];
    for (name, v) in verdicts {
        let effects = v
            .effects()
            .into_iter()
            .map(|(s, e)| format!("{s} {e}"))
            .collect::<Vec<_>>()
            .join("; ");
        rows.push([
            name.to_string(),
            v.state.to_string(),
            effects,
            v.reason.clone(),
        ]);
    }
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    rows.iter()
        .map(|r| format!("{:w0$}  {:w1$}  {}  — {}", r[0], r[1], r[2], r[3]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER: Claim = Claim {
        finding: "f",
        claim: "c",
        effect: "e",
        null: 0.0,
        side: Side::Below,
    };

    fn ci(lo: f64, hi: f64) -> Interval {
        Interval {
            estimate: (lo + hi) / 2.0,
            lo,
            hi,
            n: 5,
        }
    }

    #[test]
    fn the_side_of_the_interval_decides() {
        assert_eq!(LOWER.judge("a", ci(-0.3, -0.1)).state, State::Supports);
        assert_eq!(LOWER.judge("a", ci(0.1, 0.3)).state, State::Contradicts);
        assert_eq!(LOWER.judge("a", ci(-0.1, 0.3)).state, State::Inconclusive);
        let none = LOWER.judge("a", ci(f64::NAN, f64::NAN));
        assert_eq!(none.state, State::Inconclusive);
        assert!(none.reason.contains("more runs"), "{}", none.reason);
    }

    #[test]
    fn one_contradiction_outweighs_support() {
        let sup = LOWER.judge("a", ci(-0.3, -0.1));
        let con = LOWER.judge("b", ci(0.1, 0.3));
        let inc = LOWER.unmeasured("c", "short run");
        let v = LOWER.combine(vec![sup.clone(), con]);
        assert_eq!(v.state, State::Contradicts);
        assert!(v.reason.contains('b'));
        let v = LOWER.combine(vec![sup, inc.clone()]);
        assert_eq!(v.state, State::Supports);
        assert!(v.reason.contains("1 inconclusive"), "{}", v.reason);
        let v = LOWER.combine(vec![inc]);
        assert_eq!(
            (v.state, v.reason.as_str()),
            (State::Inconclusive, "short run")
        );
        // A random real reference is shown but does not decide.
        let reference = LOWER.judge("random-ipc10", ci(0.1, 0.3));
        assert!(reference.reference && !LOWER.judge("dm", ci(0.1, 0.3)).reference);
        let v = LOWER.combine(vec![LOWER.judge("a", ci(-0.3, -0.1)), reference]);
        assert_eq!(v.state, State::Supports);
        assert_eq!(v.sets.len(), 2);
        assert_eq!(LOWER.combine(vec![]).state, State::Inconclusive);
    }

    #[test]
    fn a_verdict_round_trips_through_json() {
        let v = LOWER.combine(vec![LOWER.judge("a", ci(-0.3, -0.1))]);
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""state":"supports""#), "{text}");
        let back: Verdict = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        assert!(table(&[("x", v)]).contains("supports"));
    }
}
