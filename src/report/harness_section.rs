//! The load generator's own figures (`results::harness`), as the same lines in every
//! report: its lag with n, its CPU, the machine's pressure, and whether it kept up.

use super::format::ms;
use crate::results::harness::HarnessHealth;
use crate::results::LatencySummary;

/// The section's title in Markdown and HTML.
pub const TITLE: &str = "Load generator";

/// One line per figure, then the judgement.
pub fn lines(h: &HarnessHealth) -> Vec<String> {
    let mut lines = vec![format!(
        "lag probe (every {} ms, coordinated-omission corrected): {}",
        h.probe_interval_ms,
        lag(&h.lag_probe)
    )];
    if let Some(s) = &h.worker_lag_probe {
        lines.push(format!(
            "worker lag probe (the SDK workers' event loops, every {} ms, corrected): {}",
            h.probe_interval_ms,
            lag(s)
        ));
    }
    if let Some(s) = &h.schedule_lag {
        lines.push(format!(
            "schedule lag (open model, the harness's own delay): {}",
            lag(s)
        ));
    }
    if h.worker_processes > 0 && h.worker_processes + 1 > h.cores {
        lines.push(format!(
            "{} SDK worker processes and the harness share {} cores: they compete for the CPU (the lag probes say whether that delayed the load)",
            h.worker_processes, h.cores
        ));
    }
    if let (Some(cpu), Some(share)) = (h.cpu_seconds, h.cpu_share) {
        lines.push(format!(
            "harness CPU {cpu:.1} s (workers included), {:.1} % of {} cores over the load",
            share * 100.0,
            h.cores
        ));
    }
    lines.push(match &h.pressure {
        Some(p) => format!(
            "machine pressure over the load (share of time stalled, /proc/pressure): CPU {:.1} %, memory {:.1} % (full {:.1} %), I/O {:.1} % (full {:.1} %)",
            p.cpu_some * 100.0,
            p.memory_some * 100.0,
            p.memory_full * 100.0,
            p.io_some * 100.0,
            p.io_full * 100.0
        ),
        None => "machine pressure: not available (no /proc/pressure)".to_owned(),
    });
    lines.push(judgement(h));
    lines
}

/// `n = 6,012: p50 0.31 ms, p99 1.20 ms, max 4.10 ms`.
fn lag(s: &LatencySummary) -> String {
    if s.count == 0 {
        return "n = 0".to_owned();
    }
    format!(
        "n = {}: p50 {} ms, p99 {} ms, max {} ms",
        s.count,
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.max_ms)
    )
}

fn judgement(h: &HarnessHealth) -> String {
    let b = &h.bounds;
    let bounds = format!(
        "lag p99 ≤ {} ms, CPU ≤ {:.0} %, pressure CPU ≤ {:.0} %, memory ≤ {:.0} %, I/O ≤ {:.0} % ([load.overload])",
        b.lag_p99_ms,
        b.cpu_share * 100.0,
        b.cpu_pressure * 100.0,
        b.memory_pressure * 100.0,
        b.io_pressure * 100.0
    );
    match h.overload_note() {
        Some(note) => format!(
            "OVERLOADED: {note}; latency and throughput checks and comparisons are inconclusive (bounds: {bounds})"
        ),
        None => format!("kept up (bounds: {bounds})"),
    }
}
