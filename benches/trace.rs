//! The Hessian trace of ddlens next to an independent PyTorch computation: Hutchinson's
//! estimate of tr ∇²L (mean cross-entropy) for given parameters on the first N Fashion-MNIST
//! training images, with a fixed number of Rademacher probes, printed as JSON. The companion
//! `benches/torch_trace.py` computes the same quantity with `torch.autograd` on the same
//! parameters and images; the two estimates must agree within their standard errors.
//!
//!     cargo bench --bench trace -- --params P.safetensors [--images 256] [--probes 200]
//!         [--model convnet3-1x28x28] [--threads 2] [--seed 0]
//!     .venv/bin/python benches/torch_trace.py --params P.safetensors --images 256 --probes 200
//!
//! Without `--params`, the model's seeded initialisation (`Bundle::init_params(seed)`) is
//! used and also written to `target/trace-init.safetensors` for the PyTorch side.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use ddlens::analysis::hessian::{hutchinson_trace, HessianOperator};
use ddlens::bundle::resolve_bundle;
use ddlens::data::{self, DatasetName};
use ddlens::runtime::{self, RuntimeConfig};
use ddlens::train::{load_params, save_params};
use ddlens::Bundle;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Hutchinson's estimate of the Hessian trace, printed as JSON.
#[derive(Parser)]
struct Opts {
    /// Parameters (safetensors; default: the model's seeded initialisation).
    #[arg(long)]
    params: Option<PathBuf>,
    /// Model bundle (a name from models/ or a folder).
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
    /// The first N Fashion-MNIST training images.
    #[arg(long, default_value_t = 256)]
    images: usize,
    /// Rademacher probes.
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Seed of the probes and of the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let Opts {
        params,
        model,
        images,
        probes,
        seed,
        threads,
        ..
    } = Opts::parse();
    runtime::init(RuntimeConfig {
        threads,
        ..Default::default()
    })
    .expect("ONNX Runtime (scripts/setup)");
    let b = Bundle::open(resolve_bundle(&model).expect("model")).expect("bundle");
    let params = match params {
        Some(p) => load_params(&p, b.manifest()).expect("params"),
        None => {
            let p = b.init_params(seed);
            let out = PathBuf::from("target/trace-init.safetensors");
            save_params(&out, b.manifest(), &p).expect("write init params");
            eprintln!(
                "parameters: init_params({seed}), written to {}",
                out.display()
            );
            p
        }
    };
    let splits = match data::load(DatasetName::FashionMnist, None) {
        Ok(s) => s,
        Err(e) => {
            println!("Fashion-MNIST is not available, nothing measured: {e}");
            return;
        }
    };
    let idx: Vec<usize> = (0..images.min(splits.train.len())).collect();
    let batch = splits.train.select(&idx).expect("images");
    let op = HessianOperator::new(&b, &params, &batch, 256).expect("operator");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Instant::now();
    // tol 0: never stops early, so the standard error covers exactly `probes` probes.
    let t = hutchinson_trace(&op, probes, 0.0, &mut rng).expect("trace");
    println!(
        "{}",
        serde_json::json!({
            "engine": "ddlens (ONNX Runtime)",
            "model": model,
            "images": batch.len(),
            "trace": t.trace,
            "std_error": t.std_error,
            "probes": t.probes,
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
}
