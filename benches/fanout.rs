//! SSE fan-out: how long one flag change takes to reach every open `/all` stream, and what
//! each open stream costs mock-ld in memory.
//!
//! Runs the `mock-ld` binary as a child process on 127.0.0.1 (port 0), so its RSS and CPU are
//! its own. Part 1 opens many `/all` streams with a minimal raw HTTP/1.1 client (one tokio
//! task per connection, incremental de-chunking, no per-frame allocation beyond the read
//! buffer) and times each `patch` from just before the admin `PUT` to the moment the frame's
//! last byte was read. Part 2 does the same with real Rust SDK clients
//! (`aiconfig_harness::ld_client::start_client`), timing until each client's
//! `json_variation` returns the new value.
//!
//! `cargo bench --bench fanout`: 1,000 streams × 20 changes, then 50 SDK clients × 20
//! changes; `-- --streams 10000` opens that many streams instead (at most 20,000; each costs
//! the bench a task and a socket, and the machine a file descriptor on each side). Without `--bench` (as `cargo test --benches` runs it) or with `--test`: 20 streams
//! × 2 changes and 5 clients × 2 changes. The binary stops by itself.
//!
//! The mock-ld binary is taken from the target directory of this bench's own profile
//! (`target/release` for `cargo bench`, `target/debug` for `cargo test`); the bench first runs
//! `cargo build -p mock-ld --bin mock-ld` for that profile so the binary is current (if that
//! build fails, an existing binary is used with a warning). `FANOUT_MOCK_LD=/path/to/mock-ld`
//! runs that binary instead, without building (to compare two builds).
//!
//! mock-ld uses mimalloc, which asks for transparent huge pages: its RSS then grows in 2 MiB
//! steps, so the per-stream RSS includes partly used huge pages (the AnonHugePages figure
//! shows how much). `MIMALLOC_ALLOW_THP=0` in the environment (inherited by the child) turns
//! that off for a finer per-stream figure.
//!
//! The child process, the `/proc` readings and the stream client are `benches/common`,
//! shared with `benches/soak.rs`. Only 127.0.0.1 is used.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_ns, find, huge_kib, ms, percentile, rss_kib, MockLdProcess, SDK_KEY};
use launchdarkly_server_sdk::{Client, ContextBuilder};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

const FLAG: &str = "bench-flag";

/// The flag of change `seq`: every variation tagged `bench-seq-NNNN`.
fn flag(seq: usize) -> Value {
    common::ai_config_flag(FLAG, &format!("bench-seq-{seq:04}"), seq)
}
const MARKER: &[u8] = b"bench-seq-";

struct Plan {
    streams: usize,
    changes: usize,
    sdk_clients: usize,
    sdk_changes: usize,
    /// Connections opened concurrently; the next batch starts when this one has its `put`.
    batch: usize,
    /// Quiet time between changes.
    pause: Duration,
    quick: bool,
}

fn plan() -> Plan {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    if quick {
        Plan {
            streams: 20,
            changes: 2,
            sdk_clients: 5,
            sdk_changes: 2,
            batch: 20,
            pause: Duration::from_millis(20),
            quick,
        }
    } else {
        Plan {
            streams: streams_arg(&args).unwrap_or(1_000),
            changes: 20,
            sdk_clients: 50,
            sdk_changes: 20,
            batch: 250,
            pause: Duration::from_millis(150),
            quick,
        }
    }
}

/// `--streams N`, bounded so that a typo cannot exhaust the machine's descriptors or memory.
fn streams_arg(args: &[String]) -> Option<usize> {
    let at = args.iter().position(|a| a == "--streams")?;
    let n: usize = args.get(at + 1)?.parse().ok()?;
    Some(n.clamp(1, 20_000))
}

// ---------------------------------------------------------------------------------------
// The flag
// ---------------------------------------------------------------------------------------

async fn put_flag(http: &reqwest::Client, base: &str, seq: usize) -> Duration {
    let t = Instant::now();
    let response = http
        .put(format!("{base}/admin/environments/test/flags/{FLAG}"))
        .json(&flag(seq))
        .send()
        .await
        .expect("PUT flag");
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "PUT flag answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    t.elapsed()
}

