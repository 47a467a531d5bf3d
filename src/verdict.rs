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
//!
//! A reference also answers a second question: is the effect specific to distilled data, or
//! does any small random real subset show it as well? Each judged set's effect is compared
//! with its reference's ([`AgainstReference`]: the difference with its interval,
//! [`Interval::minus`]); the reference of a set is the only one, or else the one whose name
//! has the set's `ipc<N>` (`random-ipc10` for `dm-ipc10`). The comparison does not change the
//! verdict on the paper's claim; it is stored beside it (`against_reference`) and named in the
//! reason.

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
        let state = self.side_of(effect, self.null);
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
            against_reference: None,
        }
    }

    /// Where `effect`'s interval lies against `null`: on the claim's side (supports), on the
    /// other (contradicts), or across it (inconclusive).
    fn side_of(&self, effect: Interval, null: f64) -> State {
        if !effect.excludes(null) {
            State::Inconclusive
        } else if (effect.lo > null) == (self.side == Side::Above) {
            State::Supports
        } else {
            State::Contradicts
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
            against_reference: None,
        }
    }

    /// Each judged set's effect against its reference's (module docs), where both were
    /// measured.
    fn compare_with_references(&self, sets: &mut [SetVerdict]) {
        let references: Vec<(String, Interval)> = sets
            .iter()
            .filter(|s| s.reference)
            .filter_map(|s| Some((s.set.clone(), s.effect?)))
            .collect();
        for s in sets.iter_mut().filter(|s| !s.reference) {
            let (Some(effect), Some((reference, base))) =
                (s.effect, reference_for(&s.set, &references))
            else {
                continue;
            };
            let difference = effect.minus(base);
            s.against_reference = Some(AgainstReference {
                reference: reference.clone(),
                difference,
                state: self.side_of(difference, 0.0),
            });
        }
    }

    /// The analysis's verdict from its sets' (see the module docs for the rule).
    pub fn combine(&self, mut sets: Vec<SetVerdict>) -> Verdict {
        self.compare_with_references(&mut sets);
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
        let (against_reference, specificity) = specificity(&sets);
        let reason = match specificity {
            Some(s) => format!("{reason}; {s}"),
            None => reason,
        };
        Verdict {
            finding: self.finding.into(),
            claim: self.claim.into(),
            effect: self.effect.into(),
            null: Some(self.null),
            state,
            reason,
            against_reference,
            sets,
        }
    }
}

/// The reference for `set` among `references`: the only one, or the one whose name has the
/// set's `ipc<N>` token.
fn reference_for<'a>(
    set: &str,
    references: &'a [(String, Interval)],
) -> Option<&'a (String, Interval)> {
    match references {
        [only] => Some(only),
        _ => {
            let ipc = ipc_token(set)?;
            references
                .iter()
                .find(|(name, _)| ipc_token(name) == Some(ipc))
        }
    }
}

