//! The simulator's own lateness: how long after its planned time each answer's first token
//! and last chunk were handed to hyper.
//!
//! The simulator shares a process (and, embedded, a runtime) with whatever drives it, so a
//! busy machine delays its timers and its writes. Without this, that delay would pass for
//! the simulated model's latency. One pair of HDR histograms per simulator, not per model:
//! bounded whatever model names clients send (microseconds to an hour, 3 significant
//! digits: at most about 190 KB each).

use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::hdr::{empty_histogram, LatencySummary, MAX_MICROS};

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

/// `GET /admin/llm/lateness`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatenessReport {
    pub first_token: LatencySummary,
    pub last_chunk: LatencySummary,
}

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            histograms: Mutex::new([empty_histogram(), empty_histogram()]),
        }
    }
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
            first_token: LatencySummary::of(&histograms[0]),
            last_chunk: LatencySummary::of(&histograms[1]),
        }
    }

    pub fn reset(&self) {
        let mut histograms = self.histograms.lock().expect("lateness lock");
        histograms.iter_mut().for_each(Histogram::reset);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
