//! [`UnitStore`]: a folder holding one job's settings and one file per finished unit.
//!
//! ```text
//! DIR/job.json              {"format": "ddlens-job", "version": 1, "kind", "units", "settings"}
//! DIR/units/unit-000007.json {"format": "ddlens-unit", "version": 1, "kind", "unit": 7,
//!                             "fingerprint", "result"}
//! ```
//!
//! Every file is written atomically, so a unit file is either whole or absent: a task killed
//! mid-unit leaves the unit to be redone, never a half file. The fingerprint (a hash of the
//! kind, the unit count and the settings) ties each unit to the settings it was computed
//! with; `serde_json` prints objects with sorted keys and round-trips floats exactly, so the
//! results read back are the ones written, bit for bit.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// `format` of unit files.
pub const UNIT_FORMAT: &str = "ddlens-unit";
const JOB_FORMAT: &str = "ddlens-job";
const VERSION: u64 = 1;
const JOB_FILE: &str = "job.json";
/// Missing units named in an error before "and N more".
const SHOWN: usize = 10;

/// What a job is: its kind (`eval`, `influence`...), how many units it has and every setting
/// its units depend on (and everything its gather needs to write the final result).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The job's kind, which `ddlens gather` dispatches on.
    pub kind: String,
    /// Number of units, ids `0..units`.
    pub units: usize,
    /// The settings, a JSON object.
    pub settings: Value,
}

impl JobSpec {
    /// A hash of the kind, the unit count and the settings (16 hex digits, FNV-1a 64 over
    /// the canonical JSON).
    pub fn fingerprint(&self) -> String {
        let text = json!({ "kind": self.kind, "units": self.units, "settings": self.settings })
            .to_string();
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{h:016x}")
    }

    fn to_json(&self) -> Value {
        json!({
            "format": JOB_FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "units": self.units,
            "settings": self.settings,
        })
    }
}

/// A folder of unit results; see the module documentation for the layout.
#[derive(Debug, Clone)]
pub struct UnitStore {
    dir: PathBuf,
    spec: JobSpec,
    fingerprint: String,
}

impl UnitStore {
    /// Opens the store in `dir` for `spec`, creating it if needed. When `dir` already holds
    /// a job, it must be this one: an error names `job.json` and every setting that differs.
    /// Several tasks may create the same store at once.
    pub fn create(dir: &Path, spec: JobSpec) -> Result<UnitStore> {
        let units = dir.join("units");
        std::fs::create_dir_all(&units).map_err(|e| Error::io(&units, e))?;
        let path = dir.join(JOB_FILE);
        if path.exists() {
            let old = read_job(&path)?;
            if old != spec {
                return Err(Error::Data {
                    origin: path.display().to_string(),
                    message: format!(
                        "this folder holds another job ({}); use a new folder or the same \
                         settings",
                        spec_diff(&old, &spec)
                    ),
                });
            }
        } else {
            // A name of this process's own, then a rename: tasks starting together never
            // share a temporary file, and the last rename leaves the same content.
            let text = serde_json::to_string_pretty(&spec.to_json()).expect("JSON prints");
            let tmp = dir.join(format!("{JOB_FILE}.{}", std::process::id()));
            write_atomic(&tmp, text.as_bytes())?;
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(UnitStore::with(dir, spec))
    }

    /// Opens an existing store (for a gather); an error names the folder when it holds no job.
    pub fn open(dir: &Path) -> Result<UnitStore> {
        let path = dir.join(JOB_FILE);
        if !path.is_file() {
            return Err(Error::invalid(
                "DIR",
                format!(
                    "{} holds no {JOB_FILE}: not a folder of sharded units (give the folder \
                     passed as --units to the sharded runs)",
                    dir.display()
                ),
            ));
        }
        Ok(UnitStore::with(dir, read_job(&path)?))
    }

    fn with(dir: &Path, spec: JobSpec) -> UnitStore {
        UnitStore {
            dir: dir.to_path_buf(),
            fingerprint: spec.fingerprint(),
            spec,
        }
    }

    /// The job this store holds.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of unit `u`: `DIR/units/unit-<u, 6 digits>.json`.
    pub fn path(&self, u: usize) -> PathBuf {
        self.dir.join("units").join(format!("unit-{u:06}.json"))
    }

    /// Whether unit `u` is finished: its file is there, readable and from these settings.
    pub fn done(&self, u: usize) -> bool {
        self.path(u).is_file() && self.read(u).is_ok()
    }

    /// Writes unit `u`'s result atomically.
    pub fn write(&self, u: usize, result: Value) -> Result<()> {
        if u >= self.spec.units {
            return Err(Error::Internal(format!(
                "unit {u} of a job of {} units",
                self.spec.units
            )));
        }
        let v = json!({
            "format": UNIT_FORMAT,
            "version": VERSION,
            "kind": self.spec.kind,
            "unit": u,
            "fingerprint": self.fingerprint,
            "result": result,
        });
        write_atomic(&self.path(u), v.to_string().as_bytes())
    }

    /// Reads unit `u`'s result; errors name the file (missing, unreadable, another job's).
    pub fn read(&self, u: usize) -> Result<Value> {
        let path = self.path(u);
        let bad = |message: String| Error::Data {
            origin: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut v: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a unit file: {e}")))?;
        if v["format"] != UNIT_FORMAT || v["version"] != VERSION {
            return Err(bad(format!(
                "not a `{UNIT_FORMAT}` file of version {VERSION}"
            )));
        }
        if v["kind"] != self.spec.kind.as_str() || v["unit"] != u {
            return Err(bad(format!(
                "holds {} unit {}, expected {} unit {u}",
                v["kind"], v["unit"], self.spec.kind
            )));
        }
        if v["fingerprint"] != self.fingerprint.as_str() {
            return Err(bad(format!(
                "computed with other settings (fingerprint {}, {} says {})",
                v["fingerprint"],
                self.dir.join(JOB_FILE).display(),
                self.fingerprint
            )));
        }
        Ok(v["result"].take())
    }

    /// The units of `0..units` with no file yet.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.spec.units)
            .filter(|&u| !self.path(u).is_file())
            .collect()
    }

    /// Every unit's result in id order, after checking that all are present (an error names
    /// the first missing ids and how many there are) and from these settings (an error names
    /// the file).
    pub fn gather(&self) -> Result<Vec<Value>> {
        let missing = self.missing();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(SHOWN).map(|u| u.to_string()).collect();
            let more = missing.len().saturating_sub(SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return Err(Error::Data {
                origin: self.dir.display().to_string(),
                message: format!(
                    "{} of {} {} units missing: {}{more} (run the shards that hold them again; \
                     finished units are kept)",
                    missing.len(),
                    self.spec.units,
                    self.spec.kind,
                    shown.join(", ")
                ),
            });
        }
        (0..self.spec.units).map(|u| self.read(u)).collect()
    }
}

fn read_job(path: &Path) -> Result<JobSpec> {
    let bad = |message: String| Error::Data {
        origin: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v["format"] != JOB_FORMAT {
        return Err(bad(format!("not a `{JOB_FORMAT}` file")));
    }
    if v["version"] != VERSION {
        return Err(bad(format!(
            "job-file version {}, this build reads {VERSION}",
            v["version"]
        )));
    }
    let kind = v["kind"]
        .as_str()
        .ok_or_else(|| bad("`kind` is not a string".into()))?;
    let units = v["units"]
        .as_u64()
        .ok_or_else(|| bad("`units` is not a count".into()))?;
    if !v["settings"].is_object() {
        return Err(bad("`settings` is not an object".into()));
    }
    Ok(JobSpec {
        kind: kind.to_string(),
        units: usize::try_from(units).map_err(|_| bad("`units` is too large".into()))?,
        settings: v["settings"].clone(),
    })
}

/// Which parts of two specs differ, as `key: old ≠ new`.
fn spec_diff(old: &JobSpec, new: &JobSpec) -> String {
    let mut diffs = Vec::new();
    if old.kind != new.kind {
        diffs.push(format!("kind: {} there, {} now", old.kind, new.kind));
    }
    if old.units != new.units {
        diffs.push(format!("units: {} there, {} now", old.units, new.units));
    }
    let empty = serde_json::Map::new();
    let (a, b) = (
        old.settings.as_object().unwrap_or(&empty),
        new.settings.as_object().unwrap_or(&empty),
    );
    for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        if a.get(key) != b.get(key) {
            let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.to_string());
            diffs.push(format!(
                "{key}: {} there, {} now",
                show(a.get(key)),
                show(b.get(key))
            ));
        }
    }
    diffs.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(units: usize, lr: f64) -> JobSpec {
        JobSpec {
            kind: "test".into(),
            units,
            settings: json!({ "lr": lr, "seed": 3 }),
        }
    }