/// The `ipc<N>` token of a name (`dm-ipc10` → `ipc10`), split at `-` and `_`.
fn ipc_token(name: &str) -> Option<&str> {
    name.split(['-', '_']).rev().find(|t| {
        t.strip_prefix("ipc")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The verdict-level comparison with the references and its sentence: `supports` when some
/// set's effect goes beyond its reference's, `contradicts` when every compared set's stays
/// short of it, otherwise `inconclusive`; `None` when no set was compared.
fn specificity(sets: &[SetVerdict]) -> (Option<State>, Option<String>) {
    let compared: Vec<(&str, &AgainstReference)> = sets
        .iter()
        .filter_map(|s| Some((s.set.as_str(), s.against_reference.as_ref()?)))
        .collect();
    if compared.is_empty() {
        return (None, None);
    }
    let named = |state: State| -> Vec<&str> {
        compared
            .iter()
            .filter(|(_, a)| a.state == state)
            .map(|(set, _)| *set)
            .collect()
    };
    let (beyond, short) = (named(State::Supports), named(State::Contradicts));
    let reference_shows_it = sets
        .iter()
        .any(|s| s.reference && s.state == State::Supports);
    if !beyond.is_empty() {
        let sentence = format!("beyond the random reference: {}", beyond.join(", "));
        (Some(State::Supports), Some(sentence))
    } else if short.len() == compared.len() {
        let sentence = "every set's effect falls short of the random reference's";
        (Some(State::Contradicts), Some(sentence.into()))
    } else if reference_shows_it {
        let sentence = "the random reference shows it as well and no set goes beyond it: \
                        not specific to distilled data";
        (Some(State::Inconclusive), Some(sentence.into()))
    } else {
        let sentence = "no set is told apart from the random reference";
        (Some(State::Inconclusive), Some(sentence.into()))
    }
}

/// A set's effect against its random real reference's effect (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgainstReference {
    /// The reference set.
    pub reference: String,
    /// The set's effect minus the reference's, with its 95% interval ([`Interval::minus`]).
    pub difference: Interval,
    /// `supports`: the set's effect goes beyond the reference's in the claim's direction;
    /// `contradicts`: it falls short of it; `inconclusive`: the two are not told apart.
    pub state: State,
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
    /// The effect against the reference's (`None` for references, and where either was not
    /// measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against_reference: Option<AgainstReference>,
}

impl SetVerdict {
    /// The set's name for tables and charts, marked `(reference)` for a reference.
    pub fn label(&self) -> String {
        if self.reference {
            format!("{} (reference)", self.set)
        } else {
            self.set.clone()
        }
    }

    /// The comparison with the reference in words: `minus random-ipc10: -0.200 [-0.312,
    /// -0.088] (n = 5): beyond it` (`None` without one).
    pub fn against_text(&self) -> Option<String> {
        let a = self.against_reference.as_ref()?;
        let word = match a.state {
            State::Supports => "beyond it",
            State::Contradicts => "short of it",
            State::Inconclusive => "not told apart",
        };
        Some(format!(
            "minus {}: {}: {word}",
            a.reference,
            a.difference.display(3)
        ))
    }
}

/// Whether a set of this name is a random real reference rather than a distilled set. The
/// name may carry the way it was given: `zoo:random-ipc10`, `sets/random-ipc1` (the part after
/// the last `:` or `/` counts).
pub fn is_reference(name: &str) -> bool {
    let name = name.rsplit([':', '/']).next().unwrap_or(name);
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
    /// The effect's value of "no effect" (`None` in results written before it was stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<f64>,
    /// The verdict over all sets.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// Whether the effect is specific to distilled data: `supports` when some set's effect
    /// goes beyond its random reference's, `contradicts` when every compared set's falls short
    /// of it, `inconclusive` otherwise; `None` without a reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against_reference: Option<State>,
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
                (s.label(), effect)
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
        assert!(is_reference("zoo:random-ipc1") && is_reference("out/sets/random"));
        assert!(!is_reference("zoo:dm-ipc1") && !is_reference("random/dm-ipc1"));
        let v = LOWER.combine(vec![LOWER.judge("a", ci(-0.3, -0.1)), reference]);
        assert_eq!(v.state, State::Supports);
        assert_eq!(v.sets.len(), 2);
        assert_eq!(LOWER.combine(vec![]).state, State::Inconclusive);
    }

    #[test]
    fn sets_are_compared_with_the_reference_of_their_size() {
        let v = LOWER.combine(vec![
            LOWER.judge("dm-ipc10", ci(-0.5, -0.3)),
            LOWER.judge("mtt-ipc1", ci(-0.3, -0.1)),
            LOWER.judge("random-ipc10", ci(-0.25, -0.15)),
            LOWER.judge("random-ipc1", ci(-0.3, -0.1)),
        ]);
        let against = |k: usize| v.sets[k].against_reference.clone().unwrap();
        // dm-ipc10 against random-ipc10: -0.4 - (-0.2) = -0.2, below on the claim's side.
        let dm = against(0);
        assert_eq!(dm.reference, "random-ipc10");
        assert!((dm.difference.estimate + 0.2).abs() < 1e-12, "{dm:?}");
        assert!((dm.difference.hi - (-0.2 + (0.01f64 + 0.0025).sqrt())).abs() < 1e-12);
        assert_eq!(dm.state, State::Supports);
        let text = v.sets[0].against_text().unwrap();
        assert!(text.starts_with("minus random-ipc10: -0.200 [") && text.ends_with("beyond it"));
        // mtt-ipc1 against random-ipc1 (not random-ipc10): the same effect.
        assert_eq!(against(1).reference, "random-ipc1");
        assert_eq!(against(1).state, State::Inconclusive);
        assert!(v.sets[2].against_reference.is_none() && v.sets[3].against_reference.is_none());
        // The claim's verdict is unchanged; the comparison is named beside it.
        assert_eq!(v.state, State::Supports);
        assert_eq!(v.against_reference, Some(State::Supports));
        assert!(
            v.reason.ends_with("beyond the random reference: dm-ipc10"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_reference_showing_the_effect_as_well_is_named() {
        let v = LOWER.combine(vec![
            LOWER.judge("dm", ci(-0.3, -0.1)),
            LOWER.judge("random", ci(-0.35, -0.05)),
        ]);
        assert_eq!(v.state, State::Supports);
        assert_eq!(v.against_reference, Some(State::Inconclusive));
        assert!(
            v.reason.contains("not specific to distilled data"),
            "{}",
            v.reason
        );
        // Falling short of the reference, for every compared set.
        let v = LOWER.combine(vec![
            LOWER.judge("dm", ci(-0.2, -0.1)),
            LOWER.judge("random", ci(-0.9, -0.7)),
        ]);
        assert_eq!(v.against_reference, Some(State::Contradicts));
        // Several references and no size in the name: no comparison.
        let v = LOWER.combine(vec![
            LOWER.judge("dm", ci(-0.2, -0.1)),
            LOWER.judge("random-ipc1", ci(-0.9, -0.7)),
            LOWER.judge("random-ipc10", ci(-0.9, -0.7)),
        ]);
        assert!(v.against_reference.is_none() && !v.reason.contains("reference"));
        // An unmeasured reference: none either.
        let v = LOWER.combine(vec![
            LOWER.judge("dm", ci(-0.2, -0.1)),
            LOWER.unmeasured("random", "short"),
        ]);
        assert!(v.sets[0].against_reference.is_none() && v.against_reference.is_none());
        assert_eq!(ipc_token("dm_ipc10-zca"), Some("ipc10"));
        assert_eq!(ipc_token("ipcx-dm"), None);
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
