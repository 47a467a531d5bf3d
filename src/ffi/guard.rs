//! The panic boundary: every exported function runs its body through [`ffi_call`], which
//! turns `Err` into a status plus a per-thread message and a Rust panic into
//! `DDL_STATUS_PANIC` (unwinding into C is undefined behaviour, so no panic may escape).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::set_last_error;
use super::status::DdlStatus;
use crate::error::Error;

/// A failure on its way to the caller: the status and the message (without the function name,
/// which [`ffi_call`] prefixes).
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: DdlStatus,
    pub message: String,
}

/// Result of the body of an exported function.
pub(crate) type FfiResult<T = ()> = std::result::Result<T, FfiError>;

impl FfiError {
    pub(crate) fn new(status: DdlStatus, message: impl Into<String>) -> FfiError {
        FfiError {
            status,
            message: message.into(),
        }
    }

    /// A required pointer argument was NULL.
    pub(crate) fn null(arg: &str) -> FfiError {
        FfiError::new(DdlStatus::NullArgument, format!("argument `{arg}` is NULL"))
    }

    /// An argument has a bad value.
    pub(crate) fn invalid(arg: &str, message: impl std::fmt::Display) -> FfiError {
        FfiError::new(
            DdlStatus::InvalidArgument,
            format!("invalid argument `{arg}`: {message}"),
        )
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        FfiError::new(DdlStatus::of(&e), e.to_string())
    }
}

/// Runs the body of the exported function `func`, mapping errors and panics to a status and
/// storing the message (prefixed with `func`) for `ddl_last_error`.
pub(crate) fn ffi_call(func: &str, body: impl FnOnce() -> FfiResult) -> DdlStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => DdlStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&format!("{func}: {}", e.message));
            e.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{func}: internal error (Rust panic: {}); please report this bug",
                panic_message(payload.as_ref())
            ));
            DdlStatus::Panic
        }
    }
}

/// Runs a release function: it cannot report a status, but it must not unwind either, so a
/// panic in a destructor is recorded as the thread's last error and otherwise swallowed.
pub(crate) fn ffi_release(func: &str, body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(&format!(
            "{func}: internal error while releasing (Rust panic: {})",
            panic_message(payload.as_ref())
        ));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::ffi::ddl_last_error;

    fn last() -> String {
        // SAFETY: ddl_last_error never returns NULL and the string lives until the next failure.
        unsafe { CStr::from_ptr(ddl_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let status = ffi_call("ddl_test", || panic!("boom {}", 42));
        assert_eq!(status, DdlStatus::Panic);
        assert!(
            last().starts_with("ddl_test: internal error (Rust panic: boom 42)"),
            "{}",
            last()
        );
        ffi_release("ddl_test_free", || panic!("in drop"));
        assert!(
            last().contains("ddl_test_free") && last().contains("in drop"),
            "{}",
            last()
        );
    }

    #[test]
    fn errors_map_to_their_status_with_the_function_name() {
        let status = ffi_call("ddl_test", || {
            Err(Error::invalid("lr", "must be positive").into())
        });
        assert_eq!(status, DdlStatus::InvalidArgument);
        assert_eq!(last(), "ddl_test: invalid argument `lr`: must be positive");
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            ffi_call("f", || Err(Error::io("/x", missing).into())),
            DdlStatus::NotFound
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            ffi_call("f", || Err(Error::io("/x", denied).into())),
            DdlStatus::Io
        );
        assert_eq!(ffi_call("f", || Ok(())), DdlStatus::Ok);
        assert!(
            last().starts_with("f: /x"),
            "success leaves the last message: {}",
            last()
        );
    }
}
