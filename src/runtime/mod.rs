//! The process-wide ONNX Runtime environment.
//!
//! ONNX Runtime allows one environment per process, and `ort` panics if any of its APIs run
//! before the library is loaded. ddlens therefore funnels every use through [`Runtime`]: it is
//! initialised once, explicitly with [`init`] or implicitly with defaults by [`get`], and all
//! graph sessions are built by it so that threads and the execution provider are consistent.

mod allocator;
pub mod kernels;
mod locate;
mod memory;
mod provider;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use once_cell::sync::OnceCell;
use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

pub use allocator::{keep_freed_memory, MALLOC_ENV};
pub use locate::{
    library_version, project_roots, search_dirs, Attempt, Located, FIX_COMMAND, ORT_MIN_MINOR,
    ORT_VERSION,
};
pub use memory::{current_rss, peak_rss, reset_peak_rss};
pub use provider::{available_providers, Provider, ProviderChoice};

use crate::error::{Error, Result};

/// How to set the runtime up. `Default` means: search for the library, `auto` provider,
/// ONNX Runtime's default thread count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Explicit path of `libonnxruntime.so`; searched for when `None`.
    pub library: Option<PathBuf>,
    /// Execution provider wanted.
    pub provider: ProviderChoice,
    /// Threads that run graph calls (when `None`: `SLURM_CPUS_PER_TASK` in a Slurm job that
    /// sets it, else one per core; capped to the cores).
    pub threads: Option<usize>,
}

/// The initialised runtime: where the library came from and what runs the graphs.
pub struct Runtime {
    config: RuntimeConfig,
    library: Located,
    version: String,
    provider: Provider,
    provider_note: Option<String>,
    threads: usize,
    threads_note: Option<String>,
    workers: rayon::ThreadPool,
    environment: Environment,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library.path)
            .field("version", &self.version)
            .field("provider", &self.provider)
            .field("threads", &self.threads)
            .finish()
    }
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Initialises the runtime with `config`. Calling it again with the same config returns the
/// existing runtime; a different config is an error (ONNX Runtime has one environment per process).
pub fn init(config: RuntimeConfig) -> Result<&'static Runtime> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return if rt.config == config {
            Ok(rt)
        } else {
            Err(Error::RuntimeConfig(format!(
                "the ONNX Runtime environment is already set up ({}, provider {}, threads {:?}); \
                 it cannot be changed within one process",
                rt.library.path.display(),
                rt.config.provider,
                rt.config.threads
            )))
        };
    }
    let rt = Runtime::create(config)?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The runtime, initialised with `RuntimeConfig::default()` on first use.
pub fn get() -> Result<&'static Runtime> {
    match RUNTIME.get() {
        Some(rt) => Ok(rt),
        None => init_default(),
    }
}

/// Whether the runtime has been initialised in this process.
pub fn is_initialized() -> bool {
    RUNTIME.get().is_some()
}

fn init_default() -> Result<&'static Runtime> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = Runtime::create(RuntimeConfig::default())?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Finds the library that [`init`] would load, without loading it for good.
pub fn locate_library(config: &RuntimeConfig) -> Result<Located> {
    locate::locate(
        config.library.as_deref(),
        config.provider != ProviderChoice::Cpu,
    )
}

impl Runtime {
    fn create(config: RuntimeConfig) -> Result<Runtime> {
        if config.threads == Some(0) {
            return Err(Error::invalid("threads", "must be at least 1"));
        }
        let library = locate_library(&config)?;
        if config.provider != ProviderChoice::Cpu {
            provider::preload_cuda_libraries(&library.path);
        }
        let builder = ort::init_from(&library.path).map_err(|e| {
            Error::RuntimeNotFound(format!(
                "{}: {e}. Fix: run `{FIX_COMMAND}`",
                library.path.display()
            ))
        })?;
        let (threads, threads_note) = threads::capped(config.threads);
        let environment = builder
            .with_name("ddlens")
            .with_telemetry(false)
            .build()
            .map_err(|e| Error::ort("creating the environment", e))?;
        let version = library.version.clone();
        let probe = |p: Provider| -> Result<()> {
            let mut b =
                Session::builder(&environment).map_err(|e| Error::ort("session options", e))?;
            provider::register(&mut b, p)
        };
        let (provider, provider_note) = provider::resolve(config.provider, probe)?;
        Ok(Runtime {
            config,
            library,
            version,
            provider,
            provider_note,
            threads,
            threads_note,
            workers: threads::workers(threads)?,
            environment,
        })
    }

