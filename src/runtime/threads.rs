//! The threads graph calls run on: one intra-op pool for the whole process, at most one
//! thread per available core.
//!
//! Why one pool: ONNX Runtime gives every session its own intra-op pool by default, and a
//! bundle holds one session per graph role, so a process with two bundles kept ten pools
//! whose threads spun between calls while another pool worked. With the environment's
//! global pool every session shares the same `threads` threads.
//!
//! Why the cap: more threads than cores only adds contention. Measured before the cap (one
//! epoch of `ddlens eval --ipc 1` on 2 cores): 11.8 s at 2 threads, 121 s at 32, and no end
//! at 999.

use ort::environment::GlobalThreadPoolOptions;

use crate::error::{Error, Result};

/// The thread count to use for `requested` threads (`None`: ONNX Runtime's default, one per
/// core), and a warning when the request was capped.
pub(super) fn capped(requested: Option<usize>) -> (Option<usize>, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cap_to(requested, cores)
}

fn cap_to(requested: Option<usize>, cores: usize) -> (Option<usize>, Option<String>) {
    match requested {
        Some(n) if n > cores => (
            Some(cores),
            Some(format!(
                "threads: {n} requested but this machine has {cores} core(s) available; \
                 using {cores} (more threads than cores only slow graph calls down)"
            )),
        ),
        other => (other, None),
    }
}

/// The process-wide intra-op pool: `threads` threads (ONNX Runtime's default when `None`),
/// no inter-op parallelism (the graphs are chains).
pub(super) fn global_pool(threads: Option<usize>) -> Result<GlobalThreadPoolOptions> {
    let ctx = |e: ort::Error| Error::ort("thread pool", e);
    GlobalThreadPoolOptions::default()
        .with_intra_threads(threads.unwrap_or(0))
        .map_err(ctx)?
        .with_inter_threads(1)
        .map_err(ctx)
}

#[cfg(test)]
mod tests {
    use super::cap_to;

    #[test]
    fn requests_above_the_cores_are_capped_with_a_warning() {
        assert_eq!(cap_to(Some(2), 2), (Some(2), None));
        assert_eq!(cap_to(None, 2), (None, None));
        let (n, note) = cap_to(Some(999), 2);
        assert_eq!(n, Some(2));
        let note = note.expect("a warning");
        assert!(
            note.contains("999 requested") && note.contains("using 2"),
            "{note}"
        );
    }
}