    #[test]
    fn units_round_trip_resume_and_gather_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = UnitStore::create(tmp.path(), spec(3, 0.1)).unwrap();
        assert!(!store.done(1));
        store.write(1, json!({ "acc": 0.1 + 0.2 })).unwrap();
        assert!(store.done(1));
        // A second task opening the same job sees the unit.
        let again = UnitStore::create(tmp.path(), spec(3, 0.1)).unwrap();
        assert!(again.done(1) && !again.done(0));
        let e = again.gather().unwrap_err().to_string();
        assert!(e.contains("2 of 3 test units missing: 0, 2"), "{e}");
        again.write(0, json!(1)).unwrap();
        again.write(2, json!(2)).unwrap();
        let all = UnitStore::open(tmp.path()).unwrap().gather().unwrap();
        assert_eq!(all[1]["acc"].as_f64().unwrap(), 0.1 + 0.2, "exact floats");
        assert_eq!(all[2], json!(2));
    }

    #[test]
    fn other_settings_are_refused_naming_the_file_and_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        UnitStore::create(tmp.path(), spec(2, 0.1)).unwrap();
        let e = UnitStore::create(tmp.path(), spec(2, 0.2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("job.json") && e.contains("lr: 0.1 there, 0.2 now"),
            "{e}"
        );
        // A unit file from another job, copied in by hand.
        let other = tempfile::tempdir().unwrap();
        let o = UnitStore::create(other.path(), spec(2, 0.3)).unwrap();
        o.write(0, json!(0)).unwrap();
        let mine = UnitStore::open(tmp.path()).unwrap();
        std::fs::copy(o.path(0), mine.path(0)).unwrap();
        mine.write(1, json!(1)).unwrap();
        assert!(!mine.done(0));
        let e = mine.gather().unwrap_err().to_string();
        assert!(
            e.contains("unit-000000.json") && e.contains("other settings"),
            "{e}"
        );
        let e = UnitStore::open(&tmp.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("job.json"), "{e}");
    }

    #[test]
    fn many_missing_units_are_counted_not_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = UnitStore::create(tmp.path(), spec(1000, 0.1)).unwrap();
        let e = store.gather().unwrap_err().to_string();
        assert!(
            e.contains("1000 of 1000") && e.contains("9 and 990 more"),
            "{e}"
        );
    }
}
