//! Status codes returned by every fallible `ddl_` function.
//!
//! The enum is append-only: a value, once released, keeps its number and meaning forever, so
//! callers compiled against an old header still read new libraries correctly. New failure
//! kinds get new numbers at the end; callers must treat unknown values as generic failures.

use std::ffi::c_char;

use crate::error::Error;

/// Outcome of a `ddl_` call. `DDL_STATUS_OK` (0) is success; every other value is a failure
/// whose message `ddl_last_error()` returns on the same thread.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL (the message names it).
    NullArgument = 1,
    /// An argument has a bad value, size, shape or enum value (the message names it).
    InvalidArgument = 2,
    /// An output buffer is smaller than the result (the message gives the size needed).
    BufferTooSmall = 3,
    /// A file or folder named by an argument does not exist.
    NotFound = 4,
    /// Reading or writing a file failed.
    Io = 5,
    /// The call needs ONNX Runtime and `ddl_runtime_init` has not been called yet.
    RuntimeNotInitialized = 6,
    /// The ONNX Runtime library could not be found or loaded (the message lists the paths tried).
    RuntimeNotFound = 7,
    /// The runtime is already set up with other settings (one environment per process).
    RuntimeConfig = 8,
    /// The requested execution provider cannot be used.
    Provider = 9,
    /// A model bundle is malformed (manifest, graph files, tensor names or shapes).
    Bundle = 10,
    /// The bundle lacks a graph role that the computation needs.
    MissingRole = 11,
    /// A dataset, data file or distilled-set file is missing pieces, malformed or inconsistent.
    Data = 12,
    /// ONNX Runtime failed while running a graph.
    Ort = 13,
    /// The progress callback asked to stop; no result was produced.
    Cancelled = 14,
    /// A bug inside ddlens (a Rust panic was caught at the boundary); please report it.
    Panic = 15,
    /// An internal failure that is not the caller's fault (e.g. a result could not be encoded).
    Internal = 16,
}

impl DdlStatus {
    /// Every status, in numeric order (for `ddl_status_name`).
    const ALL: [DdlStatus; 17] = [
        DdlStatus::Ok,
        DdlStatus::NullArgument,
        DdlStatus::InvalidArgument,
        DdlStatus::BufferTooSmall,
        DdlStatus::NotFound,
        DdlStatus::Io,
        DdlStatus::RuntimeNotInitialized,
        DdlStatus::RuntimeNotFound,
        DdlStatus::RuntimeConfig,
        DdlStatus::Provider,
        DdlStatus::Bundle,
        DdlStatus::MissingRole,
        DdlStatus::Data,
        DdlStatus::Ort,
        DdlStatus::Cancelled,
        DdlStatus::Panic,
        DdlStatus::Internal,
    ];

    /// The C name of the status, NUL-terminated (static).
    fn c_name(self) -> &'static str {
        match self {
            DdlStatus::Ok => "DDL_STATUS_OK\0",
            DdlStatus::NullArgument => "DDL_STATUS_NULL_ARGUMENT\0",
            DdlStatus::InvalidArgument => "DDL_STATUS_INVALID_ARGUMENT\0",
            DdlStatus::BufferTooSmall => "DDL_STATUS_BUFFER_TOO_SMALL\0",
            DdlStatus::NotFound => "DDL_STATUS_NOT_FOUND\0",
            DdlStatus::Io => "DDL_STATUS_IO\0",
            DdlStatus::RuntimeNotInitialized => "DDL_STATUS_RUNTIME_NOT_INITIALIZED\0",
            DdlStatus::RuntimeNotFound => "DDL_STATUS_RUNTIME_NOT_FOUND\0",
            DdlStatus::RuntimeConfig => "DDL_STATUS_RUNTIME_CONFIG\0",
            DdlStatus::Provider => "DDL_STATUS_PROVIDER\0",
            DdlStatus::Bundle => "DDL_STATUS_BUNDLE\0",
            DdlStatus::MissingRole => "DDL_STATUS_MISSING_ROLE\0",
            DdlStatus::Data => "DDL_STATUS_DATA\0",
            DdlStatus::Ort => "DDL_STATUS_ORT\0",
            DdlStatus::Cancelled => "DDL_STATUS_CANCELLED\0",
            DdlStatus::Panic => "DDL_STATUS_PANIC\0",
            DdlStatus::Internal => "DDL_STATUS_INTERNAL\0",
        }
    }

    /// The status a library error maps to. The match is exhaustive on purpose: a new
    /// [`Error`] variant must choose its status here (append to [`DdlStatus`] if none fits).
    pub(crate) fn of(error: &Error) -> DdlStatus {
        match error {
            Error::RuntimeNotFound(_) => DdlStatus::RuntimeNotFound,
            Error::RuntimeConfig(_) => DdlStatus::RuntimeConfig,
            Error::Provider { .. } => DdlStatus::Provider,
            Error::Bundle { .. } => DdlStatus::Bundle,
            Error::MissingRole { .. } => DdlStatus::MissingRole,
            Error::InvalidArgument { .. } => DdlStatus::InvalidArgument,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                DdlStatus::NotFound
            }
            Error::Io { .. } => DdlStatus::Io,
            Error::Data { .. } => DdlStatus::Data,
            Error::Ort { .. } => DdlStatus::Ort,
            Error::Cancelled(_) => DdlStatus::Cancelled,
            Error::Internal(_) => DdlStatus::Internal,
        }
    }
}

/// The name of a status value (`"DDL_STATUS_NOT_FOUND"`), or `"DDL_STATUS_UNKNOWN"` for a
/// value this library does not know (a newer header). Static string, never freed, never NULL.
/// Takes a plain integer so that any value is safe to pass. Thread-safe.
#[no_mangle]
pub extern "C" fn ddl_status_name(status: u32) -> *const c_char {
    let name = DdlStatus::ALL
        .iter()
        .find(|s| **s as u32 == status)
        .map_or("DDL_STATUS_UNKNOWN\0", |s| s.c_name());
    name.as_ptr().cast()
}
