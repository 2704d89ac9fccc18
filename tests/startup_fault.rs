//! LaunchDarkly unreachable at start-up, through the real Rust SDK and the embedded mock-ld:
//! an `sdkUnavailable` fault at `0s` goes on before the SDK client starts, the client times
//! out after `load.init_timeout`, the load starts anyway and serves the fallback, then real
//! variations once the SDK initialized at its next stream retry. The `fallback_served`
//! threshold fails with `max = 0`, and `recovery_time` fails when a fault's streams were not
//! back before the load ended (a `streamDropped` still on at the load's end). Without a
//! start-up fault, a timeout is the run error it always was.

use aiconfig_harness::results::checks::Status;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunError, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::MockLd;

/// 30 requests/s for 10 s; LaunchDarkly unreachable for 3 s from the SDK client's start (it
/// initializes at its third stream attempt at the latest, 3.5–7 s after starting, 1 s of
/// which was the wait), and every stream dropped from second 8 to past the load's end.
const SCENARIO: &str = r#"
name = "startup-fault"
seed = 9

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "only"
model = { name = "model-a" }
messages = [{ role = "system", content = "You are terse." }]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[population]
count = 200

[load]
model = "open"
rate = 30
duration = "10s"
init_timeout = "1s"

[load.events]
flush_interval = "500ms"

[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = { median = "10ms", p99 = "10ms" }
output_tokens = { median = 5, p99 = 5 }

[[faults]]
at = "0s"
duration = "3s"
kind = "sdkUnavailable"

[[faults]]
at = "8s"
duration = "1m"
kind = "streamDropped"

[[checks]]
kind = "threshold"
name = "no fallback"
metric = "fallback_served"
max = 0

[[checks]]
kind = "threshold"
name = "recovery"
metric = "recovery_time"
max = "1h"
"#;

fn parse(text: &str) -> Scenario {
    scenario::parse(std::path::Path::new("inline.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(scenario: &Scenario, target: Target) -> Result<RunResults, RunError> {
    let options = RunOptions::quiet(target);
    runner::run(scenario, options).await
}

fn check<'a>(
    results: &'a RunResults,
    name: &str,
) -> &'a aiconfig_harness::results::checks::CheckOutcome {
    results
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {:?}", results.checks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_starts_on_the_fallback_and_serves_variations_once_the_sdk_initialized() {
    let results = run(&parse(SCENARIO), Target::Embedded).await.unwrap();

    let start = results.sdk_start.as_ref().expect("sdkStart");
    assert_eq!((start.clients, start.timed_out), (1, 1), "{start:?}");
    assert!(start.startup_fault, "{start:?}");
    assert_eq!(start.initialized_later.count, 1, "{start:?}");
    let initialized_s = start.initialized_later.max_ms / 1000.0;

    let startup = &results.faults[0];
    assert!(startup.at_startup, "{startup:?}");
    // On before the load, for its duration from the SDK client's start.
    assert!(startup.on_ms.unwrap() < 0.0, "{startup:?}");
    assert!(startup.off_ms.is_some(), "{startup:?}");
    assert_eq!(startup.streams_before, Some(1), "{startup:?}");
    let served = startup.served.expect("served");
    assert!(served.during.fallback > 0, "{served:?}");

    // The fallback, then the real variation.
    let config = &results.configs["assistant"].variations;
    assert!(config["(default)"].evaluations > 0, "{config:?}");
    assert!(config["only"].evaluations > 0, "{config:?}");
    // Requests scheduled after the second the SDK initialized in evaluated after it.
    let later: Vec<_> = results
        .timeline
        .iter()
        .filter(|s| s.second as f64 > initialized_s.ceil())
        .collect();
    assert!(!later.is_empty(), "initialized at {initialized_s} s");
    for s in later {
        assert!(s.evaluations > 0, "{s:?}");
        assert_eq!(
            s.fallback_served, 0,
            "second {s:?} (initialized {initialized_s} s)"
        );
    }
    let total: u64 = results.timeline.iter().map(|s| s.fallback_served).sum();
    assert_eq!(total, config["(default)"].evaluations);

    let fallback = check(&results, "no fallback");
    assert_eq!(fallback.status, Status::Fail, "{}", fallback.summary);
    // The streams the dropping fault ended were not back before the load ended: whatever
    // the limit, the recovery fails, and says so.
    let recovery = check(&results, "recovery");
    assert_eq!(recovery.status, Status::Fail, "{}", recovery.summary);
    assert!(
        recovery.summary.contains("not back before the load ended"),
        "{}",
        recovery.summary
    );
    assert!(results.faults[1].recovery().is_err());
}

/// Without a start-up fault, the SDK client that cannot initialize in `init_timeout` (its
/// mock-ld already refusing every SDK endpoint) ends the run as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_start_up_fault_a_timeout_is_a_run_error() {
    const TOKEN: &str = "startup-test-token";
    let mock = MockLd::start(mock_ld::Config {
        admin_token: Some(TOKEN.into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();
    reqwest::Client::new()
        .post(format!("{}/admin/faults", mock.base_url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"kind": "sdkUnavailable", "project": "default", "environment": "test"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let text = SCENARIO
        .split("[[faults]]")
        .next()
        .unwrap()
        .replace("duration = \"10s\"", "duration = \"1s\"");
    let target = Target::in_process(&mock, ("default", "test"), Some(TOKEN))
        .expect("mock-ld's default environment");
    let error = run(&parse(&text), target).await.unwrap_err();
    assert!(
        matches!(
            error,
            RunError::Sdk(aiconfig_harness::ld_client::SdkError::Timeout { .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("1s"), "{error}");
}

/// The Python worker through the same start-up fault: its SDK (`start_wait`) times out,
/// the worker goes on uninitialized, serves the fallback, and reports both. About 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_serves_the_fallback_after_a_start_up_timeout() {
    use aiconfig_harness::runner::workers::install;
    use aiconfig_harness::scenario::SdkKind;
    if let Err(missing) = install::launch(SdkKind::Python) {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{missing}");
        eprintln!("skipped: {missing}");
        return;
    }
    let text = SCENARIO
        .split("[[faults]]")
        .next()
        .unwrap()
        .replace(
            "init_timeout = \"1s\"",
            "init_timeout = \"1s\"\nsdk = \"python\"\nworkers = 1\nparity_sample = 0",
        )
        .replace("duration = \"10s\"", "duration = \"6s\"")
        // The fault's time counts from before the worker process starts: its interpreter
        // and imports take a few seconds of it.
        + "[[faults]]\nat = \"0s\"\nduration = \"6s\"\nkind = \"sdkUnavailable\"\n";
    let results = run(&parse(&text), Target::Embedded).await.unwrap();
    let start = results.sdk_start.as_ref().expect("sdkStart");
    assert_eq!((start.clients, start.timed_out), (1, 1), "{start:?}");
    let served = results.faults[0].served.expect("served");
    assert!(served.during.fallback > 0, "{served:?}");
    let fallback: u64 = results.timeline.iter().map(|s| s.fallback_served).sum();
    assert!(fallback > 0);
    assert_eq!(
        fallback,
        results.configs["assistant"].variations["(default)"].evaluations
    );
}
