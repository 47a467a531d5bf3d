//! `ddlens doctor`: what ddlens can see of its environment (ONNX Runtime, providers, bundles,
//! datasets), and the fix for whatever is missing.

use std::path::PathBuf;

use serde::Serialize;

use crate::bundle::{self, Bundle};
use crate::runtime::{self, RuntimeConfig, FIX_COMMAND};

/// Default location of the Fashion-MNIST files installed by the Debian package.
pub const FASHION_MNIST_DEFAULT: &str = "/usr/share/datasets/fashion-mnist";
/// The four IDX files of an MNIST-style dataset.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The result of a doctor run.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// ONNX Runtime status.
    pub runtime: RuntimeStatus,
    /// Bundles found in the model search folders.
    pub bundles: Vec<BundleStatus>,
    /// Datasets found.
    pub datasets: Vec<DatasetStatus>,
    /// Problems with their fixes; empty when all is well.
    pub problems: Vec<String>,
}

/// ONNX Runtime status.
#[derive(Debug, Serialize)]
pub struct RuntimeStatus {
    /// Library path, when found.
    pub library: Option<PathBuf>,
    /// How it was found.
    pub source: Option<String>,
    /// Version string.
    pub version: Option<String>,
    /// Providers compiled into the library.
    pub providers_available: Vec<String>,
    /// Provider in use.
    pub provider_in_use: Option<String>,
    /// Why CUDA is not used, when `auto` fell back.
    pub provider_note: Option<String>,
}

/// One bundle.
#[derive(Debug, Serialize)]
pub struct BundleStatus {
    /// Bundle folder.
    pub path: PathBuf,
    /// Manifest name.
    pub name: Option<String>,
    /// Roles present.
    pub roles: Vec<String>,
    /// Number of parameters.
    pub parameters: Option<usize>,
    /// Validation error, if any.
    pub error: Option<String>,
}

/// One dataset location.
#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    /// Dataset name.
    pub name: String,
    /// Folder.
    pub path: PathBuf,
    /// Whether all files are there.
    pub complete: bool,
    /// Missing files.
    pub missing: Vec<String>,
}

/// Runs every check with the given runtime configuration.
pub fn run(config: &RuntimeConfig) -> DoctorReport {
    let mut problems = Vec::new();
    let runtime = runtime_status(config, &mut problems);
    let bundles = if runtime.provider_in_use.is_some() {
        bundle_statuses(&mut problems)
    } else {
        Vec::new()
    };
    let datasets = dataset_statuses(&mut problems);
    DoctorReport {
        runtime,
        bundles,
        datasets,
        problems,
    }
}

fn runtime_status(config: &RuntimeConfig, problems: &mut Vec<String>) -> RuntimeStatus {
    let mut status = RuntimeStatus {
        library: None,
        source: None,
        version: None,
        providers_available: Vec::new(),
        provider_in_use: None,
        provider_note: None,
    };
    match runtime::init(config.clone()) {
        Ok(rt) => {
            status.library = Some(rt.library_path().to_path_buf());
            status.source = Some(rt.library_source().to_string());
            status.version = Some(rt.version().to_string());
            status.providers_available = runtime::available_providers();
            status.provider_in_use = Some(rt.provider().to_string());
            status.provider_note = rt.provider_note().map(str::to_string);
        }
        Err(e) => problems.push(e.to_string()),
    }
    status
}

fn bundle_statuses(problems: &mut Vec<String>) -> Vec<BundleStatus> {
    let found = bundle::find_bundles();
    if found.is_empty() {
        problems.push(format!(
            "no model bundles found in {:?}; set DDLENS_MODELS or run from a ddlens checkout (models/)",
            bundle::model_search_dirs()
        ));
    }
    found
        .into_iter()
        .map(|(path, _)| match Bundle::open(&path) {
            Ok(b) => BundleStatus {
                name: Some(b.name().to_string()),
                roles: b.roles().iter().map(|r| r.name().to_string()).collect(),
                parameters: Some(b.manifest().num_parameters()),
                error: None,
                path,
            },
            Err(e) => {
                problems.push(e.to_string());
                BundleStatus {
                    name: None,
                    roles: Vec::new(),
                    parameters: None,
                    error: Some(e.to_string()),
                    path,
                }
            }
        })
        .collect()
}

/// Folder of Fashion-MNIST: `DDLENS_DATA` when set, otherwise the Debian package's folder.
pub fn fashion_mnist_dir() -> PathBuf {
    std::env::var_os("DDLENS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DEFAULT))
}

fn dataset_statuses(problems: &mut Vec<String>) -> Vec<DatasetStatus> {
    let path = fashion_mnist_dir();
    let missing: Vec<String> = IDX_FILES
        .iter()
        .filter(|f| !path.join(f).exists() && !path.join(format!("{f}.gz")).exists())
        .map(|f| format!("{f}[.gz]"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "Fashion-MNIST is incomplete in {} (missing {}); run `{FIX_COMMAND}` (installs the Debian package dataset-fashion-mnist) or set DDLENS_DATA",
            path.display(),
            missing.join(", ")
        ));
    }
    vec![DatasetStatus {
        name: "fashion-mnist".into(),
        complete: missing.is_empty(),
        path,
        missing,
    }]
}

impl DoctorReport {
    /// Human-readable rendering.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let r = &self.runtime;
        s.push_str("ONNX Runtime\n");
        match &r.library {
            Some(lib) => {
                s.push_str(&format!(
                    "  library   {} ({})\n",
                    lib.display(),
                    r.source.as_deref().unwrap_or("")
                ));
                s.push_str(&format!(
                    "  version   {}\n",
                    r.version.as_deref().unwrap_or("?")
                ));
                s.push_str(&format!(
                    "  providers available: {}\n",
                    r.providers_available.join(", ")
                ));
                s.push_str(&format!(
                    "  provider in use:     {}\n",
                    r.provider_in_use.as_deref().unwrap_or("?")
                ));
                if let Some(note) = &r.provider_note {
                    s.push_str(&format!("  note: {note}\n"));
                }
            }
            None => s.push_str("  not available\n"),
        }
        s.push_str("Bundles\n");
        for b in &self.bundles {
            match &b.error {
                None => s.push_str(&format!(
                    "  ok   {:<24} {:>9} params  roles: {}  ({})\n",
                    b.name.as_deref().unwrap_or("?"),
                    b.parameters.unwrap_or(0),
                    b.roles.join(","),
                    b.path.display()
                )),
                Some(_) => s.push_str(&format!("  FAIL {}\n", b.path.display())),
            }
        }
        s.push_str("Datasets\n");
        for d in &self.datasets {
            let state = if d.complete { "ok  " } else { "MISSING" };
            s.push_str(&format!("  {state} {:<14} {}\n", d.name, d.path.display()));
        }
        if self.problems.is_empty() {
            s.push_str("All checks passed.\n");
        } else {
            s.push_str("Problems\n");
            for p in &self.problems {
                s.push_str(&format!("  - {p}\n"));
            }
        }
        s
    }
}
