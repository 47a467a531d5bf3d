//! The per-thread message of the last failure.
//!
//! Every failing call stores a message here before returning its status, so that the status
//! stays a small integer and the message needs no allocation on the caller's side. The message
//! is per thread, so threads using ddlens at once never see each other's errors.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    /// NUL-terminated message of the last failing call on this thread (empty before any).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NULs (impossible in our own
/// messages, possible in file names) are replaced so the message is never lost.
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with` fails only while the thread is being torn down; nothing can read it then.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = c);
}

/// The message of the last failing `ddl_` call on the calling thread, or `""` when none has
/// failed yet. Never NULL. The string belongs to the library: it stays valid until the next
/// failing `ddl_` call on the same thread (successful calls leave it alone); copy it to keep
/// it longer. Thread-safe (each thread has its own message).
#[no_mangle]
pub extern "C" fn ddl_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Copies the last error message of the calling thread into `buffer` (`capacity` bytes),
/// truncated if needed and always NUL-terminated when `capacity > 0`, like `snprintf`.
/// Returns the full message length in bytes without the NUL, so a return value
/// `>= capacity` means the copy was truncated. `buffer` may be NULL when `capacity` is 0
/// (to ask for the length). Does not change the stored message. Thread-safe.
///
/// # Safety
/// `buffer` must be NULL or point to `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ddl_last_error_copy(buffer: *mut c_char, capacity: usize) -> usize {
    LAST_ERROR
        .try_with(|slot| {
            let slot = slot.borrow();
            let bytes = slot.as_bytes();
            if !buffer.is_null() && capacity > 0 {
                let n = bytes.len().min(capacity - 1);
                // SAFETY: the caller guarantees `capacity` writable bytes; n + 1 <= capacity.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), buffer, n);
                    *buffer.add(n) = 0;
                }
            }
            bytes.len()
        })
        .unwrap_or(0)
}
