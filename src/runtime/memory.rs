//! The process's peak resident memory, resettable, so that a job can report the peak of each
//! of its stages (the suite records it per analysis). Linux only: elsewhere nothing is
//! measured.

/// The peak resident set size of the process since it started or since the last
/// [`reset_peak_rss`], in bytes (`VmHWM` in `/proc/self/status`); `None` where unknown.
pub fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// The process's resident set size now, in bytes (`VmRSS`); `None` where unknown.
pub fn current_rss() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak that [`peak_rss`] reports to the current resident size (writing `5` to
/// `/proc/self/clear_refs`, Linux 4.0 and later). Returns whether it was reset.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{peak_rss, reset_peak_rss};

    #[test]
    fn the_peak_follows_a_large_allocation_and_resets() {
        assert!(reset_peak_rss());
        let before = peak_rss().expect("VmHWM");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let with = peak_rss().unwrap();
        assert!(with >= before + (60 << 20), "{before} -> {with}");
        drop(big);
        assert!(reset_peak_rss());
        let after = peak_rss().unwrap();
        assert!(
            after < with,
            "the reset peak {after} should be below {with}"
        );
    }
}
