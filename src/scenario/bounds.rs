//! The largest values a scenario may ask for, each in one place with why. `validate` (and
//! so `run`, which loads the same way) refuses anything past them, naming the field and,
//! where memory is the reason, what the run would need.
//!
//! Per-unit memory figures were measured with the debug binary's peak RSS (`/usr/bin/time
//! -f %M`) on a one-variation scenario with `time_scale = 0`, differences between two runs:
//! 1,000 and 10 virtual users (321 and 220 MB, 20,000 requests); an open run of 45 s and 5 s
//! at 200 requests/s (138 and 128 MB); event capacity 1,000,000 and 1,000 (633 and 75 MB);
//! 20 SDK clients and 1 (113 and 75 MB). They are rough, and they are what the messages
//! quote.

use std::time::Duration;

const KB: u64 = 1_000;
const MB: u64 = 1_000_000;

/// Closed model: one virtual user is a tokio task and its connection to the LLM endpoint
/// (both ends, since mock-ld is in the process); users share a few recorders per thread:
/// measured about 100 KB each.
pub const MAX_CONCURRENCY: u64 = 1_000;
pub const BYTES_PER_VIRTUAL_USER: u64 = 100 * KB;

/// Each SDK client is about six threads, a stream connection and its event buffers:
/// measured about 2 MB each with a capacity of 1,000. The process's address space also
/// grows by the threads' stacks, so a few dozen is the useful range.
pub const MAX_SDK_CLIENTS: u64 = 64;
pub const BYTES_PER_SDK_CLIENT: u64 = 2 * MB;

/// Worker processes of the Python or Node SDK: an interpreter, the SDK's threads and its
/// event buffers each, measured 60–90 MB for Python and Node at a capacity of 10,000.
pub const MAX_WORKERS: u64 = 64;
pub const BYTES_PER_WORKER: u64 = 100 * MB;

/// Contexts run again through the Rust SDK for the parity check, after the load: each is
/// a request of the scenario's steps, and its events are compared one by one.
pub const MAX_PARITY_SAMPLE: u64 = 10_000;

/// The Rust SDK allocates its event inbox and outbox at full capacity (and a payload of
/// that capacity at each flush): measured about 560 bytes per slot per client.
pub const MAX_EVENTS_CAPACITY: u64 = 1_000_000;
pub const BYTES_PER_EVENT_SLOT: u64 = 560;

/// Open model: slots are permits, free until used; each request in flight is then a task
/// with its boxed LLM call and a connection (an estimate, not measured: about 16 KB).
pub const MAX_IN_FLIGHT: u64 = 100_000;
pub const BYTES_PER_REQUEST_IN_FLIGHT: u64 = 16 * KB;

/// Open model: the run's timeline keeps two 2-digit latency histograms per second (at most
/// 26 KB each, less while latencies stay short), and mock-ld stores the events the second
/// brought (within its byte bound): measured about 250 KB per second at 200 requests/s.
pub const MAX_OPEN_DURATION: Duration = Duration::from_secs(4 * 3600);
pub const BYTES_PER_OPEN_SECOND: u64 = 250 * KB;

/// Requests in all (`iterations`, `rate` × `duration`, the stages, or one per context):
/// requests cost no memory, but time: at the ~110,000 evaluations/s the harness reaches
/// (BENCHMARKS.md), 10^8 take a quarter of an hour; beyond that a run is a mistake.
pub const MAX_REQUESTS: u64 = 100_000_000;

/// Contexts are generated lazily (SplitMix64 per index) and the served log stops recording
/// above 2,000,000 (2 bytes per context and AI Config), so a population costs little;
/// more contexts than the run could ever request is a typo.
pub const MAX_POPULATION: u64 = MAX_REQUESTS;

/// Requests per second: about ten times what the harness reaches; above that every request
/// simply starts late.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Any other duration (actions' `at` and `for`, `stall_after`, abort delays): a day is
/// longer than any load the bounds above allow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `[[faults]]`: each is a task and two admin calls; mock-ld holds at most 256 on at once
/// (shared with whoever else uses it), and a timeline of more than a few dozen is a typo.
pub const MAX_FAULTS: usize = 64;

/// `[[restarts]]`: each stops and starts mock-ld, replaying its journals; more than a few
/// in one run is a typo.
pub const MAX_RESTARTS: usize = 16;

/// A step's `on_error.retries`: each retry is another call and its tracker events; ten
/// is past what any client library retries by default (OpenAI's SDKs: 2).
pub const MAX_RETRIES: u32 = 10;

/// A step's `on_error.backoff` and `max_retry_after`, and any one wait between retries
/// (the doubled backoff stops growing here): a request held longer than a minute per
/// retry is a typo, and the waits are wall-clock time.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// `load.init_timeout`: the longest the run waits for an SDK client before the load
/// (LaunchDarkly recommends blocking no longer than 60 s; the Rust SDK warns past it).
pub const MAX_INIT_TIMEOUT: Duration = Duration::from_secs(300);

/// `flush_interval`: above 0 (0 would flush in a busy loop) and at most an hour.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(3600);

/// `time_scale` and an `llm` action's `latency_factor`: 1,000 turns a 4 s call into more
/// than an hour.
pub const MAX_TIME_SCALE: f64 = 1_000.0;

/// A simulated call's p99 (times `time_scale`): the latency histograms stop at an hour.
pub const MAX_LLM_LATENCY: Duration = Duration::from_secs(3600);

/// Output tokens (p99): what mock-ld writes at most in one reply (see there for why).
pub const MAX_OUTPUT_TOKENS: f64 = mock_ld::llm::MAX_OUTPUT_TOKENS as f64;

/// USD per million tokens: a thousand times today's dearest list price.
pub const MAX_PRICE: f64 = 100_000.0;

/// `1.9 GB`, `12 TB`: a byte count as people read it.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `12,345`: a count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The memory `n` units of `per` bytes need, as a phrase.
pub fn need(n: f64, per: u64) -> String {
    bytes(n * per as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(bytes(512.0), "512 bytes");
        assert_eq!(bytes(1_930_000_000.0), "1.9 GB");
        assert_eq!(need(4_294_967_297.0, BYTES_PER_VIRTUAL_USER), "429 TB");
        assert_eq!(count(4_294_967_297), "4,294,967,297");
        assert_eq!(count(100), "100");
    }
}
