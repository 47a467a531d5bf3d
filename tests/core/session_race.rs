//! The first sessions of a fresh process opened side by side on many threads, with and without
//! the fused kernels, all load. ONNX Runtime adds the kernels' domain to ONNX's process-wide
//! table with an unlocked check-then-insert, so two first sessions created at once could fail
//! ("the domain is already exist"; CI hit it once in the analysis suite). ddlens keeps first
//! sessions apart until the domain is in the table (src/runtime/kernels/domain_table.rs, whose
//! unit tests check the gate on an emulated table with the gap widened; on the real table the
//! gap is microseconds wide and this test seldom falls into it without the gate).
//!
//! The race only exists before the first registration in a process, so the test runs itself
//! again in fresh child processes (this test alone, `DDLENS_SESSION_RACE_CHILD` set).

use std::sync::Barrier;

use crate::common::open;

const CHILD_ENV: &str = "DDLENS_SESSION_RACE_CHILD";

/// Opens a bundle's graphs on 8 threads at once, each thread alternating the kernels on and
/// off, as the first sessions of the process.
fn open_side_by_side() {
    let bundle = open("tiny-1x8x8");
    let paths: Vec<_> = ["grad", "features_vjp", "grad", "features_vjp"]
        .iter()
        .map(|r| bundle.dir().join(format!("{r}.onnx")))
        .collect();
    let rt = ddlens::runtime::get().unwrap();
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (paths, barrier) = (&paths, &barrier);
            s.spawn(move || {
                barrier.wait();
                let path = &paths[t % paths.len()];
                let loaded = if t % 4 == 3 {
                    rt.load_graph_without_kernels(path, 1)
                } else {
                    rt.load_graph(path, 1)
                };
                if let Err(e) = loaded {
                    panic!("thread {t}: {e}");
                }
            });
        }
    });
}

#[test]
fn first_sessions_opened_on_many_threads_at_once_all_load() {
    if std::env::var_os(CHILD_ENV).is_some() {
        open_side_by_side();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for round in 0..4 {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "session_race::first_sessions_opened_on_many_threads_at_once_all_load",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child process {round} failed:\n{text}"
        );
        assert!(
            text.contains("1 passed"),
            "child process {round} ran no test:\n{text}"
        );
    }
}
