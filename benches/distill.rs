//! Time of one distillation iteration of DM, DC and DSA at several images per class, on real
//! Fashion-MNIST, driven exactly as `ddlens distill` drives them (the `ddlens::distill` method
//! types, the reference settings, one `IterContext` per iteration seeded as the runner seeds it),
//! and time per epoch of the standard evaluation's training; each beside the same work in
//! PyTorch eager (benches/torch_distill.py) on the same number of threads, with the ratio.
//!
//!     cargo bench --bench distill -- [--model convnet3-1x28x28] [--ipc 1,10]
//!         [--methods dm,dc,dsa] [--iters 3] [--warmup 1] [--threads 2] [--batch-real 256]
//!         [--data-dir DIR] [--eval-epochs 20] [--provider cpu|cuda] [--no-torch]
//!
//! Data: the loader of the CLI (`--data-dir`, else DDLENS_DATA, else the Debian package's
//! folder /usr/share/datasets/fashion-mnist); without it the bench says so and stops. Each
//! (method, IPC) starts from the same real initialisation (`Synthetic::from_real`, seed 0),
//! calls `Method::init`, runs `--warmup` untimed iterations (1; ONNX Runtime sizes its arenas
//! in the first) and then `--iters` timed iterations; it prints the median, fastest and slowest. Settings are the
//! CLI defaults: DM with the standard DSA strategy (lr 1, momentum 0.5), DC/DSA with the
//! reference loops of `DcConfig::for_ipc` (IPC 1: 1 outer × 1 inner, IPC 10: 10 × 50), DSA
//! with the standard strategy. A DC or DSA iteration at IPC 10 takes minutes on a CPU (both
//! sides): `--iters 1 --warmup 0` there.
//!
//! Evaluation rows (`eval`, `eval-dsa`; `--eval-epochs 0` leaves them out): seconds per epoch
//! of `ddlens::train::train` with the standard evaluation's configuration (`StandardEval`, what
//! `ddlens eval` runs: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, lr ×0.1 at
//! E/2; `eval` without augmentation as `ddlens eval`, `eval-dsa` with a per-image DSA draw on
//! every minibatch as `ddlens eval --dsa`) on IPC real images per class (`class_balanced`, seed
//! 0: the size of a distilled set, and only time is measured). One warm-up epoch, then one run
//! of `--eval-epochs` epochs divided by their number; the protocol's final test-set evaluation
//! is not timed. Fresh parameters come before the clock starts.
//!
//! PyTorch side: `.venv/bin/python` (else `python3`) runs benches/torch_distill.py with the same
//! methods, IPCs, iterations, threads, batch_real, eval epochs and data folder (`--provider
//! cuda`: PyTorch on the GPU too), before the ddlens side; without PyTorch the table says so
//! and shows ddlens alone (`--no-torch` skips it). Measurement only: it prints figures and
//! never fails on them.

#[path = "common/torch.rs"]
mod torch;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use ddlens::augment::Dsa;
use ddlens::bundle::resolve_bundle;
use ddlens::data::{self, DatasetName};
use ddlens::distill::{iteration_rng, Dc, DcConfig, Dm, DmConfig, IterContext, Method, Synthetic};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::train::{self, StandardEval, TrainConfig};
use ddlens::{Bundle, Dataset};

/// Seed of the initial set and of every iteration's stream (the CLI's default).
const SEED: u64 = 0;