// ---------------------------------------------------------------------------------------
// Raw SSE streams
// ---------------------------------------------------------------------------------------

/// What the stream tasks share with the driver.
struct Shared {
    /// Streams that received their `put`.
    ready: AtomicUsize,
    /// Per change: streams that received its `patch`.
    received: Vec<AtomicUsize>,
    /// The count the driver waits for; reaching it wakes the driver.
    target: AtomicUsize,
    notify: Notify,
}

impl Shared {
    fn bump(&self, counter: &AtomicUsize) {
        if counter.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            self.notify.notify_one();
        }
    }

    /// Waits until `counter` reaches `target` or `limit` passes; returns the final count.
    /// One waiter at a time.
    async fn wait_for(&self, counter: &AtomicUsize, target: usize, limit: Duration) -> usize {
        self.target.store(target, Ordering::Release);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let n = counter.load(Ordering::Acquire);
            if n >= target {
                return n;
            }
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return counter.load(Ordering::Acquire);
            }
        }
    }
}

/// One `/all` stream: returns, per change, when its `patch` was read.
async fn sse_stream(
    addr: String,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<Option<Instant>>, String> {
    let mut times = vec![None; shared.received.len()];
    let mut got_put = false;
    common::read_sse(&addr, "fanout-bench/1", 16 * 1024, stop, |frame, now| {
        if frame.starts_with(b"event: put") {
            if !got_put {
                got_put = true;
                shared.bump(&shared.ready);
            }
        } else if frame.starts_with(b"event: patch") {
            if let Some(seq) = find(frame, MARKER)
                .and_then(|at| frame.get(at + MARKER.len()..at + MARKER.len() + 4))
                .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok())
            {
                // Change `seq` (1-based) is index seq - 1; the initial flag is seq 0.
                if let Some(slot) = seq.checked_sub(1).and_then(|i| times.get_mut(i)) {
                    if slot.is_none() {
                        *slot = Some(now);
                        shared.bump(&shared.received[seq - 1]);
                    }
                }
            }
        }
    })
    .await?;
    Ok(times)
}

