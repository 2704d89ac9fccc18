//! Two runs against one mock-ld, as several CI runs share a service container: the second
//! loses events under an `eventsError`, and its events check and event accounting must
//! show the loss rather than count the first run's events as its own. Its received count is
//! what mock-ld took from it alone: mock-ld's total less the first run's.

use std::time::Duration;

use aiconfig_harness::results::checks::Status;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::events::log::Filter;
use mock_ld::{MockLd, MockLdHandle};

const TOKEN: &str = "shared-target-token";

/// 20 requests/s for 4 s, events flushed every 250 ms, under AI Config `config` (each run
/// its own, as the REST set-up refuses one that exists; both in `default`/`test`).
fn scenario(config: &str, faults: &str) -> Scenario {
    let text = format!(
        r#"
name = "shared"
seed = 9

[[ai_configs]]
key = "{config}"

[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "You are terse." }}]

[population]
count = 100

[load]
model = "open"
rate = 20
duration = "4s"

[load.events]
flush_interval = "250ms"

[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = {{ median = "10ms", p99 = "10ms" }}
output_tokens = {{ median = 5, p99 = 5 }}

[[checks]]
kind = "events_complete"
{faults}
"#
    );
    scenario::parse(std::path::Path::new("inline.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// `/bulk` answers 503 from 1 s to 3 s: a payload refused early in it is refused again on
/// the SDK's one retry a second later, and dropped.
const EVENTS_LOST: &str = r#"
[[faults]]
at = "1s"
duration = "2s"
kind = "eventsError"
status = 503
"#;

async fn run(scenario: &Scenario, mock: &MockLdHandle) -> RunResults {
    let target = Target::in_process(mock, ("default", "test"), Some(TOKEN))
        .expect("mock-ld's default environment");
    let options = RunOptions::quiet(target);
    let run = runner::run(scenario, options);
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn events_check(results: &RunResults) -> Status {
    let check = results
        .checks
        .iter()
        .find(|c| c.kind() == "events_complete");
    check.expect("the events check ran").status
}

/// Custom events the run's results say mock-ld received.
fn received(results: &RunResults) -> u64 {
    results.events.as_ref().unwrap().received.values().sum()
}

fn tracked(results: &RunResults) -> u64 {
    results.events.as_ref().unwrap().tracked.values().sum()
}

/// Custom events mock-ld holds in `default`/`test`, every run's.
fn held_by_mock(mock: &MockLdHandle) -> u64 {
    mock.events().stats(&env()).by_custom_key.values().sum()
}

fn env() -> Filter {
    Filter {
        project: Some("default".into()),
        env: Some("test".into()),
        ..Filter::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_that_loses_events_is_not_made_whole_by_an_earlier_runs() {
    let mock = MockLd::start(mock_ld::Config {
        admin_token: Some(TOKEN.into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();

    let first = run(&scenario("first", ""), &mock).await;
    assert_eq!(events_check(&first), Status::Pass, "{:?}", first.checks);
    assert_eq!(received(&first), tracked(&first));
    let held_after_first = held_by_mock(&mock);

    let second = run(&scenario("second", EVENTS_LOST), &mock).await;
    let events = second.events.as_ref().unwrap();
    // What mock-ld took from the second run alone, not the environment's total.
    assert_eq!(received(&second), held_by_mock(&mock) - held_after_first);
    assert!(received(&second) < tracked(&second), "{events:?}");
    assert!(!events.complete);
    assert_eq!(events_check(&second), Status::Fail, "{:?}", second.checks);
    let accounting = second
        .event_accounting
        .expect("with a fault, the accounting");
    assert_eq!(accounting.received, received(&second));
    assert!(
        accounting.refused + accounting.never_received > 0,
        "{accounting:?}"
    );
    assert_eq!(
        accounting.received + accounting.refused + accounting.never_received,
        accounting.tracked,
        "{accounting:?}"
    );
    // Its payloads and delivery latencies are its own too.
    let payloads = first.events.as_ref().unwrap().payloads + events.payloads;
    assert_eq!(payloads, mock.events().stats(&env()).payloads);
    let custom = &events.delivery["custom"];
    let dated = custom.latency.count + custom.undated + custom.future + custom.too_old;
    assert_eq!(dated, events.received_by_kind["custom"]);
}
