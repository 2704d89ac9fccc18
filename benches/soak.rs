//! Soak: does mock-ld's memory stay flat under a long, steady load? The goal: RSS
//! flat within 10 % over 10 minutes of 10,000 streams, sustained intake and a patch a second.
//!
//! Runs the `mock-ld` binary as a child process on 127.0.0.1 (port 0) under
//! `prlimit --as=2GiB`, and checks its RSS every second (killing it past 2 GiB), so a leak
//! fails the bench instead of taking the shared machine's memory. The load, all of it
//! running for the whole soak:
//!
//! - `/all` streams, opened in batches (each waits for its `put`) and read to the end with
//!   the raw HTTP/1.1 client of `benches/common` (shared with `fanout`);
//! - `/bulk` intake at a fixed rate: payloads of SDK-shaped events (index, feature and the
//!   AI tracker's custom events with `$ld:ai:*` metric keys, a summary), context keys
//!   varying, every other payload gzipped, each with its own payload id. Each payload also
//!   carries new custom event keys and new flag keys, and now and then a new event kind, as
//!   a long fuzz or many tests would: whatever map grows with distinct keys shows;
//! - one admin flag change a second (`PUT /admin/environments/test/flags/soak-flag`, a 2 KB
//!   AI Config as in `fanout`), and half a second after each, one REST semantic patch to a
//!   segment (`PATCH /api/v2/segments/default/test/soak-segment`: remove the previous
//!   included key, add the next, so the segment keeps its size while the audit log grows).
//!
//! Each change carries a sequence number that the streams find in its `patch` frame; its
//! fan-out latency is from just before the request to the moment a stream read the frame's
//! last byte (so it includes the bench's own reading, on the same two cores).
//!
//! The soak starts with a warm-up (at least a minute, at most five) that lasts until the
//! event list has reached its byte bound: mock-ld runs with `--max-stored-event-bytes 32MiB`
//! so that this takes about a minute rather than the default 512 MiB's ten. RSS "at start"
//! is read when the warm-up ends; then every 10 s a row: RSS, events counted, and the
//! fan-out latency of that window's changes. At the end: RSS at start and end and their
//! ratio, the intake rate achieved, fan-out percentiles with their sample counts, and
//! mock-ld's `overflow` counts. Figures only: no timing is asserted. The bench fails
//! (exit 1) if mock-ld dies, passes 2 GiB, or the streams cannot be opened.
//!
//! `cargo bench --bench soak`: 10,000 streams, 10 minutes; `-- --minutes N` (1 to 120) and
//! `-- --streams N` (1 to 20,000) change them. Without `--bench` (as `cargo test --benches`
//! runs it) or with `--test`: 50 streams for a few seconds, with `--max-stat-keys 100` so
//! the overflow path runs. `SOAK_MOCK_LD=/path/to/mock-ld` runs that binary without
//! building it; `SOAK_MOCK_LD_ARGS="--max-stat-keys 0"` passes more flags to mock-ld (to
//! tell what grows). Only 127.0.0.1 is used.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cpu_ns, find, rss_kib, status_kib, MockLdProcess, SDK_KEY};
use flate2::write::GzEncoder;
use flate2::Compression;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const FLAG: &str = "soak-flag";
const SEGMENT: &str = "soak-segment";
const CONFIG_KEY: &str = "soak-assistant";
const FLAG_MARKER: &[u8] = b"soak-flag-seq-";
const SEGMENT_MARKER: &[u8] = b"soak-seg-seq-";
const API_TOKEN: &str = "api-default-admin";
const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";
/// mock-ld's address space (prlimit) and the RSS past which the bench kills it: 2 GiB.
const MEMORY_LIMIT: u64 = 2 << 30;
/// The goal: RSS at the end within this fraction of RSS at the start.
const FLAT_WITHIN: f64 = 0.10;

struct Plan {
    streams: usize,
    /// Streams opened at once; the next batch starts when this one has its `put`s.
    batch: usize,
    warm_up_min: Duration,
    warm_up_max: Duration,
    duration: Duration,
    sample_every: Duration,
    /// One flag change, then one segment patch half a period later, per period.
    patch_every: Duration,
    events_per_sec: usize,
    events_per_payload: usize,
    /// New custom event keys, and new flag keys, per payload.
    distinct_per_payload: usize,
    /// mock-ld's flags beyond `--listen` and `--heartbeat-secs`.
    mock_args: Vec<String>,
    quick: bool,
}

fn plan() -> Plan {
    let mut plan = base_plan();
    // More mock-ld flags, to find what grows (e.g. `--max-stat-keys 0`).
    if let Ok(extra) = std::env::var("SOAK_MOCK_LD_ARGS") {
        plan.mock_args
            .extend(extra.split_whitespace().map(str::to_owned));
    }
    plan
}

