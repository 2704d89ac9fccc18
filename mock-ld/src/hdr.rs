//! HDR histograms as they travel in JSON: HdrHistogram V2-deflate, base64, and the
//! [`LatencySummary`] that carries one with its percentiles. mock-ld writes its event
//! delivery latencies and its simulator's lateness this way and the harness reads them back,
//! and writes its own latencies the same way into results and baselines: one encoding and
//! one summary, defined here.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, to 3 significant digits.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// An empty histogram of microseconds, 3 significant digits, that grows to the largest value
/// recorded or merged into it. Allocated for the whole hour it would take 188 KB; a run keeps
/// several per variation and shard, and most hold only milliseconds (an evaluation's
/// microseconds need 16 KB). Every histogram read back from results grows the same way, so
/// any two merge.
pub fn empty_histogram() -> Histogram<u64> {
    growing(Histogram::new(3).expect("3 significant digits are valid"))
}

/// `h`, set to grow on recording or merging a value beyond its range. Values are clamped to
/// [`MAX_MICROS`] before recording, so it grows to at most the full hour.
pub fn growing<T: hdrhistogram::Counter>(mut h: Histogram<T>) -> Histogram<T> {
    h.auto(true);
    h
}

/// A latency in milliseconds with its sample count, and the histogram of microseconds
/// itself, so that baselines compare distributions and reports merge them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Samples behind every figure below: a p99 of a handful of samples is not a p99.
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The histogram of microseconds, HdrHistogram V2-deflate, base64 (`mock_ld::hdr::encode`).
    pub hdr: String,
}

/// A latency histogram (`hdr`) that is not HdrHistogram V2-deflate base64.
#[derive(Debug, thiserror::Error)]
#[error("a latency histogram (`hdr`) is not HdrHistogram V2-deflate base64: {0}")]
pub struct HistogramError(pub String);

impl LatencySummary {
    /// Percentiles in milliseconds of a histogram of microseconds, and the histogram itself.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        LatencySummary {
            count: h.len(),
            min_ms: if h.is_empty() { 0.0 } else { ms(h.min()) },
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            hdr: encode(h),
        }
    }

    /// The histogram, decoded; it grows like [`empty_histogram`], so it merges with any other.
    pub fn histogram(&self) -> Result<Histogram<u64>, HistogramError> {
        if self.count == 0 && self.hdr.is_empty() {
            return Ok(empty_histogram());
        }
        decode(&self.hdr).map(growing).map_err(HistogramError)
    }
}

/// `h` as HdrHistogram V2-deflate, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("writing to a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The histogram `encoded` holds, or why it holds none.
pub fn decode(encoded: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| e.to_string())?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_to_three_digits_and_the_histogram_round_trips() {
        let mut h = empty_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() <= 0.5, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() <= 1.0, "{s:?}");
        let back = s.histogram().unwrap();
        assert_eq!(back.len(), 1000);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }

    #[test]
    fn a_histogram_round_trips() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.auto(true);
        for v in [0, 1, 999, 1_000_000, 3_600_000_000] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), h.max());
        assert!(decode("not base64!").is_err());
        assert!(decode("AAAA").is_err());
    }
}
