//! Execution providers: which one the caller asks for, and which one is really in use.
//!
//! ONNX Runtime silently falls back to the CPU when the CUDA provider cannot be registered
//! (missing CUDA libraries, no GPU). ddlens always registers with `error_on_failure` so it
//! knows the truth and can report it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use crate::error::{Error, Result};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderChoice {
    /// CPU only.
    Cpu,
    /// CUDA, or an error when it cannot be used.
    Cuda,
    /// CUDA when it works, otherwise CPU (the reason is recorded).
    #[default]
    Auto,
}

/// The provider that graph sessions really run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// ONNX Runtime's CUDA execution provider (with CPU fallback for unsupported nodes).
    Cuda,
}

impl fmt::Display for ProviderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderChoice::Cpu => "cpu",
            ProviderChoice::Cuda => "cuda",
            ProviderChoice::Auto => "auto",
        })
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        })
    }
}

impl FromStr for ProviderChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(ProviderChoice::Cpu),
            "cuda" | "gpu" => Ok(ProviderChoice::Cuda),
            "auto" => Ok(ProviderChoice::Auto),
            other => Err(Error::invalid(
                "provider",
                format!("unknown execution provider `{other}`; expected cpu, cuda or auto"),
            )),
        }
    }
}

/// Names of the providers compiled into the loaded ONNX Runtime library.
pub fn available_providers() -> Vec<String> {
    let mut out = vec!["cpu".to_string()];
    if matches!(ep::CUDA::is_available(), Ok(true)) {
        out.push("cuda".into());
    }
    out
}

/// Environment variable that turns ONNX Runtime's CPU memory arena back on.
pub const CPU_ARENA_ENV: &str = "DDLENS_CPU_ARENA";

/// Registers `provider` on a session builder, failing loudly instead of falling back.
pub fn register(builder: &mut SessionBuilder, provider: Provider) -> Result<()> {
    match provider {
        Provider::Cpu => {
            // ONNX Runtime's CPU arena keeps the largest activations any graph call ever
            // needed for the life of the session: the analyses call Hessian-vector products at
            // batch 256 once and small graphs for hours after. Measured on the curvature
            // analysis (ConvNet-3, 1 thread, same point of the run): 3.4 GB resident with the
            // arena, 2.5 GB without. `DDLENS_CPU_ARENA=1` turns it back on (for benchmarks).
            let arena = std::env::var_os(CPU_ARENA_ENV).is_some();
            ep::CPU::default()
                .with_arena_allocator(arena)
                .build()
                .error_on_failure()
                .register(builder)
                .map_err(|e| Error::Provider {
                    provider: "cpu".into(),
                    reason: e.to_string(),
                })
        }
        Provider::Cuda => ep::CUDA::default()
            .build()
            .error_on_failure()
            .register(builder)
            .map_err(|e| Error::Provider {
                provider: "cuda".into(),
                reason: e.to_string(),
            }),
    }
}

/// Preloads the CUDA libraries shipped as pip packages next to the GPU build of ONNX Runtime
/// (`.ddlens/onnxruntime-gpu/nvidia/*/lib`), so that the CUDA provider finds them without
/// `LD_LIBRARY_PATH`. Libraries depend on each other, so loading is retried until no progress.
pub fn preload_cuda_libraries(ort_library: &Path) -> usize {
    let Some(dir) = ort_library.parent() else {
        return 0;
    };
    let Ok(packages) = std::fs::read_dir(dir.join("nvidia")) else {
        return 0;
    };
    let mut pending: Vec<_> = packages
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path().join("lib")).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.to_string_lossy().contains(".so"))
        .collect();
    pending.sort();
    let mut loaded = 0;
    loop {
        let before = pending.len();
        pending.retain(|path| ort::util::preload_dylib(path).is_err());
        loaded += before - pending.len();
        if pending.is_empty() || pending.len() == before {
            return loaded;
        }
    }
}

/// Decides the provider in use for a choice, probing CUDA with a throw-away session builder.
pub fn resolve(
    choice: ProviderChoice,
    probe: impl Fn(Provider) -> Result<()>,
) -> Result<(Provider, Option<String>)> {
    match choice {
        ProviderChoice::Cpu => Ok((Provider::Cpu, None)),
        ProviderChoice::Cuda => {
            cuda_compiled_in()?;
            probe(Provider::Cuda)?;
            Ok((Provider::Cuda, None))
        }
        ProviderChoice::Auto => match cuda_compiled_in().and_then(|_| probe(Provider::Cuda)) {
            Ok(()) => Ok((Provider::Cuda, None)),
            Err(e) => Ok((Provider::Cpu, Some(format!("CUDA not used: {e}")))),
        },
    }
}

fn cuda_compiled_in() -> Result<()> {
    if matches!(ep::CUDA::is_available(), Ok(true)) {
        Ok(())
    } else {
        Err(Error::Provider {
            provider: "cuda".into(),
            reason:
                "the loaded ONNX Runtime library has no CUDA provider; run `scripts/setup --gpu` \
                     and use the GPU build (.ddlens/onnxruntime-gpu)"
                    .into(),
        })
    }
}