fn base_plan() -> Plan {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let arg = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)?.parse().ok()
    };
    let common = |stored: &str| vec!["--max-stored-event-bytes".to_owned(), stored.to_owned()];
    if quick {
        let mut mock_args = common("256KiB");
        mock_args.extend(["--max-stat-keys".to_owned(), "100".to_owned()]);
        Plan {
            streams: 50,
            batch: 50,
            warm_up_min: Duration::from_secs(1),
            warm_up_max: Duration::from_secs(10),
            duration: Duration::from_secs(4),
            sample_every: Duration::from_secs(1),
            patch_every: Duration::from_millis(250),
            events_per_sec: 2_000,
            events_per_payload: 400,
            distinct_per_payload: 10,
            mock_args,
            quick,
        }
    } else {
        let minutes = arg("--minutes").unwrap_or(10).clamp(1, 120);
        Plan {
            streams: arg("--streams").unwrap_or(10_000).clamp(1, 20_000) as usize,
            batch: 250,
            warm_up_min: Duration::from_secs(60),
            warm_up_max: Duration::from_secs(300),
            duration: Duration::from_secs(minutes * 60),
            sample_every: Duration::from_secs(10),
            patch_every: Duration::from_secs(1),
            events_per_sec: 2_000,
            events_per_payload: 400,
            distinct_per_payload: 10,
            mock_args: common("32MiB"),
            quick,
        }
    }
}

impl Plan {
    /// Changes of each kind the soak can make: one per period of warm-up and soak, and spare.
    fn change_capacity(&self) -> usize {
        let secs = (self.warm_up_max + self.duration).as_secs_f64() + 120.0;
        (secs / self.patch_every.as_secs_f64()).ceil() as usize
    }

    fn payload_every(&self) -> Duration {
        Duration::from_secs_f64(self.events_per_payload as f64 / self.events_per_sec as f64)
    }
}

// ---------------------------------------------------------------------------------------
// What the tasks share
// ---------------------------------------------------------------------------------------

/// The changes of one kind: when each was sent, how many streams read it, and the fan-out
/// latency of those counted in the measurement (in µs; all of them, and the current window).
struct Changes {
    t0_ns: Vec<AtomicU64>,
    delivered: Vec<AtomicU32>,
    /// Changes sent from this time on (ns since `Shared::base`) count in the measurement;
    /// `u64::MAX` during warm-up.
    measured_from: AtomicU64,
    latency: Mutex<Latencies>,
}

struct Latencies {
    all: Histogram<u64>,
    window: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

impl Changes {
    fn new(capacity: usize) -> Self {
        Changes {
            t0_ns: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            delivered: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            measured_from: AtomicU64::new(u64::MAX),
            latency: Mutex::new(Latencies {
                all: histogram(),
                window: histogram(),
            }),
        }
    }

    fn sent(&self, seq: usize, base: Instant) {
        let ns = base.elapsed().as_nanos().max(1) as u64;
        self.t0_ns[seq].store(ns, Ordering::Release);
    }

    fn read(&self, seq: usize, at: Instant, base: Instant) {
        let Some(t0) = self.t0_ns.get(seq).map(|t| t.load(Ordering::Acquire)) else {
            return;
        };
        if t0 == 0 {
            return;
        }
        self.delivered[seq].fetch_add(1, Ordering::Relaxed);
        let micros = (at.duration_since(base).as_nanos() as u64).saturating_sub(t0) / 1_000;
        let micros = micros.clamp(1, 600_000_000);
        let mut latency = self.latency.lock().expect("latency lock");
        latency.window.saturating_record(micros);
        if t0 >= self.measured_from.load(Ordering::Acquire) {
            latency.all.saturating_record(micros);
        }
    }

    /// Counts changes sent from now on in the measurement.
    fn measure_from(&self, base: Instant) {
        let ns = base.elapsed().as_nanos() as u64;
        self.measured_from.store(ns, Ordering::Release);
        *self.latency.lock().expect("latency lock") = Latencies {
            all: histogram(),
            window: histogram(),
        };
    }

    /// Changes of the measurement, and deliveries of them that no stream read: `ready`
    /// streams each should have.
    fn missed(&self, ready: usize) -> (usize, usize) {
        let from = self.measured_from.load(Ordering::Acquire);
        let measured: Vec<usize> = (0..self.t0_ns.len())
            .filter(|&seq| {
                let t0 = self.t0_ns[seq].load(Ordering::Acquire);
                t0 != 0 && t0 >= from
            })
            .collect();
        let missed = measured
            .iter()
            .map(|&seq| ready.saturating_sub(self.delivered[seq].load(Ordering::Relaxed) as usize))
            .sum();
        (measured.len(), missed)
    }

