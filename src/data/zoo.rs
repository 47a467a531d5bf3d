//! The zoo: distilled sets addressable by name, the way bundles are. `zoo:dm-ipc10` names
//! `dm-ipc10.safetensors` in the first zoo folder that has it: the folders of `DDLENS_ZOO`
//! (`:`-separated), then the project's `zoo/` (the sets ddlens ships, with their logs and
//! evaluations; zoo/README.md), then `./zoo`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The prefix that marks a zoo name in place of a path.
pub const ZOO_PREFIX: &str = "zoo:";

/// Environment variable with extra zoo folders, searched first.
pub const ZOO_ENV: &str = "DDLENS_ZOO";

/// Folders searched for zoo sets, in order (only those that exist).
pub fn zoo_dirs() -> Vec<PathBuf> {
    crate::runtime::search_dirs(ZOO_ENV, "zoo")
}

/// Every set in the zoo folders, as (name, file), sorted by name; a name in an earlier
/// folder hides the same name in later ones.
pub fn zoo_sets() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in zoo_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let is_set = path.extension().is_some_and(|e| e == "safetensors");
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if is_set && !found.iter().any(|(n, _)| n == name) {
                found.push((name.to_string(), path.clone()));
            }
        }
    }
    found.sort();
    found
}

/// `path` itself, or for `zoo:NAME` the zoo's file of that name; an unknown name is an error
/// listing the names there are and the folders searched.
pub fn resolve_set(path: &Path) -> Result<PathBuf> {
    let Some(name) = path.to_str().and_then(|s| s.strip_prefix(ZOO_PREFIX)) else {
        return Ok(path.to_path_buf());
    };
    let sets = zoo_sets();
    if let Some((_, file)) = sets.iter().find(|(n, _)| n == name) {
        return Ok(file.clone());
    }
    let names: Vec<&str> = sets.iter().map(|(n, _)| n.as_str()).collect();
    Err(Error::invalid(
        "set",
        format!(
            "`{ZOO_PREFIX}{name}` is not in the zoo (known: {}; searched {:?}; set {ZOO_ENV} to add folders)",
            if names.is_empty() { "none".to_string() } else { names.join(", ") },
            zoo_dirs()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pass_through_and_unknown_names_list_the_zoo() {
        assert_eq!(
            resolve_set(Path::new("a/b.safetensors")).unwrap(),
            Path::new("a/b.safetensors")
        );
        let e = resolve_set(Path::new("zoo:no-such-set"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zoo:no-such-set") && e.contains("known:"), "{e}");
    }
}
