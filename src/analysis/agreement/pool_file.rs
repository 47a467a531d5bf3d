//! Pool files: one shard's members on disk (safetensors, deterministic bytes), reading them
//! back, and merging the shards of a sharded run into the pool of an unsharded one.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::pool::{PoolMember, PoolShard, Shard, POOL_FORMAT, POOL_VERSION};
use super::AgreementConfig;
use crate::error::{Error, Result};
use crate::io::write_atomic;

impl PoolShard {
    /// Writes the shard as safetensors: `predictions` (U16, members x test images),
    /// `accuracy` (F64), `job` and `step` (I64), and one metadata entry
    /// `ddlens-agreement-pool`, a JSON object with `format`, `version`, `shard` and
    /// `fingerprint`. Atomic; the same pool gives the same bytes.
    pub fn write(&self, path: &Path) -> Result<()> {
        let m = self.members.len();
        let n = self.members.first().map_or(0, |p| p.predictions.len());
        let preds: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| p.predictions.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let acc: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| p.accuracy.to_le_bytes())
            .collect();
        let job: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| (p.job as i64).to_le_bytes())
            .collect();
        let step: Vec<u8> = self
            .members
            .iter()
            .flat_map(|p| (p.step as i64).to_le_bytes())
            .collect();
        let bad = |e: safetensors::SafeTensorError| Error::invalid("pool", e.to_string());
        let views = vec![
            (
                "accuracy",
                TensorView::new(Dtype::F64, vec![m], &acc).map_err(bad)?,
            ),
            (
                "job",
                TensorView::new(Dtype::I64, vec![m], &job).map_err(bad)?,
            ),
            (
                "predictions",
                TensorView::new(Dtype::U16, vec![m, n], &preds).map_err(bad)?,
            ),
            (
                "step",
                TensorView::new(Dtype::I64, vec![m], &step).map_err(bad)?,
            ),
        ];
        // One metadata entry: safetensors writes its metadata map in hash order, so several
        // entries would make the bytes of identical pools differ between processes.
        let header = serde_json::json!({
            "format": POOL_FORMAT,
            "version": POOL_VERSION,
            "shard": self.shard.to_string(),
            "fingerprint": self.fingerprint,
        });
        let meta: std::collections::BTreeMap<String, String> =
            [(POOL_FORMAT.to_string(), header.to_string())].into();
        let bytes = crate::io::serialize_safetensors(views, &meta).map_err(bad)?;
        write_atomic(path, &bytes)
    }

    /// Reads a pool file written by [`PoolShard::write`]; errors name the file.
    pub fn read(path: &Path) -> Result<PoolShard> {
        let bad = |why: String| Error::Data {
            origin: path.display().to_string(),
            message: why,
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a pool file (safetensors): {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let text = meta
            .get(POOL_FORMAT)
            .ok_or_else(|| bad(format!("not a `{POOL_FORMAT}` file")))?;
        let meta: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("unreadable `{POOL_FORMAT}` metadata: {e}")))?;
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| bad(format!("no `{key}` in the metadata")))
        };
        if field("format")?.as_str() != Some(POOL_FORMAT) {
            return Err(bad(format!("not a `{POOL_FORMAT}` file")));
        }
        if field("version")?.as_u64() != Some(POOL_VERSION as u64) {
            return Err(bad(format!(
                "pool-file version {}, this build reads {POOL_VERSION}",
                field("version")?
            )));
        }
        let shard: Shard = field("shard")?
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: Error| bad(e.to_string()))?;
        let fingerprint = field("fingerprint")?
            .as_str()
            .ok_or_else(|| bad("`fingerprint` is not a string".into()))?
            .to_string();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a pool file (safetensors): {e}")))?;
        let tensor = |name: &str, dtype: Dtype| {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("has no tensor `{name}`")))?;
            if t.dtype() != dtype {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}, expected {dtype:?}",
                    t.dtype()
                )));
            }
            Ok(t)
        };
        let acc: Vec<f64> = tensor("accuracy", Dtype::F64)?
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let ints = |name: &str| -> Result<Vec<usize>> {
            Ok(tensor(name, Dtype::I64)?
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
                .collect())
        };
        let (job, step) = (ints("job")?, ints("step")?);
        let p = tensor("predictions", Dtype::U16)?;
        let m = acc.len();
        if p.shape().len() != 2 || p.shape()[0] != m || job.len() != m || step.len() != m {
            return Err(bad(format!(
                "inconsistent tensor shapes: predictions {:?}, {m} accuracies, {} jobs, {} steps",
                p.shape(),
                job.len(),
                step.len()
            )));
        }
        let n = p.shape()[1];
        let preds: Vec<u16> = p
            .data()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let members = (0..m)
            .map(|i| PoolMember {
                job: job[i],
                step: step[i],
                accuracy: acc[i],
                predictions: preds[i * n..(i + 1) * n].to_vec(),
            })
            .collect();
        Ok(PoolShard {
            shard,
            fingerprint,
            members,
        })
    }
}