    fn all(&self) -> Histogram<u64> {
        self.latency.lock().expect("latency lock").all.clone()
    }

    /// The window's latencies, and a fresh window.
    fn take_window(&self) -> Histogram<u64> {
        let mut latency = self.latency.lock().expect("latency lock");
        std::mem::replace(&mut latency.window, histogram())
    }
}

struct Shared {
    base: Instant,
    /// Streams that received their first `put`.
    ready: AtomicUsize,
    flag: Changes,
    segment: Changes,
}

/// The sequence number after `marker` in a frame (six digits).
fn seq_after(frame: &[u8], marker: &[u8]) -> Option<usize> {
    let at = find(frame, marker)? + marker.len();
    std::str::from_utf8(frame.get(at..at + 6)?)
        .ok()?
        .parse()
        .ok()
}

async fn stream(
    addr: String,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut got_put = false;
    common::read_sse(&addr, "soak-bench/1", 4 * 1024, stop, |frame, at| {
        if frame.starts_with(b"event: put") {
            if !got_put {
                got_put = true;
                shared.ready.fetch_add(1, Ordering::AcqRel);
            }
        } else if frame.starts_with(b"event: patch") {
            if let Some(seq) = seq_after(frame, FLAG_MARKER) {
                shared.flag.read(seq, at, shared.base);
            } else if let Some(seq) = seq_after(frame, SEGMENT_MARKER) {
                shared.segment.read(seq, at, shared.base);
            }
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------
// The changes
// ---------------------------------------------------------------------------------------

/// The flag of change `seq`, as `fanout` sends it; every variation tagged with
/// [`FLAG_MARKER`] and the sequence number.
fn ai_config_flag(seq: usize) -> Value {
    common::ai_config_flag(FLAG, &format!("soak-flag-seq-{seq:06}"), seq)
}

fn segment_key(seq: usize) -> String {
    format!("soak-seg-seq-{seq:06}")
}

/// What a change request costs, and how many failed.
#[derive(Default)]
struct Requests {
    sent: usize,
    failed: usize,
    first_error: Option<String>,
    round_trip: Vec<Duration>,
}

impl Requests {
    fn record(&mut self, took: Duration, result: Result<(), String>) {
        self.sent += 1;
        self.round_trip.push(took);
        if let Err(e) = result {
            self.failed += 1;
            self.first_error.get_or_insert(e);
        }
    }
}

async fn answered(response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    let response = response.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Changes the flag, then half a period later the segment, once a period, until `stop`.
async fn changes(
    http: reqwest::Client,
    base: String,
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> (Requests, Requests) {
    let (mut flag, mut segment) = (Requests::default(), Requests::default());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let capacity = shared.flag.t0_ns.len();
    for seq in 1..capacity {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        shared.flag.sent(seq, shared.base);
        let t = Instant::now();
        let response = http
            .put(format!("{base}/admin/environments/test/flags/{FLAG}"))
            .json(&ai_config_flag(seq))
            .send()
            .await;
        flag.record(t.elapsed(), answered(response).await);

        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every / 2) => {}
        }
        let instructions = json!({"environmentKey": "test", "comment": format!("soak {seq}"), "instructions": [
            {"kind": "removeIncludedTargets", "contextKind": "user", "values": [segment_key(seq - 1)]},
            {"kind": "addIncludedTargets", "contextKind": "user", "values": [segment_key(seq)]}]});
        shared.segment.sent(seq, shared.base);
        let t = Instant::now();
        let response = http
            .patch(format!("{base}/api/v2/segments/default/test/{SEGMENT}"))
            .header("Authorization", API_TOKEN)
            .header("Content-Type", SEMANTIC_PATCH)
            .body(instructions.to_string())
            .send()
            .await;
        segment.record(t.elapsed(), answered(response).await);
    }
    (flag, segment)
}

/// The flag and the segment as the soak starts: change 0 of each.
async fn set_up(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let response = http
        .put(format!("{base}/admin/environments/test/flags/{FLAG}"))
        .json(&ai_config_flag(0))
        .send()
        .await;
    answered(response).await?;
    let response = http
        .post(format!("{base}/api/v2/segments/default/test"))
        .header("Authorization", API_TOKEN)
        .json(&json!({"key": SEGMENT, "name": "Soak", "description": "benches/soak.rs"}))
        .send()
        .await;
    answered(response).await?;
    let instructions = json!({"environmentKey": "test", "instructions": [
        {"kind": "addIncludedTargets", "contextKind": "user", "values": [segment_key(0), "stable-user"]}]});
    let response = http
        .patch(format!("{base}/api/v2/segments/default/test/{SEGMENT}"))
        .header("Authorization", API_TOKEN)
        .header("Content-Type", SEMANTIC_PATCH)
        .body(instructions.to_string())
        .send()
        .await;
    answered(response).await
}

// ---------------------------------------------------------------------------------------
// The intake
// ---------------------------------------------------------------------------------------

fn ai_variation(index: usize) -> Value {
    let (model, provider, variation_key) = match index {
        0 => ("gpt-4o", "openai", "premium-gpt4o"),
        1 => ("claude-3-5-sonnet", "anthropic", "premium-claude"),
        _ => ("gpt-4o-mini", "openai", "standard-mini"),
    };
    json!({
        "_ldMeta": {"enabled": true, "variationKey": variation_key, "version": 7, "mode": "completion"},
        "model": {"name": model, "parameters": {"temperature": 0.2, "maxTokens": 1024}},
        "provider": {"name": provider},
        "messages": [{"role": "system", "content": "You are a concise support assistant for {{ ldctx.tier }} customers."}]
    })
}

const AI_KEYS: [(&str, Option<f64>); 6] = [
    ("$ld:ai:generation", None),
    ("$ld:ai:generation:success", None),
    ("$ld:ai:duration:total", Some(250.0)),
    ("$ld:ai:tokens:total", Some(420.0)),
    ("$ld:ai:tokens:input", Some(180.0)),
    ("$ld:ai:tokens:output", Some(240.0)),
];

/// Payload `n`: `per` events, every value drawn from `n` and the event's index. Per context,
/// an index event, a feature event and the AI tracker's six custom events; then `distinct`
/// custom events and `distinct` feature events under keys no earlier payload used, every
/// 50th payload an event of a new kind, and a summary counting every flag evaluated.
fn payload(n: usize, per: usize, distinct: usize) -> Vec<Value> {
    let now = 1_795_000_000_000u64 + n as u64 * 200;
    let mut events = Vec::with_capacity(per);
    let regular = per.saturating_sub(1 + 2 * distinct + usize::from(n.is_multiple_of(50)));
    let mut counters = [0u64; 3];
    for i in 0..regular {
        let e = n * per + i;
        let user = (e / 8) % 50_000;
        let tier = ["premium", "standard", "free"][user % 3];
        let context = json!({"kind": "user", "key": format!("user-{user}"), "tier": tier});
        let variation = (user * 7) % 3;
        events.push(match i % 8 {
            0 => json!({"kind": "index", "creationDate": now, "context": context}),
            1 => {
                counters[variation] += 1;
                json!({"kind": "feature", "creationDate": now, "context": context, "key": CONFIG_KEY,
                       "value": ai_variation(variation), "variation": variation, "version": 7,
                       "default": {"_ldMeta": {"enabled": false}}})
            }
            slot => {
                let (key, metric) = AI_KEYS[slot - 2];
                let mut event = json!({"kind": "custom", "creationDate": now + 1, "context": context, "key": key,
                    "data": {"runId": format!("run-{e:012}"), "configKey": CONFIG_KEY, "version": 7,
                             "variationKey": ai_variation(variation)["_ldMeta"]["variationKey"]}});
                if let Some(m) = metric {
                    event["metricValue"] = json!(m + (e % 97) as f64);
                }
                event
            }
        });
    }
    let context = json!({"kind": "user", "key": format!("fuzz-{n}")});
    let mut features = serde_json::Map::new();
    for j in 0..distinct {
        events.push(
            json!({"kind": "custom", "creationDate": now, "context": context,
                           "key": format!("soak-metric-{n}-{j}"), "metricValue": j}),
        );
        let flag = format!("soak-flag-{n}-{j}");
        events.push(
            json!({"kind": "feature", "creationDate": now, "context": context, "key": flag,
                           "value": true, "variation": 0, "version": 1, "default": false}),
        );
        features.insert(
            flag,
            json!({"default": false, "contextKinds": ["user"],
            "counters": [{"value": true, "variation": 0, "version": 1, "count": 1}]}),
        );
    }
    if n.is_multiple_of(50) {
        events.push(json!({"kind": format!("soak-kind-{n}"), "creationDate": now}));
    }
    let counters: Vec<Value> = counters
        .iter()
        .enumerate()
        .map(|(v, count)| json!({"value": ai_variation(v), "version": 7, "count": count, "variation": v}))
        .collect();
    features.insert(
        CONFIG_KEY.to_owned(),
        json!({"default": {"_ldMeta": {"enabled": false}},
        "contextKinds": ["user"], "counters": counters}),
    );
    events.push(
        json!({"kind": "summary", "startDate": now - 5_000, "endDate": now, "features": features}),
    );
    events
}

#[derive(Default)]
struct Intake {
    payloads: usize,
    events: usize,
    /// Posts not answered 202.
    failed: usize,
    first_error: Option<String>,
}

/// Posts payload after payload at the plan's rate until `stop`.
async fn intake(
    http: reqwest::Client,
    base: String,
    plan_every: Duration,
    per: usize,
    distinct: usize,
    mut stop: watch::Receiver<bool>,
    counts: Arc<Mutex<Intake>>,
) {
    let mut ticks = tokio::time::interval(plan_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0.. {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        let events = payload(n, per, distinct);
        let json = serde_json::to_vec(&events).expect("events serialize");
        let gzipped = n.is_multiple_of(2);
        let body = if gzipped {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(&json).expect("gzip");
            encoder.finish().expect("gzip")
        } else {
            json
        };
        let mut request = http
            .post(format!("{base}/bulk"))
            .header("Authorization", SDK_KEY)
            .header("Content-Type", "application/json")
            .header("X-LaunchDarkly-Event-Schema", "4")
            .header("X-LaunchDarkly-Payload-ID", format!("soak-{n:08}"))
            .body(body);
        if gzipped {
            request = request.header("Content-Encoding", "gzip");
        }
        let result = match request.send().await {
            Ok(r) if r.status().as_u16() == 202 => Ok(()),
            Ok(r) => Err(format!("answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        let mut counts = counts.lock().expect("intake lock");
        counts.payloads += 1;
        counts.events += events.len();
        if let Err(e) = result {
            counts.failed += 1;
            counts.first_error.get_or_insert(e);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Watching mock-ld
// ---------------------------------------------------------------------------------------

/// mock-ld's RSS in KiB, or why the soak must stop: it exited, or passed the limit (then it
/// is killed).
fn health(mock: &mut MockLdProcess) -> Result<u64, String> {
    if let Ok(Some(status)) = mock.child.try_wait() {
        return Err(format!(
            "mock-ld exited ({status}); under prlimit --as={MEMORY_LIMIT} an allocation past the limit aborts it"
        ));
    }
    let rss = rss_kib(mock.pid());
    if rss * 1024 > MEMORY_LIMIT {
        let _ = mock.child.kill();
        return Err(format!(
            "mock-ld's RSS reached {rss} KiB, past the {} MiB limit; killed",
            MEMORY_LIMIT >> 20
        ));
    }
    Ok(rss)
}

/// The parts of `/admin/events/stats` the soak prints.
#[derive(Clone, Default)]
struct EventStats {
    events: u64,
    evicted: u64,
    rejected: u64,
    overflow: Value,
    keys: [usize; 4],
}

async fn event_stats(http: &reqwest::Client, base: &str) -> EventStats {
    let url = format!("{base}/admin/events/stats?env=test");
    let Ok(response) = http.get(url).send().await else {
        return EventStats::default();
    };
    let stats: Value = response.json().await.unwrap_or_default();
    let len = |field: &str| stats[field].as_object().map_or(0, |m| m.len());
    EventStats {
        events: stats["events"].as_u64().unwrap_or(0),
        evicted: stats["evictedEvents"].as_u64().unwrap_or(0),
        rejected: stats["rejectedPayloads"].as_u64().unwrap_or(0),
        overflow: stats["overflow"].clone(),
        keys: [
            len("byKind"),
            len("byCustomKey"),
            len("flagVariations"),
            len("featureEventVariations"),
        ],
    }
}

async fn open_streams(
    mock: &MockLdProcess,
    plan: &Plan,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<Result<(), String>>>, String> {
    let mut tasks = Vec::with_capacity(plan.streams);
    while tasks.len() < plan.streams {
        let batch = plan.batch.min(plan.streams - tasks.len());
        for _ in 0..batch {
            tasks.push(tokio::spawn(stream(
                mock.addr(),
                shared.clone(),
                stop.clone(),
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.ready.load(Ordering::Acquire) < tasks.len() {
            if Instant::now() > deadline {
                let ready = shared.ready.load(Ordering::Acquire);
                return Err(format!(
                    "only {ready} of {} streams received their put within 30 s",
                    tasks.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(tasks)
}

// ---------------------------------------------------------------------------------------
// The soak
// ---------------------------------------------------------------------------------------

/// One row of the table.
struct Row {
    at: Duration,
    rss: u64,
}

/// What the measurement (after the warm-up) saw.
struct Measured {
    warm_up: Duration,
    elapsed: Duration,
    rss_start: u64,
    rss_end: u64,
    /// Peak RSS over mock-ld's life (VmHWM), in KiB.
    hwm: u64,
    rows: Vec<Row>,
    cpu_ns: u64,
    stats_start: EventStats,
    stats_end: EventStats,
    /// Payloads and events the intake had sent at the start and at the end.
    sent_start: (usize, usize),
    sent_end: (usize, usize),
}

async fn soak(plan: &Plan, mock: &mut MockLdProcess) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let base = mock.base_url.clone();
    set_up(&http, &base).await?;
    let capacity = plan.change_capacity();
    let shared = Arc::new(Shared {
        base: Instant::now(),
        ready: AtomicUsize::new(0),
        flag: Changes::new(capacity),
        segment: Changes::new(capacity),
    });
    let (stop_streams, streams_rx) = watch::channel(false);
    let (stop_load, load_rx) = watch::channel(false);
    let rss_idle = rss_kib(mock.pid());
    let opening = Instant::now();
    let streams = match open_streams(mock, plan, &shared, &streams_rx).await {
        Ok(tasks) => tasks,
        Err(e) => {
            let _ = stop_streams.send(true);
            return Err(e);
        }
    };
    println!(
        "{} streams open in {:.1} s ({} at a time, each waited for its put); mock-ld RSS {rss_idle} KiB before, {} KiB after",
        plan.streams,
        opening.elapsed().as_secs_f64(),
        plan.batch,
        rss_kib(mock.pid())
    );
    let counts = Arc::new(Mutex::new(Intake::default()));
    let intake_task = tokio::spawn(intake(
        http.clone(),
        base.clone(),
        plan.payload_every(),
        plan.events_per_payload,
        plan.distinct_per_payload,
        load_rx.clone(),
        counts.clone(),
    ));
    let changes_task = tokio::spawn(changes(
        http.clone(),
        base.clone(),
        shared.clone(),
        plan.patch_every,
        load_rx,
    ));
    let measured = run(plan, mock, &http, &shared, &counts).await;

    let _ = stop_load.send(true);
    let wait = Duration::from_secs(15);
    let requests = tokio::time::timeout(wait, changes_task).await;
    let _ = tokio::time::timeout(wait, intake_task).await;
    // The last change's deliveries.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_streams.send(true);
    let mut errors = Vec::new();
    for task in streams {
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => errors.push("did not stop within 15 s".into()),
        }
    }
    let measured = measured?;
    let (flag, segment) = match requests {
        Ok(Ok(requests)) => requests,
        _ => return Err("the change task did not finish".into()),
    };
    let intake = std::mem::take(&mut *counts.lock().expect("intake lock"));
    report(plan, &measured, &shared, (flag, segment), intake, &errors);
    Ok(())
}

/// The warm-up, then the measurement, printing a row every `sample_every` and checking
/// mock-ld's health every second.
async fn run(
    plan: &Plan,
    mock: &mut MockLdProcess,
    http: &reqwest::Client,
    shared: &Arc<Shared>,
    counts: &Arc<Mutex<Intake>>,
) -> Result<Measured, String> {
    let base = mock.base_url.clone();
    let tick = plan.sample_every.min(Duration::from_secs(1));
    let sent = || {
        let c = counts.lock().expect("intake lock");
        (c.payloads, c.events)
    };
    println!();
    println!(
        "{:>8} {:>8} {:>10} {:>7} {:>10} {:>9}  {:>25}  {:>25}",
        "phase",
        "t s",
        "RSS KiB",
        "vs start",
        "events",
        "events/s",
        "flag fan-out p50/p99 ms (n)",
        "segment p50/p99 ms (n)"
    );
    let warm_started = Instant::now();
    let mut last = (warm_started, event_stats(http, &base).await);
    loop {
        tokio::time::sleep(plan.sample_every).await;
        let rss = health(mock)?;
        let stats = event_stats(http, &base).await;
        print_row(
            "warm-up",
            warm_started.elapsed(),
            rss,
            None,
            &last,
            &stats,
            shared,
        );
        last = (Instant::now(), stats);
        let warm = warm_started.elapsed();
        if (warm >= plan.warm_up_min && last.1.evicted > 0) || warm >= plan.warm_up_max {
            break;
        }
    }
    let warm_up = warm_started.elapsed();
    if last.1.evicted == 0 {
        println!("(the event list had not reached its byte bound when the warm-up ended)");
    }

    shared.flag.measure_from(shared.base);
    shared.segment.measure_from(shared.base);
    let started = Instant::now();
    let rss_start = health(mock)?;
    let cpu_start = cpu_ns(mock.pid());
    let sent_start = sent();
    let stats_start = event_stats(http, &base).await;
    print_row(
        "start",
        Duration::ZERO,
        rss_start,
        Some(rss_start),
        &last,
        &stats_start,
        shared,
    );
    last = (Instant::now(), stats_start.clone());
    let mut rows = vec![Row {
        at: Duration::ZERO,
        rss: rss_start,
    }];
    let mut next_row = started + plan.sample_every;
    while started.elapsed() < plan.duration {
        tokio::time::sleep(tick).await;
        let rss = health(mock)?;
        if Instant::now() >= next_row || started.elapsed() >= plan.duration {
            next_row += plan.sample_every;
            let stats = event_stats(http, &base).await;
            let at = started.elapsed();
            let phase = if at >= plan.duration { "end" } else { "soak" };
            print_row(phase, at, rss, Some(rss_start), &last, &stats, shared);
            rows.push(Row { at, rss });
            last = (Instant::now(), stats);
        }
    }
    health(mock)?;
    // The last row is the end: one figure, in the table and the summary alike.
    let rss_end = rows.last().map_or(rss_start, |r| r.rss);
    Ok(Measured {
        warm_up,
        elapsed: started.elapsed(),
        rss_start,
        rss_end,
        hwm: status_kib(mock.pid(), "VmHWM"),
        rows,
        cpu_ns: cpu_ns(mock.pid()).saturating_sub(cpu_start),
        stats_end: last.1,
        stats_start,
        sent_start,
        sent_end: sent(),
    })
}

fn print_row(
    phase: &str,
    at: Duration,
    rss: u64,
    start: Option<u64>,
    last: &(Instant, EventStats),
    stats: &EventStats,
    shared: &Shared,
) {
    let since = last.0.elapsed().as_secs_f64();
    let rate = stats.events.saturating_sub(last.1.events) as f64 / since;
    // The start row comes right after the last warm-up row: no rate over so short a time.
    let rate = if since < 0.5 {
        "-".to_owned()
    } else {
        format!("{rate:.0}")
    };
    let vs = start.map_or("".to_owned(), |s| {
        format!("{:+.1}%", (rss as f64 / s as f64 - 1.0) * 100.0)
    });
    println!(
        "{phase:>8} {:>8.0} {rss:>10} {vs:>7} {:>10} {rate:>9}  {}  {}",
        at.as_secs_f64(),
        stats.events,
        window_cell(&shared.flag.take_window()),
        window_cell(&shared.segment.take_window()),
    );
}

fn latency_line(name: &str, h: &Histogram<u64>, (changes, missed): (usize, usize), streams: usize) {
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1e3;
    if h.is_empty() {
        println!("{name}: no deliveries measured");
        return;
    }
    println!(
        "{name}: {changes} changes × {streams} streams = {} deliveries read (n); p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; {missed} deliveries not read",
        h.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        h.max() as f64 / 1e3,
    );
}

fn requests_line(name: &str, r: &Requests, every: Duration, elapsed: Duration) {
    let mut trips = r.round_trip.clone();
    trips.sort();
    let expected = (elapsed.as_secs_f64() / every.as_secs_f64()).floor();
    println!(
        "{name}: {} sent over warm-up and soak ({} failed{}), {:.2}/s scheduled; round trip p50 {} ms, p99 {} ms, max {} ms (n {})",
        r.sent,
        r.failed,
        r.first_error.as_ref().map_or(String::new(), |e| format!(", first: {e}")),
        1.0 / every.as_secs_f64(),
        common::ms(common::percentile(&trips, 50.0)),
        common::ms(common::percentile(&trips, 99.0)),
        common::ms(trips.last().copied().unwrap_or_default()),
        trips.len(),
    );
    if (r.sent as f64) < expected * 0.95 {
        println!(
            "  WARNING: the bench fell behind its schedule ({} of ~{expected:.0})",
            r.sent
        );
    }
}

fn report(
    plan: &Plan,
    m: &Measured,
    shared: &Shared,
    (flag, segment): (Requests, Requests),
    intake: Intake,
    stream_errors: &[String],
) {
    let secs = m.elapsed.as_secs_f64();
    println!();
    println!(
        "== soak: {} /all streams, {:.1} min after a {:.0} s warm-up; {} events/s target in payloads of {}; a flag change and a segment patch every {:.2} s ==",
        plan.streams,
        secs / 60.0,
        m.warm_up.as_secs_f64(),
        plan.events_per_sec,
        plan.events_per_payload,
        plan.patch_every.as_secs_f64()
    );
    if plan.quick {
        println!("(test mode: tiny run, not a measurement)");
    }
    println!("RSS by minute (KiB):");
    let mut next_minute = 0.0;
    for (i, row) in m.rows.iter().enumerate() {
        let at = row.at.as_secs_f64() / 60.0;
        // Rows come every 10 s, a little late; the first at or after each minute, and the last.
        if at + 0.05 >= next_minute || i + 1 == m.rows.len() {
            println!("  {at:>6.2} min {:>10}", row.rss);
            next_minute = (at + 0.05).floor() + 1.0;
        }
    }
    let ratio = m.rss_end as f64 / m.rss_start as f64;
    let (min, max) = m
        .rows
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), r| (lo.min(r.rss), hi.max(r.rss)));
    println!(
        "mock-ld RSS: start {} KiB, end {} KiB, end/start {ratio:.3} (min {min}, max {max} KiB over {} samples); goal flat within {:.0} %: {}",
        m.rss_start,
        m.rss_end,
        m.rows.len(),
        FLAT_WITHIN * 100.0,
        if (ratio - 1.0).abs() <= FLAT_WITHIN { "met" } else { "NOT met" }
    );
    let payloads = m.sent_end.0 - m.sent_start.0;
    let events = m.sent_end.1 - m.sent_start.1;
    let counted = m.stats_end.events.saturating_sub(m.stats_start.events);
    println!(
        "intake: {payloads} payloads, {events} events sent in the soak = {:.0} events/s (target {}); mock-ld counted {counted} = {:.0} events/s; over the whole run {} payloads, {} not answered 202{}",
        events as f64 / secs,
        plan.events_per_sec,
        counted as f64 / secs,
        intake.payloads,
        intake.failed,
        intake.first_error.map_or(String::new(), |e| format!(" (first: {e})")),
    );
    if (events as f64 / secs) < plan.events_per_sec as f64 * 0.95 {
        println!("  WARNING: the intake fell behind its target rate");
    }
    let total = m.warm_up + m.elapsed;
    requests_line("flag PUTs (admin API)", &flag, plan.patch_every, total);
    requests_line(
        "segment PATCHes (REST API, semantic patch)",
        &segment,
        plan.patch_every,
        total,
    );
    let ready = shared.ready.load(Ordering::Acquire);
    latency_line(
        "fan-out of flag PUTs",
        &shared.flag.all(),
        shared.flag.missed(ready),
        ready,
    );
    latency_line(
        "fan-out of segment PATCHes",
        &shared.segment.all(),
        shared.segment.missed(ready),
        ready,
    );
    println!(
        "mock-ld CPU in the soak: {:.1} s = {:.0} % of one core; peak RSS (VmHWM) {} KiB",
        m.cpu_ns as f64 / 1e9,
        m.cpu_ns as f64 / 1e9 / secs * 100.0,
        m.hwm,
    );
    let e = &m.stats_end;
    println!(
        "mock-ld events stats at the end: {} events, {} evicted from the list, {} payloads rejected; keys held: byKind {}, byCustomKey {}, flagVariations {} flags, featureEventVariations {} flags; overflow {}",
        e.events, e.evicted, e.rejected, e.keys[0], e.keys[1], e.keys[2], e.keys[3], e.overflow
    );
    if !stream_errors.is_empty() {
        println!(
            "WARNING: {} of {} streams ended with an error; first: {}",
            stream_errors.len(),
            plan.streams,
            stream_errors[0]
        );
    }
}

fn window_cell(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{:>25}", "-");
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1e3;
    format!(
        "{:>7.1} {:>7.1} {:>9}",
        q(0.5),
        q(0.99),
        format!("({})", h.len())
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let plan = plan();
    let bin = common::mock_ld_binary("soak", "SOAK_MOCK_LD").unwrap_or_else(|m| fail(&m));
    let prlimit = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let limit = prlimit.then_some(MEMORY_LIMIT);
    if !prlimit {
        eprintln!("soak: prlimit not found; mock-ld runs without an address-space limit (its RSS is still checked every second)");
    }
    let mut mock = common::start_mock_ld(&bin, &plan.mock_args, limit).unwrap_or_else(|m| fail(&m));
    println!(
        "mock-ld {} {} at {} (pid {}){}",
        bin.display(),
        plan.mock_args.join(" "),
        mock.base_url,
        mock.pid(),
        if prlimit {
            ", under prlimit --as=2GiB"
        } else {
            ""
        }
    );
    println!("load average at start: {}", load_average());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(soak(&plan, &mut mock));
    runtime.shutdown_timeout(Duration::from_secs(5));
    println!("load average at end: {}", load_average());
    drop(mock);
    if let Err(message) = result {
        fail(&message);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("soak: FAILED: {message}");
    std::process::exit(1);
}
