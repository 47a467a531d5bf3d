//! Times each graph role of a bundle at batch 256 through ONNX Runtime, beside the same
//! computation in PyTorch eager on the same number of threads (benches/torch_roles.py).
//!
//!     cargo bench --bench roles -- [--model convnet3-1x28x28] [--batch 256] [--threads 2] [--repeats 5]
//!
//! Measurement only: it prints figures and never fails on speed.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use ddlens::bundle::{resolve_bundle, Role};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::Bundle;
use ndarray::{Array1, Array2, Array4};

struct Opts {
    model: String,
    batch: usize,
    threads: usize,
    repeats: usize,
}

fn parse() -> Opts {
    let mut o = Opts {
        model: "convnet3-1x28x28".into(),
        batch: 256,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        repeats: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--model" => o.model = val(),
            "--batch" => o.batch = val().parse().expect("--batch N"),
            "--threads" => o.threads = val().parse().expect("--threads N"),
            "--repeats" => o.repeats = val().parse().expect("--repeats N"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
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

fn torch_times(o: &Opts, bundle_dir: &std::path::Path) -> Result<BTreeMap<String, f64>, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv/bin/python");
    let python = if std::path::Path::new(&python).exists() {
        python
    } else {
        "python3".into()
    };
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
    let o = parse();
    let rt = runtime::init(RuntimeConfig {
        provider: ProviderChoice::Cpu,
        threads: Some(o.threads),
        ..Default::default()
    })
    .expect("ONNX Runtime");
    let b = Bundle::open(resolve_bundle(&o.model).expect("bundle")).expect("bundle");
    println!(
        "roles of {} at batch {}, {} thread(s), median of {} (ONNX Runtime {} on {}, vs PyTorch eager)",
        b.name(),
        o.batch,
        o.threads,
        o.repeats,
        rt.version(),
        rt.provider()
    );
    let ours = time_roles(&b, &o);
    let torch = torch_times(&o, b.dir());
    if let Err(e) = &torch {
        println!("(PyTorch side unavailable: {e}; run scripts/setup --dev)");
    }
    println!(
        "{:<14} {:>12} {:>12} {:>10}",
        "role", "ort ms", "torch ms", "ort/torch"
    );
    for (role, ms) in &ours {
        let t = torch.as_ref().ok().and_then(|t| t.get(*role).copied());
        match t {
            Some(t) => println!("{role:<14} {ms:>12.1} {t:>12.1} {:>10.2}", ms / t),
            None => println!("{role:<14} {ms:>12.1} {:>12} {:>10}", "-", "-"),
        }
    }
}
