//! `manifest.json`: the versioned description of a bundle (see docs/bundle-format.md).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The only `format` value a manifest may have.
pub const FORMAT: &str = "ddlens-bundle";
/// The manifest format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// ONNX default-domain opsets the loader accepts.
pub const SUPPORTED_OPSETS: std::ops::RangeInclusive<u32> = 17..=21;

/// A bundle's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Manifest format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Short name of the model, e.g. `convnet3-1x28x28`.
    pub name: String,
    /// Free-text description.
    #[serde(default)]
    pub description: String,
    /// Shape `[C, H, W]` of one example.
    pub input_shape: [usize; 3],
    /// Number of classes (logits).
    pub num_classes: usize,
    /// Size of the penultimate-layer feature vector.
    pub feature_dim: usize,
    /// Per-channel normalisation of pixels in [0, 1].
    pub normalization: Normalization,
    /// ONNX default-domain opset of the graphs.
    pub opset: u32,
    /// What wrote the bundle.
    #[serde(default)]
    pub producer: String,
    /// Parameters, in the order every graph takes them.
    pub params: Vec<ParamSpec>,
    /// State tensors carried beside the parameters (BatchNorm running statistics, present
    /// exactly when `norm_state` is [`NormState::RunningStats`]), in the order `forward` and
    /// `grad` take them after the parameters. Each entry's `init` is a constant (means 0,
    /// variances 1). Absent means none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<ParamSpec>,
    /// Graph files by role name.
    pub graphs: BTreeMap<String, GraphSpec>,
    /// Whether the graphs normalise with statistics of the batch (BatchNorm in training
    /// mode), so that a batch's result depends on which images share it. ddlens then never
    /// splits a batch into chunks (`Bundle::chunk`). Absent means `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_statistics: bool,
    /// Which form of normalisation state the graphs use (BatchNorm's running statistics or
    /// not). Absent means [`NormState::None`].
    #[serde(default, skip_serializing_if = "NormState::is_none")]
    pub norm_state: NormState,
}

/// The manifest's `norm_state`: how the graphs treat normalisation state.
///
/// A manifest with a value this build does not know is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormState {
    /// No BatchNorm: nothing is normalised with batch or running statistics.
    #[default]
    None,
    /// BatchNorm in training mode in every graph: statistics of the batch, no running
    /// statistics (requires `batch_statistics: true`).
    BatchStats,
    /// BatchNorm running statistics carried as explicit state (the manifest's `state`):
    /// `forward` normalises with the state it is given (evaluation mode), `grad` uses the
    /// batch's statistics and also outputs the updated state, the other roles use the batch's
    /// statistics and take no state (requires `batch_statistics: true`).
    RunningStats,
}

impl NormState {
    /// Whether this is the default [`NormState::None`] (left out when writing).
    pub fn is_none(&self) -> bool {
        *self == NormState::None
    }

    /// The manifest spelling (`none`, `batch-stats`).
    pub fn as_str(&self) -> &'static str {
        match self {
            NormState::None => "none",
            NormState::BatchStats => "batch-stats",
            NormState::RunningStats => "running-stats",
        }
    }
}

/// Per-channel normalisation: `x_norm = (x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Where the statistics come from (`fashion-mnist`, `cifar10`, `none`...).
    #[serde(default)]
    pub dataset: String,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

/// One parameter tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Name, also the graph input name.
    pub name: String,
    /// Exact shape.
    pub shape: Vec<usize>,
    /// Distribution of a fresh initialisation.
    pub init: Init,
}

/// Distribution of a fresh parameter, matching PyTorch's default initialisers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init {
    /// Uniform on `[low, high)` (PyTorch's Kaiming-uniform for Conv/Linear).
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Every element equal to `value` (norm weights 1, biases 0).
    Constant {
        /// The value.
        value: f32,
    },
}

/// The file and tensor names of one graph role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// ONNX file, relative to the bundle folder.
    pub file: String,
    /// Input names in order.
    pub inputs: Vec<String>,
    /// Output names in order.
    pub outputs: Vec<String>,
}

