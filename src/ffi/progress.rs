//! The progress callback of long calls, and how its return value cancels them.

use std::ffi::{c_int, c_void};

use crate::error::{Error, Result};
use crate::progress::Progress;

/// Progress callback of long calls (`ddl_train`, `ddl_standard_evaluation`): called on the
/// calling thread with the caller's `user_data`, the number of steps done and the total, once
/// before the first step (`step == 0`) and after every step. Return 0 to go on; any other
/// value cancels the call, which then returns `DDL_STATUS_CANCELLED` without a result. The
/// callback must not call `longjmp` or let a C++ exception escape (unwinding through Rust is
/// undefined behaviour); it may call other `ddl_` functions on other handles.
pub type DdlProgressFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, step: u64, total: u64) -> c_int>;

/// A C callback with its user data: the C side of the library's [`Progress`] contract
/// (`done`/`total` are forwarded, the stage and notes are not).
#[derive(Clone, Copy)]
pub(crate) struct Callback {
    callback: DdlProgressFn,
    user_data: *mut c_void,
}

impl Callback {
    pub(crate) fn new(callback: DdlProgressFn, user_data: *mut c_void) -> Callback {
        Callback {
            callback,
            user_data,
        }
    }

    /// Reports `step` of `total`; a nonzero answer becomes [`Error::Cancelled`].
    pub(crate) fn report(&self, step: u64, total: u64) -> Result<()> {
        let Some(f) = self.callback else {
            return Ok(());
        };
        // SAFETY: the caller passed a valid function pointer and the user data it expects.
        if unsafe { f(self.user_data, step, total) } != 0 {
            return Err(Error::Cancelled(format!(
                "the progress callback asked to stop at step {step} of {total}"
            )));
        }
        Ok(())
    }
}

impl Progress for Callback {
    fn report(&mut self, _stage: &str, done: usize, total: usize) -> Result<()> {
        Callback::report(self, done as u64, total as u64)
    }
}
