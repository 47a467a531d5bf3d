//! Time and peak memory of one MTT-style distillation iteration (unroll N SGD steps on the
//! synthetic set, trajectory-matching loss, exact adjoint back to the images and lr) for
//! several N, to show that memory grows only by the stored iterates, `(N + 1)·|θ|·4` bytes.
//!
//!     cargo bench --bench unroll -- [--model convnet3-1x28x28] [--steps 10,40,80] [--ipc 10]
//!         [--batch 100] [--iters 1] [--threads 2] [--provider cpu|cuda]
//!
//! Each N runs in a fresh child process. After opening the bundle and one warm-up graph call
//! per role (ONNX Runtime's arenas reach their size there), the peak-RSS counter is reset
//! (`/proc/self/clear_refs`), so "peak" is the steady state of distillation iterations and
//! "beyond iterates" = peak − RSS before the iterations − iterate bytes is the working set
//! that must stay flat in N. Beside each N, the same iteration in PyTorch eager as the MTT
//! reference code runs it (`benches/torch_unroll.py`: `autograd.grad(create_graph=True)`
//! per step, one `backward()`; same threads, one warm-up, then `--iters`), its seconds, the
//! ratio ddlens/PyTorch and PyTorch's peak RSS. Measurement only: it prints figures and never
//! fails on them.

#[path = "common/torch.rs"]
mod torch;

use std::process::Command;
use std::time::Instant;