/// Distillation iterations and the standard evaluation beside PyTorch eager.
#[derive(Parser)]
struct Opts {
    /// Model bundle (a name from models/ or a folder).
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
    /// Images per class, comma-separated.
    #[arg(long = "ipc", value_delimiter = ',', default_value = "1,10")]
    ipcs: Vec<usize>,
    /// Methods, comma-separated (dm, dc, dsa).
    #[arg(long, value_delimiter = ',', default_value = "dm,dc,dsa")]
    methods: Vec<String>,
    /// Timed iterations per method (after the warm-up; at least 1).
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Untimed warm-up iterations per method (ONNX Runtime sizes its arenas in the first; 0
    /// for DC and DSA at IPC 10, minutes an iteration, where that is about 1 % of one).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Threads on each side.
    #[arg(long, default_value_t = torch::cores())]
    threads: usize,
    /// Real images per class and iteration.
    #[arg(long, default_value_t = 256)]
    batch_real: usize,
    /// Folder of the Fashion-MNIST files (default: ddlens's search).
    #[arg(long)]
    data_dir: Option<String>,
    /// Epochs of the standard evaluation to time.
    #[arg(long, default_value_t = 20)]
    eval_epochs: usize,
    /// cpu or cuda (cuda: PyTorch on the GPU too).
    #[arg(long, default_value = "cpu")]
    provider: ProviderChoice,
    /// ddlens only, no PyTorch side.
    #[arg(long = "no-torch", action = clap::ArgAction::SetFalse)]
    torch: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The method as `ddlens distill --method NAME --ipc IPC --batch-real B` builds it.
fn method(name: &str, ipc: usize, batch_real: usize) -> ddlens::Result<Box<dyn Method>> {
    Ok(match name {
        "dm" => Box::new(Dm::new(DmConfig {
            batch_real,
            ..DmConfig::default()
        })?),
        "dc" | "dsa" => {
            let mut config = DcConfig::for_ipc(ipc)?;
            config.batch_real = batch_real;
            if name == "dsa" {
                config = config.with_dsa(Dsa::default());
            }
            Box::new(Dc::new(config)?)
        }
        other => {
            return Err(ddlens::Error::invalid(
                "methods",
                format!("`{other}` is not one of dm, dc, dsa"),
            ))
        }
    })
}

/// Median, fastest and slowest of `times` (not empty).
fn stats(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    (median, times[0], times[n - 1])
}

/// One row of the table: ddlens's median, fastest and slowest seconds and a last loss.
struct Row {
    median: f64,
    min: f64,
    max: f64,
    loss: f32,
}

/// Warm-up plus `iters` timed iterations of one (method, IPC).
fn bench_one(
    b: &Bundle,
    real: &Dataset,
    by_class: &[Vec<usize>],
    o: &Opts,
    name: &str,
    ipc: usize,
) -> ddlens::Result<Row> {
    let mut m = method(name, ipc, o.batch_real)?;
    let mut syn = Synthetic::from_real(real, ipc, SEED)?;
    let ctx = |iteration: usize, rng| IterContext {
        bundle: b,
        real,
        real_by_class: by_class,
        iteration,
        rng,
    };
    m.init(&mut ctx(0, iteration_rng(SEED, u64::MAX)), &mut syn)?;
    let mut times = Vec::with_capacity(o.iters);
    let mut loss = f32::NAN;
    for it in 0..o.warmup + o.iters {
        let mut c = ctx(it, iteration_rng(SEED, it as u64));
        let t = Instant::now();
        loss = m.iterate(&mut c, &mut syn)?;
        if it >= o.warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let (median, min, max) = stats(&mut times);
    Ok(Row {
        median,
        min,
        max,
        loss,
    })
}

/// Seconds per epoch of the standard evaluation's training (`ddlens eval`, with `--dsa` when
/// `dsa`) on `ipc` real images per class: one warm-up epoch, then `--eval-epochs` epochs in
/// one `train` call. The loss is the last minibatch's.
fn bench_eval(b: &Bundle, real: &Dataset, o: &Opts, ipc: usize, dsa: bool) -> ddlens::Result<Row> {
    let set = real.select(&data::class_balanced(real, ipc, SEED)?)?;
    let strategy = dsa.then(|| Dsa::standard_for(Some(DatasetName::FashionMnist)));
    let protocol = StandardEval {
        epochs: o.eval_epochs,
        ..StandardEval::new(strategy.as_ref())
    };
    let config = protocol.train_config(set.len(), 0);
    let warm_up = TrainConfig {
        epochs: 1,
        ..config.clone()
    };
    train::train(b, b.init_params(config.seed), &set, &warm_up, &mut [])?;
    let init = b.init_params(config.seed);
    let t = Instant::now();
    let out = train::train(b, init, &set, &config, &mut [])?;
    let per_epoch = t.elapsed().as_secs_f64() / o.eval_epochs as f64;
    Ok(Row {
        median: per_epoch,
        min: f64::NAN,
        max: f64::NAN,
        loss: out.log.last().map_or(f32::NAN, |s| s.loss),
    })
}

/// The PyTorch side (benches/torch_distill.py): seconds by `METHOD-IPC` (`eval-IPC` and
/// `eval-dsa-IPC` per epoch), from the JSON object on the last line of its output.
fn torch_times(o: &Opts) -> Result<BTreeMap<String, f64>, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = torch::python();
    let data_dir = o
        .data_dir
        .clone()
        .map(std::path::PathBuf::from)
        .or_else(|| data::default_dir(DatasetName::FashionMnist))
        .ok_or("no Fashion-MNIST folder to give it")?;
    let join = |v: Vec<String>| v.join(",");
    let out = Command::new(&python)
        .arg(format!("{root}/benches/torch_distill.py"))
        .args(["--model", &o.model])
        .args(["--methods", &join(o.methods.clone())])
        .args([
            "--ipc",
            &join(o.ipcs.iter().map(ToString::to_string).collect()),
        ])
        .args(["--iters", &o.iters.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--threads", &o.threads.to_string()])
        .args(["--batch-real", &o.batch_real.to_string()])
        .args(["--eval-epochs", &o.eval_epochs.to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--device", torch::device(o.provider)])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("{}");
    serde_json::from_str(line)
        .map_err(|e| format!("unexpected output from torch_distill.py: {e}: {line}"))
}

/// Prints one table row: ddlens's figures, PyTorch's median for `key` when there is one and the
/// ratio ddlens/PyTorch.
fn print_row(
    name: &str,
    ipc: usize,
    images: usize,
    row: ddlens::Result<Row>,
    torch: &Result<BTreeMap<String, f64>, String>,
) {
    let row = match row {
        Ok(r) => r,
        Err(e) => {
            println!("{name:<8} {ipc:>4} failed: {e}");
            return;
        }
    };
    let key = format!("{name}-{ipc}");
    let (t, ratio) = match torch.as_ref().ok().and_then(|t| t.get(&key).copied()) {
        Some(t) => (format!("{t:.3}"), format!("{:.2}", row.median / t)),
        None => ("-".to_string(), "-".to_string()),
    };
    let range = |v: f64| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.3}")
        }
    };
    println!(
        "{name:<8} {ipc:>4} {images:>7} {:>10.3} {t:>10} {ratio:>12} {:>10} {:>10} {:>10.5}",
        row.median,
        range(row.min),
        range(row.max),
        row.loss
    );
}

fn main() {
    let mut o = Opts::parse();
    o.methods = o.methods.iter().map(|m| m.to_ascii_lowercase()).collect();
    o.iters = o.iters.max(1);
    // As the `ddlens` command line does (src/bin/ddlens/main.rs).
    if std::env::var(runtime::MALLOC_ENV).as_deref() != Ok("default") {
        runtime::keep_freed_memory();
    }
    let rt = runtime::init(RuntimeConfig {
        provider: o.provider,
        threads: Some(o.threads),
        ..Default::default()
    })
    .expect("ONNX Runtime (scripts/setup installs it)");
    let b = Bundle::open(resolve_bundle(&o.model).expect("bundle")).expect("bundle");
    let splits = match data::load(
        DatasetName::FashionMnist,
        o.data_dir.as_deref().map(std::path::Path::new),
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("Fashion-MNIST is not available, nothing measured: {e}");
            return;
        }
    };
    let real = splits.train;
    if let Err(e) = real.check_against(b.manifest()) {
        println!("{} does not take Fashion-MNIST images: {e}", o.model);
        return;
    }
    let by_class = real.class_indices();
    println!(
        "Distillation iteration on {} with Fashion-MNIST ({} real images): batch_real {}, \
         {} warm-up + {} timed iteration(s), {} thread(s), ONNX Runtime {} on {}, vs PyTorch eager",
        o.model,
        real.len(),
        o.batch_real,
        o.warmup,
        o.iters,
        o.threads,
        rt.version(),
        rt.provider()
    );
    // PyTorch first, so that the table comes out row by row as ddlens measures.
    let torch = if o.torch {
        println!(
            "PyTorch side: benches/torch_distill.py (this takes about as long as ddlens's)..."
        );
        torch_times(&o)
    } else {
        Err("skipped (--no-torch)".to_string())
    };
    match &torch {
        Err(e) if o.torch => println!("(PyTorch side unavailable: {e}; run scripts/setup --dev)"),
        Err(e) => println!("(PyTorch side {e})"),
        Ok(_) => {}
    }
    println!(
        "{:<8} {:>4} {:>7} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "method",
        "ipc",
        "images",
        "ddlens s",
        "torch s",
        "ddlens/torch",
        "min s",
        "max s",
        "last loss"
    );
    for name in &o.methods {
        for &ipc in &o.ipcs {
            let row = bench_one(&b, &real, &by_class, &o, name, ipc);
            print_row(name, ipc, ipc * real.num_classes(), row, &torch);
        }
    }
    if o.eval_epochs > 0 {
        println!(
            "Standard evaluation (ddlens eval's training, lr 0.01, momentum 0.9, wd 5e-4, \
             batch 256): seconds per epoch over {} epoch(s) after 1 warm-up epoch",
            o.eval_epochs
        );
        for (name, dsa) in [("eval", false), ("eval-dsa", true)] {
            for &ipc in &o.ipcs {
                let row = bench_eval(&b, &real, &o, ipc, dsa);
                print_row(name, ipc, ipc * real.num_classes(), row, &torch);
            }
        }
    }
}
