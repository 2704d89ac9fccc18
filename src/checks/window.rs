//! Windowed thresholds: the worst window of the per-second timeline must pass.
//!
//! Windows slide by one second, so an incident is judged whole however it falls: tumbling
//! windows would split a 4 s slowdown across two 10 s windows and dilute it in both. A
//! window is judged only when it holds at least `min_samples` samples (requests for
//! `requests.*`, LLM calls for `llm.*` and `error_rate`), since the p99 of a handful of
//! requests is one request. Throughput has no samples to wait for: every whole window of
//! complete seconds is judged. Each window is the one before it plus its new second minus its
//! old one, so judging every window costs two histogram operations per second of the run.
//!
//! Requests are in the second they were scheduled to start, with their LLM calls and their
//! evaluations (the fallback served among them); throughput counts requests in the second
//! they completed. With `from`, windows that start earlier are not judged (a planned
//! start-up incident is left out, the seconds after it judged).

use hdrhistogram::Histogram;

use crate::metrics::Second;
use crate::scenario::checks::{Limit, Metric, Series, Stat, Window};

/// The worst window, and how many were judged.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowReading {
    pub worst: Option<Worst>,
    /// Windows that had enough samples.
    pub judged: usize,
    /// The most samples any window had (why none was judged).
    pub most_samples: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    pub value: f64,
    /// Its first second, counted from the start of the load.
    pub start_second: usize,
    pub samples: u64,
}

/// The value of `metric` over `s` (seconds merged), which spans `span_secs` seconds, and
/// the samples behind it; `None` for what the timeline does not record.
pub fn value(metric: Metric, s: &Second, span_secs: f64) -> (Option<f64>, u64) {
    match metric {
        Metric::Latency(Series::Requests, stat) => {
            (stat_ms(s.latency.histogram(), stat), s.latency.count())
        }
        Metric::Latency(Series::Llm, stat) => (stat_ms(s.llm.histogram(), stat), s.llm.count()),
        Metric::ErrorRate => {
            let calls = s.llm.count();
            (
                (calls > 0).then(|| s.llm_errors as f64 / calls as f64),
                calls,
            )
        }
        Metric::Throughput => (
            (span_secs > 0.0).then(|| s.completed as f64 / span_secs),
            s.completed,
        ),
        Metric::FallbackServed => (
            (s.evaluations > 0).then_some(s.fallback_served as f64),
            s.evaluations,
        ),
        Metric::FallbackServedRate => (
            (s.evaluations > 0).then(|| s.fallback_served as f64 / s.evaluations as f64),
            s.evaluations,
        ),
        _ => (None, 0),
    }
}

/// A statistic of a histogram of microseconds, in milliseconds; `None` when it is empty.
pub fn stat_ms(h: &Histogram<u64>, stat: Stat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let micros = match stat {
        Stat::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
        Stat::Min => h.min() as f64,
        Stat::Max => h.max() as f64,
        Stat::Mean => h.mean(),
    };
    Some(micros / 1000.0)
}

