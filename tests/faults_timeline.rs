//! `[[faults]]` end to end against a mock-ld started here (with an admin token, as a shared
//! one would have), so that its `/admin/faults` can be read after the run: an `eventsError`
//! window and an `llmError` window are switched on and off on the run's clock, counted, and
//! none is left on; a fault mock-ld refuses ends the run as an input error, also leaving
//! none on; a target without mock-ld's control API is refused before anything starts.

use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunError, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::{MockLd, MockLdHandle};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "faults-test-token";

/// 40 requests/s for 4 s on one model answering in 10 ms, events flushed every 250 ms.
fn scenario(faults: &str) -> Scenario {
    let text = format!(
        r#"
name = "faults"
seed = 5

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[population]
count = 200

[load]
model = "open"
rate = 40
duration = "4s"

[load.events]
flush_interval = "250ms"

[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = {{ median = "10ms", p99 = "10ms" }}
output_tokens = {{ median = 5, p99 = 5 }}
{faults}
"#
    );
    scenario::parse(std::path::Path::new("inline.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

const TWO_WINDOWS: &str = r#"
[[faults]]
at = "500ms"
duration = "1500ms"
kind = "eventsError"
status = 503

[[faults]]
at = "1s"
duration = "1500ms"
kind = "llmError"
model = "model-a"
description = "provider errors"
"#;

async fn mock() -> MockLdHandle {
    MockLd::start(mock_ld::Config {
        admin_token: Some(TOKEN.into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap()
}

fn target(mock: &MockLdHandle) -> Target {
    Target::in_process(mock, ("default", "test"), Some(TOKEN))
        .expect("mock-ld's default environment")
}

async fn run(scenario: &Scenario, mock: &MockLdHandle) -> Result<RunResults, RunError> {
    run_until(scenario, mock, CancellationToken::new()).await
}

async fn run_until(
    scenario: &Scenario,
    mock: &MockLdHandle,
    cancel: CancellationToken,
) -> Result<RunResults, RunError> {
    let options = RunOptions {
        target: target(mock),
        progress: false,
        cancel,
    };
    runner::run(scenario, options).await
}

/// `GET /admin/faults` of the test's mock-ld.
async fn faults(mock: &MockLdHandle) -> Value {
    reqwest::Client::new()
        .get(format!("{}/admin/faults", mock.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_windows_are_applied_counted_recorded_and_switched_off() {
    let mock = mock().await;
    let results = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(&scenario(TWO_WINDOWS), &mock),
    )
    .await
    .expect("the run ends")
    .unwrap_or_else(|e| panic!("{e:#}"));

    let all = || format!("{:#?}", results.faults);
    assert_eq!(results.faults.len(), 2, "{}", all());
    for w in &results.faults {
        assert!(w.error.is_none(), "{}", all());
        let (on, off) = (w.on_ms.unwrap(), w.off_ms.unwrap());
        assert!(on >= w.planned_at_ms && off > on, "{}", all());
        assert!(w.counts.requests > 0, "{}", all());
    }
    let (events, llm) = (&results.faults[0], &results.faults[1]);
    assert_eq!(events.fault.kind.name(), "eventsError");
    assert_eq!(events.scope(), "default/test");
    assert!(
        events.counts.payloads > 0 && events.counts.events > 0,
        "{}",
        all()
    );
    assert_eq!(llm.fault.kind.name(), "llmError");
    assert_eq!(
        (llm.fault.status, llm.scope()),
        (Some(500), "model model-a".to_owned())
    );
    assert_eq!(llm.description.as_deref(), Some("provider errors"));
    assert!(
        results.load.failed_requests >= llm.counts.requests,
        "{}",
        all()
    );
    let refused = results.refused_events.as_ref().expect("refusedEvents");
    // The fault counts every attempt; mock-ld's totals distinct payloads and attempts apart.
    // Both count an attempt the moment it is refused, so the fault's final record and the
    // totals agree exactly.
    assert_eq!(
        refused.refused_attempts, events.counts.payloads,
        "{refused:?} vs {:?}",
        events.counts
    );
    assert!(refused.refused_payloads <= refused.refused_attempts);
    // Every tracker event is accounted for, and with mock-ld up throughout, each one not
    // received was refused by the fault and not taken on the SDK's one retry.
    let a = results.event_accounting.expect("eventAccounting");
    assert!(a.refused > 0, "{a:?}");
    assert_eq!(
        a.tracked,
        a.received + a.refused + a.never_received,
        "{a:?}"
    );
    assert_eq!(a.never_received, 0, "{a:?}");

    let after = faults(&mock).await;
    assert_eq!(after["active"], Value::Array(vec![]), "{after}");
    assert_eq!(after["ended"].as_array().map(Vec::len), Some(2), "{after}");

    // The reports show the table and the HTML timeline the bands.
    let text = aiconfig_harness::report::terminal::render(&results);
    assert!(
        text.contains("resilience:") && text.contains("llmError") && text.contains("model model-a"),
        "{text}"
    );
    let html = aiconfig_harness::report::html::render(&results).unwrap();
    assert!(html.contains("<h2") && html.contains(">\neventsError\n</text>"));
    let md = aiconfig_harness::report::markdown::render(&results).unwrap();
    assert!(
        md.contains("### Resilience") && md.contains("events refused in default/test"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_mock_ld_refuses_stops_the_run_as_an_input_error_and_leaves_none_on() {
    let mock = mock().await;
    let refused = format!(
        "{TWO_WINDOWS}\n[[faults]]\nat = \"800ms\"\nduration = \"1s\"\nkind = \"pollingError\"\nenvironment = \"nowhere\"\n"
    );
    let error = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(&scenario(&refused), &mock),
    )
    .await
    .expect("the run ends")
    .unwrap_err();
    let RunError::Input(message) = &error else {
        panic!("not an input error: {error:#}");
    };
    assert!(
        message.contains("pollingError") && message.contains("404"),
        "{message}"
    );
    let after = faults(&mock).await;
    assert_eq!(after["active"], Value::Array(vec![]), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_switches_a_fault_off_before_the_run_ends() {
    let mock = mock().await;
    let long = "\n[[faults]]\nat = \"300ms\"\nduration = \"1h\"\nkind = \"llmOutage\"\n";
    let s = scenario(long);
    assert_eq!(
        s.warnings.len(),
        1,
        "outlasting the load is a warning: {:?}",
        s.warnings
    );
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        ctrl_c.cancel();
    });
    let results = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run_until(&s, &mock, cancel),
    )
    .await
    .expect("the run ends")
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        results.status,
        aiconfig_harness::results::verdict::RunStatus::Interrupted
    );
    let w = &results.faults[0];
    assert!(
        w.on_ms.is_some() && w.off_ms.is_some() && w.error.is_none(),
        "{w:#?}"
    );
    assert!(w.counts.requests > 0, "{w:#?}");
    let after = faults(&mock).await;
    assert_eq!(after["active"], Value::Array(vec![]), "{after}");
}

#[test]
fn a_target_without_mock_lds_admin_api_is_refused_naming_the_fault() {
    let s = scenario(TWO_WINDOWS);
    let Err(RunError::Input(message)) =
        runner::faults::plans(&s, runner::faults::Admins::default(), 1)
    else {
        panic!("plans without an admin API");
    };
    assert!(
        message
            .starts_with("field `faults[0]` (eventsError): the target has no mock-ld /admin API"),
        "{message}"
    );
}

/// `events_lost_rate` judges what the events fault cost: with none allowed it fails, its
/// value the share of tracked events the accounting says were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_events_threshold_fails_under_an_events_fault() {
    let mock = mock().await;
    let with_check = format!(
        "{TWO_WINDOWS}\n[[checks]]\nkind = \"threshold\"\nmetric = \"events_lost_rate\"\nmax = \"0%\"\n"
    );
    let results = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(&scenario(&with_check), &mock),
    )
    .await
    .expect("the run ends")
    .expect("the run completes");
    let a = results.event_accounting.expect("eventAccounting");
    let check = results
        .checks
        .iter()
        .find(|c| c.name.contains("events_lost_rate"))
        .unwrap_or_else(|| panic!("{:#?}", results.checks));
    assert_eq!(
        check.status,
        aiconfig_harness::results::checks::Status::Fail,
        "{check:?}"
    );
    let lost = (a.refused + a.never_received) as f64 / a.tracked as f64;
    assert!(
        check.summary.contains(&format!("{:.3} %", lost * 100.0)),
        "{} vs {a:?}",
        check.summary
    );
    assert_eq!(
        results.verdict.outcome,
        aiconfig_harness::results::verdict::Outcome::Failed
    );
}
