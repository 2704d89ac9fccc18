//! The load models end to end, through `runner::run` on the embedded mock-ld with LLM calls
//! that really wait: every scheduled request runs and is recorded once, the open model
//! counts a wait for a slot in the corrected latency and not in the raw one, a cancelled
//! run stops early and is marked partial, and `llm.time_scale` reaches models the scenario
//! does not describe.
//!
//! Only lower bounds on time are asserted (an LLM call cannot end before its latency), so a
//! slow machine cannot fail these tests.

use std::time::Duration;

use aiconfig_harness::results::verdict::RunStatus;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::llm::{Profile, DEFAULT_MODEL};
use mock_ld::MockLd;
use tokio_util::sync::CancellationToken;

/// One completion config whose every call takes 50 ms; `load` is the `[load]` table's body.
fn scenario(load: &str) -> Scenario {
    parse(&scenario_text(load))
}

fn parse(text: &str) -> Scenario {
    scenario::parse("inline.toml".as_ref(), text).unwrap_or_else(|e| panic!("{e}"))
}

fn scenario_text(load: &str) -> String {
    format!(
        r#"
name = "load-models"
seed = 3
[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "Be brief." }}]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"
[population]
count = 100
[load]
{load}
[llm.models.model-a]
latency = {{ median = "50ms", p99 = "50ms" }}
ttft = {{ median = "10ms", p99 = "10ms" }}
error_rate = 0
"#
    )
}

async fn run(scenario: &Scenario, cancel: CancellationToken) -> RunResults {
    run_on(scenario, Target::Embedded, cancel).await
}