/// The worst window of `window.seconds` over `timeline`, of which the first `complete`
/// seconds are over (throughput judges only those). A timeline shorter than the window is
/// one window, except for throughput.
pub fn worst(
    timeline: &[Second],
    complete: usize,
    metric: Metric,
    window: Window,
    limit: Limit,
) -> WindowReading {
    let throughput = metric == Metric::Throughput;
    let span = window.seconds as usize;
    let seconds = if throughput {
        &timeline[..complete.min(timeline.len())]
    } else {
        timeline
    };
    // Throughput windows must lie within the run; a second with nothing completed is still
    // a second of the run.
    let len = if throughput { complete } else { seconds.len() };
    let mut reading = WindowReading {
        worst: None,
        judged: 0,
        most_samples: 0,
    };
    if len == 0 || (throughput && len < span) {
        return reading;
    }
    let last_start = len.saturating_sub(span);
    let mut sum = Second::default();
    for s in seconds.iter().take(span.min(len)) {
        sum.add(s);
    }
    for start in 0..=last_start {
        // The window still slides from 0, so that the sums stay right; earlier ones are
        // only not judged.
        let judged = start as u64 >= window.from;
        if start > 0 {
            if let Some(s) = seconds.get(start - 1) {
                sum.subtract(s);
            }
            if let Some(s) = seconds.get(start + span - 1) {
                sum.add(s);
            }
        }
        if !judged {
            continue;
        }
        let (value, samples) = value(metric, &sum, span.min(len) as f64);
        reading.most_samples = reading.most_samples.max(samples);
        let Some(value) = value.filter(|_| throughput || samples >= window.min_samples) else {
            continue;
        };
        reading.judged += 1;
        let worse = match &reading.worst {
            None => true,
            Some(w) => limit.worse(value, w.value) != w.value,
        };
        if worse {
            reading.worst = Some(Worst {
                value,
                start_second: start,
                samples,
            });
        }
    }
    reading
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::checks::Bound;

    /// `n` requests of `ms` each scheduled in every second, completing in the same second.
    fn timeline(seconds: &[(u64, u64)]) -> Vec<Second> {
        seconds
            .iter()
            .map(|&(n, ms)| {
                let mut s = Second::default();
                for _ in 0..n {
                    s.requests += 1;
                    s.completed += 1;
                    s.latency.record(Duration::from_millis(ms));
                    s.llm.record(Duration::from_millis(ms));
                }
                s
            })
            .collect()
    }

    fn p99(series: Series) -> Metric {
        Metric::Latency(series, Stat::Percentile(99.0))
    }

    const MAX: Limit = Limit {
        bound: Bound::Max,
        value: 500.0,
    };

    #[test]
    fn from_leaves_out_the_windows_before_it_and_the_fallback_is_counted() {
        // The fallback in seconds 0-2 (a start-up fault), none after.
        let t: Vec<Second> = (0..10)
            .map(|i| Second {
                evaluations: 20,
                fallback_served: if i < 3 { 20 } else { 0 },
                ..Second::default()
            })
            .collect();
        let zero = Limit {
            bound: Bound::Max,
            value: 0.0,
        };
        let w = |from| Window {
            seconds: 2,
            min_samples: 40,
            from,
        };
        let all = worst(&t, t.len(), Metric::FallbackServedRate, w(0), zero);
        assert_eq!(all.judged, 9);
        assert_eq!(
            all.worst.as_ref().map(|w| (w.value, w.start_second)),
            Some((1.0, 0))
        );
        let later = worst(&t, t.len(), Metric::FallbackServedRate, w(3), zero);
        assert_eq!(later.judged, 6);
        assert_eq!(later.worst.map(|w| w.value), Some(0.0));
        let count = worst(&t, t.len(), Metric::FallbackServed, w(2), zero);
        assert_eq!(count.worst.map(|w| (w.value, w.samples)), Some((20.0, 40)));
    }

    #[test]
    fn the_worst_sliding_window_is_found_where_it_starts() {
        // A slow second 5 among fast ones: every 3 s window holding it is slow.
        let mut seconds = vec![(100, 10); 10];
        seconds[5] = (100, 2000);
        let t = timeline(&seconds);
        let w = Window {
            seconds: 3,
            min_samples: 100,
            from: 0,
        };
        let r = worst(&t, t.len(), p99(Series::Llm), w, MAX);
        assert_eq!(r.judged, 8);
        let found = r.worst.unwrap();
        assert!((found.value - 2000.0).abs() < 20.0, "{found:?}");
        assert_eq!((found.start_second, found.samples), (3, 300));
        // A one-second window sees the slow second alone.
        let w1 = Window {
            seconds: 1,
            min_samples: 100,
            from: 0,
        };
        let r = worst(&t, t.len(), p99(Series::Requests), w1, MAX);
        assert_eq!(r.worst.unwrap().start_second, 5);
    }

    #[test]
    fn windows_below_min_samples_are_skipped_and_none_left_is_inconclusive() {
        let t = timeline(&[(50, 10), (5, 3000), (50, 10)]);
        let w = Window {
            seconds: 1,
            min_samples: 40,
            from: 0,
        };
        let r = worst(&t, 3, p99(Series::Requests), w, MAX);
        assert_eq!(r.judged, 2);
        assert!(r.worst.unwrap().value < 20.0);
        let w = Window {
            seconds: 1,
            min_samples: 60,
            from: 0,
        };
        let r = worst(&t, 3, p99(Series::Requests), w, MAX);
        assert_eq!((r.worst, r.judged, r.most_samples), (None, 0, 50));
        // A run shorter than the window is one window.
        let w = Window {
            seconds: 10,
            min_samples: 100,
            from: 0,
        };
        let r = worst(&t, 3, p99(Series::Requests), w, MAX);
        assert_eq!((r.judged, r.worst.unwrap().samples), (1, 105));
    }

    #[test]
    fn throughput_takes_the_lowest_complete_window() {
        let t = timeline(&[
            (100, 1),
            (100, 1),
            (0, 1),
            (10, 1),
            (100, 1),
            (100, 1),
            (3, 1),
        ]);
        let min = Limit {
            bound: Bound::Min,
            value: 50.0,
        };
        let w = Window {
            seconds: 2,
            min_samples: 100,
            from: 0,
        };
        // The seventh second is still running.
        let r = worst(&t, 6, Metric::Throughput, w, min);
        assert_eq!(r.judged, 5);
        let found = r.worst.unwrap();
        assert_eq!((found.value, found.start_second), (5.0, 2));
        assert_eq!(worst(&t, 1, Metric::Throughput, w, min).worst, None);
    }

    #[test]
    fn error_rates_are_per_llm_call() {
        let mut t = timeline(&[(100, 1), (100, 1)]);
        t[1].llm_errors = 10;
        let w = Window {
            seconds: 1,
            min_samples: 1,
            from: 0,
        };
        let r = worst(&t, 2, Metric::ErrorRate, w, Limit::max(0.05));
        assert_eq!(r.worst.unwrap().value, 0.1);
    }
}
