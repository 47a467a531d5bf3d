//! The C ABI (header `include/ddlens.h`, generated from this module by cbindgen in build.rs).
//!
//! Conventions (rustls-ffi style; docs/c-api.md is the user's version):
//! * one prefix, `ddl_`; opaque handles made by `*_open`/`*_create`-style functions that write
//!   `T**` outputs, and released by `*_free`, which accepts NULL;
//! * every fallible function returns a [`DdlStatus`] from an append-only enum and leaves a
//!   message for `ddl_last_error()` on the calling thread; no panic crosses the boundary
//!   ([`guard`]);
//! * NULL pointers, wrong sizes and unknown enum values are errors naming the argument
//!   ([`args`]); enum-like inputs are `uint32_t` typedefs so any value can be checked safely;
//! * inputs are borrowed only for the call (buffers are copied), results are owned handles,
//!   arrays copied into caller buffers (pointer + capacity), or JSON strings freed with
//!   `ddl_string_free`;
//! * on failure every handle/string output is set to NULL;
//! * each function's doc states its thread-safety.
//!
//! Every exported function is `unsafe`: the caller promises that non-NULL pointers point to
//! what the documentation says (the one thing the library cannot check).
//!
//! Adding a capability: add a file here with its `ddl_<area>_*` functions, map any new
//! [`crate::Error`] variant in [`DdlStatus::of`] (appending a status if none fits), wrap the
//! functions in bindings/cpp and bindings/julia (a test fails on any header function the
//! Julia package lacks), and rebuild to regenerate the header.

// Internal machinery.
mod args;
mod guard;
mod handles;

// One file per area. The order here is the order of the header (cbindgen follows it), so it
// reads from the basics to the long-running calls; blank lines keep rustfmt from sorting it.
mod error;
mod status;
mod strings;

mod runtime;

mod bundle;

mod params;

mod dataset;

mod distilled;

mod progress;

mod train_config;

mod train;

mod distill;

mod analysis;

use std::ffi::c_char;

pub use analysis::*;
pub use bundle::*;
pub use dataset::*;
pub use distill::*;
pub use distilled::*;
pub use error::*;
pub use params::*;
pub use progress::DdlProgressFn;
pub use runtime::*;
pub use status::*;
pub use strings::*;
pub use train::*;
pub use train_config::*;

/// Version string of the library, e.g. `"0.1.0"` (compare with `DDL_VERSION_STRING` to check
/// that the header and the loaded library agree). Static, never freed. Thread-safe.
#[no_mangle]
pub extern "C" fn ddl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
