//! The analyses through the Rust API, and the figures and HTML report they feed.
//!
//! One test crate per area (one link, one process per area); shared helpers in tests/common.

#[path = "../common/mod.rs"]
mod common;

mod agreement;
mod curvature;
mod hessian;
mod influence;
mod mixing;
mod recognition;
mod registry;
mod report_html;
mod report_plot;
mod rot;
mod sensitivity;
mod verdicts;
