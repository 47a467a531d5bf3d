//! The crate-wide error type. Every variant names what went wrong and where (file, field or
//! argument), because these messages travel unchanged to CLI users and C callers.

use std::path::PathBuf;

/// Result alias used throughout ddlens.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ddlens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ONNX Runtime could not be found or loaded; the message lists every path tried and the fix.
    #[error("{0}")]
    RuntimeNotFound(String),
    /// The runtime was already initialised with different settings.
    #[error("{0}")]
    RuntimeConfig(String),
    /// A requested execution provider cannot be used.
    #[error("execution provider {provider}: {reason}")]
    Provider {
        /// Provider name (`cuda`, ...).
        provider: String,
        /// Why it could not be used.
        reason: String,
    },
    /// A bundle folder, manifest or graph is malformed.
    #[error("bundle {path}: {message}")]
    Bundle {
        /// The bundle folder or file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A bundle lacks a graph role that the requested computation needs.
    #[error("bundle {bundle}: role `{role}` is missing; re-export the bundle with that role")]
    MissingRole {
        /// Bundle name.
        bundle: String,
        /// The missing role.
        role: &'static str,
    },
    /// An argument has the wrong shape, size or value.
    #[error("invalid argument `{name}`: {message}")]
    InvalidArgument {
        /// Argument name as the caller sees it.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file or in-memory dataset is missing, malformed or inconsistent.
    #[error("{origin}: {message}")]
    Data {
        /// The file, folder or dataset at fault (a path, or "dataset `name`").
        origin: String,
        /// What is wrong, and the fix where there is one.
        message: String,
    },
    /// ONNX Runtime reported an error while running a graph.
    #[error("ONNX Runtime ({context}): {message}")]
    Ort {
        /// What ddlens was doing (bundle and role).
        context: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The caller stopped long work (a hook or the C progress callback); the string says where.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// ddlens failed to encode something of its own (a result, a log, settings): a bug, not
    /// a problem with the caller's input; the string says what.
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name: name.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Bundle`].
    pub fn bundle(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Bundle {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps an ONNX Runtime error with what ddlens was doing.
    pub fn ort(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Ort {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