async fn run_on(scenario: &Scenario, target: Target, cancel: CancellationToken) -> RunResults {
    let options = RunOptions {
        target,
        progress: false,
        cancel,
    };
    runner::run(scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn ai_calls(results: &RunResults) -> u64 {
    results.configs["assistant"].variations["only"].ai_calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_run_short_of_slots_counts_the_wait_in_corrected_latency_only() {
    // 200 requests due over 1 s, but 4 slots of 50 ms calls serve at most 80 a second: the
    // last requests start about 1.5 s after they were due.
    let s = scenario("model = \"open\"\nrate = 200\nduration = \"1s\"\nmax_in_flight = 4");
    let r = run(&s, CancellationToken::new()).await;
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!((r.load.requests, r.load.failed_requests), (200, 0));
    assert_eq!(ai_calls(&r), 200);
    assert_eq!(r.requests_corrected.count, 200);
    assert_eq!(r.requests_raw.count, 200);
    // 200 calls of 50 ms, 4 at a time, take 2.5 s at least.
    assert!(r.duration_ms >= 2_450.0, "{} ms", r.duration_ms);
    assert!(r.requests_raw.min_ms >= 49.0, "{:?}", r.requests_raw);
    assert!(
        r.requests_corrected.max_ms >= 1_400.0,
        "the last requests waited for a slot: {:?}",
        r.requests_corrected
    );
    assert!(r.requests_corrected.p99_ms > r.requests_raw.p99_ms);
    // Every request's schedule lag is recorded, and a wait for a slot is the system's, not
    // the harness's: the lag stays far below the 1.4 s the last requests waited.
    let lag = r
        .harness
        .schedule_lag
        .as_ref()
        .expect("an open run has a schedule");
    assert_eq!(lag.count, 200);
    assert!(lag.p99_ms < r.requests_corrected.max_ms / 2.0, "{lag:?}");
    assert!(r.harness.lag_probe.count > 0, "{:?}", r.harness.lag_probe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_run_with_slots_to_spare_runs_every_scheduled_request() {
    let s = scenario("model = \"open\"\nrate = 400\nduration = \"500ms\"");
    let r = run(&s, CancellationToken::new()).await;
    assert_eq!((r.load.requests, r.load.failed_requests), (200, 0));
    assert_eq!(ai_calls(&r), 200);
    assert_eq!(r.load.target_rate, Some(400.0));
    // The last request is due at 500 ms and its call takes 50 ms.
    assert!(r.duration_ms >= 549.0, "{} ms", r.duration_ms);
    assert!(r.requests_raw.min_ms >= 49.0, "{:?}", r.requests_raw);
    assert!(r.requests_corrected.min_ms >= r.requests_raw.min_ms);
    let per_second: u64 = r.timeline.iter().map(|s| s.requests).sum();
    assert_eq!(per_second, 200, "each request is in the timeline once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_run_makes_its_iterations_with_its_virtual_users() {
    let s = scenario("concurrency = 5\niterations = 50");
    let r = run(&s, CancellationToken::new()).await;
    assert_eq!((r.load.requests, r.load.failed_requests), (50, 0));
    assert_eq!(ai_calls(&r), 50);
    // 5 users, 10 calls of 50 ms each, one after the other.
    assert!(r.duration_ms >= 490.0, "{} ms", r.duration_ms);
    // Closed-model requests start when a user is free: nothing to correct, no schedule.
    assert_eq!(r.requests_corrected.count, r.requests_raw.count);
    assert_eq!(r.harness.schedule_lag, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_run_without_llm_calls_runs_every_request_in_place() {
    // Requests that never wait are finished by the dispatchers themselves.
    let text = scenario_text("model = \"open\"\nrate = 2000\nduration = \"500ms\"")
        + "\n[[steps]]\nconfig = \"assistant\"\ncall_llm = false\n";
    let r = run(&parse(&text), CancellationToken::new()).await;
    assert_eq!((r.load.requests, r.load.failed_requests), (1000, 0));
    let only = &r.configs["assistant"].variations["only"];
    assert_eq!((only.evaluations, only.ai_calls), (1000, 0));
    assert_eq!(r.requests_corrected.count, 1000);
    let per_second: u64 = r.timeline.iter().map(|s| s.requests).sum();
    assert_eq!(per_second, 1000);
}

/// An in-process mock-ld the test can watch, as an external target.
async fn external_mock() -> (mock_ld::MockLdHandle, Target) {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    let target = Target::External {
        sdk_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        api_url: mock.base_url(),
        sdk_key: mock.config().sdk_key.clone(),
        api_token: mock.config().api_token.clone(),
        admin_token: None,
    };
    (mock, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_early_and_is_marked_partial() {
    for load in [
        "model = \"open\"\nrate = 100\nduration = \"20s\"",
        "concurrency = 2\niterations = 400",
    ] {
        let (mock, target) = external_mock().await;
        let cancel = CancellationToken::new();
        // Stopped once the load is under way, however long the setup took.
        let (stop, llm) = (cancel.clone(), mock.llm().clone());
        tokio::spawn(async move {
            while llm.stats().values().map(|m| m.requests).sum::<u64>() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.cancel();
        });
        let r = run_on(&scenario(load), target, cancel).await;
        assert_eq!(r.status, RunStatus::Interrupted, "{load}");
        // Either load would take 10 s or more; some requests ran before the stop.
        assert!(
            (1..400).contains(&r.load.requests),
            "{load}: {}",
            r.load.requests
        );
        assert_eq!(
            ai_calls(&r),
            r.load.requests,
            "{load}: every started request finished"
        );
        mock.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_scale_reaches_models_without_a_profile() {
    let (mock, target) = external_mock().await;
    // model-b has no [llm.models] entry: mock-ld answers it with its default profile.
    let text = scenario_text("concurrency = 4\niterations = 20")
        .replace("name = \"model-a\"", "name = \"model-b\"")
        .replace(
            "[llm.models.model-a]",
            "[llm]\ntime_scale = 0.05\n[llm.models.model-a]",
        );
    let r = run_on(&parse(&text), target, CancellationToken::new()).await;
    assert_eq!(ai_calls(&r), 20);
    let profiles = mock.llm().profiles();
    assert_eq!(profiles[DEFAULT_MODEL].time_scale, 0.05);
    assert_eq!(profiles["model-a"].time_scale, 0.05);
    // The rest of the default profile is kept.
    assert_eq!(
        profiles[DEFAULT_MODEL].latency_ms,
        Profile::default().latency_ms
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_time_scale_the_default_profile_is_left_alone() {
    let (mock, target) = external_mock().await;
    let own_default = Profile {
        time_scale: 0.1,
        ..Profile::default()
    };
    mock.llm().set_profile(DEFAULT_MODEL, own_default);
    let r = run_on(
        &scenario("concurrency = 2\niterations = 4"),
        target,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(ai_calls(&r), 4);
    let profiles = mock.llm().profiles();
    assert_eq!(profiles[DEFAULT_MODEL], own_default);
    assert_eq!(profiles["model-a"].time_scale, 1.0);
    mock.shutdown().await;
}
