//! [`DistilledMeta`]: the `__metadata__` string map of a distilled-set file.

use std::collections::{BTreeMap, HashMap};

use super::data_err;
use crate::error::Result;

/// Value of the `format` key.
pub const DISTILLED_FORMAT: &str = "ddlens-distilled";
/// Value of the `version` key this build reads and writes.
pub const DISTILLED_VERSION: &str = "1";

/// Keys ddlens interprets; every other key is kept in [`DistilledMeta::extra`].
const RESERVED: [&str; 8] = [
    "format",
    "version",
    "method",
    "ipc",
    "dataset",
    "model",
    "seed",
    "num_classes",
];

/// What a distilled set is: how, from what and for what it was made.
///
/// Empty strings and `ipc` 0 mean "unknown"; on reading, a missing `ipc` is taken from the
/// data (the largest class count).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistilledMeta {
    /// Distillation method (`dm`, `dc`, `dsa`, `mtt`, `bptt`, `random`, `herding`...).
    pub method: String,
    /// Images per class.
    pub ipc: usize,
    /// Source dataset (`fashion-mnist`, `cifar10`...).
    pub dataset: String,
    /// Model bundle the set was distilled with.
    pub model: String,
    /// Seed of the distillation run, when known.
    pub seed: Option<u64>,
    /// Further keys, kept as they are on reading and writing.
    pub extra: BTreeMap<String, String>,
}

impl DistilledMeta {
    /// The metadata map to write; reserved keys override same-named `extra` keys.
    pub(crate) fn to_map(&self, num_classes: usize) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = self
            .extra
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut put = |k: &str, v: String| map.insert(k.to_string(), v);
        put("format", DISTILLED_FORMAT.into());
        put("version", DISTILLED_VERSION.into());
        put("method", self.method.clone());
        put("ipc", self.ipc.to_string());
        put("dataset", self.dataset.clone());
        put("model", self.model.clone());
        put("num_classes", num_classes.to_string());
        if let Some(seed) = self.seed {
            put("seed", seed.to_string());
        }
        map
    }

    /// Parses a metadata map read from `origin`; also returns the `num_classes` key if present.
    /// `format` and `version`, when present, must be ddlens's.
    pub(crate) fn from_map(
        map: &HashMap<String, String>,
        origin: &str,
    ) -> Result<(DistilledMeta, Option<usize>)> {
        check_key(map, "format", DISTILLED_FORMAT, origin)?;
        check_key(map, "version", DISTILLED_VERSION, origin)?;
        let text = |k: &str| map.get(k).cloned().unwrap_or_default();
        let meta = DistilledMeta {
            method: text("method"),
            ipc: parse_key(map, "ipc", origin)?.unwrap_or(0),
            dataset: text("dataset"),
            model: text("model"),
            seed: parse_key(map, "seed", origin)?,
            extra: map
                .iter()
                .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Ok((meta, parse_key(map, "num_classes", origin)?))
    }
}

fn check_key(map: &HashMap<String, String>, key: &str, want: &str, origin: &str) -> Result<()> {
    match map.get(key) {
        Some(v) if v != want => Err(data_err(
            origin,
            format!("metadata `{key}` is `{v}`, this build of ddlens reads `{want}`"),
        )),
        _ => Ok(()),
    }
}

fn parse_key<T: std::str::FromStr>(
    map: &HashMap<String, String>,
    key: &str,
    origin: &str,
) -> Result<Option<T>> {
    match map.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            data_err(
                origin,
                format!("metadata `{key}` is `{v}`, expected a non-negative integer"),
            )
        }),
    }
}
