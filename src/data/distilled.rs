//! [`DistilledSet`]: a distilled dataset with its optional learned learning rate and metadata,
//! stored as safetensors (see docs/distilled-format.md).

use std::path::Path;

use ndarray::{Array1, Array4};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::{data_err, meta::DistilledMeta, Dataset, DatasetName};
use crate::error::{Error, Result};

/// A distilled set: images in normalised space with labels, the learning rate learned with
/// them (MTT, BPTT) if any, and what produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct DistilledSet {
    /// The images and labels.
    pub data: Dataset,
    /// A learned learning rate, when the method learns one.
    pub lr: Option<f32>,
    /// Method, IPC, source dataset, model, seed and free keys.
    pub meta: DistilledMeta,
}

impl DistilledSet {
    /// Bundles data, learning rate and metadata; an `ipc` of 0 is filled in from the data, a
    /// learning rate must be finite and a set without images is refused (every reader of
    /// sets comes through here, so an empty file is an error naming it).
    pub fn new(data: Dataset, lr: Option<f32>, mut meta: DistilledMeta) -> Result<DistilledSet> {
        if data.is_empty() {
            return Err(Error::invalid(
                "images",
                format!(
                    "the distilled set `{}` has no images; a set needs at least one image per class",
                    data.name()
                ),
            ));
        }
        if let Some(lr) = lr.filter(|lr| !lr.is_finite()) {
            return Err(Error::invalid(
                "lr",
                format!("learning rate {lr} is not finite"),
            ));
        }
        if meta.ipc == 0 {
            meta.ipc = data.class_counts().into_iter().max().unwrap_or(0);
        }
        Ok(DistilledSet { data, lr, meta })
    }

    /// Reads a distilled-set safetensors file. Tensors: `images` (F32, rank 4), `labels` (I64
    /// or I32, rank 1), optional `lr` (F32, shape `[]` or `[1]`). Errors name the file and the
    /// tensor.
    pub fn read(path: &Path) -> Result<DistilledSet> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let invalid = |e: safetensors::SafeTensorError| {
            data_err(&origin, format!("not a valid safetensors file: {e}"))
        };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(invalid)?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(invalid)?;
        let map = header.metadata().clone().unwrap_or_default();
        let (meta, num_classes) = DistilledMeta::from_map(&map, &origin)?;

        let images = images_tensor(&tensors, &origin)?;
        let labels = labels_tensor(&tensors, &origin)?;
        let lr = lr_tensor(&tensors, &origin)?;
        let num_classes = num_classes.unwrap_or_else(|| infer_classes(&meta, &labels));
        let data = Dataset::new(images, labels, num_classes, file_stem(path))
            .map_err(|e| data_err(&origin, e.to_string()))?;
        DistilledSet::new(data, lr, meta).map_err(|e| data_err(&origin, e.to_string()))
    }

    /// Checks that the set was made for `dataset` (its metadata's `dataset`, when it names a
    /// benchmark). A set distilled on another benchmark lives in that benchmark's normalised
    /// space: used here, its pixel values mean other intensities. The error says so and names
    /// both normalisations; a set whose metadata names no benchmark passes.
    pub fn check_dataset(&self, dataset: super::DatasetName) -> Result<()> {
        let Ok(made_for) = self.meta.dataset.parse::<super::DatasetName>() else {
            return Ok(());
        };
        if made_for == dataset {
            return Ok(());
        }
        let (a, b) = (made_for.normalizer(), dataset.normalizer());
        Err(Error::invalid(
            "set",
            format!(
                "`{}` was distilled on {made_for} (pixels normalised with mean {:?}, std {:?}) \
                 but is used with {dataset} (mean {:?}, std {:?}): its values would mean other \
                 intensities; use the set with --dataset {made_for}, or pass --force to use it anyway",
                self.data.name(),
                a.mean(),
                a.std(),
                b.mean(),
                b.std()
            ),
        ))
    }

    /// Reads a distilled set in any supported form: `zoo:NAME` (a set of the zoo,
    /// [`super::resolve_set`]), or by extension `.npz` (arrays `images` and `labels`), `.npy`
    /// (the images, with `labels.npy` beside them), `.pt` (a set MTT, DC, DSA or DM saved,
    /// [`super::import_set`] with its defaults; `ddlens import` records more), otherwise ddlens
    /// safetensors.
    pub fn read_any(path: &Path) -> Result<DistilledSet> {
        let resolved = super::resolve_set(path)?;
        let path = resolved.as_path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("npz") => DistilledSet::import_npz(path, None, Default::default()),
            Some("pt") => {
                let options = super::ImportOptions {
                    lenient_dataset: true,
                    ..Default::default()
                };
                super::import_set(path, &options).map(|imported| imported.set)
            }
            Some("npy") => {
                let labels = path.with_file_name("labels.npy");
                DistilledSet::import_npy(path, &labels, None, Default::default())
            }
            _ => DistilledSet::read(path),
        }
    }

    /// Whether the images are ZCA-whitened (metadata `zca` is `true`, as `ddlens import`
    /// records for MTT's CIFAR sets): the real data must then be whitened the same way
    /// ([`super::Zca::whiten_splits`]) before it is used beside them.
    pub fn needs_zca(&self) -> bool {
        self.meta.extra.get("zca").is_some_and(|v| v == "true")
    }

    /// Writes the set as safetensors, atomically: to `{path}.tmp`, flushed to disk, then
    /// renamed over `path`, so a crash never leaves a half-written file under the real name.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, &self.to_bytes()?)
    }

    /// The safetensors encoding of the set.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some(lr) = self.lr.filter(|lr| !lr.is_finite()) {
            return Err(Error::invalid(
                "lr",
                format!("learning rate {lr} is not finite"),
            ));
        }
        let images = self.data.images();
        let image_bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
        let label_bytes: Vec<u8> = self
            .data
            .labels()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let lr_bytes = self.lr.map(f32::to_le_bytes);
        let view = |dtype, shape: Vec<usize>, data| {
            TensorView::new(dtype, shape, data).expect("byte length matches shape")
        };
        let mut tensors = vec![
            (
                "images",
                view(Dtype::F32, images.shape().to_vec(), &image_bytes[..]),
            ),
            (
                "labels",
                view(Dtype::I64, vec![self.data.len()], &label_bytes[..]),
            ),
        ];
        if let Some(lr) = &lr_bytes {
            // Shape [] is what `torch.tensor(lr)` gives.
            tensors.push(("lr", view(Dtype::F32, vec![], &lr[..])));
        }
        let map = self.meta.to_map(self.data.num_classes());
        crate::io::serialize_safetensors(tensors, &map)
            .map_err(|e| Error::invalid("distilled set", format!("cannot encode: {e}")))
    }
}

