//! `ddlens gather DIR`: the final result of a sharded job from its folder of units, after
//! checking that every unit is there and from the same settings.

use std::path::PathBuf;

use clap::Args;
use ddlens::analysis;
use ddlens::distill;
use ddlens::io::write_atomic;
use ddlens::shard::UnitStore;
use ddlens::train;
use ddlens::{Error, Result};

/// Options of `ddlens gather`.
#[derive(Args)]
pub(crate) struct GatherArgs {
    /// The folder the sharded runs wrote (their --units DIR).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Recognises the job in the folder and writes its result beside the units.
pub(crate) fn run(args: GatherArgs) -> Result<()> {
    if !args.dir.join("job.json").exists() && holds_pool_files(&args.dir) {
        return Err(Error::invalid(
            "DIR",
            format!(
                "{} holds agreement pool files: merge them with `ddlens analyze agreement \
                 --merge {} SET...` (the distilled sets are trained at the merge)",
                args.dir.display(),
                args.dir.display()
            ),
        ));
    }
    let store = UnitStore::open(&args.dir)?;
    match store.spec().kind.as_str() {
        train::EVAL_KIND => {
            let report = train::gather_eval(&store)?;
            let path = args.dir.join("eval.json");
            // The same bytes `ddlens eval --json` prints.
            write_atomic(&path, format!("{report}\n").as_bytes())?;
            if args.json {
                println!("{report}");
                return Ok(());
            }
            eprintln!("wrote {}", path.display());
            super::eval::print_report(&report)
        }
        distill::EXPERTS_KIND => {
            let index = distill::gather_experts(&args.dir)?;
            if args.json {
                println!("{}", serde_json::json!({ "dir": args.dir, "index": index }));
            } else {
                eprintln!(
                    "wrote {} ({} experts of {} epochs)",
                    args.dir.join("experts.json").display(),
                    index.experts,
                    index.epochs
                );
            }
            Ok(())
        }
        kind if analysis::find(kind).is_ok_and(|e| e.units.is_some()) => {
            let mut common = super::analyze::args_from(&store.spec().settings["run"])?;
            common.json = args.json;
            super::analyze::gather_units(&store, &common)
        }
        other => Err(Error::Data {
            origin: args.dir.join("job.json").display().to_string(),
            message: format!("a `{other}` job, which this build cannot gather"),
        }),
    }
}

fn holds_pool_files(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("agreement-pool-"))
        })
    })
}

/// The line a sharded run ends with: the units it trained, those it skipped, and what is
/// still missing in the folder.
pub(crate) fn print_shard_run(store: &UnitStore, ran: &[usize], skipped: &[usize]) {
    let list = |v: &[usize]| {
        let shown: Vec<String> = v.iter().take(12).map(|u| u.to_string()).collect();
        let more = if v.len() > 12 { ", ..." } else { "" };
        format!("{}{more}", shown.join(", "))
    };
    eprintln!(
        "ran {} unit(s) [{}]; skipped {} already done [{}]; wrote to {}",
        ran.len(),
        list(ran),
        skipped.len(),
        list(skipped),
        store.dir().join("units").display()
    );
    let missing = store.missing();
    if missing.is_empty() {
        eprintln!(
            "all {} units are done: `ddlens gather {}` writes the result",
            store.spec().units,
            store.dir().display()
        );
    } else {
        eprintln!(
            "{} of {} units still missing (other shards)",
            missing.len(),
            store.spec().units
        );
    }
}
