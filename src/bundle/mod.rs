//! Model bundles: a folder of ONNX graphs plus `manifest.json`, validated on open and called
//! through typed methods per graph role (see docs/bundle-format.md).

mod calls;
mod chunk;
mod discover;
mod manifest;
mod params;
mod role;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;

pub use calls::{ForwardOutput, GradOutput, GradVjpOutput};
pub use chunk::CPU_CHUNK;
pub use discover::{find_bundles, model_search_dirs, resolve_bundle};
pub use manifest::{
    GraphSpec, Init, Manifest, NormState, Normalization, ParamSpec, FORMAT, FORMAT_VERSION,
    SUPPORTED_OPSETS,
};
pub use params::Params;
pub use role::{DType, Role, TensorSpec, STATE_OUTPUT_PREFIX};

use crate::error::{Error, Result};
use crate::runtime::{self, Runtime};

/// A loaded, validated bundle. One `Bundle` may be shared between threads: each graph keeps
/// a stack of idle sessions (ONNX Runtime's `run` needs exclusive access in `ort`), and a
/// call takes one, or loads another when all are busy, so concurrent calls (the chunks of a
/// batch on the runtime's workers) never wait for each other.
pub struct Bundle {
    runtime: &'static Runtime,
    dir: PathBuf,
    manifest: Manifest,
    graphs: BTreeMap<Role, Graph>,
    /// Images per graph call (`chunk.rs`); `None`: whole batches.
    chunk: Option<usize>,
}

struct Graph {
    file: PathBuf,
    /// Sessions not running a call now (at most one per concurrent caller is ever loaded).
    idle: Mutex<Vec<Session>>,
    /// Intra-op threads of this graph's sessions.
    intra_threads: usize,
}

impl Bundle {
    /// Opens and validates the bundle in `dir` using the process runtime (initialised with
    /// defaults if needed).
    pub fn open(dir: impl AsRef<Path>) -> Result<Bundle> {
        Bundle::open_with(runtime::get()?, dir)
    }

    /// Opens and validates the bundle in `dir` with an explicit runtime.
    pub fn open_with(rt: &'static Runtime, dir: impl AsRef<Path>) -> Result<Bundle> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::bundle(
                &dir,
                "is not a folder (a bundle is a folder with manifest.json)",
            ));
        }
        let manifest_path = dir.join("manifest.json");
        if !manifest_path.is_file() {
            return Err(Error::bundle(&dir, "has no manifest.json"));
        }
        let manifest = Manifest::read(&manifest_path)?;
        let roles = validate::check_graph_table(&manifest, &manifest_path)?;
        let chunk = chunk::default_chunk(rt.provider(), manifest.batch_statistics);
        // Chunked calls run side by side on the runtime's workers, one thread each; a graph
        // that takes whole batches gets the threads itself (runtime/threads.rs).
        let intra_threads = if chunk.is_some() { 1 } else { rt.threads() };
        let mut graphs = BTreeMap::new();
        for role in roles {
            let spec = &manifest.graphs[role.name()];
            let file = dir.join(&spec.file);
            if !file.is_file() {
                return Err(Error::bundle(
                    &file,
                    format!(
                        "missing graph file for role `{role}` (named in {})",
                        manifest_path.display()
                    ),
                ));
            }
            let session = rt.load_graph(&file, intra_threads)?;
            validate::check_session(&session, &manifest, role, &file)?;
            graphs.insert(
                role,
                Graph {
                    file,
                    idle: Mutex::new(vec![session]),
                    intra_threads,
                },
            );
        }
        Ok(Bundle {
            runtime: rt,
            dir,
            manifest,
            graphs,
            chunk,
        })
    }

    /// The bundle folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The model name from the manifest.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Roles present in this bundle.
    pub fn roles(&self) -> Vec<Role> {
        self.graphs.keys().copied().collect()
    }

    /// Whether the bundle has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.graphs.contains_key(&role)
    }

    /// The ONNX file of a role.
    pub fn graph_file(&self, role: Role) -> Option<&Path> {
        self.graphs.get(&role).map(|g| g.file.as_path())
    }

    /// A fresh random initialisation drawn like PyTorch's defaults, from `seed`.
    pub fn init_params(&self, seed: u64) -> Params {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Params::init(&self.manifest.params, &mut rng)
    }

    /// Checks externally supplied parameters against the manifest.
    pub fn params_from_tensors(&self, tensors: Vec<ndarray::ArrayD<f32>>) -> Result<Params> {
        Params::from_tensors(&self.manifest.params, tensors)
    }

    fn graph(&self, role: Role) -> Result<&Graph> {
        self.graphs.get(&role).ok_or_else(|| Error::MissingRole {
            bundle: self.manifest.name.clone(),
            role: role.name(),
        })
    }
}
