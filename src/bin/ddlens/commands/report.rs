//! `ddlens report DIR`: the HTML report of a folder of analysis results.

use std::path::PathBuf;

use clap::Args;
use ddlens::Result;

/// Options of `ddlens report`.
#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Folder of analysis results (`<name>.json` and PNGs written by `ddlens analyze`).
    #[arg(default_value = "ddlens-out/analysis")]
    pub dir: PathBuf,
    /// Output file (default: DIR/report.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Title of the report.
    #[arg(
        long,
        default_value = "What has the distilled data learned? (ddlens report)"
    )]
    pub title: String,
}

/// Writes the report and says where.
pub(crate) fn run(args: ReportArgs) -> Result<()> {
    let out = args.out.unwrap_or_else(|| args.dir.join("report.html"));
    let bytes = ddlens::analysis::write_report(&args.dir, &out, &args.title)?;
    println!(
        "wrote {} ({:.1} MB, self-contained: open it in any browser)",
        out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
