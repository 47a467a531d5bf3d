//! The report's text for one analysis: the paper's question, the key numbers as tables, and a
//! one-line verdict on the paper's finding where the numbers decide it. Each analysis writes
//! its own ([`crate::analysis::Analysis::summary`], from its saved JSON, so a report can be
//! rebuilt from files alone); this module holds the types and the formatting helpers.

/// A small table of key numbers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Table {
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

/// The report's text for one analysis.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Section title.
    pub title: String,
    /// The question the analysis answers (and the paper's finding).
    pub question: String,
    /// A note on the numbers (what they are, what was skipped); the verdict is separate.
    pub finding: Option<String>,
    /// Key numbers.
    pub tables: Vec<Table>,
    /// The verdict on the paper's claim (filled in by the analysis layer).
    pub verdict: Option<crate::verdict::Verdict>,
}

/// `x` with `digits` decimals, or "–" when not finite.
pub fn fixed(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

/// [`fixed`] of a value that may be absent.
pub fn fixed_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |x| fixed(x, digits))
}
