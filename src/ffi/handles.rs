//! Opaque handles: each C handle type is a Rust struct behind a `Box`; `*_create`/`*_open`
//! hand out the raw pointer and `*_free` takes it back. C sees only an incomplete struct type.

use super::guard::{FfiError, FfiResult};

/// Moves `value` to the heap and gives the caller ownership of it.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Borrows a handle for the duration of a call. NULL is an error naming the argument.
pub(crate) unsafe fn borrow<'a, T>(p: *const T, arg: &str) -> FfiResult<&'a T> {
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: by contract a non-NULL handle came from `into_handle` and is not freed yet.
    Ok(unsafe { &*p })
}

/// Borrows a handle mutably; the caller guarantees no other thread uses it meanwhile.
pub(crate) unsafe fn borrow_mut<'a, T>(p: *mut T, arg: &str) -> FfiResult<&'a mut T> {
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: as in `borrow`, plus exclusive use (documented per function).
    Ok(unsafe { &mut *p })
}

/// Takes a handle back and drops it; NULL is a no-op (like `free(NULL)`).
pub(crate) unsafe fn release<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: by contract `p` came from `into_handle` and is released once.
        drop(unsafe { Box::from_raw(p) });
    }
}