    /// Path of the loaded ONNX Runtime library.
    pub fn library_path(&self) -> &Path {
        &self.library.path
    }

    /// How the library was found (`explicit path`, `DDLENS_ORT_LIB`, `project (onnxruntime)`...).
    pub fn library_source(&self) -> &str {
        &self.library.source
    }

    /// ONNX Runtime version, e.g. `1.31.1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The execution provider that sessions really use.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Why `auto` fell back to the CPU, if it did.
    pub fn provider_note(&self) -> Option<&str> {
        self.provider_note.as_deref()
    }

    /// Threads that run graph calls: the requested count (one per core when none was asked
    /// for), capped to the available cores.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Why the requested thread count was capped, if it was (callers show it as a warning).
    pub fn threads_note(&self) -> Option<&str> {
        self.threads_note.as_deref()
    }

    /// The configuration the runtime was set up with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// A session builder with this runtime's provider, `intra_threads` threads (1: the
    /// caller's thread alone, no pool; threads.rs says why) and full graph optimisation. Private:
    /// every session is created through [`commit`], which keeps first sessions apart.
    fn session_builder(&self, intra_threads: usize) -> Result<SessionBuilder> {
        fn ctx(e: impl std::fmt::Display) -> Error {
            Error::ort("session options", e.to_string())
        }
        let mut b = Session::builder(&self.environment)
            .map_err(ctx)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ctx)?
            // Memory patterns pre-plan one allocation per input shape and keep every plan; the
            // analyses call each graph at many batch sizes, so they held gigabytes (a
            // curvature run: 7.7 GB with them, 4.5 GB without, at the same speed).
            .with_memory_pattern(false)
            .map_err(ctx)?
            .with_intra_threads(intra_threads.max(1))
            .map_err(ctx)?
            .with_inter_threads(1)
            .map_err(ctx)?
            // An idle pool must not spin on a core that another session's call needs.
            .with_intra_op_spinning(false)
            .map_err(ctx)?;
        provider::register(&mut b, self.provider)?;
        Ok(b)
    }

    /// Runs `f(0)`, ..., `f(n - 1)` on the runtime's worker threads, side by side, and returns
    /// the results in order (`n = 1`: on the calling thread).
    pub fn map_parallel<T, F>(&self, n: usize, f: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync + Send,
    {
        use rayon::prelude::*;
        if n <= 1 || self.threads == 1 {
            return (0..n).map(f).collect();
        }
        self.workers
            .install(|| (0..n).into_par_iter().with_max_len(1).map(f).collect())
    }

    /// Loads one ONNX file into a session with `intra_threads` threads (with ddlens's kernels
    /// for the fused ops on the CPU).
    pub fn load_graph(&self, path: &Path, intra_threads: usize) -> Result<Session> {
        let b = self.session_builder(intra_threads)?;
        if self.provider == Provider::Cpu && kernels::enabled() {
            commit(kernels::register(b)?, path, true)
        } else {
            commit(b, path, false)
        }
    }

    /// [`Runtime::load_graph`] without ddlens's fused kernels: ONNX Runtime inlines the fused
    /// ops' standard ONNX bodies instead (what any other ONNX Runtime user gets; tests and
    /// benches compare the two).
    pub fn load_graph_without_kernels(&self, path: &Path, intra_threads: usize) -> Result<Session> {
        commit(self.session_builder(intra_threads)?, path, false)
    }
}

/// Creates the session of `path` from `builder` (`adds_domain`: the builder carries ddlens's
/// kernels), through [`kernels::create_session`], which keeps the process's first sessions
/// apart.
fn commit(mut builder: SessionBuilder, path: &Path, adds_domain: bool) -> Result<Session> {
    kernels::create_session(adds_domain, || builder.commit_from_file(path))
        .map_err(|e| Error::bundle(path, format!("ONNX Runtime cannot load this graph: {e}")))
}
