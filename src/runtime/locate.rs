//! Finding the ONNX Runtime shared library.
//!
//! ddlens links ONNX Runtime at run time (`ort`'s `load-dynamic`), so it must find a
//! `libonnxruntime` whose API is new enough. The search order is fixed and documented:
//! 1. an explicit path given by the caller;
//! 2. the environment variables `DDLENS_ORT_LIB`, then `ORT_DYLIB_PATH`;
//! 3. the project-local copy installed by `scripts/setup` (`.ddlens/onnxruntime*/`);
//! 4. the `onnxruntime` Python package of `python3` (or the project's `.venv`).
//!
//! An explicit path or environment variable that is wrong is an error of its own: silently
//! falling back to another library would hide the user's mistake.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The ONNX Runtime release that ddlens is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";
/// The minimum ONNX Runtime minor version (API level) that `ort` needs.
pub const ORT_MIN_MINOR: u32 = ort::MINOR_VERSION;
/// The command that installs the library where ddlens looks for it.
pub const FIX_COMMAND: &str = "scripts/setup";

/// File name of the library inside the wheel and the project-local folder.
fn library_file_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// One place that was tried, and what was found there.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Where ddlens looked.
    pub path: PathBuf,
    /// How the path was chosen (`explicit`, `DDLENS_ORT_LIB`, `project`, `python3`...).
    pub source: String,
    /// `None` when the library is usable, otherwise why not.
    pub problem: Option<String>,
}

/// A usable library and the version it reports.
#[derive(Debug, Clone)]
pub struct Located {
    /// Absolute path of the shared library.
    pub path: PathBuf,
    /// How it was found (see [`Attempt::source`]).
    pub source: String,
    /// The minor version reported by the library (`31` for 1.31.x).
    pub minor: u32,
    /// The full version string reported by the library.
    pub version: String,
    /// Everything tried before it, for diagnostics.
    pub attempts: Vec<Attempt>,
}

/// Directories that may hold a project checkout: the crate's own source folder (known at
/// compile time, right for `cargo run`/tests) and the ancestors of the executable and of the
/// working directory (right for an installed binary run from inside a checkout).
pub fn project_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    let mut push_ancestors = |start: Option<PathBuf>| {
        if let Some(start) = start {
            for dir in start.ancestors().take(6) {
                if dir.join(".ddlens").is_dir() && !roots.iter().any(|r| r == dir) {
                    roots.push(dir.to_path_buf());
                }
            }
        }
    };
    push_ancestors(std::env::current_exe().ok());
    push_ancestors(std::env::current_dir().ok());
    roots
}

/// Folders to search for things found by name (bundles, zoo sets), in order, existing ones
/// only and each once: those of the `:`-separated variable `env_var`, then `<root>/<sub>` for
/// every project root, then `./<sub>`.
pub fn search_dirs(env_var: &str, sub: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(env_var)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(project_roots().into_iter().map(|r| r.join(sub)));
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(sub));
    }
    let mut unique: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let d = d.canonicalize().unwrap_or(d);
        if d.is_dir() && !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// The version string (`1.31.1`) that an ONNX Runtime library reports, read through
/// `OrtGetApiBase()->GetVersionString()` without initialising anything.
pub fn library_version(path: &Path) -> std::result::Result<String, String> {
    // SAFETY: loading a shared library runs its initialisers; ONNX Runtime's are benign.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    // SAFETY: the symbol has this signature in every ONNX Runtime release.
    let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
        unsafe { lib.get(b"OrtGetApiBase") }
            .map_err(|_| "does not export OrtGetApiBase".to_string())?;
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned null".into());
    }
    // SAFETY: ONNX Runtime returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(((*base).GetVersionString)()) };
    Ok(version.to_string_lossy().into_owned())
}