impl Manifest {
    /// Reads and parses `manifest.json`, with errors that name the file and the field.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::bundle(path, format!("invalid manifest: {e}")))?;
        manifest.check_header(path)?;
        Ok(manifest)
    }

    /// Writes the manifest as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    /// Number of input channels.
    pub fn channels(&self) -> usize {
        self.input_shape[0]
    }

    /// Whether the graphs take state beside the parameters (BatchNorm running statistics).
    pub fn has_state(&self) -> bool {
        !self.state.is_empty()
    }

    /// Number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        self.params
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    fn check_header(&self, path: &Path) -> Result<()> {
        let fail = |m: String| Err(Error::bundle(path, m));
        if self.format != FORMAT {
            return fail(format!(
                "field `format` is `{}`, expected `{FORMAT}`",
                self.format
            ));
        }
        if self.format_version != FORMAT_VERSION {
            return fail(format!(
                "field `format_version` is {}, this build of ddlens reads version {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if !SUPPORTED_OPSETS.contains(&self.opset) {
            return fail(format!(
                "field `opset` is {}, supported opsets are {}..={}",
                self.opset,
                SUPPORTED_OPSETS.start(),
                SUPPORTED_OPSETS.end()
            ));
        }
        if self.input_shape.contains(&0) || self.num_classes == 0 || self.feature_dim == 0 {
            return fail(
                "fields `input_shape`, `num_classes` and `feature_dim` must be positive".into(),
            );
        }
        let c = self.channels();
        let n = &self.normalization;
        if n.mean.len() != c || n.std.len() != c {
            return fail(format!(
                "field `normalization` must have {c} mean and std values (one per channel), found {} and {}",
                n.mean.len(),
                n.std.len()
            ));
        }
        if n.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return fail("field `normalization.std` must be positive and finite".into());
        }
        if self.norm_state != NormState::None && !self.batch_statistics {
            return fail(format!(
                "field `norm_state` is `{}` but `batch_statistics` is not true: graphs that \
                 normalise with batch statistics must not have their batches split",
                self.norm_state.as_str()
            ));
        }
        if self.params.is_empty() {
            return fail("field `params` is empty".into());
        }
        self.check_state().map_err(|m| Error::bundle(path, m))?;
        let mut total = 0usize;
        for (i, p) in self.params.iter().enumerate() {
            if p.shape.contains(&0) {
                return fail(format!("params[{i}] (`{}`) has a zero dimension", p.name));
            }
            // Every parameter is allocated as f32 and counted in `num_parameters`.
            let count = p.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            match count.and_then(|c| total.checked_add(c)) {
                Some(t) if t <= isize::MAX as usize / 4 => total = t,
                _ => {
                    return fail(format!(
                        "params[{i}] (`{}`) has shape {:?}: too many elements",
                        p.name, p.shape
                    ))
                }
            }
            // The initialisers (`Params::init`) need finite bounds with a finite spread. JSON
            // has no infinities, but through the `kind`-tagged enum a number beyond f32's
            // range (1e39) reads as one.
            let bad = match p.init {
                Init::Uniform { low, high } => (!(low < high && (high - low).is_finite()))
                    .then_some("uniform init needs low < high, both finite"),
                Init::Normal { mean, std } => (!(mean.is_finite() && std.is_finite()))
                    .then_some("normal init needs a finite mean and std"),
                Init::Constant { value } => {
                    (!value.is_finite()).then_some("constant init needs a finite value")
                }
            };
            if let Some(why) = bad {
                return fail(format!("params[{i}] (`{}`): {why}", p.name));
            }
        }
        Ok(())
    }

    /// The `state` entries: present exactly for `running-stats`, named apart from the
    /// parameters and each other, non-empty shapes, constant finite inits.
    fn check_state(&self) -> std::result::Result<(), String> {
        let running = self.norm_state == NormState::RunningStats;
        if running && self.state.is_empty() {
            return Err(
                "field `norm_state` is `running-stats` but field `state` is empty or \
                        absent: the running statistics must be listed"
                    .into(),
            );
        }
        if !running && !self.state.is_empty() {
            return Err(format!(
                "field `state` lists {} tensors but `norm_state` is `{}`: only `running-stats` \
                 bundles carry state",
                self.state.len(),
                self.norm_state.as_str()
            ));
        }
        let mut seen: std::collections::BTreeSet<&str> =
            self.params.iter().map(|p| p.name.as_str()).collect();
        for (i, s) in self.state.iter().enumerate() {
            let bad = if s.shape.is_empty() || s.shape.contains(&0) {
                Some(format!(
                    "has shape {:?}; expected a non-empty shape",
                    s.shape
                ))
            } else if s
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none()
            {
                Some(format!("has shape {:?}: too many elements", s.shape))
            } else if !matches!(s.init, Init::Constant { value } if value.is_finite()) {
                Some("has an `init` that is not `constant` with a finite value (means 0, variances 1)".into())
            } else if !seen.insert(s.name.as_str()) {
                Some("repeats a parameter or state name".into())
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(format!("field `state[{i}]` (`{}`) {why}", s.name));
            }
        }
        Ok(())
    }
}
