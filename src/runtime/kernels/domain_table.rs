//! Keeps the process's first sessions apart until the `ai.ddlens` domain is in ONNX's
//! process-wide domain table.
//!
//! ONNX Runtime adds a custom op domain to that table (`DomainToVersionRange`, one per process)
//! while it creates a session that carries the domain's kernels, checking first whether the
//! domain is there, without a lock around the check and the insert (`CreateCustomRegistry` in
//! onnxruntime/core/session/custom_ops.cc, 1.31). Two such sessions created at once on two
//! threads both find the domain missing, and the second insert fails: "Trying to add a domain
//! to DomainToVersion map, but the domain is already exist". The analysis suite hit this in CI
//! (its tests open bundles on parallel threads), and so could any caller whose workers open
//! graphs side by side. A session without the kernels reads the table while it loads a graph
//! (the fused ops' domain), which must not overlap an insert either.
//!
//! So, until one session with the kernels has been created in this process, a session with them
//! is created alone (a write lock) and a session without them beside other such sessions only
//! (a read lock). Afterwards the table only gets read, and sessions are created freely.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// The gate every session of the process goes through.
static GATE: Gate = Gate::new();

/// Runs `create` (a session's creation; `adds_domain`: the session carries ddlens's kernels)
/// apart from any creation that could insert the domain into ONNX's table at the same time.
pub(crate) fn create_session<T, E>(
    adds_domain: bool,
    create: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    GATE.create(adds_domain, create)
}

/// Whether the domain is in the table yet, and the lock that keeps creations apart until it is.
struct Gate {
    /// A creation that adds the domain has succeeded (the domain is in the table).
    added: AtomicBool,
    /// Write: a creation that may add the domain; read: one that reads the table only.
    table: RwLock<()>,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            added: AtomicBool::new(false),
            table: RwLock::new(()),
        }
    }

    fn create<T, E>(
        &self,
        adds_domain: bool,
        create: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if self.added.load(Ordering::Acquire) {
            return create();
        }
        // A creation that panicked inside ONNX Runtime's call leaves nothing half-done here
        // (the guard only orders creations), so a poisoned lock is taken as it is.
        if adds_domain {
            let _alone = self.table.write().unwrap_or_else(|p| p.into_inner());
            let created = create();
            if created.is_ok() {
                self.added.store(true, Ordering::Release);
            }
            created
        } else {
            let _beside_readers = self.table.read().unwrap_or_else(|p| p.into_inner());
            create()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Barrier;
    use std::time::Duration;

    /// ONNX Runtime's check-then-insert, with the gap between the two widened to 20 ms so that
    /// threads created together all fall into it; readers check that no insert is under way.
    struct Table {
        present: AtomicBool,
        inserting: AtomicUsize,
    }

    impl Table {
        fn add_if_missing(&self) -> Result<(), String> {
            if !self.present.load(Ordering::SeqCst) {
                self.inserting.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                let was = self.present.swap(true, Ordering::SeqCst);
                self.inserting.fetch_sub(1, Ordering::SeqCst);
                if was {
                    return Err("the domain is already exist".into());
                }
            }
            Ok(())
        }

        fn read(&self) -> Result<(), String> {
            std::thread::sleep(Duration::from_millis(5));
            match self.inserting.load(Ordering::SeqCst) {
                0 => Ok(()),
                _ => Err("read during an insert".into()),
            }
        }
    }

    /// 8 threads at once, 6 adding the domain and 2 reading, through `gate` (or not).
    fn race(gate: Option<&Gate>) -> Vec<Result<(), String>> {
        let table = Table {
            present: AtomicBool::new(false),
            inserting: AtomicUsize::new(0),
        };
        let barrier = Barrier::new(8);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (table, barrier) = (&table, &barrier);
                    s.spawn(move || {
                        let adds = t % 4 != 3;
                        let work = || {
                            if adds {
                                table.add_if_missing()
                            } else {
                                table.read()
                            }
                        };
                        barrier.wait();
                        match gate {
                            Some(g) => g.create(adds, work),
                            None => work(),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn without_the_gate_the_emulated_table_fails() {
        // The emulation reproduces the failure, so the test below can tell.
        assert!(race(None).iter().any(|r| r.is_err()));
    }

    #[test]
    fn first_creations_through_the_gate_never_overlap_an_insert() {
        let gate = Gate::new();
        for r in race(Some(&gate)) {
            assert_eq!(r, Ok(()));
        }
        assert!(gate.added.load(Ordering::Acquire));
    }

    #[test]
    fn a_failed_creation_leaves_the_next_one_gated() {
        let gate = Gate::new();
        let failed: Result<(), &str> = gate.create(true, || Err("cannot load"));
        assert!(failed.is_err());
        assert!(!gate.added.load(Ordering::Acquire));
        assert_eq!(gate.create(true, || Ok::<_, ()>(())), Ok(()));
        assert!(gate.added.load(Ordering::Acquire));
    }
}
