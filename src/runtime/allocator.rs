//! The process allocator's settings for long graph workloads.
//!
//! With ONNX Runtime's CPU arena off (`provider.rs` says why), every graph call mallocs its
//! activations afresh. glibc serves blocks above its mmap threshold (at most 32 MB, adjusted
//! upwards as large blocks are freed) with `mmap` and returns them with `munmap`, and gives
//! the top of the heap back once more than 128 KB of it is free; the next call then faults
//! every page in again and the kernel clears it. Measured with `perf` on the curvature
//! analysis (ConvNet-3, Hessian-vector products at batch 128, 1 thread): half of the CPU time
//! was in the kernel (`clear_page_erms`, page faults). Keeping freed memory in the heap:
//!
//! | curvature, 2 steps × 6 probes on 256 real images, 1 thread | wall | peak RSS |
//! |---|---|---|
//! | glibc defaults, arena off | 125 s | 1.62 GB |
//! | [`keep_freed_memory`], arena off | 75 s | 1.82 GB |
//! | glibc defaults, arena on (`DDLENS_CPU_ARENA=1`) | 84 s | 2.50 GB |
//!
//! The setting is process-wide, so the library never makes it behind its caller's back: the
//! `ddlens` command line calls [`keep_freed_memory`] at start, and an application that runs
//! long ddlens jobs in its own process may do the same.

/// Environment variable that keeps glibc's default allocator settings in the `ddlens` command
/// line (`DDLENS_MALLOC=default`).
pub const MALLOC_ENV: &str = "DDLENS_MALLOC";

/// Blocks up to this size (the largest `mallopt` takes) come from the heap.
const HEAP_UP_TO: i32 = i32::MAX;

/// `M_TRIM_THRESHOLD` of −1: never give the top of the heap back (man 3 mallopt). A 1 GB
/// threshold was 25% slower on the measurement above: the scratch of one Hessian-vector
/// product at batch 128 frees more than that at once.
const NEVER_TRIM: i32 = -1;

/// Makes glibc keep freed memory for reuse instead of returning it to the kernel after every
/// graph call (see the module documentation for the measurements). Returns whether the
/// settings were applied: `false` off glibc, or when the allocator refused them.
pub fn keep_freed_memory() -> bool {
    imp::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub(super) fn keep_freed_memory() -> bool {
        // SAFETY: mallopt only changes the allocator's thresholds; it is thread-safe and
        // affects no live allocation.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, super::HEAP_UP_TO) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, super::NEVER_TRIM) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn keep_freed_memory() -> bool {
        false
    }
}
