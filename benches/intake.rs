//! `/bulk` intake throughput: how close mock-ld's HTTP events intake comes to the bare cost
//! of decompressing and parsing the same payload.
//!
//! One realistic payload of 10,000 events, shaped as the Rust SDK 3.2.0 serializes them
//! (index, feature and AI-tracker custom events with inline contexts, one summary event),
//! gzip-compressed as the SDK's `event-compression` feature sends it. Measured in one run:
//!
//! - `bare_gunzip_parse`: gunzip + `split_payload` + `Event::parse` of every event, the typed
//!   parse mock-ld does, with nothing stored.
//! - `ingest_in_process`: `mock_ld::events::ingest`, i.e. the above plus recording every event
//!   in an `EventLog` (no HTTP). Shows what storing costs on its own.
//! - `http_bulk`: the payload POSTed to an in-process mock-ld on 127.0.0.1 at `/bulk`, with a
//!   fresh payload id each time, until the 202 arrives.
//!
//! Criterion reports events/s (`Throughput::Elements`). After the criterion groups the bench
//! times the same three loops itself, interleaved, and prints
//! `intake ratio: http /bulk = X events/s, bare gunzip+parse = Y events/s, ratio = Z`.
//!
//! The event log is cleared before every timed request (outside the timing), so memory stays
//! bounded.
//!
//! `cargo test --benches` runs this binary without `--bench`: criterion then runs each
//! benchmark once and the ratio section runs one iteration of each loop.
//!
//! The global allocator is mimalloc, as in the `mock-ld` and `aiconfig-harness` binaries
//! (both set it); embedded mock-ld runs under whatever allocator its host chose.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use mock_ld::events::log::{EventLog, Filter, Source};
use mock_ld::events::wire::{split_payload, Event};
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 10_000;
const SDK_KEY: &str = "sdk-default-test";

/// `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's own rule).
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

// ---------------------------------------------------------------------------------------
// The payload
// ---------------------------------------------------------------------------------------

struct PayloadInfo {
    json_len: usize,
    gz: &'static [u8],
    kinds: Vec<(&'static str, usize)>,
}

fn ai_variation(index: usize) -> serde_json::Value {
    let (model, provider, variation_key) = match index {
        0 => ("gpt-4o", "openai", "premium-gpt4o"),
        1 => ("claude-3-5-sonnet", "anthropic", "premium-claude"),
        _ => ("gpt-4o-mini", "openai", "standard-mini"),
    };
    json!({
        "_ldMeta": {"enabled": true, "variationKey": variation_key, "version": 7, "mode": "completion"},
        "model": {"name": model, "parameters": {"temperature": 0.2, "maxTokens": 1024}},
        "provider": {"name": provider},
        "messages": [
            {"role": "system", "content": "You are a concise support assistant for {{ ldctx.tier }} customers."}
        ]
    })
}

/// 10,000 events in the proportions an AI-Config workload produces: per evaluation one
/// feature event (the flag tracks events), an index event the first time a context is seen,
/// and the AI tracker's custom events; one summary event at the end.
fn build_payload() -> PayloadInfo {
    const CONFIG_KEY: &str = "support-assistant";
    let mut events = Vec::with_capacity(EVENTS);
    let mut kinds = std::collections::BTreeMap::<&'static str, usize>::new();
    let mut counters = [0u64; 3];
    let base_ms: u64 = 1_795_000_000_000;
    let tiers = ["premium", "standard", "free"];
    let mut i = 0usize;
    // Leave room for the summary event.
    while events.len() < EVENTS - 1 {
        let user = i % 1_500;
        let tier = tiers[user % 3];
        let context = json!({"kind": "user", "key": format!("user-{user}"), "tier": tier});
        let now = base_ms + i as u64 * 3;
        let variation = (i * 7) % 3;
        counters[variation] += 1;
        let value = ai_variation(variation);
        let variation_key = value["_ldMeta"]["variationKey"].clone();
        let model = value["model"]["name"].clone();
        let provider = value["provider"]["name"].clone();
        let mut batch = Vec::new();
        if i < 1_500 {
            batch.push((
                "index",
                json!({"kind": "index", "creationDate": now, "context": context}),
            ));
        }
        batch.push((
            "feature",
            json!({
                "kind": "feature", "creationDate": now, "context": context, "key": CONFIG_KEY,
                "value": value, "variation": variation, "default": {"_ldMeta": {"enabled": false}},
                "version": 7
            }),
        ));
        let data = json!({
            "runId": format!("3f2c1a9e-7b4d-4c1e-9a{:010x}", i),
            "configKey": CONFIG_KEY, "variationKey": variation_key, "version": 7,
            "modelName": model, "providerName": provider
        });
        let duration = 250.0 + (i % 97) as f64 * 13.0;
        let input = 180 + (i % 41) as u64 * 5;
        let output = 60 + (i % 53) as u64 * 7;
        for (key, metric) in [
            ("$ld:ai:generation", None),
            ("$ld:ai:generation:success", None),
            ("$ld:ai:duration:total", Some(duration)),
            ("$ld:ai:tokens:total", Some((input + output) as f64)),
            ("$ld:ai:tokens:input", Some(input as f64)),
            ("$ld:ai:tokens:output", Some(output as f64)),
        ] {
            let mut event = json!({
                "kind": "custom", "creationDate": now + 1, "context": context, "key": key,
                "data": data
            });
            if let Some(m) = metric {
                event["metricValue"] = json!(m);
            }
            batch.push(("custom", event));
        }
        for (kind, event) in batch {
            if events.len() < EVENTS - 1 {
                *kinds.entry(kind).or_default() += 1;
                events.push(event);
            }
        }
        i += 1;
    }
    let counters_json: Vec<_> = counters
        .iter()
        .enumerate()
        .map(|(v, count)| json!({"value": ai_variation(v), "version": 7, "count": count, "variation": v}))
        .collect();
    events.push(json!({
        "kind": "summary", "startDate": base_ms, "endDate": base_ms + i as u64 * 3,
        "features": {CONFIG_KEY: {"default": {"_ldMeta": {"enabled": false}}, "contextKinds": ["user"], "counters": counters_json}}
    }));
    *kinds.entry("summary").or_default() += 1;
    assert_eq!(events.len(), EVENTS);

    let json_bytes = serde_json::to_vec(&events).expect("events serialize");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&json_bytes).expect("gzip");
    let gz = encoder.finish().expect("gzip");
    PayloadInfo {
        json_len: json_bytes.len(),
        gz: Box::leak(gz.into_boxed_slice()),
        kinds: kinds.into_iter().collect(),
    }
}

