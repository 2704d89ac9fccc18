//! Progress while the load runs, on stderr: a bar on a terminal, and elsewhere (a CI log) a
//! line every few seconds with the requests done, their rate, the failures and the p99 so
//! far, so that a long run is never silent.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// How often a CI log gets a progress line.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// Buckets per power of two of [`LiveLatency`]: values fall within 1/16 (6 %) of their
/// bucket's upper edge, plenty for a progress line.
const SUB_BUCKETS: u64 = 16;
/// Every `u64` of microseconds has a bucket.
const BUCKETS: usize = (64 - 3) * SUB_BUCKETS as usize;

/// Request latencies for the progress display, counted without locks. The results use the
/// workers' HDR histograms; this is only what the display reads while the load runs.
pub struct LiveLatency {
    counts: Box<[AtomicU64]>,
}

impl Default for LiveLatency {
    fn default() -> Self {
        LiveLatency {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The bucket of a latency in microseconds: exact below 16 µs, then 16 per power of two.
pub fn bucket(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let exponent = 63 - u64::from(micros.leading_zeros());
    let mantissa = (micros >> (exponent - 4)) & (SUB_BUCKETS - 1);
    ((exponent - 3) * SUB_BUCKETS + mantissa) as usize
}

/// The largest value of a bucket, in microseconds.
fn upper_edge(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB_BUCKETS {
        return b;
    }
    let (exponent, mantissa) = (b / SUB_BUCKETS + 3, b % SUB_BUCKETS);
    // The top bucket's edge is 2^64 - 1: computed wider so it does not overflow.
    let edge = (u128::from(SUB_BUCKETS + mantissa + 1) << (exponent - 4)) - 1;
    u64::try_from(edge).unwrap_or(u64::MAX)
}

impl LiveLatency {
    /// Adds a worker's batch (see [`LocalLatency`]).
    pub fn add(&self, local: &mut LocalLatency) {
        let Some((lo, hi)) = local.touched.take() else {
            return;
        };
        for i in lo..=hi {
            let n = std::mem::take(&mut local.counts[i]);
            if n > 0 {
                self.counts[i].fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
    }

    /// Adds the values of an HDR histogram of microseconds (a worker's second).
    pub fn add_histogram(&self, histogram: &hdrhistogram::Histogram<u64>) {
        for v in histogram.iter_recorded() {
            let b = bucket(v.value_iterated_to());
            self.counts[b].fetch_add(v.count_at_value(), Ordering::Relaxed);
        }
    }

    pub fn record_one(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency at quantile `q` (within 6 %, rounded up), and how many were counted.
    pub fn quantile(&self, q: f64) -> (Option<Duration>, u64) {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return (None, 0);
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (Some(Duration::from_micros(upper_edge(i))), n);
            }
        }
        (None, n)
    }
}

/// A worker's latencies not yet added to [`LiveLatency`]: one shared counter per request
/// would pass cache lines between workers.
pub struct LocalLatency {
    counts: Vec<u32>,
    /// The lowest and highest bucket counted since the last batch.
    touched: Option<(usize, usize)>,
}

impl Default for LocalLatency {
    fn default() -> Self {
        LocalLatency {
            counts: vec![0; BUCKETS],
            touched: None,
        }
    }
}

impl LocalLatency {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let b = bucket(micros);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.touched = Some(match self.touched {
            Some((lo, hi)) => (lo.min(b), hi.max(b)),
            None => (b, b),
        });
    }
}

/// Live counters the progress display reads.
#[derive(Default)]
pub struct Progress {
    /// The closed model's next request; its virtual users take them in turn.
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub failed: AtomicU64,
    /// Corrected request latencies so far, for the progress line's p99.
    pub latency: LiveLatency,
}

impl Progress {
    pub(crate) fn add(&self, finished: u64, failed: u64) {
        self.finished.fetch_add(finished, Ordering::Relaxed);
        if failed > 0 {
            self.failed.fetch_add(failed, Ordering::Relaxed);
        }
    }

    /// One request that finished outside a worker's batch.
    pub(super) fn add_one(&self, failed: bool, latency: Duration) {
        self.latency.record_one(latency);
        self.add(1, u64::from(failed));
    }
}

/// What draws the progress; dropped by [`finish`].
pub enum Display {
    Bar(ProgressBar, JoinHandle<()>),
    Lines(JoinHandle<()>),
}

/// Starts showing the progress of `total` requests: a bar redrawn ten times a second on a
/// terminal, a line every [`LINE_EVERY`] elsewhere.
pub fn spawn(progress: Arc<Progress>, total: u64) -> Display {
    if std::io::stderr().is_terminal() {
        bar(progress, total)
    } else {
        Display::Lines(tokio::spawn(lines(progress, total, LINE_EVERY)))
    }
}

fn bar(progress: Arc<Progress>, total: u64) -> Display {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} requests {per_sec} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            shown.set_position(progress.finished.load(Ordering::Relaxed));
            let failed = progress.failed.load(Ordering::Relaxed);
            if failed > 0 {
                shown.set_message(format!("{failed} failed"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Display::Bar(bar, task)
}

async fn lines(progress: Arc<Progress>, total: u64, every: Duration) {
    let start = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        eprintln!("{}", line(&progress, total, start.elapsed()));
    }
}

/// `progress 10 s: 5321 of 10000 requests (532/s), 12 failed, p99 ≈ 120.0 ms (n = 5321)`.
pub fn line(progress: &Progress, total: u64, elapsed: Duration) -> String {
    let done = progress.finished.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let p99 = match progress.latency.quantile(0.99) {
        (Some(p99), n) => format!(
            "p99 ≈ {:.1} ms (n = {n}, corrected)",
            p99.as_secs_f64() * 1e3
        ),
        (None, _) => "no request finished yet".to_owned(),
    };
    format!(
        "progress {:.0} s: {done} of {total} requests ({rate:.0}/s), {failed} failed, {p99}",
        elapsed.as_secs_f64()
    )
}

pub async fn finish(display: Option<Display>) {
    match display {
        Some(Display::Bar(bar, task)) => {
            task.abort();
            bar.finish_and_clear();
        }
        Some(Display::Lines(task)) => task.abort(),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_16_us_and_within_a_sixteenth_above() {
        for micros in [
            0,
            1,
            15,
            16,
            17,
            31,
            32,
            1000,
            123_456,
            3_600_000_000,
            u64::MAX,
        ] {
            let b = bucket(micros);
            assert!(b < BUCKETS, "{micros}");
            let edge = upper_edge(b);
            assert!(edge >= micros, "{micros} above its edge {edge}");
            assert!(
                (edge - micros) as f64 <= micros as f64 / 16.0 + 1.0,
                "{micros}: edge {edge}"
            );
        }
        for b in 1..BUCKETS {
            assert!(upper_edge(b) > upper_edge(b - 1), "bucket {b}");
        }
    }

    #[test]
    fn quantiles_of_batches_and_single_records() {
        let live = LiveLatency::default();
        let mut local = LocalLatency::default();
        for ms in 1..=99u64 {
            local.record(Duration::from_millis(ms));
        }
        live.add(&mut local);
        assert!(local.touched.is_none() && local.counts.iter().all(|&c| c == 0));
        live.record_one(Duration::from_secs(2));
        let (p99, n) = live.quantile(0.99);
        assert_eq!(n, 100);
        let p99 = p99.unwrap().as_secs_f64() * 1e3;
        assert!((99.0..=99.0 * 1.07).contains(&p99), "{p99}");
        let (max, _) = live.quantile(1.0);
        assert!(max.unwrap() >= Duration::from_secs(2));
        assert_eq!(LiveLatency::default().quantile(0.99), (None, 0));
    }

    #[test]
    fn a_line_has_the_count_rate_failures_and_p99_with_its_n() {
        let progress = Progress::default();
        progress.finished.store(500, Ordering::Relaxed);
        progress.failed.store(3, Ordering::Relaxed);
        progress.latency.record_one(Duration::from_millis(40));
        let line = line(&progress, 1000, Duration::from_secs(10));
        assert!(
            line.starts_with("progress 10 s: 500 of 1000 requests (50/s), 3 failed, p99 ≈ 4"),
            "{line}"
        );
        assert!(line.contains("(n = 1, corrected)"), "{line}");
    }
}
