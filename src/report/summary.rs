//! The report's text for one analysis: the paper's question, the key numbers as tables, and a
//! one-line verdict on the paper's finding where the numbers decide it. Each analysis writes
//! its own ([`crate::analysis::Analysis::summary`], from its saved JSON, so a report can be
//! rebuilt from files alone); this module holds the types and the formatting helpers.

use serde_json::Value;

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
    /// The verdict on the paper's finding from these numbers, when they decide it.
    pub finding: Option<String>,
    /// Key numbers.
    pub tables: Vec<Table>,
}

/// A number with `digits` decimals, or "–" when absent or not finite.
pub fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "–".into(),
    }
}

/// The elements of a JSON array (none when `v` is not one).
pub fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The `name` field of an object, `?` when absent.
pub fn name(v: &Value) -> String {
    v["name"].as_str().unwrap_or("?").to_string()
}

/// A string value as is, any other value as JSON text.
pub fn value_str(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), String::from)
}
