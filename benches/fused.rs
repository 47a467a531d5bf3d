//! ddlens's fused-op kernels (src/runtime/kernels) against the ops' own ONNX bodies, which
//! ONNX Runtime inlines when no kernel is registered: the same graph, one session each way,
//! called alternately at the workers' chunk size on one thread (so both see the same machine
//! load), medians side by side. `--threads 2` runs that on two threads at once, each with its
//! own sessions, as ddlens's two workers do.
//!
//!     cargo bench --bench fused -- [--model convnet3-1x28x28] [--batch 8] [--calls 60]
//!         [--roles grad,features_vjp,grad_vjp] [--threads 1] [--baseline DIR]
//!         (--help: every option)
//!
//! `--baseline DIR`: a third column, the same role from another bundle folder (an export from
//! before a fusion, e.g. `git archive` of an older commit's models/), called in the same
//! rotation.

use std::time::Instant;

use clap::Parser;
use ddlens::bundle::resolve_bundle;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};

/// Fused kernels against their ONNX bodies.
#[derive(Parser)]
struct Opts {
    /// Model bundle (a name from models/ or a folder).
    #[arg(long, default_value = "convnet3-1x28x28")]
    model: String,
    /// Images per call (the workers call chunks of 8).
    #[arg(long, default_value_t = 8)]
    batch: i64,
    /// Calls per session (medians are printed).
    #[arg(long, default_value_t = 60)]
    calls: usize,
    /// Roles to time, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "grad,features_vjp,grad_vjp"
    )]
    roles: Vec<String>,
    /// Threads calling side by side, each with its own sessions (as ddlens's workers do).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A folder with an older bundle of the same model, timed with the kernels as a third column.
    #[arg(long)]
    baseline: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Inputs of order 1 for every input of `session` (labels below `classes`).
fn inputs(
    session: &Session,
    batch: i64,
    classes: i64,
) -> Vec<(String, SessionInputValue<'static>)> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut feeds = Vec::new();
    for input in session.inputs() {
        let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
            panic!("{}: not a tensor", input.name())
        };
        let dims: Vec<i64> = shape
            .iter()
            .map(|&d| if d < 0 { batch } else { d })
            .collect();
        let n = dims.iter().product::<i64>() as usize;
        let value: SessionInputValue<'static> = if *ty == TensorElementType::Int64 {
            let v: Vec<i64> = (0..n).map(|_| (next() * classes as f64) as i64).collect();
            Tensor::from_array((dims, v)).unwrap().into()
        } else {
            let v: Vec<f32> = (0..n).map(|_| (next() - 0.5) as f32).collect();
            Tensor::from_array((dims, v)).unwrap().into()
        };
        feeds.push((input.name().to_string(), value));
    }
    feeds
}

fn median_ms(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2] * 1e3
}

/// Per-call times of `path` with kernels, without, and of `base` with kernels, called in
/// rotation on this thread (the first five calls of each are warm-up).
fn time_sessions(
    rt: &ddlens::runtime::Runtime,
    path: &std::path::Path,
    base: Option<&std::path::Path>,
    o: &Opts,
    classes: i64,
) -> Vec<Vec<f64>> {
    let mut sessions = vec![
        rt.load_graph(path, 1).unwrap(),
        rt.load_graph_without_kernels(path, 1).unwrap(),
    ];
    if let Some(base) = base {
        sessions.push(rt.load_graph(base, 1).unwrap());
    }
    let mut times = vec![Vec::new(); sessions.len()];
    for call in 0..o.calls + 5 {
        for (k, s) in sessions.iter_mut().enumerate() {
            let feeds = inputs(s, o.batch, classes);
            let t = Instant::now();
            drop(s.run(feeds).unwrap());
            if call >= 5 {
                times[k].push(t.elapsed().as_secs_f64());
            }
        }
    }
    times
}

fn main() {
    let o = Opts::parse();
    let rt = ddlens::runtime::init(ddlens::runtime::RuntimeConfig {
        threads: Some(1),
        ..Default::default()
    })
    .expect("runtime");
    let dir = resolve_bundle(&o.model).expect("bundle");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let classes = manifest["num_classes"].as_i64().unwrap();
    println!(
        "fused kernels vs their ONNX bodies: {} at batch {}, {} thread(s) side by side (one \
         ONNX Runtime thread each), {} alternating calls each, medians",
        o.model, o.batch, o.threads, o.calls
    );
    println!(
        "{:<14} {:>12} {:>12} {:>8} {:>12} {:>8}",
        "role", "kernels ms", "bodies ms", "ratio", "baseline ms", "ratio"
    );
    for role in &o.roles {
        let path = dir.join(format!("{role}.onnx"));
        let base = o
            .baseline
            .as_ref()
            .map(|b| std::path::Path::new(b).join(format!("{role}.onnx")));
        let per_thread: Vec<Vec<Vec<f64>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..o.threads.max(1))
                .map(|_| scope.spawn(|| time_sessions(rt, &path, base.as_deref(), &o, classes)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut times = vec![Vec::new(); per_thread[0].len()];
        for thread in per_thread {
            for (k, t) in thread.into_iter().enumerate() {
                times[k].extend(t);
            }
        }
        let ms: Vec<f64> = times.into_iter().map(median_ms).collect();
        let base = ms
            .get(2)
            .map_or(String::new(), |b| format!("{b:>12.2} {:>8.2}", ms[0] / b));
        println!(
            "{role:<14} {:>12.2} {:>12.2} {:>8.2} {base}",
            ms[0],
            ms[1],
            ms[0] / ms[1]
        );
    }
}
