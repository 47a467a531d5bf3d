//! Turning results into things people look at: PNG figures ([`plot`], [`images`], image grids
//! of sets in [`grid`])
//! and the self-contained HTML report ([`html`], with the per-analysis text of [`summary`]).

pub mod grid;
pub mod html;
pub mod images;
pub mod plot;
pub mod summary;

pub use grid::{encode_png, grid, write_grid_png, Picture, GRID_MIN_SIZE, GRID_PADDING};
pub use html::{render, write_report};
pub use plot::{BarChart, Heatmap, LineChart, Series};
