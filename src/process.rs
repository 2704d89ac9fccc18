//! The harness's own process: settings made when it starts, and the CPU time it used.

use std::time::Duration;

/// Transparent huge pages off, as mock-ld's binary does (see there for why).
pub use mock_ld::process::disable_transparent_huge_pages;

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
