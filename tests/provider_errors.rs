//! A step's `on_error` through the Rust SDK path, against a mock-ld started here whose
//! provider fault is switched on before the run and stays on throughout, so every call to
//! the faulty model fails and the counts are exact: under `llmRateLimited` (`Retry-After:
//! 1`) each step waits the Retry-After before each retry and makes exactly `retries` of
//! them; under `llmOutage` the fallback model is called once per step and its tokens are
//! costed at its own price; every call is tracked (a duration and an error or a success
//! per call) and every tracked event arrives.

use std::time::Duration;

use aiconfig_harness::results::checks::{Details, Status};
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario;
use mock_ld::{MockLd, MockLdHandle};
use serde_json::json;

const TOKEN: &str = "provider-errors-token";

/// Four requests of one step, four at once, on `model-a`; `model-b` answers 5 + 5 tokens.
/// `extra` goes at the end (`[[checks]]`).
fn scenario(on_error: &str, extra: &str) -> scenario::Scenario {
    let text = format!(
        r#"
name = "provider-errors"
seed = 11

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[[steps]]
config = "assistant"
on_error = {on_error}

[population]
count = 4

[load]
concurrency = 4
iterations = 4

[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = {{ median = "5ms", p99 = "5ms" }}
output_tokens = {{ median = 5, p99 = 5 }}

[llm.models.model-b]
latency = {{ median = "5ms", p99 = "5ms" }}
output_tokens = {{ median = 7, p99 = 7 }}

[prices]
model-a = {{ input = 1.0, output = 2.0 }}
model-b = {{ input = 100.0, output = 1000.0 }}
{extra}
"#
    );
    scenario::parse(std::path::Path::new("inline.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// A mock-ld with `fault` on from the start.
async fn faulty(fault: serde_json::Value) -> MockLdHandle {
    let mock = MockLd::start(mock_ld::Config {
        admin_token: Some(TOKEN.into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();
    reqwest::Client::new()
        .post(format!("{}/admin/faults", mock.base_url()))
        .bearer_auth(TOKEN)
        .json(&fault)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    mock
}

async fn run(on_error: &str, mock: &MockLdHandle) -> RunResults {
    run_with(on_error, "", mock).await
}

async fn run_with(on_error: &str, extra: &str, mock: &MockLdHandle) -> RunResults {
    let target = Target::in_process(mock, ("default", "test"), Some(TOKEN))
        .expect("mock-ld's default environment");
    let options = RunOptions::quiet(target);
    tokio::time::timeout(
        Duration::from_secs(30),
        runner::run(&scenario(on_error, extra), options),
    )
    .await
    .expect("the run ends within 30 s")
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A threshold on `metric` with `limit` (`max = "50%"`), scoped by `scope` (`config = …`).
fn threshold(metric: &str, limit: &str, scope: &str) -> String {
    format!("\n[[checks]]\nkind = \"threshold\"\nmetric = \"{metric}\"\n{limit}\n{scope}\n")
}

/// The status, value and samples of the threshold on `metric`.
fn judged(r: &RunResults, metric: &str) -> (Status, Option<f64>, u64) {
    let check = r
        .checks
        .iter()
        .find(|c| matches!(&c.details, Details::Threshold(d) if d.metric == metric))
        .unwrap_or_else(|| panic!("{metric}: {:#?}", r.checks));
    let Details::Threshold(d) = &check.details else {
        unreachable!()
    };
    (check.status, d.value, d.samples)
}

/// Tracked events by key, and every one received.
fn tracked(r: &RunResults, key: &str) -> u64 {
    let events = r.events.as_ref().expect("events verified");
    assert_eq!(
        events.tracked.get(key),
        events.received.get(key),
        "{key}: tracked {:?}, received {:?}",
        events.tracked,
        events.received
    );
    events.tracked.get(key).copied().unwrap_or(0)
}

/// The event accounting: every event the steps tracked, per call, arrived (the scenario
/// has no `[[faults]]`, so the results' `eventAccounting` is not computed; this is it).
fn all_received(r: &RunResults) {
    let events = r.events.as_ref().expect("events verified");
    let sum = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
    assert!(events.complete, "{events:?}");
    assert_eq!(sum(&events.tracked), sum(&events.received), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_calls_wait_the_retry_after_and_retry_exactly() {
    let mock = faulty(json!({"kind": "llmRateLimited", "model": "model-a", "retryAfter": 1})).await;
    let r = run_with(
        r#"{ retries = 2, backoff = "10ms", max_retry_after = "2s" }"#,
        &threshold(
            "failed_step_rate",
            "max = \"50%\"",
            "config = \"assistant\"",
        ),
        &mock,
    )
    .await;
    let v = &r.configs["assistant"].variations["only"];
    // Four steps, each 3 calls (the first and 2 retries), every one refused: no fallback.
    assert_eq!(
        (v.ai_calls, v.errors, v.successes, v.retries),
        (12, 12, 0, 8),
        "{v:#?}"
    );
    assert_eq!((v.fallbacks, v.failed_steps), (0, 4), "{v:#?}");
    assert_eq!(r.load.failed_requests, 4);
    // Every step failed: the threshold on what users got fails, over the 4 steps.
    assert_eq!(judged(&r, "failed_step_rate"), (Status::Fail, Some(1.0), 4));
    // Two waits of Retry-After (1 s) per step, at least (less the histogram's 0.1 %).
    assert!(
        v.latency.end_to_end.min_ms >= 1_998.0,
        "{:?}",
        v.latency.end_to_end
    );
    // Each call is tracked on a run of its own: a duration and an error per call.
    assert_eq!(tracked(&r, "$ld:ai:duration:total"), 12);
    assert_eq!(tracked(&r, "$ld:ai:generation:error"), 12);
    assert_eq!(tracked(&r, "$ld:ai:generation:success"), 0);
    all_received(&r);

    // A Retry-After above max_retry_after ends the retries at once.
    let mock = faulty(json!({"kind": "llmRateLimited", "model": "model-a", "retryAfter": 5})).await;
    let r = run(r#"{ retries = 2, max_retry_after = "1s" }"#, &mock).await;
    let v = &r.configs["assistant"].variations["only"];
    assert_eq!((v.ai_calls, v.retries, v.failed_steps), (4, 0, 4), "{v:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_falls_back_to_the_second_model_costed_at_its_price() {
    let mock = faulty(json!({"kind": "llmOutage", "model": "model-a"})).await;
    let checks = threshold("failed_step_rate", "max = 0", "")
        + &threshold("error_rate", "max = \"50%\"", "");
    let r = run_with(
        r#"{ retries = 1, backoff = "10ms", fallback_model = "model-b" }"#,
        &checks,
        &mock,
    )
    .await;
    let v = &r.configs["assistant"].variations["only"];
    // Per step: model-a twice (503), then model-b once, which answers.
    assert_eq!(
        (v.ai_calls, v.errors, v.successes, v.retries),
        (12, 8, 4, 4),
        "{v:#?}"
    );
    assert_eq!(
        (v.fallbacks, v.fallback_successes, v.failed_steps),
        (4, 4, 0),
        "{v:#?}"
    );
    assert_eq!(r.load.failed_requests, 0, "users got answers");
    // So no step failed, while the provider failed 8 of 12 calls.
    assert_eq!(judged(&r, "failed_step_rate"), (Status::Pass, Some(0.0), 4));
    let (status, rate, calls) = judged(&r, "error_rate");
    assert_eq!((status, calls), (Status::Fail, 12));
    assert!((rate.unwrap() - 8.0 / 12.0).abs() < 1e-12, "{rate:?}");
    // The tokens are model-b's and cost its price, not the served variation's model's.
    assert_eq!(
        r.cost.by_model.keys().collect::<Vec<_>>(),
        ["model-b"],
        "{:#?}",
        r.cost
    );
    let b = &r.cost.by_model["model-b"];
    assert_eq!((b.calls, b.output_tokens), (4, 28), "{b:#?}");
    let expected = (b.input_tokens as f64 * 100.0 + 28.0 * 1000.0) / 1e6;
    assert!((b.cost_usd - expected).abs() < 1e-12, "{b:#?}");
    assert_eq!(tracked(&r, "$ld:ai:duration:total"), 12);
    assert_eq!(tracked(&r, "$ld:ai:generation:error"), 8);
    assert_eq!(tracked(&r, "$ld:ai:generation:success"), 4);
    assert_eq!(tracked(&r, "$ld:ai:tokens:output"), 4);
    all_received(&r);

    // The reports show the retries and fallbacks beside the per-call error rate.
    let text = aiconfig_harness::report::terminal::render(&r);
    assert!(
        text.contains("retries and fallbacks:") && text.contains("66.67 %"),
        "{text}"
    );
    let md = aiconfig_harness::report::markdown::render(&r).unwrap();
    assert!(md.contains("### Retries and fallbacks"), "{md}");
}
