//! Settings a server process makes when it starts: mock-ld's binary, and the harness's.

/// Stops transparent huge pages for this process. mimalloc backs its memory with 2 MiB
/// huge pages where it can; memory allocated and freed by the megabyte (the harness's SDK
/// event buffers, mock-ld's per-stream and per-payload buffers) then keeps far more resident
/// than is in use (`cargo bench --bench harness -- scale`, 100,000 contexts: peak RSS
/// 270 MB with them, 191 MB without, at the same speed).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "transparent huge pages stay on");
    }
}

/// Raises the soft limit on open files to the hard limit: every SSE stream and every SDK
/// connection is a descriptor, and the usual soft default (1,024) would refuse the
/// thousands of streams a load test opens.
pub fn raise_open_file_limit() {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard {
                if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                    tracing::debug!(error = %e, "the open-file limit stays at {soft}");
                }
            }
        }
    }
}