// ---------------------------------------------------------------------------------------
// The three loops
// ---------------------------------------------------------------------------------------

/// What mock-ld does before storing: gunzip (same initial capacity as mock-ld), split the
/// array into raw events, typed parse of each.
fn bare_gunzip_parse(gz: &[u8]) -> usize {
    let mut json = Vec::with_capacity(gz.len() * 8);
    MultiGzDecoder::new(gz)
        .read_to_end(&mut json)
        .expect("payload gunzips");
    let raws = split_payload(&json).expect("payload is an array");
    let mut ok = 0;
    for raw in raws {
        let event = Event::parse(raw);
        ok += usize::from(event.is_ok());
        let _ = black_box(event);
    }
    ok
}

fn source() -> Source {
    Source {
        project: "default".into(),
        env: "test".into(),
    }
}

static PAYLOAD_SEQ: AtomicU64 = AtomicU64::new(0);

fn next_payload_id() -> String {
    format!(
        "intake-bench-{:08}",
        PAYLOAD_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn ingest_in_process(log: &EventLog, gz: &[u8]) {
    let received = mock_ld::events::Received {
        body: gz,
        gzipped: true,
        inflated_limit: usize::MAX,
        received_at: mock_ld::events::now_millis(),
    };
    let outcome = mock_ld::events::ingest(log, source(), Some(next_payload_id()), received)
        .expect("payload accepted");
    black_box(outcome);
}

struct Http {
    rt: tokio::runtime::Runtime,
    mock: mock_ld::MockLdHandle,
    client: reqwest::Client,
    url: String,
}

impl Http {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mock = rt
            .block_on(mock_ld::MockLd::start(mock_ld::Config::default()))
            .expect("mock-ld starts");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client");
        let url = format!("{}/bulk", mock.base_url());
        Http {
            rt,
            mock,
            client,
            url,
        }
    }

    fn events(&self) -> &Arc<EventLog> {
        self.mock.events()
    }

    fn post(&self, gz: &'static [u8]) {
        let request = self
            .client
            .post(&self.url)
            .header("Authorization", SDK_KEY)
            .header("Content-Encoding", "gzip")
            .header("Content-Type", "application/json")
            .header("X-LaunchDarkly-Event-Schema", "4")
            .header("X-LaunchDarkly-Payload-ID", next_payload_id())
            .body(gz);
        let status = self
            .rt
            .block_on(async { request.send().await.map(|r| r.status()) })
            .expect("POST /bulk");
        assert_eq!(status.as_u16(), 202, "POST /bulk answered {status}");
    }
}

/// One POST, then checks that every event was stored and parsed as its kind.
fn check_http_once(http: &Http, info: &PayloadInfo) {
    http.events().clear();
    http.post(info.gz);
    let stats = http.events().stats(&Filter::default());
    assert_eq!(stats.events, EVENTS as u64, "every event stored");
    assert_eq!(stats.malformed_events, 0, "no event malformed");
    assert_eq!(stats.payloads, 1);
    http.events().clear();
}

// ---------------------------------------------------------------------------------------
// Criterion, then the ratio
// ---------------------------------------------------------------------------------------

fn intake(c: &mut Criterion) {
    let info = build_payload();
    let quick = test_mode();
    println!(
        "payload: {EVENTS} events ({}), {} bytes JSON, {} bytes gzip",
        info.kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        info.json_len,
        info.gz.len()
    );
    assert_eq!(bare_gunzip_parse(info.gz), EVENTS, "every event parses");

    let http = Http::start();
    check_http_once(&http, &info);
    let log = EventLog::default();

    {
        let mut group = c.benchmark_group("intake");
        group
            .throughput(Throughput::Elements(EVENTS as u64))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(40)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5));
        group.bench_function("bare_gunzip_parse", |b| {
            b.iter(|| bare_gunzip_parse(black_box(info.gz)))
        });
        group.bench_function("ingest_in_process", |b| {
            b.iter_batched(
                || log.clear(),
                |()| ingest_in_process(&log, info.gz),
                BatchSize::PerIteration,
            )
        });
        group.bench_function("http_bulk", |b| {
            b.iter_batched(
                || http.events().clear(),
                |()| http.post(info.gz),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
    log.clear();

    // Our own timing of the three loops, one payload of each in turn, so that all three
    // share the machine's noise. The log is cleared before each timed call, outside the timing.
    let rounds = if quick { 1 } else { 60 };
    let mut bare = Vec::with_capacity(rounds);
    let mut ingest = Vec::with_capacity(rounds);
    let mut posted = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(bare_gunzip_parse(info.gz));
        bare.push(t.elapsed());

        log.clear();
        let t = Instant::now();
        ingest_in_process(&log, info.gz);
        ingest.push(t.elapsed());

        http.events().clear();
        let t = Instant::now();
        http.post(info.gz);
        posted.push(t.elapsed());
    }
    log.clear();
    http.events().clear();

    // events/s from the median time per payload (robust to the odd preempted payload), and
    // from the mean.
    let median_rate = |samples: &[Duration]| {
        let mut s = samples.to_vec();
        s.sort();
        EVENTS as f64 / s[s.len() / 2].as_secs_f64()
    };
    let mean_rate = |samples: &[Duration]| {
        let total: Duration = samples.iter().sum();
        (EVENTS * samples.len()) as f64 / total.as_secs_f64()
    };
    let (bare_rate, ingest_rate, http_rate) = (
        median_rate(&bare),
        median_rate(&ingest),
        median_rate(&posted),
    );
    println!();
    if quick {
        println!("(test mode: one iteration of each loop, not a measurement)");
    }
    println!(
        "own timing: {rounds} payloads of each, interleaved; events/s from the median (and mean) time per payload"
    );
    for (name, rate, samples) in [
        ("bare gunzip+parse", bare_rate, &bare),
        ("ingest in-process", ingest_rate, &ingest),
        ("http /bulk       ", http_rate, &posted),
    ] {
        println!(
            "  {name} : {:>9.0} events/s = {:>6.2} ms/payload  (mean {:>9.0} events/s)  {:.2} of bare (mean {:.2})",
            rate,
            EVENTS as f64 / rate * 1e3,
            mean_rate(samples),
            rate / bare_rate,
            mean_rate(samples) / mean_rate(&bare),
        );
    }
    println!(
        "intake ratio: http /bulk = {:.0} events/s, bare gunzip+parse = {:.0} events/s, ratio = {:.2}",
        http_rate,
        bare_rate,
        http_rate / bare_rate
    );
    drop(http);
}

criterion_group!(benches, intake);
criterion_main!(benches);
