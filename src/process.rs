//! The harness's own process: settings made when it starts, and the CPU time it used.

use std::time::Duration;

/// Stops transparent huge pages for this process. mimalloc backs its memory with 2 MiB
/// huge pages where it can, and the SDK's event buffers are allocated and freed by the
/// megabyte at every flush: with huge pages, far more stays resident than is in use
/// (`cargo bench --bench harness -- scale`, 100,000 contexts: peak RSS 270 MB with them,
/// 191 MB without, at the same speed).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "transparent huge pages stay on");
    }
}

/// CPU time this process has used so far, user and system, all threads; `None` where it
/// cannot be read.
pub fn cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::resource::{getrusage, UsageWho};
        let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        Some(micros(usage.user_time()) + micros(usage.system_time()))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time().expect("getrusage works on Linux");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(cpu_time().unwrap() > before, "{x}");
    }
}
