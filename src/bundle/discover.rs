//! Finding bundles by name: `DDLENS_MODELS` (a `:`-separated list of folders), then the
//! project's `models/` folder, then `./models`.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;
use crate::error::{Error, Result};

/// Folders searched for bundles, in order (only those that exist).
pub fn model_search_dirs() -> Vec<PathBuf> {
    crate::runtime::search_dirs("DDLENS_MODELS", "models")
}

/// Every bundle folder (a subfolder with `manifest.json`) in the search folders, with its
/// parsed manifest or the error that reading it gave.
pub fn find_bundles() -> Vec<(PathBuf, Result<Manifest>)> {
    let mut out = Vec::new();
    for dir in model_search_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut folders: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        folders.sort();
        for folder in folders {
            let manifest = Manifest::read(&folder.join("manifest.json"));
            out.push((folder, manifest));
        }
    }
    out
}

/// Resolves a bundle argument: an existing folder path, or the name of a bundle in the
/// search folders (folder name or manifest `name`).
pub fn resolve_bundle(name_or_path: &str) -> Result<PathBuf> {
    let path = Path::new(name_or_path);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let found = find_bundles();
    for (folder, manifest) in &found {
        let folder_name = folder.file_name().and_then(|n| n.to_str());
        let manifest_name = manifest.as_ref().ok().map(|m| m.name.as_str());
        if folder_name == Some(name_or_path) || manifest_name == Some(name_or_path) {
            return Ok(folder.clone());
        }
    }
    let names: Vec<String> = found
        .iter()
        .filter_map(|(f, _)| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    Err(Error::invalid(
        "model",
        format!(
            "`{name_or_path}` is neither a bundle folder nor a known bundle name (known: {}; searched {:?}, set DDLENS_MODELS to add folders)",
            if names.is_empty() { "none".to_string() } else { names.join(", ") },
            model_search_dirs()
        ),
    ))
}
