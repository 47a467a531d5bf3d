//! Dataset distillation through the C ABI: configurations (`config`), the run (`run`) and
//! MTT's expert trajectories (`experts`), each a thin adapter over the library's jobs
//! ([`crate::distill::DistillJob`], [`crate::distill::ExpertJob`]), so the C ABI, the CLI and
//! the Rust API give bit-identical sets for the same settings and share checkpoints.

mod config;
mod run;
// After `run`, so that the header keeps its order.
mod experts;

pub use config::*;
pub use experts::*;
pub use run::*;
