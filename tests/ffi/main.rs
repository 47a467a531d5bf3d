//! The C ABI: called in-process (api, analysis, distill), the bindings checked against the header,
//! and C/C++ programs compiled and run under AddressSanitizer (c).
//!
//! One test crate per area (one link, one process per area); shared helpers in tests/common.

#[path = "../common/mod.rs"]
mod common;

mod analysis;
mod api;
mod bindings;
mod c;
mod distill;
mod support;
