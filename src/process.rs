//! Settings the harness makes for its whole process when it starts.

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
