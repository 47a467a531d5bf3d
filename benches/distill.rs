//! Time of one distillation iteration of DM, DC and DSA at several images per class, on real
//! Fashion-MNIST, driven exactly as `ddlens distill` drives them (the `ddlens::distill` method
//! types, the reference settings, one `IterContext` per iteration seeded as the runner seeds it).
//!
//!     cargo bench --bench distill -- [--model convnet3-1x28x28] [--ipc 1,10]
//!         [--methods dm,dc,dsa] [--iters 3] [--threads 2] [--batch-real 256] [--data-dir DIR]
//!         [--provider cpu|cuda]
//!
//! Data: the loader of the CLI (`--data-dir`, else DDLENS_DATA, else the Debian package's
//! folder /usr/share/datasets/fashion-mnist); without it the bench says so and stops. Each
//! (method, IPC) starts from the same real initialisation (`Synthetic::from_real`, seed 0),
//! calls `Method::init`, runs one warm-up iteration (ONNX Runtime sizes its arenas there) and
//! then `--iters` timed iterations; it prints the median, fastest and slowest. Settings are the
//! CLI defaults: DM with the standard DSA strategy (lr 1, momentum 0.5), DC/DSA with the
//! reference loops of `DcConfig::for_ipc` (IPC 1: 1 outer × 1 inner, IPC 10: 10 × 50), DSA
//! with the standard strategy. Measurement only: it prints figures and never fails on them.

use std::time::Instant;

use ddlens::augment::Dsa;
use ddlens::bundle::resolve_bundle;
use ddlens::data::{self, DatasetName};
use ddlens::distill::{iteration_rng, Dc, DcConfig, Dm, DmConfig, IterContext, Method, Synthetic};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::{Bundle, Dataset};

/// Seed of the initial set and of every iteration's stream (the CLI's default).
const SEED: u64 = 0;

struct Opts {
    model: String,
    ipcs: Vec<usize>,
    methods: Vec<String>,
    iters: usize,
    threads: usize,
    batch_real: usize,
    data_dir: Option<String>,
    provider: ProviderChoice,
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Vec<T> {
    s.split(',')
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{what}")))
        .collect()
}

fn parse() -> Opts {
    let mut o = Opts {
        model: "convnet3-1x28x28".into(),
        ipcs: vec![1, 10],
        methods: vec!["dm".into(), "dc".into(), "dsa".into()],
        iters: 3,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batch_real: 256,
        data_dir: None,
        provider: ProviderChoice::Cpu,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--model" => o.model = val(),
            "--ipc" => o.ipcs = list(&val(), "--ipc N[,N...]"),
            "--methods" => o.methods = list(&val().to_ascii_lowercase(), "--methods dm,dc,dsa"),
            "--iters" => o.iters = val().parse().expect("--iters N"),
            "--threads" => o.threads = val().parse().expect("--threads N"),
            "--batch-real" => o.batch_real = val().parse().expect("--batch-real N"),
            "--data-dir" => o.data_dir = Some(val()),
            "--provider" => o.provider = val().parse().expect("--provider cpu|cuda"),
            // cargo bench passes `--bench`; ignore anything unknown.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o.iters = o.iters.max(1);
    o
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

/// Warm-up plus `iters` timed iterations of one (method, IPC); prints one line.
fn bench_one(
    b: &Bundle,
    real: &Dataset,
    by_class: &[Vec<usize>],
    o: &Opts,
    name: &str,
    ipc: usize,
) {
    let run = || -> ddlens::Result<(f64, f64, f64, f32)> {
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
        for it in 0..=o.iters {
            let mut c = ctx(it, iteration_rng(SEED, it as u64));
            let t = Instant::now();
            loss = m.iterate(&mut c, &mut syn)?;
            // Iteration 0 is the warm-up.
            if it > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        let (median, min, max) = stats(&mut times);
        Ok((median, min, max, loss))
    };
    match run() {
        Ok((median, min, max, loss)) => println!(
            "{name:<6} {ipc:>4} {:>7} {median:>10.3} {min:>10.3} {max:>10.3} {loss:>12.5}",
            ipc * real.num_classes()
        ),
        Err(e) => println!("{name:<6} {ipc:>4} failed: {e}"),
    }
}

fn main() {
    let o = parse();
    runtime::init(RuntimeConfig {
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
         1 warm-up + {} timed iteration(s), {} thread(s), CPU",
        o.model,
        real.len(),
        o.batch_real,
        o.iters,
        o.threads
    );
    println!(
        "{:<6} {:>4} {:>7} {:>10} {:>10} {:>10} {:>12}",
        "method", "ipc", "images", "median s", "min s", "max s", "last loss"
    );
    for name in &o.methods {
        for &ipc in &o.ipcs {
            bench_one(&b, &real, &by_class, &o, name, ipc);
        }
    }
}
