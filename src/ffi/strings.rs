//! Strings the library hands out (JSON results, descriptions).

use std::ffi::{c_char, CString};

use super::guard::ffi_release;

/// Frees a string returned by a `ddl_` function through a `char**` output (JSON results and
/// descriptions). NULL is a no-op. Never pass a string from `ddl_version`, `ddl_status_name`
/// or `ddl_last_error` (those are owned by the library). Thread-safe for distinct strings.
///
/// # Safety
/// `s` must be NULL or a string from a `ddl_` output, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ddl_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    ffi_release("ddl_string_free", || {
        // SAFETY: by contract `s` came from `CString::into_raw` in `give_string`.
        drop(unsafe { CString::from_raw(s) });
    });
}
