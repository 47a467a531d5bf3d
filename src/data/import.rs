//! Distilled sets written by other tools with `torch.save`, converted to [`DistilledSet`]s
//! whose metadata says where they came from (docs/importing.md).
//!
//! Two layouts, detected from the files:
//! * **MTT** (GeorgeCazenavette/mtt-distillation): `images_<tag>.pt` (`N x C x H x W`),
//!   `labels_<tag>.pt` (`N`) and optionally `syn_lr_<tag>.pt` (the learned learning rate, a
//!   0-d tensor), `<tag>` usually `best`. Its CIFAR runs (`--zca`) store images in ZCA space.
//! * **DC, DSA, DM** (VICO-UoE/DatasetCondensation): `res_<method>_<dataset>_<model>_<k>ipc.pt`,
//!   a dict whose `data` is a list of `[images, labels]`, one pair per experiment.
//!
//! Both store images normalised with the dataset's mean and std (the constants ddlens uses),
//! except MTT with ZCA, whose images are ZCA-whitened pixels in `[0, 1]`.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4};

use super::pt::{read_pt, PtTensor, PtValue};
use super::{data_err, Dataset, DatasetName, DistilledMeta, DistilledSet, Zca};
use crate::error::{Error, Result};

/// Metadata key: the tool that wrote the imported files.
pub const META_SOURCE_TOOL: &str = "source_tool";
/// Metadata key: the imported files' names, comma-separated.
pub const META_SOURCE_FILES: &str = "source_files";
/// Metadata key: which experiment of a DC/DSA/DM file was imported.
pub const META_EXPERIMENT: &str = "experiment";
/// Metadata key: the space the images are in (`mean-std` or `zca`).
pub const META_NORMALIZATION: &str = "normalization";
/// Metadata key: `true` when the images are ZCA-whitened, so the real data must be too.
pub const META_ZCA: &str = "zca";
/// Metadata key: the `eps` of that whitening.
pub const META_ZCA_EPS: &str = "zca_eps";

/// Which tool wrote a set, and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// MTT: images, labels and, when saved, the learned learning rate.
    Mtt {
        /// `images_<tag>.pt`.
        images: PathBuf,
        /// `labels_<tag>.pt`.
        labels: PathBuf,
        /// `syn_lr_<tag>.pt`, when present.
        lr: Option<PathBuf>,
    },
    /// DC, DSA or DM: one `res_*.pt` file.
    Condensation {
        /// The `res_*.pt` file.
        file: PathBuf,
    },
}

/// Choices the files cannot make themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The dataset; needed when the image shape fits several (1x28x28: MNIST or Fashion-MNIST)
    /// and the file names do not say.
    pub dataset: Option<DatasetName>,
    /// The experiment of a DC/DSA/DM file (default 0).
    pub experiment: Option<usize>,
    /// Whether the images are ZCA-whitened (default: MTT on CIFAR-10 yes, all else no).
    pub zca: Option<bool>,
    /// The method to record (default: `mtt`, or the one in a `res_*.pt` name).
    pub method: Option<String>,
    /// Leave the dataset unrecorded rather than fail when the shape fits several and nothing
    /// names one (how [`DistilledSet::read_any`] reads `.pt` files).
    pub lenient_dataset: bool,
}

/// An imported set and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The set, metadata filled in.
    pub set: DistilledSet,
    /// The layout it was read from.
    pub layout: Layout,
    /// Notes for the user (defaults taken, ZCA needed...).
    pub notes: Vec<String>,
}

impl Layout {
    /// Detects the layout of `src`: a folder holding `images_best.pt` (MTT) or one `res_*.pt`
    /// file, an MTT `images_*.pt` / `labels_*.pt` / `syn_lr_*.pt` file (its companions beside
    /// it), or any other `.pt` file (read as DC/DSA/DM).
    pub fn detect(src: &Path) -> Result<Layout> {
        if src.is_dir() {
            return detect_in_folder(src);
        }
        if !src.exists() {
            return Err(data_err(src.display(), "no such file or folder"));
        }
        let name = file_name(src);
        let tag = ["images_", "labels_", "syn_lr_"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|rest| rest.strip_suffix(".pt"));
        match tag {
            Some(tag) => mtt_files(src.parent().unwrap_or(Path::new(".")), tag),
            None => Ok(Layout::Condensation {
                file: src.to_path_buf(),
            }),
        }
    }

