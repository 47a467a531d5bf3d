//! `ddlens rank`: DD-Ranking's metrics from standard evaluations saved earlier with
//! `ddlens eval --json`, without training again.

use std::path::PathBuf;

use clap::Args;
use ddlens::train::{self, SavedEval};
use ddlens::{Error, Result};

/// Options of `ddlens rank`.
#[derive(Args)]
pub(crate) struct RankArgs {
    /// The evaluation without augmentation: one `ddlens eval SET --json` report (the set and
    /// its random real subset), or two with one set each, the distilled set's first and the
    /// random subset's second (`--no-baseline`, `eval --ipc N`).
    #[arg(long, num_args = 1..=2, value_name = "REPORT", required = true)]
    pub plain: Vec<PathBuf>,
    /// The evaluation with DSA augmentation (`eval --dsa --json`), given the same way, for the
    /// augmentation-robust score.
    #[arg(long, num_args = 1..=2, value_name = "REPORT")]
    pub augmented: Vec<PathBuf>,
    /// Test accuracy (a fraction, e.g. 0.932) of the model trained on the whole training set,
    /// one value or one per run, for HLR and the label-robust score.
    #[arg(long, value_delimiter = ',', value_name = "ACC")]
    pub full_accuracy: Vec<f64>,
    /// Print the metrics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Reads the reports and prints the metrics.
pub(crate) fn run(args: RankArgs) -> Result<()> {
    let read = |paths: &[PathBuf]| -> Result<Vec<SavedEval>> {
        paths.iter().map(|p| SavedEval::read(p)).collect()
    };
    let plain = read(&args.plain)?;
    let augmented = read(&args.augmented)?;
    if let Some(a) = args
        .full_accuracy
        .iter()
        .find(|a| !(0.0..=1.0).contains(*a))
    {
        return Err(Error::invalid(
            "full-accuracy",
            format!("{a} is not a fraction in [0, 1] (write 0.932, not 93.2)"),
        ));
    }
    let full = (!args.full_accuracy.is_empty()).then_some(args.full_accuracy.as_slice());
    let aug = (!augmented.is_empty()).then_some(augmented.as_slice());
    let ranking = train::dd_ranking_from_saved(&plain, aug, full)?;
    if args.json {
        println!("{}", serde_json::json!({ "dd_ranking": ranking }));
    } else {
        super::eval::print_dd_ranking(&ranking);
    }
    Ok(())
}
