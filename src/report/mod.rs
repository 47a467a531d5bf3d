//! Turning analysis results into things people look at: PNG figures ([`plot`], [`images`])
//! and the self-contained HTML report ([`html`], with the per-analysis text of [`summary`]).

pub mod html;
pub mod images;
pub mod plot;
pub mod summary;

pub use html::{render, write_report};
pub use plot::{BarChart, Heatmap, LineChart, Series};