async fn raw_streams(plan: &Plan, mock: &MockLdProcess, http: &reqwest::Client) {
    let base = &mock.base_url;
    let addr = mock.addr();
    let pid = mock.pid();
    let n = plan.streams;

    put_flag(http, base, 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib(pid);
    let huge_before = huge_kib(pid);

    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        received: (0..plan.changes).map(|_| AtomicUsize::new(0)).collect(),
        target: AtomicUsize::new(usize::MAX),
        notify: Notify::new(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    let opening = Instant::now();
    let mut opened = 0;
    while opened < n {
        let batch = plan.batch.min(n - opened);
        for _ in 0..batch {
            tasks.push(tokio::spawn(sse_stream(
                addr.clone(),
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        opened += batch;
        let ready = shared
            .wait_for(&shared.ready, opened, Duration::from_secs(30))
            .await;
        if ready < opened {
            let _ = stop_tx.send(true);
            panic!("only {ready} of {opened} streams received their put within 30 s");
        }
    }
    let open_time = opening.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_open = rss_kib(pid);
    let huge_open = huge_kib(pid);

    // Changes.
    let cpu_before = cpu_ns(pid);
    let mut all = Vec::with_capacity(n * plan.changes);
    let mut put_times = Vec::new();
    let mut t0s = Vec::new();
    let mut missing = 0;
    for change in 0..plan.changes {
        tokio::time::sleep(plan.pause).await;
        let t0 = Instant::now();
        t0s.push(t0);
        put_times.push(put_flag(http, base, change + 1).await);
        let got = shared
            .wait_for(&shared.received[change], n, Duration::from_secs(10))
            .await;
        missing += n - got.min(n);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu_used = cpu_ns(pid).saturating_sub(cpu_before);
    let rss_after = rss_kib(pid);

    let _ = stop_tx.send(true);
    let mut per_change: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); plan.changes];
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(times)) => {
                for (change, time) in times.into_iter().enumerate() {
                    if let Some(t) = time {
                        per_change[change].push(t.saturating_duration_since(t0s[change]));
                    }
                }
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }

    println!();
    println!(
        "== SSE fan-out: {n} raw /all streams, {} changes of a {}-byte flag ==",
        plan.changes,
        serde_json::to_vec(&flag(1)).map_or(0, |v| v.len())
    );
    if plan.quick {
        println!("(test mode: tiny run, not a measurement)");
    }
    println!(
        "streams opened in {} ms ({} at a time, each waited for its put)",
        open_time.as_millis(),
        plan.batch
    );
    println!(
        "mock-ld RSS before streams : {rss_before:>8} KiB  (of which AnonHugePages {huge_before} KiB)"
    );
    println!(
        "mock-ld RSS with {n:>5} open : {rss_open:>8} KiB  (of which AnonHugePages {huge_open} KiB)"
    );
    println!(
        "per open stream            : {:>8.1} KiB",
        (rss_open as f64 - rss_before as f64) / n as f64
    );
    println!("mock-ld RSS after changes  : {rss_after:>8} KiB");
    println!(
        "mock-ld CPU over {} changes: {:.1} ms = {:.1} µs per stream per change",
        plan.changes,
        cpu_used as f64 / 1e6,
        cpu_used as f64 / 1e3 / (n * plan.changes) as f64
    );
    println!();
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "change", "PUT ms", "min ms", "p50 ms", "p99 ms", "max ms", "streams"
    );
    for (i, lat) in per_change.iter_mut().enumerate() {
        lat.sort();
        all.extend_from_slice(lat);
        println!(
            "{:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            i + 1,
            ms(put_times[i]),
            ms(lat.first().copied().unwrap_or_default()),
            ms(percentile(lat, 50.0)),
            ms(percentile(lat, 99.0)),
            ms(lat.last().copied().unwrap_or_default()),
            lat.len()
        );
    }
    all.sort();
    println!(
        "fan-out latency over {} deliveries: p50 {} ms, p99 {} ms, max {} ms; per-change max: median {} ms, worst {} ms",
        all.len(),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied().unwrap_or_default()),
        ms({
            let mut maxes: Vec<Duration> = per_change
                .iter()
                .map(|l| l.last().copied().unwrap_or_default())
                .collect();
            maxes.sort();
            percentile(&maxes, 50.0)
        }),
        ms(per_change
            .iter()
            .filter_map(|l| l.last().copied())
            .max()
            .unwrap_or_default()),
    );
    if missing > 0 || !errors.is_empty() {
        println!(
            "WARNING: {missing} deliveries missing after 10 s; {} stream errors, first: {:?}",
            errors.len(),
            errors.first()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Real Rust SDK clients
// ---------------------------------------------------------------------------------------

fn bench_tag(value: &Value) -> Option<&str> {
    value.get("_ldMeta")?.get("benchTag")?.as_str()
}

async fn sdk_clients(plan: &Plan, mock: &MockLdProcess, http: &reqwest::Client) {
    use aiconfig_harness::ld_client::{start_client, SdkOptions};
    let base = &mock.base_url;
    let n = plan.sdk_clients;
    let options = SdkOptions {
        base_url: base.clone(),
        stream_url: None,
        events_url: None,
        sdk_key: SDK_KEY.to_owned(),
        events: None,
    };
    let seq_base = 1_000;
    put_flag(http, base, seq_base).await;
    let rss_before = rss_kib(mock.pid());
    let starting = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(25) {
        let batch = (chunk_start..n.min(chunk_start + 25))
            .map(|_| start_client(&options, Duration::from_secs(20)));
        for client in futures::future::join_all(batch).await {
            clients.push(client.expect("SDK client starts"));
        }
    }
    let start_time = starting.elapsed();
    let clients: Arc<Vec<Client>> = Arc::new(clients);
    let contexts: Arc<Vec<_>> = Arc::new(
        (0..n)
            .map(|i| {
                let mut b = ContextBuilder::new(format!("user-{i}"));
                b.set_string("tier", if i % 2 == 0 { "premium" } else { "standard" });
                b.build().expect("context")
            })
            .collect(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_open = rss_kib(mock.pid());

    let mut per_change: Vec<Vec<Duration>> = Vec::new();
    for change in 0..plan.sdk_changes {
        tokio::time::sleep(plan.pause).await;
        let seq = seq_base + 1 + change;
        let want = format!("bench-seq-{seq:04}");
        let poller = {
            let clients = clients.clone();
            let contexts = contexts.clone();
            let want = want.clone();
            // Polls every client in a tight loop on its own thread until all see the change.
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut seen: Vec<Option<Instant>> = vec![None; clients.len()];
                let mut left = clients.len();
                while left > 0 && started.elapsed() < Duration::from_secs(10) {
                    for (i, client) in clients.iter().enumerate() {
                        if seen[i].is_some() {
                            continue;
                        }
                        let value = client.json_variation(&contexts[i], FLAG, json!({}));
                        if bench_tag(&value) == Some(want.as_str()) {
                            seen[i] = Some(Instant::now());
                            left -= 1;
                        }
                    }
                    std::thread::yield_now();
                }
                seen
            })
        };
        let t0 = Instant::now();
        put_flag(http, base, seq).await;
        let seen = tokio::task::spawn_blocking(move || poller.join().expect("poller"))
            .await
            .expect("poller joins");
        let mut lat: Vec<Duration> = seen
            .iter()
            .flatten()
            .map(|t| t.saturating_duration_since(t0))
            .collect();
        lat.sort();
        per_change.push(lat);
    }

    println!();
    println!(
        "== SDK fan-out: {n} Rust SDK clients (launchdarkly-server-sdk 3.2.0, events off), {} changes ==",
        plan.sdk_changes
    );
    if plan.quick {
        println!("(test mode: tiny run, not a measurement)");
    }
    println!(
        "clients started in {} ms; mock-ld RSS {} → {} KiB",
        start_time.as_millis(),
        rss_before,
        rss_open
    );
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>8}",
        "change", "min ms", "p50 ms", "max ms", "clients"
    );
    let mut all = Vec::new();
    for (i, lat) in per_change.iter().enumerate() {
        all.extend_from_slice(lat);
        println!(
            "{:>6} {:>9} {:>9} {:>9} {:>8}",
            i + 1,
            ms(lat.first().copied().unwrap_or_default()),
            ms(percentile(lat, 50.0)),
            ms(lat.last().copied().unwrap_or_default()),
            lat.len()
        );
    }
    all.sort();
    let expected = n * plan.sdk_changes;
    println!(
        "patch → json_variation sees it, over {} observations: p50 {} ms, p99 {} ms, max {} ms{}",
        all.len(),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied().unwrap_or_default()),
        if all.len() < expected {
            format!(
                " (WARNING: {} of {expected} never saw the change within 10 s)",
                expected - all.len()
            )
        } else {
            String::new()
        }
    );
    for client in clients.iter() {
        client.close();
    }
}

fn main() {
    let plan = plan();
    let bin = match common::mock_ld_binary("fanout", "FANOUT_MOCK_LD") {
        Ok(bin) => bin,
        Err(message) => {
            eprintln!("fanout: {message}");
            std::process::exit(1);
        }
    };
    let mock = match common::start_mock_ld(&bin, &[], None) {
        Ok(mock) => mock,
        Err(message) => {
            eprintln!("fanout: {message}");
            std::process::exit(1);
        }
    };
    println!(
        "mock-ld {} at {} (pid {})",
        bin.display(),
        mock.base_url,
        mock.pid()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client");
        raw_streams(&plan, &mock, &http).await;
        sdk_clients(&plan, &mock, &http).await;
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(mock);
    println!();
    println!("fanout done in {:.1} s", started.elapsed().as_secs_f64());
}
