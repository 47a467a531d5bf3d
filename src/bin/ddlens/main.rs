//! The `ddlens` command line. Each command lives in `commands/` and only maps its arguments
//! onto a library call (a job, an analysis, the report); `args` holds the arguments several
//! commands share, `bar` the terminal side of the library's progress contract.

mod args;
mod bar;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};

use args::parse_provider;
use commands::{
    analyze, demo, distill, doctor, eval, experts, gather, import, rank, report, train,
};

#[derive(Parser)]
#[command(
    name = "ddlens",
    version,
    about = "Distil datasets and show what distilled data has learned"
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(subcommand)]
    command: Command,
}

/// ONNX Runtime options shared by every subcommand.
#[derive(Args)]
struct RuntimeArgs {
    /// Path of libonnxruntime.so (default: DDLENS_ORT_LIB, ORT_DYLIB_PATH, the project copy, python3's onnxruntime).
    #[arg(long, global = true, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Execution provider: cpu, cuda or auto.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_provider)]
    provider: ProviderChoice,
    /// Threads per graph (default: SLURM_CPUS_PER_TASK in a Slurm job that sets it, else all
    /// cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Check ONNX Runtime, execution providers, model bundles and datasets.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train a model on real data, a random real subset, or a distilled set.
    Train(train::TrainArgs),
    /// Standard evaluation of a distilled set (N runs, mean ± std) beside a random real subset of the same size.
    Eval(eval::EvalArgs),
    /// Distil a dataset: random, herding, dm, dc, dsa, mtt or bptt. Writes DIR/<method>-ipc<k>.{safetensors,png,json,ckpt}.
    Distill(distill::DistillArgs),
    /// Generate MTT expert trajectories (SGD on real data, parameters saved every epoch) once,
    /// for `ddlens distill --method mtt --experts DIR`. Run it again to continue an
    /// interrupted generation.
    Experts(experts::ExpertsArgs),
    /// The analyses of "What is Dataset Distillation Learning?": each writes OUT/<name>.json and PNG figures.
    Analyze(analyze::AnalyzeArgs),
    /// The result of a sharded job (`eval --units DIR`, `analyze influence --units DIR`, run in
    /// any number of processes or Slurm array tasks) from its folder: checks that every unit is
    /// there and from the same settings, then writes the result (docs/cluster.md).
    Gather(gather::GatherArgs),
    /// DD-Ranking's metrics (IOR, HLR, LRS, ARS) from evaluations saved with `ddlens eval
    /// --json`, without training again.
    Rank(rank::RankArgs),
    /// Convert a set MTT, DC, DSA or DM saved with torch.save (.pt) into a distilled-set file with metadata.
    Import(import::ImportArgs),
    /// One self-contained HTML report (figures embedded) from a folder of analysis results.
    Report(report::ReportArgs),
    /// The main job: distil Fashion-MNIST with DM (IPC 10, small budget), run every analysis at small scale and write the HTML report.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    // Negative numbers are values (`--runs -1` is then refused by the value's own parser, naming
    // the argument), not clap's tip to write `-- -1`, which would make them positional.
    let command = Cli::command()
        .allow_negative_numbers(true)
        .mut_subcommands(|s| s.allow_negative_numbers(true));
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let config = RuntimeConfig {
        library: cli.runtime.ort_lib,
        provider: cli.runtime.provider,
        threads: cli.runtime.threads,
    };
    if let Command::Doctor { json } = cli.command {
        return doctor::run(&config, json);
    }
    if let Command::Import(args) = cli.command {
        // Reading files only: no ONNX Runtime needed.
        return exit_code(import::run(args));
    }
    if std::env::var(runtime::MALLOC_ENV).as_deref() != Ok("default") {
        runtime::keep_freed_memory();
    }
    let result = runtime::init(config).map(|rt| {
        if let Some(note) = rt.threads_note() {
            eprintln!("warning: {note}");
        }
    });
    let result = result.and_then(|_| match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Experts(args) => experts::run(args),
        Command::Analyze(which) => analyze::cmd_analyze(which),
        Command::Gather(args) => gather::run(args),
        Command::Rank(args) => rank::run(args),
        Command::Report(args) => report::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Doctor { .. } | Command::Import(_) => unreachable!("handled above"),
    });
    exit_code(result)
}

/// Success, or the error printed and failure.
fn exit_code(result: ddlens::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