/// Minor version of a `1.x.y` version string.
fn minor_of(version: &str) -> Option<u32> {
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

/// Checks one candidate path: it must exist, load, and report a recent enough version.
fn check(path: &Path) -> std::result::Result<(u32, String), String> {
    if !path.exists() {
        return Err("not found".into());
    }
    let version = library_version(path)
        .map_err(|e| format!("exists but is not a loadable ONNX Runtime library: {e}"))?;
    match minor_of(&version) {
        Some(minor) if minor >= ORT_MIN_MINOR => Ok((minor, version)),
        _ => Err(format!(
            "version {version} is too old; ddlens needs 1.{ORT_MIN_MINOR} or newer"
        )),
    }
}

/// Asks a Python interpreter where its `onnxruntime` package keeps the shared library.
fn python_candidate(python: &Path) -> Option<PathBuf> {
    let script = "import glob, os, onnxruntime as o; \
                  c = sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), 'capi', 'libonnxruntime.so*'))); \
                  print(c[-1] if c else '')";
    let out = Command::new(python).args(["-c", script]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then(|| PathBuf::from(text))
}

/// The ordered list of places to look, without the explicit path and the environment.
fn search_candidates(prefer_gpu: bool) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let folders: &[&str] = if prefer_gpu {
        &["onnxruntime-gpu", "onnxruntime"]
    } else {
        &["onnxruntime", "onnxruntime-gpu"]
    };
    for root in project_roots() {
        for folder in folders {
            let path = root.join(".ddlens").join(folder).join(library_file_name());
            out.push((path, format!("project ({folder})")));
        }
    }
    let mut pythons: Vec<PathBuf> = project_roots()
        .into_iter()
        .map(|r| r.join(".venv/bin/python"))
        .filter(|p| p.exists())
        .collect();
    pythons.push(PathBuf::from("python3"));
    for python in pythons {
        let label = format!("onnxruntime package of {}", python.display());
        match python_candidate(&python) {
            Some(path) => out.push((path, label)),
            None => out.push((python, format!("{label}: no onnxruntime package"))),
        }
    }
    out
}

/// Finds a usable ONNX Runtime library, or explains every path tried and the fix.
pub fn locate(explicit: Option<&Path>, prefer_gpu: bool) -> Result<Located> {
    let mut attempts = Vec::new();
    let mut forced: Vec<(PathBuf, String)> = Vec::new();
    if let Some(path) = explicit {
        forced.push((path.to_path_buf(), "explicit path".into()));
    }
    for var in ["DDLENS_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            forced.push((PathBuf::from(value), var.to_string()));
        }
    }
    // The first forced choice is the user's explicit wish: use it or fail, never skip it.
    if let Some((path, source)) = forced.into_iter().next() {
        return match check(&path) {
            Ok((minor, version)) => Ok(Located {
                path,
                source,
                minor,
                version,
                attempts,
            }),
            Err(problem) => {
                attempts.push(Attempt {
                    path,
                    source,
                    problem: Some(problem),
                });
                Err(not_found(&attempts))
            }
        };
    }
    for (path, source) in search_candidates(prefer_gpu) {
        if source.ends_with("no onnxruntime package") {
            attempts.push(Attempt {
                path,
                source,
                problem: Some("not installed".into()),
            });
            continue;
        }
        match check(&path) {
            Ok((minor, version)) => {
                return Ok(Located {
                    path,
                    source,
                    minor,
                    version,
                    attempts,
                })
            }
            Err(problem) => attempts.push(Attempt {
                path,
                source,
                problem: Some(problem),
            }),
        }
    }
    Err(not_found(&attempts))
}

/// The error listing every attempt and the one command that fixes it.
fn not_found(attempts: &[Attempt]) -> Error {
    let mut msg = format!(
        "no usable ONNX Runtime library (ddlens needs libonnxruntime 1.{ORT_MIN_MINOR} or newer). Tried:\n"
    );
    for a in attempts {
        msg.push_str(&format!(
            "  - {} [{}]: {}\n",
            a.path.display(),
            a.source,
            a.problem.as_deref().unwrap_or("ok")
        ));
    }
    msg.push_str(&format!(
        "Fix: run `{FIX_COMMAND}` in the ddlens checkout (it installs ONNX Runtime {ORT_VERSION} into .ddlens/), \
         or point DDLENS_ORT_LIB at a libonnxruntime.so of version 1.{ORT_MIN_MINOR} or newer."
    ));
    Error::RuntimeNotFound(msg)
}
