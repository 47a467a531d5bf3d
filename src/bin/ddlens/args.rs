//! Arguments shared by several commands, and opening what they name.

use std::path::PathBuf;

use clap::Args;
use ddlens::bundle::resolve_bundle;
use ddlens::data::{self, DatasetName, Splits};
use ddlens::runtime::ProviderChoice;
use ddlens::{Bundle, Error, Result};

/// ONNX Runtime options shared by every subcommand.
#[derive(Args)]
pub(crate) struct RuntimeArgs {
    /// Path of libonnxruntime.so (default: DDLENS_ORT_LIB, ORT_DYLIB_PATH, the project copy, python3's onnxruntime).
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Execution provider: cpu, cuda or auto.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_provider)]
    pub provider: ProviderChoice,
    /// Threads per graph (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

/// Where the data comes from.
#[derive(Args)]
pub(crate) struct DataArgs {
    /// Dataset: fashion-mnist, mnist or cifar10.
    #[arg(long, default_value = "fashion-mnist", value_parser = parse_dataset)]
    pub dataset: DatasetName,
    /// Folder with the dataset files (default: DDLENS_DATA, or the Debian package's folder for Fashion-MNIST).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Model bundle: a name from models/ (or DDLENS_MODELS) or a bundle folder.
    #[arg(long, default_value = "convnet3-1x28x28")]
    pub model: String,
    /// Use a distilled set even when its metadata says it was made for another dataset (whose
    /// normalisation differs).
    #[arg(long)]
    pub force: bool,
}

/// Parses `--provider`.
pub(crate) fn parse_provider(s: &str) -> std::result::Result<ProviderChoice, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Parses `--shard I/N`.
pub(crate) fn parse_shard(s: &str) -> std::result::Result<ddlens::shard::Shard, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Parses `--dataset`.
pub(crate) fn parse_dataset(s: &str) -> std::result::Result<DatasetName, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Reads a distilled set (or `zoo:NAME`) for use with the dataset of `data`: a set made for
/// another dataset is an error unless `--force`.
pub(crate) fn read_set(path: &std::path::Path, data: &DataArgs) -> Result<ddlens::DistilledSet> {
    let set = ddlens::DistilledSet::read_any(path)?;
    if !data.force {
        set.check_dataset(data.dataset)?;
    }
    Ok(set)
}

/// The real data in the space of the sets: ZCA-whitened (MTT's preprocessing of CIFAR,
/// [`data::Zca::whiten_splits`]) when `--zca` asks or the sets' metadata says they need it
/// (`needs` holds one entry per set, [`ddlens::DistilledSet::needs_zca`]), else unchanged.
/// Sets that disagree are an error: one model cannot see both spaces.
pub(crate) fn real_space(
    splits: Splits,
    data: &DataArgs,
    zca: bool,
    needs: &[bool],
) -> Result<Splits> {
    let whitened = needs.iter().filter(|&&n| n).count();
    if whitened > 0 && whitened < needs.len() {
        return Err(Error::invalid(
            "set",
            format!(
                "{whitened} of the {} sets are ZCA-whitened (metadata zca = true) and the \
                 others are not: use them in separate runs",
                needs.len()
            ),
        ));
    }
    if !zca && whitened == 0 {
        return Ok(splits);
    }
    eprintln!(
        "whitening the real data with ZCA (eps {}, fitted on the training split), as MTT does",
        data::Zca::MTT_EPS
    );
    data::Zca::whiten_splits(&splits, &data.dataset.normalizer(), data::Zca::MTT_EPS)
}

/// The model bundle and both splits of the dataset, checked against each other.
pub(crate) fn open_model_and_data(args: &DataArgs) -> Result<(Bundle, Splits)> {
    let bundle = Bundle::open(resolve_bundle(&args.model)?)?;
    let splits = data::load(args.dataset, args.data_dir.as_deref())?;
    splits.train.check_against(bundle.manifest())?;
    Ok((bundle, splits))
}
