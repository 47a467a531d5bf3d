//! Deterministic safetensors encoding. `safetensors::serialize` takes the metadata as a
//! `HashMap`, whose iteration order is random per map, so two writes of the same tensors could
//! differ byte for byte; every ddlens writer goes through [`serialize`], which writes the
//! metadata with sorted keys: same content, same file.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::View;
use safetensors::SafeTensorError;

/// `safetensors::serialize` with `metadata` written in key order.
pub(crate) fn serialize<S, V, I>(
    tensors: I,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, SafeTensorError>
where
    S: AsRef<str> + Ord + std::fmt::Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
{
    let hashed: HashMap<String, String> = metadata.clone().into_iter().collect();
    let mut bytes = safetensors::serialize(tensors, Some(hashed))?;
    sort_metadata(&mut bytes, metadata);
    Ok(bytes)
}

/// Rewrites the header's `__metadata__` object (compact JSON right after `{"__metadata__":`)
/// in key order. The same entries have the same length in any order, so nothing else moves;
/// if the header is not laid out as expected, the (valid) bytes are left as they are.
fn sort_metadata(bytes: &mut [u8], metadata: &BTreeMap<String, String>) {
    const PREFIX: &[u8] = b"{\"__metadata__\":";
    let Ok(sorted) = serde_json::to_string(metadata) else {
        return;
    };
    let start = 8 + PREFIX.len();
    let end = start + sorted.len();
    if bytes.len() < end || &bytes[8..start] != PREFIX {
        return;
    }
    let same = serde_json::from_slice::<BTreeMap<String, String>>(&bytes[start..end])
        .is_ok_and(|found| &found == metadata);
    if same {
        bytes[start..end].copy_from_slice(sorted.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype, TensorView};

    #[test]
    fn same_tensors_and_metadata_give_the_same_bytes() {
        let data = [0u8; 16];
        let meta: BTreeMap<String, String> = (0..8)
            .map(|i| (format!("key{i}"), format!("value}}{i}")))
            .collect();
        let encode = || {
            let view = TensorView::new(Dtype::F32, vec![2, 2], &data).unwrap();
            serialize([("t", view)], &meta).unwrap()
        };
        let first = encode();
        for _ in 0..20 {
            assert_eq!(encode(), first);
        }
        let st = safetensors::SafeTensors::deserialize(&first).unwrap();
        assert_eq!(st.tensor("t").unwrap().shape(), [2, 2]);
        let (_, header) = safetensors::SafeTensors::read_metadata(&first).unwrap();
        let found: BTreeMap<String, String> =
            header.metadata().clone().unwrap().into_iter().collect();
        assert_eq!(found, meta);
    }
}
