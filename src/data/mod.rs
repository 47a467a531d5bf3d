//! Datasets: loaders for the standard image benchmarks (IDX for MNIST and Fashion-MNIST,
//! CIFAR-10 binary batches), per-channel normalisation, seeded class-balanced subsets, and the
//! safetensors file format of distilled sets (see docs/distilled-format.md), sets other tools
//! saved with `torch.save` (docs/importing.md), and ZCA whitening.
//!
//! Every image tensor in ddlens is `N x C x H x W` `f32` in normalised space
//! (`(pixel / 255 - mean) / std`), the space the model bundles and distilled images live in.

mod batch;
mod cifar;
mod dataset;
mod distilled;
mod idx;
mod import;
mod memory;
mod meta;
mod normalize;
mod npy;
mod pt;
mod source;
mod subset;
mod zca;
mod zoo;

pub use batch::{Batch, Batches};
pub use cifar::{load_cifar10_split, read_cifar10_batch, CIFAR10_RECORD_BYTES};
pub use dataset::Dataset;
pub(crate) use dataset::MAX_CLASSES;
pub use distilled::DistilledSet;
pub use idx::{load_idx_split, read_idx_images, read_idx_labels, IdxImages};
pub use import::{import_set, ImportOptions, Imported, Layout};
pub use memory::{from_memory_f32, from_memory_u8};
pub use meta::{DistilledMeta, DISTILLED_FORMAT, DISTILLED_VERSION};
pub use normalize::Normalizer;
pub use source::{default_dir, load, DatasetName, Split, Splits, DATA_ENV};
pub use subset::{class_balanced, fraction_per_class, nested_class_balanced, uniform_fractions};
pub use zca::Zca;
pub use zoo::{resolve_set, zoo_dirs, zoo_sets, ZOO_ENV, ZOO_PREFIX};

use crate::error::Error;

/// Builds an [`Error::Data`]; `origin` is a path or a dataset description.
fn data_err(origin: impl std::fmt::Display, message: impl Into<String>) -> Error {
    Error::Data {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// How errors name a dataset that has no file behind it.
fn dataset_origin(name: &str) -> String {
    format!("dataset `{name}`")
}
