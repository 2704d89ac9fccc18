//! The scenario runner's own cost, printed as figures (no timing assertions):
//! 1. evaluations per second through `run` versus a bare loop calling an identical SDK
//!    client over the same contexts, in the same process and mock-ld;
//! 2. open-model accuracy: achieved versus scheduled arrival rate;
//! 3. wall time and peak RSS of `scenarios/scale-1m.toml`, and RSS growth from 100,000 to
//!    1,000,000 contexts (each size in a fresh process);
//! 4. (`sse`) the streaming LLM client's cost per chunk, reading mock-ld's frames from memory.
//!
//! `cargo bench --bench harness`; `cargo test --benches` runs a tiny version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiconfig_harness::ai::{AiClient, AiCompletionConfigDefault};
use aiconfig_harness::ld_client::{start_client, EventOptions, SdkOptions};
use aiconfig_harness::process;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, population::Generator};
use launchdarkly_server_sdk::{Client, Context, FlagValue};
use mock_ld::events::log::Filter;
use mock_ld::{MockLd, MockLdHandle};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCALE_ENV: &str = "HARNESS_BENCH_SCALE";

/// An evaluation-bound scenario: no LLM calls, so the runner's own cost shows.
fn scenario(contexts: u64, load: &str, events: bool) -> scenario::Scenario {
    let text = format!(
        r#"
name = "bench"
seed = 1
[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "small"
model = {{ name = "gpt-4o-mini" }}
messages = [{{ role = "system", content = "Be brief." }}]
[[ai_configs.variations]]
key = "large"
model = {{ name = "gpt-4o" }}
messages = [{{ role = "system", content = "Be thorough." }}]
[[ai_configs.targeting]]
kind = "addRule"
clauses = [{{ contextKind = "user", attribute = "tier", op = "in", values = ["premium"] }}]
rollout = {{ large = 60, small = 40 }}
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "small"
[population]
count = {contexts}
[population.kinds.user.attributes]
tier = {{ weighted = {{ free = 70, premium = 30 }} }}
[[steps]]
config = "assistant"
call_llm = false
[load]
{load}
[load.events]
enabled = {events}
# Enough for a second of events at full speed: the SDK preallocates its buffer.
capacity = 300_000
flush_interval = "1s"
[llm]
time_scale = 0
"#
    );
    scenario::parse("bench.toml".as_ref(), &text).expect("the bench scenario is valid")
}

fn external(mock: &MockLdHandle) -> Target {
    Target::External {
        sdk_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        api_url: mock.base_url(),
        sdk_key: mock.config().sdk_key.clone(),
        api_token: mock.config().api_token.clone(),
        admin_token: None,
    }
}

async fn run(s: &scenario::Scenario, target: Target) -> aiconfig_harness::results::RunResults {
    let options = RunOptions {
        target,
        progress: false,
        cancel: CancellationToken::new(),
    };
    runner::run(s, options)
        .await
        .expect("the bench run succeeds")
}

/// A client configured as the runner configures its own, and the population's contexts
/// built in advance (a bare application already has its contexts).
async fn client_and_contexts(
    mock: &MockLdHandle,
    s: &scenario::Scenario,
) -> (Arc<Client>, Arc<Vec<Context>>) {
    let options = SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events: s.load.events.enabled.then_some(EventOptions {
            capacity: s.load.events.capacity,
            flush_interval: s.load.events.flush_interval,
        }),
    };
    let client = Arc::new(
        start_client(&options, Duration::from_secs(10))
            .await
            .expect("client starts"),
    );
    let population = Generator::new(&s.population, s.seed).expect("valid population");
    let contexts = Arc::new(
        (0..population.count())
            .map(|i| population.context(i).expect("valid context"))
            .collect(),
    );
    (client, contexts)
}

