//! Helpers the in-process C ABI tests share: set-up, the thread's last error, status checks
//! and taking the library's strings.

use std::ffi::{CStr, CString};
use std::ptr::null;

use ddlens::ffi::*;

/// Sets ONNX Runtime up through the C ABI (CPU, one thread), as every test of this crate does.
pub fn runtime() {
    let status = unsafe { ddl_runtime_init(null(), DDL_PROVIDER_CPU, 1) };
    assert_eq!(status, DdlStatus::Ok, "{}", last_error());
}

/// The calling thread's last error message.
pub fn last_error() -> String {
    unsafe { CStr::from_ptr(ddl_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a status and that the thread's message mentions every `needles`.
#[track_caller]
pub fn expect(status: DdlStatus, want: DdlStatus, needles: &[&str]) {
    let msg = last_error();
    assert_eq!(status, want, "message: {msg}");
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
}

/// Asserts `DDL_STATUS_OK`, showing the message otherwise.
#[track_caller]
pub fn ok(status: DdlStatus) {
    assert_eq!(status, DdlStatus::Ok, "{}", last_error());
}

/// A C string.
pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}
