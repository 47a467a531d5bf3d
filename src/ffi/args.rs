//! Checked access to C arguments: NULL pointers, misaligned buffers, bad UTF-8 and wrong
//! sizes become errors naming the argument instead of undefined behaviour.
//!
//! The functions are `unsafe` because a non-NULL pointer cannot be checked for validity: the
//! caller's contract (docs/c-api.md) is that non-NULL pointers point to what the function
//! documents, with at least the documented number of elements.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;

use super::guard::{FfiError, FfiResult};
use super::status::DdlStatus;

/// A required NUL-terminated UTF-8 string.
pub(crate) unsafe fn string<'a>(p: *const c_char, arg: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: non-NULL and, by contract, NUL-terminated.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| FfiError::invalid(arg, format!("not valid UTF-8 ({e})")))
}

/// An optional string: NULL gives `None`.
pub(crate) unsafe fn opt_string<'a>(p: *const c_char, arg: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { string(p, arg) }.map(Some)
    }
}

/// A path argument that must exist: a missing file or folder is `DDL_STATUS_NOT_FOUND`.
pub(crate) unsafe fn existing_path<'a>(p: *const c_char, arg: &str) -> FfiResult<&'a Path> {
    // SAFETY: forwarded contract.
    let path = Path::new(unsafe { string(p, arg) }?);
    if path.exists() {
        Ok(path)
    } else {
        Err(FfiError::new(
            DdlStatus::NotFound,
            format!("argument `{arg}`: {} does not exist", path.display()),
        ))
    }
}

/// An optional path that must exist when given: NULL gives `None`.
pub(crate) unsafe fn opt_existing_path<'a>(
    p: *const c_char,
    arg: &str,
) -> FfiResult<Option<&'a Path>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { existing_path(p, arg) }.map(Some)
    }
}

/// An input buffer of exactly `len` elements. NULL is allowed only when `len` is 0.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, arg: &str) -> FfiResult<&'a [T]> {
    check_buffer(p, len, arg)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-NULL, aligned, size fits isize; the caller guarantees `len` elements.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An optional input buffer: NULL gives `None`, otherwise exactly `len` elements.
pub(crate) unsafe fn opt_slice<'a, T>(
    p: *const T,
    len: usize,
    arg: &str,
) -> FfiResult<Option<&'a [T]>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { slice(p, len, arg) }.map(Some)
    }
}

/// An optional output buffer: NULL gives `None`, otherwise as [`out_slice`].
pub(crate) unsafe fn opt_out_slice<'a, T>(
    p: *mut T,
    capacity: usize,
    needed: usize,
    arg: &str,
) -> FfiResult<Option<&'a mut [T]>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { out_slice(p, capacity, needed, arg) }.map(Some)
    }
}

/// An output buffer of `capacity` elements that must hold `needed`; returns its first
/// `needed` elements. Too small is `DDL_STATUS_BUFFER_TOO_SMALL` naming the size needed.
pub(crate) unsafe fn out_slice<'a, T>(
    p: *mut T,
    capacity: usize,
    needed: usize,
    arg: &str,
) -> FfiResult<&'a mut [T]> {
    if capacity < needed {
        return Err(FfiError::new(
            DdlStatus::BufferTooSmall,
            format!("buffer `{arg}` holds {capacity} elements, {needed} are needed"),
        ));
    }
    check_buffer(p, needed, arg)?;
    if needed == 0 {
        return Ok(&mut []);
    }
    // SAFETY: non-NULL, aligned; the caller guarantees `capacity >= needed` elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, needed) })
}

fn check_buffer<T>(p: *const T, len: usize, arg: &str) -> FfiResult<()> {
    if len == 0 {
        return Ok(());
    }
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    if !p.is_aligned() {
        return Err(FfiError::invalid(
            arg,
            format!(
                "pointer is not aligned to {} bytes",
                std::mem::align_of::<T>()
            ),
        ));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(FfiError::invalid(
            arg,
            format!("{len} elements is too large"),
        ));
    }
    Ok(())
}

/// A required output pointer (`T*` for a result).
pub(crate) unsafe fn out<'a, T>(p: *mut T, arg: &str) -> FfiResult<&'a mut T> {
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    if !p.is_aligned() {
        return Err(FfiError::invalid(arg, "pointer is not aligned"));
    }
    // SAFETY: non-NULL and aligned; the caller guarantees it is writable.
    Ok(unsafe { &mut *p })
}

/// An optional output pointer: NULL gives `None`.
pub(crate) unsafe fn opt_out<'a, T>(p: *mut T, arg: &str) -> FfiResult<Option<&'a mut T>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { out(p, arg) }.map(Some)
    }
}

/// A required handle output (`T**`), set to NULL at once so that it is NULL on every failure.
pub(crate) unsafe fn out_handle<'a, T>(p: *mut *mut T, arg: &str) -> FfiResult<&'a mut *mut T> {
    // SAFETY: forwarded contract.
    let slot = unsafe { out(p, arg) }?;
    *slot = std::ptr::null_mut();
    Ok(slot)
}

/// An optional string output (`char**`), set to NULL at once when given.
pub(crate) unsafe fn opt_out_string<'a>(
    p: *mut *mut c_char,
    arg: &str,
) -> FfiResult<Option<&'a mut *mut c_char>> {
    // SAFETY: forwarded contract.
    let slot = unsafe { opt_out(p, arg) }?;
    Ok(slot.map(|s| {
        *s = std::ptr::null_mut();
        s
    }))
}

/// A required string output (`char**`), set to NULL at once.
pub(crate) unsafe fn out_string<'a>(
    p: *mut *mut c_char,
    arg: &str,
) -> FfiResult<&'a mut *mut c_char> {
    // SAFETY: forwarded contract.
    unsafe { out_handle(p, arg) }
}

/// Hands a Rust string to the caller, who frees it with `ddl_string_free`.
pub(crate) fn give_string(s: String) -> FfiResult<*mut c_char> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| FfiError::new(DdlStatus::Internal, "result string contains a NUL byte"))
}

/// Encodes a result as JSON for the caller.
pub(crate) fn give_json(value: &impl serde::Serialize) -> FfiResult<*mut c_char> {
    let text = serde_json::to_string(value).map_err(|e| {
        FfiError::new(
            DdlStatus::Internal,
            format!("cannot encode the result as JSON: {e}"),
        )
    })?;
    give_string(text)
}

/// A `size_t` count that must be positive.
pub(crate) fn positive(value: usize, arg: &str) -> FfiResult<usize> {
    if value == 0 {
        Err(FfiError::invalid(arg, "must be at least 1"))
    } else {
        Ok(value)
    }
}