/// Evaluations per second and per CPU-second of `threads` threads each calling `evaluate`
/// on its share of the indices `0..count`.
fn rate_of<F>(count: usize, threads: usize, evaluate: F) -> Rate
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let evaluate = Arc::new(evaluate);
    let cpu = process::cpu_time().expect("process CPU time");
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let evaluate = evaluate.clone();
            std::thread::spawn(move || (t..count).step_by(threads).for_each(|i| evaluate(i)))
        })
        .collect();
    workers
        .into_iter()
        .for_each(|w| w.join().expect("bare loop thread"));
    let elapsed = started.elapsed();
    let cpu = process::cpu_time().expect("process CPU time") - cpu;
    Rate {
        wall: count as f64 / elapsed.as_secs_f64(),
        cpu: count as f64 / cpu.as_secs_f64(),
    }
}

/// Evaluations per second of wall time, and per second of the whole process's CPU time.
/// The second is what to compare on this machine, whose speed drifts with its neighbours:
/// time stolen by other machines is not counted.
#[derive(Clone, Copy, Default)]
struct Rate {
    wall: f64,
    cpu: f64,
}

/// The bare application: `json_variation` alone. Returns evaluations per second and the
/// share of them mock-ld counted (see [`counted_share`]).
async fn bare_loop(mock: &MockLdHandle, s: &scenario::Scenario, threads: usize) -> (Rate, f64) {
    let (client, contexts) = client_and_contexts(mock, s).await;
    let (sdk, count) = (client.clone(), contexts.len());
    let rate = rate_of(count, threads, move |i| {
        let default = FlagValue::Json(json!({"_ldMeta": {"enabled": false}}));
        std::hint::black_box(sdk.variation(&contexts[i], "assistant", default));
    });
    (rate, counted_share(mock, client, count).await)
}

/// The SDK calls Python's AI SDK makes per `completion_config`, made directly: the usage
/// event, then `json_variation` with the AI default. What `run` costs beyond this is the
/// harness's own, AI layer (reading the variation, templates, tracker) included.
async fn bare_sdk_calls_loop(
    mock: &MockLdHandle,
    s: &scenario::Scenario,
    threads: usize,
) -> (Rate, f64) {
    let (client, contexts) = client_and_contexts(mock, s).await;
    let (sdk, count) = (client.clone(), contexts.len());
    let default = AiCompletionConfigDefault::default().to_json();
    let rate = rate_of(count, threads, move |i| {
        let context = &contexts[i];
        sdk.track_metric(
            context.clone(),
            "$ld:ai:usage:completion-config",
            1.0,
            "assistant",
        );
        std::hint::black_box(sdk.json_variation(context, "assistant", default.clone()));
    });
    (rate, counted_share(mock, client, count).await)
}

/// The same loop through the AI layer (`completion_config`), which adds the usage event
/// Python's AI SDK sends: what `run` costs beyond it is the runner's own.
async fn bare_ai_loop(mock: &MockLdHandle, s: &scenario::Scenario, threads: usize) -> (Rate, f64) {
    let (client, contexts) = client_and_contexts(mock, s).await;
    let ai = AiClient::new(client.clone());
    let default = AiCompletionConfigDefault::default();
    let count = contexts.len();
    let rate = rate_of(count, threads, move |i| {
        std::hint::black_box(
            ai.completion_config("assistant", &contexts[i], &default, None)
                .ok(),
        );
    });
    (rate, counted_share(mock, client, count).await)
}

/// The AI-layer loop building each context from the population as it goes, as `run`
/// does: the difference from `run` is the runner's own bookkeeping alone.
async fn bare_ai_building_loop(
    mock: &MockLdHandle,
    s: &scenario::Scenario,
    threads: usize,
) -> (Rate, f64) {
    let (client, contexts) = client_and_contexts(mock, s).await;
    let population = Generator::new(&s.population, s.seed).expect("valid population");
    let ai = AiClient::new(client.clone());
    let default = AiCompletionConfigDefault::default();
    let count = contexts.len();
    drop(contexts);
    let rate = rate_of(count, threads, move |i| {
        let context = population.context(i as u64).expect("valid context");
        std::hint::black_box(
            ai.completion_config("assistant", &context, &default, None)
                .ok(),
        );
    });
    (rate, counted_share(mock, client, count).await)
}