/// The class count when the file does not say: the source dataset's, else max label + 1.
pub(crate) fn infer_classes(meta: &DistilledMeta, labels: &Array1<i64>) -> usize {
    match meta.dataset.parse::<DatasetName>() {
        Ok(name) => name.num_classes(),
        Err(_) => labels.iter().max().map_or(1, |&m| (m.max(0) as usize) + 1),
    }
}

/// The file name without extension, used as the dataset name.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "distilled".into())
}

fn images_tensor(tensors: &SafeTensors, origin: &str) -> Result<Array4<f32>> {
    let t = tensor(tensors, "images", origin)?;
    expect_dtype(&t, "images", &[Dtype::F32], origin)?;
    let shape: [usize; 4] = t.shape().try_into().map_err(|_| {
        data_err(
            origin,
            format!(
                "tensor `images` has shape {:?}, expected rank 4 (N x C x H x W)",
                t.shape()
            ),
        )
    })?;
    let values = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4")));
    // safetensors checked that the data fits the shape, but a shape with a zero dimension
    // holds no data whatever the others are, and ndarray refuses one whose other dimensions
    // multiply past `isize::MAX`.
    Array4::from_shape_vec(shape, values.collect()).map_err(|e| {
        data_err(
            origin,
            format!("tensor `images` has shape {shape:?}, which no array can have: {e}"),
        )
    })
}

fn labels_tensor(tensors: &SafeTensors, origin: &str) -> Result<Array1<i64>> {
    let t = tensor(tensors, "labels", origin)?;
    expect_dtype(&t, "labels", &[Dtype::I64, Dtype::I32], origin)?;
    if t.shape().len() != 1 {
        return Err(data_err(
            origin,
            format!("tensor `labels` has shape {:?}, expected rank 1", t.shape()),
        ));
    }
    let values: Vec<i64> = if t.dtype() == Dtype::I64 {
        let le = |b: &[u8]| i64::from_le_bytes(b.try_into().expect("8"));
        t.data().chunks_exact(8).map(le).collect()
    } else {
        let le = |b: &[u8]| i64::from(i32::from_le_bytes(b.try_into().expect("4")));
        t.data().chunks_exact(4).map(le).collect()
    };
    Ok(Array1::from(values))
}

fn lr_tensor(tensors: &SafeTensors, origin: &str) -> Result<Option<f32>> {
    if !tensors.names().contains(&"lr") {
        return Ok(None);
    }
    let t = tensor(tensors, "lr", origin)?;
    expect_dtype(&t, "lr", &[Dtype::F32], origin)?;
    if !(t.shape().is_empty() || t.shape() == [1]) {
        return Err(data_err(
            origin,
            format!("tensor `lr` has shape {:?}, expected [] or [1]", t.shape()),
        ));
    }
    let lr = f32::from_le_bytes(t.data().try_into().expect("one f32"));
    if !lr.is_finite() {
        return Err(data_err(origin, format!("tensor `lr` is {lr}")));
    }
    Ok(Some(lr))
}

fn tensor<'a>(tensors: &SafeTensors<'a>, name: &str, origin: &str) -> Result<TensorView<'a>> {
    tensors.tensor(name).map_err(|_| {
        let mut found = tensors.names();
        found.sort_unstable();
        data_err(
            origin,
            format!(
                "missing tensor `{name}` (the file has: {})",
                found.join(", ")
            ),
        )
    })
}

fn expect_dtype(t: &TensorView, name: &str, allowed: &[Dtype], origin: &str) -> Result<()> {
    if allowed.contains(&t.dtype()) {
        return Ok(());
    }
    let allowed: Vec<String> = allowed.iter().map(|d| d.to_string()).collect();
    Err(data_err(
        origin,
        format!(
            "tensor `{name}` has dtype {}, expected {} (convert with `.float()` / `.long()` in \
             PyTorch)",
            t.dtype(),
            allowed.join(" or ")
        ),
    ))
}
