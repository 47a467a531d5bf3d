//! `ddlens experts`: the library's [`ExpertJob`] (MTT's expert trajectories) with a bar.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use ddlens::distill::ExpertJob;
use ddlens::shard::{Shard, UnitStore};
use ddlens::Result;
use serde_json::json;

use crate::args::{open_model_and_data, DataArgs};
use crate::bar::Bar;

/// Options of `ddlens experts`.
#[derive(Args)]
pub(crate) struct ExpertsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of experts (the reference buffer.py trains 100).
    #[arg(long, default_value_t = 10)]
    pub num_experts: usize,
    /// Epochs per expert (reference 50).
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Expert learning rate (reference 0.01, no momentum).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Train on plain images (default: DSA augmentation per image, without flip on MNIST).
    #[arg(long)]
    pub no_dsa: bool,
    /// Seed (expert i uses stream i, so each expert is reproducible on its own).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (experts.json and expert-NNNN/epoch-NNNN.safetensors).
    #[arg(long, default_value = "ddlens-out/experts")]
    pub out: PathBuf,
    /// The experts as units (expert i = unit i): train the experts of --shard (default: the
    /// Slurm array task's, else all) into the shared experts folder DIR (instead of --out),
    /// skipping finished ones; `ddlens gather DIR` then writes DIR/experts.json. Same
    /// arguments in every shard.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub units: Option<PathBuf>,
    /// With --units: train only shard I of N of the experts (expert i when i % N == I).
    #[arg(long, value_name = "I/N", value_parser = crate::args::parse_shard, requires = "units")]
    pub shard: Option<Shard>,
    /// Print the index as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Trains (or continues training) the experts into `--out`.
pub(crate) fn run(args: ExpertsArgs) -> Result<()> {
    let (bundle, splits) = open_model_and_data(&args.data)?;
    let mut job = ExpertJob::new(
        args.num_experts,
        args.epochs,
        !args.no_dsa,
        Some(args.data.dataset),
    );
    job.config.lr = args.lr;
    job.config.batch = args.batch_size;
    job.seed = args.seed;
    if let Some(dir) = &args.units {
        let shard = Shard::resolve(args.shard)?.unwrap_or(Shard::WHOLE);
        let announce = |store: &UnitStore| {
            eprintln!("experts: {}", shard.describe(store.spec().units));
        };
        let mut bar = Bar::new("experts", 0);
        let (store, done) =
            job.run_shard(dir, &bundle, &splits.train, shard, &announce, &mut bar)?;
        bar.finish();
        super::gather::print_shard_run(&store, &done.ran, &done.skipped);
        return Ok(());
    }
    let start = Instant::now();
    let mut bar = Bar::new("experts", 0);
    let index = job.run(&args.out, &bundle, &splits.train, &mut bar)?;
    bar.finish();
    if args.json {
        println!("{}", json!({ "dir": args.out, "index": index }));
    } else {
        println!(
            "{} experts of {} epochs for {} in {:.1} s\nwrote {}",
            index.experts,
            index.epochs,
            bundle.name(),
            start.elapsed().as_secs_f64(),
            args.out.display()
        );
    }
    Ok(())
}