/// Closes the client (which flushes) and returns the share of `evaluations` that mock-ld
/// counted in summary events, then clears mock-ld's log for the next loop. The SDK drops
/// an evaluation's event when its inbox is full, so a loop can run faster by losing more.
async fn counted_share(mock: &MockLdHandle, client: Arc<Client>, evaluations: usize) -> f64 {
    tokio::task::spawn_blocking(move || client.close())
        .await
        .ok();
    let counted = settled_count(mock).await;
    mock.events().clear();
    counted as f64 / evaluations as f64
}

/// Evaluations of `assistant` mock-ld has counted, once nothing new has arrived for 500 ms.
async fn settled_count(mock: &MockLdHandle) -> u64 {
    let count = || {
        mock.events()
            .stats(&Filter::default())
            .flag_variations
            .get("assistant")
            .map_or(0, |v| v.values().sum::<u64>())
    };
    let mut last = count();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Evaluations per second of each loop in one round, and the share of its evaluations
/// mock-ld counted.
#[derive(Default)]
struct Round {
    rates: [Rate; 5],
    counted: [f64; 5],
}

const LOOPS: [&str; 5] = [
    "run",
    "bare json_variation",
    "bare AI SDK calls (usage event + json_variation)",
    "bare AI layer",
    "bare AI layer building contexts",
];

/// One round of the five loops, on a fresh mock-ld (a scenario's setup runs once per
/// project).
async fn overhead_round(contexts: u64, events: bool) -> Round {
    let mock = quiet_mock().await;
    let s = scenario(contexts, "concurrency = 2", events);
    let through_run = run(&s, external(&mock)).await;
    let run_share = settled_count(&mock).await as f64 / contexts as f64;
    mock.events().clear();
    let (bare, bare_share) = bare_loop(&mock, &s, 2).await;
    let (sdk_calls, sdk_calls_share) = bare_sdk_calls_loop(&mock, &s, 2).await;
    let (bare_ai, bare_ai_share) = bare_ai_loop(&mock, &s, 2).await;
    let (building, building_share) = bare_ai_building_loop(&mock, &s, 2).await;
    mock.shutdown().await;
    let load = &through_run.load;
    let run_rate = Rate {
        wall: load.achieved_rate,
        cpu: load.requests as f64 / through_run.harness.cpu_seconds.expect("process CPU time"),
    };
    Round {
        rates: [run_rate, bare, sdk_calls, bare_ai, building],
        counted: [
            run_share,
            bare_share,
            sdk_calls_share,
            bare_ai_share,
            building_share,
        ],
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The loops take about a second each, and this machine's speed drifts by tens of percent
/// from one second to the next: rounds interleave the loops, and each ratio is taken within
/// a round (the median over the rounds is printed, with the lowest and highest).
async fn overhead(contexts: u64, rounds: usize) {
    for events in [false, true] {
        let mut all = Vec::new();
        for round in 1..=rounds {
            let r = overhead_round(contexts, events).await;
            let rates: Vec<String> = r.rates.iter().map(|r| format!("{:.0}", r.wall)).collect();
            println!(
                "  events {}, round {round}: evals/s {}",
                if events { "on" } else { "off" },
                rates.join(", ")
            );
            all.push(r);
        }
        let label = if events { "on" } else { "off" };
        println!(
            "overhead, events {label}: {contexts} contexts, 2 workers, {rounds} rounds; run / loop within each round: median (lowest–highest)"
        );
        // With events on, the least share of loop `i`'s evaluations mock-ld counted.
        let counted = |i: usize| {
            if !events {
                return String::new();
            }
            let least = all.iter().map(|r| r.counted[i]).fold(1.0, f64::min);
            format!(
                "; mock-ld counted at least {:.1} % of its evaluations",
                least * 100.0
            )
        };
        for (i, name) in LOOPS.iter().enumerate().skip(1) {
            let ratios = |rate: fn(&Rate) -> f64| {
                let mut r: Vec<f64> = all
                    .iter()
                    .map(|r| rate(&r.rates[0]) / rate(&r.rates[i]))
                    .collect();
                r.sort_by(f64::total_cmp);
                format!("{:.2} ({:.2}–{:.2})", r[r.len() / 2], r[0], r[r.len() - 1])
            };
            println!(
                "  {name}: {:.0} evals/s; run / this by wall time {}, by CPU time {}{}",
                median(all.iter().map(|r| r.rates[i].wall).collect()),
                ratios(|r| r.wall),
                ratios(|r| r.cpu),
                counted(i),
            );
        }
        println!(
            "  run: {:.0} evals/s{}",
            median(all.iter().map(|r| r.rates[0].wall).collect()),
            counted(0)
        );
    }
}

/// Saturation: the closed model's rate on the same scenario, `seconds` worth at `guess`/s.
async fn saturation(guess: f64, seconds: u64) -> f64 {
    let mock = quiet_mock().await;
    let count = (guess * seconds as f64) as u64;
    let s = scenario(count.max(1), "concurrency = 16", true);
    let rate = run(&s, external(&mock)).await.load.achieved_rate;
    mock.shutdown().await;
    rate
}

/// A mock-ld that counts events but keeps none.
async fn quiet_mock() -> MockLdHandle {
    MockLd::start(mock_ld::Config {
        max_stored_events: 0,
        ..mock_ld::Config::default()
    })
    .await
    .unwrap()
}

async fn open_accuracy(rates: &[f64], seconds: u64) {
    let saturated = saturation(rates.iter().copied().fold(0.0, f64::max), seconds).await;
    println!("open model: saturation (closed model, 16 workers, same scenario) {saturated:.0}/s");
    for &rate in rates {
        let mock = quiet_mock().await;
        let count = (rate * seconds as f64) as u64;
        let s = scenario(
            count.max(1),
            &format!("model = \"open\"\nrate = {rate}\nduration = \"{seconds}s\""),
            true,
        );
        let r = run(&s, external(&mock)).await;
        // Requests are evaluation-only, so the run's duration ends with the last start.
        let achieved = r.load.requests as f64 / (r.duration_ms / 1000.0);
        println!(
            "open model: target {rate:.0}/s ({:.0} % of saturation) for {seconds} s: {} requests started, {achieved:.1}/s ({:+.2} %), corrected p99 {:.3} ms, raw p99 {:.3} ms",
            rate / saturated * 100.0,
            r.load.requests,
            (achieved / rate - 1.0) * 100.0,
            r.requests_corrected.p99_ms,
            r.requests_raw.p99_ms
        );
        mock.shutdown().await;
    }
}

/// Peak resident set of this process, from /proc (Linux).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// One scale run in this process (the child side of `scale`): the shipped
/// `scenarios/scale-1m.toml` with its population set to `contexts`, making `requests`
/// requests (each context in turn, again and again).
async fn scale_child(contexts: u64, requests: u64) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/scale-1m.toml");
    let mut s = scenario::load(&path).expect("scenarios/scale-1m.toml is valid");
    s.population.count = contexts;
    s.load.iterations = Some(requests);
    let started = Instant::now();
    let r = run(&s, Target::Embedded).await;
    let complete = r.events.as_ref().is_some_and(|e| e.complete);
    println!(
        "scale: {contexts} contexts, {requests} requests: wall {:.2} s (load {:.2} s, {:.0} evals/s), peak RSS {:.0} MB, events complete: {complete}",
        started.elapsed().as_secs_f64(),
        r.duration_ms / 1000.0,
        r.load.achieved_rate,
        peak_rss_mb()
    );
    if let Some(events) = r.events.as_ref().filter(|e| !e.complete) {
        let tracked: u64 = events.tracked.values().sum();
        let received: u64 = events.received.values().sum();
        println!(
            "  tracked {tracked}, received {received}; evaluations (made, counted): {:?}",
            events.evaluations
        );
    }
}

/// Each (contexts, requests) in a fresh process, so peak RSS is that run's alone. A run of
/// 100,000 requests lasts a second, too short for the event pipeline's memory to reach its
/// steady state; 100,000 contexts over 1,000,000 requests shows what the population's size
/// alone costs.
fn scale(sizes: &[(u64, u64)]) {
    let exe = std::env::current_exe().expect("own path");
    for (contexts, requests) in sizes {
        let out = std::process::Command::new(&exe)
            .env(SCALE_ENV, format!("{contexts}:{requests}"))
            .output()
            .expect("bench child runs");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Streamed LLM answers read by `llm_call::read_sse` from memory, as mock-ld frames them (one
/// `data:` frame per item): the client's own cost per chunk, without the network.
async fn sse_parse(streams: usize, rounds: usize) {
    use aiconfig_harness::runner::llm_call::read_sse;
    const CHUNKS: usize = 200;
    let id = r#""id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini""#;
    let tail = r#""service_tier":"default","system_fingerprint":"fp_mock_ld","usage":null"#;
    let mut frames: Vec<bytes::Bytes> = (0..CHUNKS)
        .map(|i| {
            format!(
                "data: {{{id},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" lorem{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],{tail}}}\n\n"
            )
            .into()
        })
        .collect();
    frames.push(format!("data: {{{id},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],{tail}}}\n\n").into());
    frames.push(format!("data: {{{id},\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{CHUNKS},\"total_tokens\":209,\"prompt_tokens_details\":{{\"cached_tokens\":0}}}}}}\n\n").into());
    frames.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    let bytes: usize = frames.iter().map(bytes::Bytes::len).sum();
    for round in 1..=rounds {
        let started = Instant::now();
        for _ in 0..streams {
            let body = futures::stream::iter(
                frames
                    .iter()
                    .cloned()
                    .map(Ok::<_, std::convert::Infallible>),
            );
            let outcome = read_sse(body, Instant::now()).await;
            assert!(
                outcome.error.is_none() && outcome.output_tokens == CHUNKS as u64,
                "{outcome:?}"
            );
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "sse parse, round {round}: {streams} streams of {} frames ({bytes} bytes): {:.0} ns per frame, {:.0} MB/s",
            frames.len(),
            elapsed * 1e9 / (streams * frames.len()) as f64,
            (streams * bytes) as f64 / elapsed / 1e6
        );
    }
}

#[tokio::main]
async fn main() {
    // As the `aiconfig-harness` binary does.
    aiconfig_harness::process::disable_transparent_huge_pages();
    if let Ok(size) = std::env::var(SCALE_ENV) {
        let (contexts, requests) = size.split_once(':').expect("CONTEXTS:REQUESTS");
        let count = |n: &str| n.parse().expect("a count");
        return scale_child(count(contexts), count(requests)).await;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this without it, and must
    // only see that it works.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = !args.iter().any(|a| a == "--bench");
    // `cargo bench --bench harness -- overhead` runs only that part.
    let parts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.contains(&part);
    if wanted("overhead") {
        if quick {
            overhead(2_000, 1).await;
        } else {
            overhead(300_000, 7).await;
        }
    }
    if wanted("open") {
        if quick {
            open_accuracy(&[200.0], 1).await;
        } else {
            open_accuracy(
                &[
                    1_000.0, 5_000.0, 20_000.0, 40_000.0, 60_000.0, 80_000.0, 100_000.0, 120_000.0,
                    140_000.0, 160_000.0,
                ],
                5,
            )
            .await;
        }
    }
    if wanted("sse") {
        if quick {
            sse_parse(10, 1).await;
        } else {
            sse_parse(5_000, 5).await;
        }
    }
    if wanted("scale") {
        if quick {
            scale(&[(2_000, 2_000)]);
        } else {
            scale(&[
                (100_000, 100_000),
                (100_000, 1_000_000),
                (1_000_000, 1_000_000),
            ]);
        }
    }
}
