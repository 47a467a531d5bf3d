//! The threads graph calls run on: a pool of at most one worker per available core, each
//! running whole graph calls on its own, one chunk of a batch at a time (`bundle/chunk.rs`).
//!
//! Why workers over chunks instead of ONNX Runtime's intra-op threads: most ops of the role
//! graphs are elementwise passes over activations (Mul, Add, Where, Expand: 58% of a
//! `grad_vjp` call on ConvNet-3), which two threads share poorly, and every op ends with a
//! barrier. Two single-threaded calls side by side on two chunks keep both cores busy
//! without either. Measured in ONNX Runtime's Python API, ConvNet-3 on 1×28×28, 2-core AMD
//! EPYC, time per 100 images (the same graphs, the same ORT 1.31.1):
//!
//! | role | 2 intra-op threads, chunks of 25 | 2 workers × 1 thread, chunks of 5 | chunks of 10 |
//! |---|---|---|---|
//! | grad_vjp | 1054 ms | 806 ms | 826 ms |
//! | grad | 340 ms | 236 ms | 246 ms |
//! | forward | 81 ms | 61 ms | 63 ms |
//!
//! Two workers each asking a 2-thread pool did worse (grad_vjp 1070 ms): the threads fight.
//! So a session that is called in chunks has no intra-op pool at all (its caller's thread
//! runs it); only a session that must take whole batches (CUDA, batch statistics) gets
//! `threads` intra-op threads, with spinning off so that an idle pool never burns a core.
//!
//! Why the cap: more threads than cores only adds contention. Measured before the cap (one
//! epoch of `ddlens eval --ipc 1` on 2 cores): 11.8 s at 2 threads, 121 s at 32, and no end
//! at 999.

use crate::error::{Error, Result};

/// The thread count to use for `requested` threads (`None`: `SLURM_CPUS_PER_TASK` in a
/// Slurm job that sets it, else one per core), and a warning when the request was capped or
/// the variable unreadable.
pub(super) fn capped(requested: Option<usize>) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        Some(_) => cap_to(requested, cores),
        None => match crate::shard::cpus_per_task(|k| std::env::var(k).ok()) {
            Ok(slurm) => cap_to(slurm, cores),
            Err(e) => (cores, Some(format!("{e}; using {cores} thread(s)"))),
        },
    }
}

fn cap_to(requested: Option<usize>, cores: usize) -> (usize, Option<String>) {
    match requested {
        Some(n) if n > cores => (
            cores,
            Some(format!(
                "threads: {n} requested but this machine has {cores} core(s) available; \
                 using {cores} (more threads than cores only slow graph calls down)"
            )),
        ),
        Some(n) => (n, None),
        None => (cores, None),
    }
}

/// The pool that runs the chunks of one graph call side by side: `threads` workers.
pub(super) fn workers(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ddlens-graph-{i}"))
        .build()
        .map_err(|e| {
            Error::invalid(
                "threads",
                format!("cannot start {threads} worker threads: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::cap_to;

    #[test]
    fn requests_above_the_cores_are_capped_with_a_warning() {
        assert_eq!(cap_to(Some(2), 2), (2, None));
        assert_eq!(cap_to(Some(1), 2), (1, None));
        assert_eq!(cap_to(None, 2), (2, None));
        let (n, note) = cap_to(Some(999), 2);
        assert_eq!(n, 2);
        let note = note.expect("a warning");
        assert!(
            note.contains("999 requested") && note.contains("using 2"),
            "{note}"
        );
    }
}