    /// The files, in the order they are read.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Layout::Mtt { images, labels, lr } => {
                let mut f = vec![images.as_path(), labels.as_path()];
                f.extend(lr.as_deref());
                f
            }
            Layout::Condensation { file } => vec![file.as_path()],
        }
    }

    /// The tool's name as recorded in the metadata.
    pub fn tool(&self) -> &'static str {
        match self {
            Layout::Mtt { .. } => "mtt-distillation",
            Layout::Condensation { .. } => "DatasetCondensation",
        }
    }
}

fn detect_in_folder(dir: &Path) -> Result<Layout> {
    if dir.join("images_best.pt").is_file() {
        return mtt_files(dir, "best");
    }
    let mut res: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = file_name(p);
            n.starts_with("res_") && n.ends_with(".pt")
        })
        .collect();
    res.sort();
    match res.len() {
        1 => Ok(Layout::Condensation {
            file: res.remove(0),
        }),
        0 => Err(data_err(
            dir.display(),
            "holds neither MTT's images_best.pt nor a DC/DSA/DM res_*.pt file; name the file \
             itself",
        )),
        _ => Err(data_err(
            dir.display(),
            format!(
                "holds {} res_*.pt files ({}); name the one to import",
                res.len(),
                res.iter()
                    .map(|p| file_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn mtt_files(dir: &Path, tag: &str) -> Result<Layout> {
    let images = dir.join(format!("images_{tag}.pt"));
    let labels = dir.join(format!("labels_{tag}.pt"));
    for needed in [&images, &labels] {
        if !needed.is_file() {
            return Err(data_err(
                needed.display(),
                format!("missing: an MTT set needs images_{tag}.pt and labels_{tag}.pt together"),
            ));
        }
    }
    let lr = Some(dir.join(format!("syn_lr_{tag}.pt"))).filter(|p| p.is_file());
    Ok(Layout::Mtt { images, labels, lr })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Imports the set at `src` (see [`Layout::detect`]).
pub fn import_set(src: &Path, options: &ImportOptions) -> Result<Imported> {
    let layout = Layout::detect(src)?;
    let mut notes = Vec::new();
    let (images, labels, lr, origin, hint) = match &layout {
        Layout::Mtt { images, labels, lr } => {
            let imgs = image_tensor(&read_pt(images)?, images, "the file's tensor")?;
            let lbls = label_tensor(&read_pt(labels)?, labels, "the file's tensor")?;
            let lr = lr.as_deref().map(read_lr).transpose()?;
            let hint = NameHint {
                method: "mtt".into(),
                ..NameHint::default()
            };
            (imgs, lbls, lr, images.clone(), hint)
        }
        Layout::Condensation { file } => {
            let (imgs, lbls, count) = condensation_pair(file, options.experiment)?;
            if count > 1 && options.experiment.is_none() {
                notes.push(format!(
                    "{} holds {count} experiments; imported experiment 0 (choose with --experiment)",
                    file_name(file)
                ));
            }
            (imgs, lbls, None, file.clone(), NameHint::of_res_file(file))
        }
    };
    let shape = [images.dim().1, images.dim().2, images.dim().3];
    let dataset = choose_dataset(shape, options, &hint, &origin)?;
    let zca = options
        .zca
        .unwrap_or(matches!(layout, Layout::Mtt { .. }) && dataset == Some(DatasetName::Cifar10));
    if zca {
        notes.push(format!(
            "the images are ZCA-whitened pixels (MTT's --zca, eps {}): eval and analyze whiten \
             the real data the same way automatically{}",
            Zca::MTT_EPS,
            if options.zca.is_none() {
                "; MTT's CIFAR runs use --zca, pass --no-zca if this one did not"
            } else {
                ""
            }
        ));
    }
    if dataset.is_none() {
        notes.push(
            "1x28x28 images fit MNIST and Fashion-MNIST: the dataset is not recorded (import \
             with --dataset to record it)"
                .into(),
        );
    }
    let meta = metadata(&layout, options, &hint, dataset, zca);
    let num_classes = dataset.map_or_else(
        || labels.iter().max().map_or(1, |&m| m.max(0) as usize + 1),
        DatasetName::num_classes,
    );
    let in_file = |e: Error| data_err(origin.display(), e.to_string());
    let name = file_stem(&origin);
    let data = Dataset::new(images, labels, num_classes, name).map_err(in_file)?;
    let set = DistilledSet::new(data, lr, meta).map_err(in_file)?;
    Ok(Imported { set, layout, notes })
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into())
}

/// What a `res_<method>_<dataset>_<model>_<k>ipc.pt` name says.
#[derive(Debug, Default)]
struct NameHint {
    method: String,
    dataset: Option<DatasetName>,
    model: Option<String>,
}

impl NameHint {
    fn of_res_file(path: &Path) -> NameHint {
        let stem = file_stem(path);
        let parts: Vec<&str> = stem.split('_').collect();
        let dataset = parts
            .get(2)
            .and_then(|d| match d.to_ascii_lowercase().as_str() {
                "mnist" => Some(DatasetName::Mnist),
                "fashionmnist" | "fashion-mnist" => Some(DatasetName::FashionMnist),
                "cifar10" => Some(DatasetName::Cifar10),
                _ => None,
            });
        NameHint {
            method: parts
                .get(1)
                .filter(|_| parts[0] == "res")
                .map(|m| m.to_ascii_lowercase())
                .unwrap_or_default(),
            dataset,
            model: parts.get(3).map(|m| m.to_string()),
        }
    }
}

fn choose_dataset(
    shape: [usize; 3],
    options: &ImportOptions,
    hint: &NameHint,
    origin: &Path,
) -> Result<Option<DatasetName>> {
    if let Some(d) = options.dataset.or(hint.dataset) {
        if d.input_shape() != shape {
            return Err(data_err(
                origin.display(),
                format!(
                    "images are {}, but {d} images are {}",
                    dims(shape),
                    dims(d.input_shape())
                ),
            ));
        }
        return Ok(Some(d));
    }
    let fits: Vec<DatasetName> = DatasetName::ALL
        .into_iter()
        .filter(|d| d.input_shape() == shape)
        .collect();
    match fits.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Err(data_err(
            origin.display(),
            format!(
                "images are {}, which fits no dataset ddlens knows (fashion-mnist and mnist \
                 1x28x28, cifar10 3x32x32)",
                dims(shape)
            ),
        )),
        _ if options.lenient_dataset => Ok(None),
        several => Err(data_err(
            origin.display(),
            format!(
                "images are {}, which fits {}: say which with --dataset",
                dims(shape),
                several
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
    }
}

fn dims(s: [usize; 3]) -> String {
    format!("{}x{}x{}", s[0], s[1], s[2])
}

fn metadata(
    layout: &Layout,
    options: &ImportOptions,
    hint: &NameHint,
    dataset: Option<DatasetName>,
    zca: bool,
) -> DistilledMeta {
    let mut meta = DistilledMeta {
        method: options
            .method
            .clone()
            .unwrap_or_else(|| hint.method.clone()),
        dataset: dataset.map(|d| d.as_str().to_string()).unwrap_or_default(),
        ..DistilledMeta::default()
    };
    let mut put = |k: &str, v: String| meta.extra.insert(k.to_string(), v);
    put(META_SOURCE_TOOL, layout.tool().into());
    let files: Vec<String> = layout.files().iter().map(|p| file_name(p)).collect();
    put(META_SOURCE_FILES, files.join(","));
    if let Layout::Condensation { .. } = layout {
        put(META_EXPERIMENT, options.experiment.unwrap_or(0).to_string());
    }
    if let Some(model) = &hint.model {
        put("source_model", model.clone());
    }
    put(
        META_NORMALIZATION,
        if zca { "zca" } else { "mean-std" }.into(),
    );
    put(META_ZCA, zca.to_string());
    if zca {
        put(META_ZCA_EPS, Zca::MTT_EPS.to_string());
    }
    meta
}

/// The experiment's `[images, labels]` of a DC/DSA/DM file, and how many experiments it holds.
fn condensation_pair(
    file: &Path,
    experiment: Option<usize>,
) -> Result<(Array4<f32>, Array1<i64>, usize)> {
    let bad = |m: String| data_err(file.display(), m);
    let expected = "expected a DC/DSA/DM result (a dict with key `data`)";
    let mut map = match read_pt(file)? {
        PtValue::Dict(map) => map,
        other => return Err(bad(format!("{expected}, found {}", other.describe()))),
    };
    let Some(data) = map.remove("data") else {
        let found = PtValue::Dict(map).describe();
        return Err(bad(format!("{expected}, found {found}")));
    };
    let mut experiments = match data {
        PtValue::List(items) => items,
        other => {
            return Err(bad(format!(
                "`data` should be a list of [images, labels] per experiment, found {}",
                other.describe()
            )))
        }
    };
    let count = experiments.len();
    let k = experiment.unwrap_or(0);
    if k >= count {
        return Err(bad(format!(
            "experiment {k} asked for, but `data` holds {count} experiment{}{}",
            if count == 1 { "" } else { "s" },
            if count > 0 {
                format!(" (0..={})", count - 1)
            } else {
                String::new()
            }
        )));
    }
    let what = format!("`data[{k}]`");
    let mut items = match experiments.swap_remove(k) {
        PtValue::List(items) => items,
        other => {
            return Err(bad(format!(
                "{what} should be [images, labels], found {}",
                other.describe()
            )))
        }
    };
    if items.len() != 2 {
        let found: Vec<String> = items.iter().map(PtValue::describe).collect();
        return Err(bad(format!(
            "{what} should be [images, labels], found {} items: {}",
            items.len(),
            found.join("; ")
        )));
    }
    let labels = items.pop().expect("two");
    let images = items.pop().expect("two");
    let images = image_tensor(&images, file, &format!("`data[{k}][0]`"))?;
    let labels = label_tensor(&labels, file, &format!("`data[{k}][1]`"))?;
    Ok((images, labels, count))
}

fn tensor<'a>(value: &'a PtValue, file: &Path, what: &str, expected: &str) -> Result<&'a PtTensor> {
    match value {
        PtValue::Tensor(t) => Ok(t),
        other => Err(data_err(
            file.display(),
            format!("{what} should be {expected}, found {}", other.describe()),
        )),
    }
}

fn image_tensor(value: &PtValue, file: &Path, what: &str) -> Result<Array4<f32>> {
    let t = tensor(value, file, what, "a tensor of images (N x C x H x W)")?;
    let shape: [usize; 4] = t.shape.as_slice().try_into().map_err(|_| {
        data_err(
            file.display(),
            format!(
                "{what} has shape {:?}, expected rank 4 (N x C x H x W)",
                t.shape
            ),
        )
    })?;
    let values = t
        .to_f32()
        .map_err(|e| data_err(file.display(), format!("{what} {e}")))?;
    Array4::from_shape_vec(shape, values).map_err(|e| {
        data_err(
            file.display(),
            format!("{what} has shape {shape:?}, which no array can have: {e}"),
        )
    })
}

fn label_tensor(value: &PtValue, file: &Path, what: &str) -> Result<Array1<i64>> {
    let t = tensor(value, file, what, "a tensor of labels (N)")?;
    if t.shape.len() != 1 {
        return Err(data_err(
            file.display(),
            format!("{what} has shape {:?}, expected rank 1", t.shape),
        ));
    }
    let values = t
        .to_i64()
        .map_err(|e| data_err(file.display(), format!("{what} {e}")))?;
    Ok(Array1::from(values))
}

/// MTT's `syn_lr_*.pt`: a one-element float tensor (or a plain number).
fn read_lr(path: &Path) -> Result<f32> {
    let bad = |m: String| data_err(path.display(), m);
    let lr = match read_pt(path)? {
        PtValue::Number(v) => v as f32,
        PtValue::Tensor(t) if t.shape.iter().product::<usize>() == 1 => t
            .to_f32()
            .map_err(|e| bad(format!("the learning rate {e}")))?[0],
        other => {
            return Err(bad(format!(
                "expected the learning rate (a one-element tensor), found {}",
                other.describe()
            )))
        }
    };
    if !lr.is_finite() {
        return Err(bad(format!("the learning rate is {lr}")));
    }
    Ok(lr)
}
