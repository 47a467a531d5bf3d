//! Distillation: the runner (checkpoints, exact resume), the unrolled adjoint, and every method.
//!
//! One test crate per area (one link, one process per area); shared helpers in tests/common.

#[path = "../common/mod.rs"]
mod common;

mod baselines;
mod bptt;
mod dc;
mod dm;
mod mtt;
mod runner;
mod unroll;