/// Reads pool files: each path is a pool file or a folder whose `agreement-pool-*.safetensors`
/// files are all read (in name order).
pub fn read_pool_files(paths: &[PathBuf]) -> Result<Vec<PoolShard>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("agreement-pool-") && n.ends_with(".safetensors")
                    })
                })
                .collect();
            if found.is_empty() {
                return Err(Error::invalid(
                    "--merge",
                    format!(
                        "folder {} has no agreement-pool-*.safetensors files",
                        p.display()
                    ),
                ));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    files.iter().map(|f| PoolShard::read(f)).collect()
}

/// Gathers shards into the whole pool, ordered by job then step, checking that they come
/// from the same settings and data (`fingerprint`, see [`pool_fingerprint`]) and that every
/// shard `0/n..n-1/n` is there exactly once.
pub fn merge_pool(
    shards: &[PoolShard],
    fingerprint: &str,
    config: &AgreementConfig,
) -> Result<Vec<PoolMember>> {
    let first = shards
        .first()
        .ok_or_else(|| Error::invalid("--merge", "no pool files to merge"))?;
    let count = first.shard.count;
    // The shards seen, as a set: `count` comes from a file and may be huge.
    let mut seen = std::collections::BTreeSet::new();
    for s in shards {
        if s.shard.count != count {
            return Err(Error::invalid(
                "--merge",
                format!(
                    "shards of different splits: {} and {}",
                    first.shard, s.shard
                ),
            ));
        }
        if !seen.insert(s.shard.index) {
            return Err(Error::invalid(
                "--merge",
                format!("shard {} is given twice", s.shard),
            ));
        }
        if s.fingerprint != fingerprint {
            return Err(Error::invalid(
                "--merge",
                format!(
                    "shard {} was trained with other settings or data: {}",
                    s.shard,
                    fingerprint_diff(&s.fingerprint, fingerprint)
                ),
            ));
        }
    }
    // Names the first few missing shards (there may be billions).
    const SHOWN: usize = 10;
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains(i))
        .take(SHOWN)
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        let more = count.saturating_sub(seen.len()).saturating_sub(SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(Error::invalid(
            "--merge",
            format!("missing shards: {}{more}", missing.join(", ")),
        ));
    }
    let mut members: Vec<PoolMember> = shards.iter().flat_map(|s| s.members.clone()).collect();
    members.sort_by_key(|m| (m.job, m.step));
    for j in 0..config.jobs() {
        if !members.iter().any(|m| m.job == j) {
            return Err(Error::invalid(
                "--merge",
                format!("pool job {j} has no members"),
            ));
        }
    }
    Ok(members)
}

/// Which fingerprint fields differ, as `key: file value ≠ current value`.
fn fingerprint_diff(file: &str, now: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s);
    match (parse(file), parse(now)) {
        (Ok(a), Ok(b)) => {
            let diffs: Vec<String> = b
                .iter()
                .filter(|(k, v)| a.get(*k) != Some(v))
                .map(|(k, v)| {
                    format!(
                        "{k}: {} in the file, {v} now",
                        a.get(k).map_or("absent".to_string(), |x| x.to_string())
                    )
                })
                .collect();
            diffs.join("; ")
        }
        _ => "unreadable fingerprint".to_string(),
    }
}
