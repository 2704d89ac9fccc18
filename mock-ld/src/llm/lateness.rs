//! The simulator's own lateness: how long after its planned time each answer's first token
//! and last chunk were handed to hyper.
//!
//! The simulator shares a process (and, embedded, a runtime) with whatever drives it, so a
//! busy machine delays its timers and its writes. Without this, that delay would pass for
//! the simulated model's latency. One pair of HDR histograms per simulator, not per model:
//! bounded whatever model names clients send (microseconds to an hour, 3 significant
//! digits: at most about 190 KB each).

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

/// Lateness past an hour is counted as an hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// Which moment of an answer a lateness is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A stream's first content chunk; a whole (or error) answer's one response.
    FirstToken,
    /// A stream's `[DONE]`; a whole (or error) answer's one response.
    LastChunk,
}

pub struct Lateness {
    histograms: Mutex<[Histogram<u64>; 2]>,
}

/// Lateness in milliseconds with its n, and the histogram of microseconds: the shape of
/// the harness's `LatencySummary`, so a run can read it (and subtract an earlier read) as
/// it reads its own latencies.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatenessSummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// HdrHistogram V2-deflate, base64 ([`crate::hdr`]).
    pub hdr: String,
}

/// `GET /admin/llm/lateness`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatenessReport {
    pub first_token: LatenessSummary,
    pub last_chunk: LatenessSummary,
}

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            histograms: Mutex::new([empty(), empty()]),
        }
    }
}

fn empty() -> Histogram<u64> {
    let mut h = Histogram::new(3).expect("3 significant digits are valid");
    h.auto(true);
    h
}

impl Lateness {
    /// Records that `mark` went out at `sent`, planned for `planned`; early counts as 0
    /// (tokio's timers never fire early, so it would be a clock quirk).
    pub fn record(&self, mark: Mark, planned: Instant, sent: Instant) {
        let late = sent.saturating_duration_since(planned);
        let micros = (late.as_micros() as u64).min(MAX_MICROS);
        let index = match mark {
            Mark::FirstToken => 0,
            Mark::LastChunk => 1,
        };
        let mut histograms = self.histograms.lock().expect("lateness lock");
        histograms[index]
            .record(micros)
            .expect("auto-resizing and clamped to an hour");
    }

    pub fn report(&self) -> LatenessReport {
        let histograms = self.histograms.lock().expect("lateness lock");
        LatenessReport {
            first_token: summary(&histograms[0]),
            last_chunk: summary(&histograms[1]),
        }
    }

    pub fn reset(&self) {
        let mut histograms = self.histograms.lock().expect("lateness lock");
        histograms.iter_mut().for_each(Histogram::reset);
    }
}

fn summary(h: &Histogram<u64>) -> LatenessSummary {
    let ms = |micros: u64| Duration::from_micros(micros).as_secs_f64() * 1e3;
    let at = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_quantile(q))
        }
    };
    LatenessSummary {
        count: h.len(),
        min_ms: if h.is_empty() { 0.0 } else { ms(h.min()) },
        mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
        hdr: crate::hdr::encode(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_sent_minus_planned_per_mark_and_early_is_zero() {
        let lateness = Lateness::default();
        let planned = Instant::now();
        lateness.record(
            Mark::FirstToken,
            planned,
            planned + Duration::from_millis(3),
        );
        lateness.record(Mark::LastChunk, planned + Duration::from_millis(1), planned);
        lateness.record(
            Mark::LastChunk,
            planned,
            planned + Duration::from_secs(7200),
        );
        let report = lateness.report();
        assert_eq!(report.first_token.count, 1);
        assert!((report.first_token.p50_ms - 3.0).abs() < 0.01, "{report:?}");
        assert_eq!(report.last_chunk.count, 2);
        assert_eq!(report.last_chunk.min_ms, 0.0);
        assert!((report.last_chunk.max_ms - 3_600_000.0).abs() < 3_600.0);
        lateness.reset();
        assert_eq!(lateness.report().first_token.count, 0);
    }
}