use clap::Parser;
use ddlens::bundle::resolve_bundle;
use ddlens::distill::{epoch_batches, trajectory_matching, InnerLoop, InnerSgd};
use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};
use ddlens::Bundle;
use ndarray::{Array1, Array4};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// An MTT-style iteration (unroll + adjoint) beside PyTorch.
#[derive(Parser)]
struct Opts {
    /// Model bundle (a name from models/ or a folder).
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
    /// Inner steps N, comma-separated (one configuration each).
    #[arg(long, value_delimiter = ',', default_value = "10,40,80")]
    steps: Vec<usize>,
    /// Images per class.
    #[arg(long, default_value_t = 10)]
    ipc: usize,
    /// Student batch (default: all images).
    #[arg(long)]
    batch: Option<usize>,
    /// Timed iterations.
    #[arg(long, default_value_t = 1)]
    iters: usize,
    /// Threads on each side.
    #[arg(long, default_value_t = torch::cores())]
    threads: usize,
    /// Runs one configuration in this process (the parent starts one child per step count).
    #[arg(long, hide = true)]
    child: bool,
    /// cpu or cuda (cuda: PyTorch on the GPU too).
    #[arg(long, default_value = "cpu")]
    provider: ProviderChoice,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One configuration, in this process; prints one result line.
fn run_child(o: &Opts, steps: usize) {
    runtime::init(RuntimeConfig {
        provider: o.provider,
        threads: Some(o.threads),
        ..Default::default()
    })
    .expect("ONNX Runtime");
    let b = Bundle::open(resolve_bundle(&o.model).expect("bundle")).expect("bundle");
    let m = b.manifest();
    let [c, h, w] = m.input_shape;
    let n = o.ipc * m.num_classes;
    let batch = o.batch.unwrap_or(n).min(n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x = Array4::from_shape_simple_fn((n, c, h, w), || rng.sample::<f32, _>(StandardNormal));
    let y = Array1::from_shape_fn(n, |i| (i % m.num_classes) as i64);
    let batches = epoch_batches(n, batch, steps, 1).expect("schedule");
    let theta0 = b.init_params(0);
    let target = b.init_params(1);
    let sgd = InnerSgd::plain(0.01);

    // Warm-up: ONNX Runtime sizes its arenas on the first call of each role at this batch.
    let first = &batches[0];
    let (xb, yb) = (
        x.select(ndarray::Axis(0), first),
        y.select(ndarray::Axis(0), first),
    );
    b.grad(&theta0, xb.view(), yb.view(), None).expect("grad");
    b.grad_vjp(&theta0, xb.view(), yb.view(), None, &theta0)
        .expect("grad_vjp");
    let reset = runtime::reset_peak_rss();
    let rss_before = runtime::current_rss().unwrap_or(0) as usize;

    let (mut t_fwd, mut t_adj, mut iterate_bytes) = (0.0, 0.0, 0);
    let mut x_iter = x.clone();
    for _ in 0..o.iters {
        let inner = InnerLoop::new(&b, x_iter.view(), y.view(), &batches, sgd).expect("inner loop");
        let t = Instant::now();
        let run = inner.unroll(theta0.clone()).expect("unroll");
        t_fwd += t.elapsed().as_secs_f64();
        let outer = trajectory_matching(run.final_params(), &theta0, &target).expect("loss");
        let t = Instant::now();
        let grads = run.adjoint(&outer.grad).expect("adjoint");
        t_adj += t.elapsed().as_secs_f64();
        iterate_bytes = run.iterate_bytes();
        drop(run);
        // An image update, as distillation would do, so iterations are not identical.
        x_iter.scaled_add(-1.0, &grads.x);
    }
    let peak = runtime::peak_rss().unwrap_or(0) as usize;
    let beyond = peak as f64 - rss_before as f64 - iterate_bytes as f64;
    let iters = o.iters as f64;
    // One JSON line for the parent, which prints the table.
    println!(
        "{}",
        serde_json::json!({
            "s": (t_fwd + t_adj) / iters,
            "unroll_s": t_fwd / iters,
            "adjoint_s": t_adj / iters,
            "iterates_mib": mib(iterate_bytes),
            "rss0_mib": mib(rss_before),
            "peak_mib": mib(peak),
            "beyond_mib": beyond / (1024.0 * 1024.0),
            "peak_reset": reset,
        })
    );
}

/// Seconds and peak RSS per N of the same iteration in PyTorch (benches/torch_unroll.py).
fn torch_times(o: &Opts) -> Result<serde_json::Value, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = torch::python();
    let steps: Vec<String> = o.steps.iter().map(|s| s.to_string()).collect();
    let mut cmd = Command::new(&python);
    cmd.arg(format!("{root}/benches/torch_unroll.py"))
        .args(["--steps", &steps.join(",")])
        .args(["--ipc", &o.ipc.to_string()])
        .args(["--iters", &o.iters.to_string()])
        .args(["--threads", &o.threads.to_string()])
        .args(["--device", torch::device(o.provider)]);
    if let Some(b) = o.batch {
        cmd.args(["--batch", &b.to_string()]);
    }
    let out = cmd.output().map_err(|e| format!("{python}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let line = text.lines().last().unwrap_or("{}");
    serde_json::from_str(line).map_err(|e| format!("torch_unroll.py printed {line:?}: {e}"))
}

/// Runs one N in a fresh child process and returns its JSON line.
fn run_in_child(o: &Opts, steps: usize) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&exe);
    cmd.args(["--child", "--steps", &steps.to_string()])
        .args(["--model", &o.model])
        .args(["--ipc", &o.ipc.to_string()])
        .args(["--iters", &o.iters.to_string()])
        .args(["--threads", &o.threads.to_string()])
        .args(["--provider", &o.provider.to_string()]);
    if let Some(b) = o.batch {
        cmd.args(["--batch", &b.to_string()]);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{}: {}",
            out.status,
            err.lines().last().unwrap_or("")
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("{}");
    serde_json::from_str(line).map_err(|e| format!("child printed {line:?}: {e}"))
}

fn main() {
    let o = Opts::parse();
    if o.child {
        run_child(&o, o.steps[0]);
        return;
    }
    println!(
        "MTT-style distillation iteration on {}: {} images/class, batch {}, {} iteration(s), {} thread(s), {}",
        o.model,
        o.ipc,
        o.batch.map_or("all".into(), |b| b.to_string()),
        o.iters,
        o.threads,
        o.provider
    );
    let ours: Vec<_> = o.steps.iter().map(|&n| (n, run_in_child(&o, n))).collect();
    let torch = torch_times(&o);
    if let Err(e) = &torch {
        println!("(PyTorch side unavailable: {e}; run scripts/setup --dev)");
    }
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>10} {:>10} {:>14} {:>10}",
        "steps",
        "s/iter",
        "unroll s",
        "adjoint s",
        "torch s",
        "ratio",
        "iterates MiB",
        "RSS0 MiB",
        "peak MiB",
        "beyond it. MiB",
        "torch MiB"
    );
    let f = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
    for (n, row) in ours {
        let t = torch
            .as_ref()
            .ok()
            .and_then(|t| t.get(n.to_string()).cloned())
            .unwrap_or_default();
        match row {
            Ok(r) => println!(
                "{n:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.2} {:>11.1} {:>10.1} {:>10.1} {:>14.1} {:>10.1}{}",
                f(&r, "s"),
                f(&r, "unroll_s"),
                f(&r, "adjoint_s"),
                f(&t, "s"),
                f(&r, "s") / f(&t, "s"),
                f(&r, "iterates_mib"),
                f(&r, "rss0_mib"),
                f(&r, "peak_mib"),
                f(&r, "beyond_mib"),
                f(&t, "peak_mib"),
                if r.get("peak_reset").and_then(|b| b.as_bool()) == Some(false) {
                    "  (peak not reset: includes start-up)"
                } else {
                    ""
                }
            ),
            Err(e) => println!("{n:>6} failed: {e}"),
        }
    }
}
