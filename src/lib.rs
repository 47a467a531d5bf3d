//! # ddlens
//!
//! Distil datasets and show what distilled data has learned. The Rust core runs model graphs
//! exported from PyTorch through ONNX Runtime and owns every algorithm; parameters live in Rust
//! and are graph inputs.
//!
//! * [`runtime`]: the process-wide ONNX Runtime environment and execution providers.
//! * [`bundle`]: model bundles (manifest, validation, typed calls per graph role).
//! * [`data`]: datasets, loaders, normalisation, subsets and distilled-set files.
//! * [`train`]: SGD training, evaluation and per-step hooks.
//! * [`augment`]: differentiable siamese augmentation (DSA) with exact vector-Jacobian products.
//! * [`distill`]: dataset distillation (exact gradients through unrolled training, methods).
//! * [`analysis`]: the paper's analyses of distilled sets, each writing JSON and PNG results.
//! * [`report`]: figures (PNG) and the HTML report.
//! * [`shard`]: jobs split into independent units over processes (`--shard`, Slurm arrays).
//! * [`doctor`]: the environment check behind `ddlens doctor`.
//! * [`ffi`]: the C ABI (header `include/ddlens.h`).

#![warn(missing_docs)]

pub mod analysis;
pub mod augment;
pub mod bundle;
pub mod data;
pub mod distill;
pub mod doctor;
mod error;
pub mod ffi;
pub mod io;
pub mod progress;
pub mod report;
pub mod runtime;
pub mod shard;
pub mod stats;
pub mod train;
pub mod verdict;

pub use bundle::{Bundle, Params, Role};
pub use data::{Dataset, DatasetName, DistilledSet};
pub use error::{Error, Result};

/// The crate version, also reported by the C ABI's `ddl_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
