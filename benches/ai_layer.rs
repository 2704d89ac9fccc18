//! What the AI Config layer costs on top of the evaluation it wraps: `completion_config`
//! against a bare `json_variation` of the same flag, on the same client and contexts.
//!
//! One real Rust SDK client, initialized from an in-process mock-ld, with events off
//! (`events: None`, so both sides build their events for the null processor). 1,000
//! contexts with a few attributes, cycled. Two AI Configs:
//!
//! - `plain`: prompts without tags, called with no variables: the layer's floor (usage
//!   event, evaluation, cache hit, tracker).
//! - `templated`: a system prompt with `{{ldctx.key}}`, `{{ldctx.tier}}` and two caller
//!   variables, and a user prompt with one, called with variables: adds `ldctx` (the
//!   context as JSON) and two renders.
//!
//! Criterion measures each call. After the criterion group the bench times the three
//! loops itself, interleaved, best of 5 rounds, and prints
//! `ai layer overhead: ... ratio = X` (time per `completion_config` / time per bare
//! `json_variation`).
//!
//! `cargo test --benches` runs this binary without `--bench`: criterion then runs each
//! benchmark once and the ratio section runs a few hundred calls of each.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiconfig_harness::ai::{AiClient, AiCompletionConfigDefault, Variables};
use aiconfig_harness::ld_client::{start_client, SdkOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use launchdarkly_server_sdk::{Client, Context, ContextBuilder};
use mock_ld::{MockLd, MockLdHandle};
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PLAIN: &str = "plain";
const TEMPLATED: &str = "templated";
const CONTEXTS: usize = 1_000;

/// `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's own rule).
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

fn variation(system: &str, user: &str) -> Value {
    json!({
        "_ldMeta": {"enabled": true, "variationKey": "premium-a", "version": 4, "mode": "completion"},
        "model": {"name": "gpt-4o", "parameters": {"temperature": 0.2, "maxTokens": 1024}},
        "provider": {"name": "openai"},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]
    })
}

fn flag(key: &str, variation: Value) -> mock_ld::model::Flag {
    serde_json::from_value(json!({
        "key": key, "on": true, "salt": key, "variations": [variation],
        "fallthrough": {"variation": 0}, "offVariation": 0
    }))
    .expect("a valid flag")
}

struct Bench {
    /// Keeps serving the SDK's stream while the bench runs.
    _mock: MockLdHandle,
    client: Arc<Client>,
    ai: AiClient,
    contexts: Vec<Context>,
    variables: Variables,
    default: AiCompletionConfigDefault,
    default_json: Value,
}

impl Bench {
    fn bare(&self, key: &str, i: usize) {
        let context = &self.contexts[i % CONTEXTS];
        black_box(
            self.client
                .json_variation(context, key, self.default_json.clone()),
        );
    }

    fn layer(&self, key: &str, variables: Option<&Variables>, i: usize) {
        let context = &self.contexts[i % CONTEXTS];
        let served = self
            .ai
            .completion_config(key, context, &self.default, variables);
        black_box(served.expect("a readable config"));
    }
}

fn setup(runtime: &tokio::runtime::Runtime) -> Bench {
    let (mock, client) = runtime.block_on(async {
        let mock = MockLd::start(mock_ld::Config::default())
            .await
            .expect("mock-ld");
        let env = mock
            .store()
            .environment("default", "test")
            .expect("default env");
        env.upsert_flag(flag(
            PLAIN,
            variation("You are a concise support assistant.", "Help."),
        ));
        let system =
            "You help {{ldctx.key}}, a {{ldctx.tier}} customer of {{product}} ({{region}}).";
        env.upsert_flag(flag(TEMPLATED, variation(system, "{{question}}")));
        let options = SdkOptions {
            base_url: mock.base_url(),
            stream_url: None,
            events_url: None,
            sdk_key: mock.config().sdk_key.clone(),
            events: None,
        };
        let client = start_client(&options, Duration::from_secs(10))
            .await
            .expect("SDK");
        (mock, Arc::new(client))
    });
    let contexts = (0..CONTEXTS)
        .map(|i| {
            ContextBuilder::new(format!("user-{i}"))
                .set_string("tier", ["free", "pro", "premium"][i % 3])
                .set_string("country", ["us", "de", "jp"][i % 3])
                .build()
                .expect("valid context")
        })
        .collect();
    let variables =
        json!({"product": "Acme Cloud", "region": "eu-west", "question": "Why is my bill higher?"});
    let default = AiCompletionConfigDefault::default();
    Bench {
        _mock: mock,
        ai: AiClient::new(client.clone()),
        client,
        contexts,
        variables: variables.as_object().expect("an object").clone(),
        default_json: default.to_json(),
        default,
    }
}

fn ai_layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let bench = setup(&runtime);
    let mut group = c.benchmark_group("ai_layer");
    for (name, key) in [
        ("bare_json_variation/plain", PLAIN),
        ("bare_json_variation/templated", TEMPLATED),
    ] {
        let mut i = 0;
        group.bench_function(name, |b| b.iter(|| (bench.bare(key, i), i += 1)));
    }
    let mut i = 0;
    group.bench_function("completion_config/no_variables", |b| {
        b.iter(|| (bench.layer(PLAIN, None, i), i += 1))
    });
    let mut i = 0;
    group.bench_function("completion_config/with_variables", |b| {
        b.iter(|| (bench.layer(TEMPLATED, Some(&bench.variables), i), i += 1))
    });
    group.finish();
    print_ratios(&bench);
}

/// Interleaved rounds of each loop; the best round of each, so that a round disturbed by
/// the SDK's own threads does not count.
fn print_ratios(bench: &Bench) {
    let (rounds, calls) = if test_mode() { (1, 300) } else { (5, 200_000) };
    let time = |f: &dyn Fn(usize)| {
        let started = Instant::now();
        (0..calls).for_each(f);
        started.elapsed().as_secs_f64() * 1e9 / calls as f64
    };
    let mut best = [f64::INFINITY; 4];
    for _ in 0..rounds {
        let loops: [&dyn Fn(usize); 4] = [
            &|i| bench.bare(PLAIN, i),
            &|i| bench.layer(PLAIN, None, i),
            &|i| bench.bare(TEMPLATED, i),
            &|i| bench.layer(TEMPLATED, Some(&bench.variables), i),
        ];
        for (best, f) in best.iter_mut().zip(loops) {
            *best = best.min(time(f));
        }
    }
    let [bare_plain, plain, bare_templated, templated] = best;
    println!();
    if test_mode() {
        println!("(test mode: {calls} calls of each loop, not a measurement)");
    }
    println!(
        "ai layer overhead: completion_config without variables = {plain:.0} ns/call, bare json_variation = {bare_plain:.0} ns/call, ratio = {:.2}",
        plain / bare_plain
    );
    println!(
        "ai layer overhead: completion_config with variables = {templated:.0} ns/call, bare json_variation = {bare_templated:.0} ns/call, ratio = {:.2}",
        templated / bare_templated
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = ai_layer
}
criterion_main!(benches);
