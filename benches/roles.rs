//! Times each graph role of a bundle at batch 256 through ONNX Runtime, beside the same
//! computation in PyTorch eager on the same number of threads (benches/torch_roles.py), in
//! two styles: the `torch.func` definitions the graphs were exported from (`func`), and an
//! `nn.Module` with plain `backward()` as a training loop writes it (`module`).
//!
//!     cargo bench --bench roles -- [--model convnet3-1x28x28] [--batch 256] [--threads 2] [--repeats 5] [--chunk N]
//!         [--provider cpu|cuda]   (cuda: PyTorch on the GPU too)
//!
//! `--chunk N` evaluates the batch N images per graph call (0: the whole batch in one call;
//! default: the bundle's own, at most 8 on the CPU, side by side on the `--threads` workers).
//!
//! Measurement only: it prints figures and never fails on speed.

#[path = "common/torch.rs"]
mod torch;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use ddlens::bundle::{resolve_bundle, Role};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::Bundle;
use ndarray::{Array1, Array2, Array4};

/// Times each graph role of a bundle beside PyTorch eager.
#[derive(Parser)]
struct Opts {
    /// Model bundle (a name from models/ or a folder).
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
    /// Images per role call.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Threads on each side.
    #[arg(long, default_value_t = torch::cores())]
    threads: usize,
    /// Timed calls per role (the median is printed).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Images per graph call (0: the whole batch; default: the bundle's own).
    #[arg(long)]
    chunk: Option<usize>,
    /// cpu or cuda (cuda: PyTorch on the GPU too).
    #[arg(long, default_value = "cpu")]
    provider: ProviderChoice,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: first runs allocate arenas and pick kernels
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[times.len() / 2]
}

fn time_roles(b: &Bundle, o: &Opts) -> BTreeMap<&'static str, f64> {
    let m = b.manifest();
    let [c, h, w] = m.input_shape;
    let p = b.init_params(0);
    let x = Array4::<f32>::from_shape_fn((o.batch, c, h, w), |(i, j, k, l)| {
        ((i + 3 * j + 5 * k + 7 * l) % 11) as f32 / 5.0 - 1.0
    });
    let y = Array1::<i64>::from_shape_fn(o.batch, |i| (i % m.num_classes) as i64);
    let cvec = Array2::<f32>::from_elem((o.batch, m.feature_dim), 0.01);
    let a = b.init_params(1);
    let mut out = BTreeMap::new();
    for role in b.roles() {
        let ms = match role {
            Role::Forward => median_ms(o.repeats, || drop(b.forward(&p, x.view()).unwrap())),
            Role::Grad => median_ms(o.repeats, || {
                drop(b.grad(&p, x.view(), y.view(), None).unwrap())
            }),
            Role::GradVjp => median_ms(o.repeats, || {
                drop(b.grad_vjp(&p, x.view(), y.view(), None, &a).unwrap())
            }),
            Role::FeaturesVjp => median_ms(o.repeats, || {
                drop(b.features_vjp(&p, x.view(), cvec.view()).unwrap())
            }),
            Role::LossJvp => median_ms(o.repeats, || {
                drop(b.loss_jvp(&p, &a, x.view(), y.view()).unwrap())
            }),
        };
        out.insert(role.name(), ms);
    }
    out
}

fn torch_times(
    o: &Opts,
    bundle_dir: &std::path::Path,
    style: &str,
) -> Result<BTreeMap<String, f64>, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = torch::python();
    let out = Command::new(&python)
        .arg(format!("{root}/benches/torch_roles.py"))
        .arg("--bundle")
        .arg(bundle_dir)
        .args(["--batch", &o.batch.to_string()])
        .args([
            "--threads",
            &o.threads.to_string(),
            "--repeats",
            &o.repeats.to_string(),
        ])
        .args(["--device", torch::device(o.provider)])
        .args(["--style", style])
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
        .map_err(|e| format!("unexpected output from torch_roles.py: {e}: {line}"))
}

fn main() {
    let o = Opts::parse();
    // As the `ddlens` command line does (src/runtime/allocator.rs).
    if std::env::var_os(runtime::MALLOC_ENV).is_none() {
        runtime::keep_freed_memory();
    }
    let rt = runtime::init(RuntimeConfig {
        provider: o.provider,
        threads: Some(o.threads),
        ..Default::default()
    })
    .expect("ONNX Runtime");
    let mut b = Bundle::open(resolve_bundle(&o.model).expect("bundle")).expect("bundle");
    if let Some(c) = o.chunk {
        b.set_chunk((c > 0).then_some(c));
    }
    println!(
        "roles of {} at batch {} (chunks of {}), {} thread(s), median of {} (ONNX Runtime {} on {}, vs PyTorch eager)",
        b.name(),
        o.batch,
        b.chunk().map_or("the whole batch".to_string(), |c| format!("at most {c}")),
        o.threads,
        o.repeats,
        rt.version(),
        rt.provider()
    );
    let ours = time_roles(&b, &o);
    let func = torch_times(&o, b.dir(), "func");
    let module = torch_times(&o, b.dir(), "module");
    for e in [&func, &module]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
    {
        println!("(PyTorch side unavailable: {e}; run scripts/setup --dev)");
    }
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "role", "ort ms", "func ms", "module ms", "ort/func", "ort/module"
    );
    let cell = |t: &Result<BTreeMap<String, f64>, String>, role: &str| {
        t.as_ref().ok().and_then(|t| t.get(role).copied())
    };
    let show = |v: Option<f64>, width: usize, digits: usize| match v {
        Some(v) => format!("{v:>width$.digits$}"),
        None => format!("{:>width$}", "-"),
    };
    for (role, ms) in &ours {
        let (f, m) = (cell(&func, role), cell(&module, role));
        println!(
            "{role:<14} {ms:>10.1} {} {} {} {}",
            show(f, 10, 1),
            show(m, 10, 1),
            show(f.map(|f| ms / f), 9, 2),
            show(m.map(|m| ms / m), 10, 2)
        );
    }
}
