//! `ddlens import`: a set MTT, DC, DSA or DM saved with `torch.save`, written as a ddlens
//! distilled-set file with metadata (docs/importing.md).

use std::path::PathBuf;

use clap::Args;
use ddlens::data::{import_set, DatasetName, ImportOptions};
use ddlens::Result;

use crate::args::parse_dataset;

/// Options of `ddlens import`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// What to import: an MTT folder (images_best.pt, labels_best.pt, syn_lr_best.pt), one of
    /// MTT's images_*.pt / labels_*.pt files, or a DC/DSA/DM res_*.pt file (or a folder with one).
    pub src: PathBuf,
    /// The distilled-set file to write (safetensors).
    #[arg(long, value_name = "SET.safetensors")]
    pub out: PathBuf,
    /// Dataset the set was distilled on (default: from the file name or the image shape;
    /// 1x28x28 images need it).
    #[arg(long, value_parser = parse_dataset)]
    pub dataset: Option<DatasetName>,
    /// Which experiment of a DC/DSA/DM file (its `data` holds one [images, labels] per experiment).
    #[arg(long, value_name = "K")]
    pub experiment: Option<usize>,
    /// The images are ZCA-whitened (MTT's --zca; the default for MTT sets of CIFAR-10).
    #[arg(long, conflicts_with = "no_zca")]
    pub zca: bool,
    /// The images are not ZCA-whitened.
    #[arg(long)]
    pub no_zca: bool,
    /// Method to record (default: mtt for MTT files, else the one in the res_*.pt name), e.g.
    /// bptt or gm for the authors' released sets.
    #[arg(long)]
    pub method: Option<String>,
}

/// Imports, writes the set and says what was found.
pub(crate) fn run(args: ImportArgs) -> Result<()> {
    let options = ImportOptions {
        dataset: args.dataset,
        experiment: args.experiment,
        zca: match (args.zca, args.no_zca) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        method: args.method,
        lenient_dataset: false,
    };
    let imported = import_set(&args.src, &options)?;
    imported.set.write(&args.out)?;
    let set = &imported.set;
    let files: Vec<String> = imported
        .layout
        .files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "imported {} ({}): {} images of {:?}, {} classes, ipc {}, method {}, dataset {}{}",
        files.join(", "),
        imported.layout.tool(),
        set.data.len(),
        set.data.input_shape(),
        set.data.num_classes(),
        set.meta.ipc,
        set.meta.method,
        set.meta.dataset,
        set.lr
            .map_or_else(String::new, |lr| format!(", learned lr {lr}"))
    );
    for note in &imported.notes {
        println!("  note: {note}");
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
