//! Thresholds end to end with the embedded mock-ld: an `llm` action slows the only model
//! 400 times (10 ms to 4 s) for 3 s, half a second into the load.
//!
//! Eight virtual users each start one slow request and wait 4 s for it: 8 of 2,000
//! requests, 0.4 %, so the whole run's p99 passes, while the 2 s window that holds them
//! (at most 50 requests per user per half second before them, 2 % at the least) fails its
//! p99, and nothing completes for at least 3 whole seconds while they are in flight, which
//! the stall check (limit: 1 s, the floor over the planned 10 ms) fails. Only lower bounds
//! on time are relied on: a slower machine makes fewer fast requests before the slowdown,
//! so the slow ones weigh more in the window.
//!
//! With `abort_on_fail`, the same windowed threshold stops the load once the slow requests
//! complete, long before 4,000 requests are made.

use std::time::Instant;

use aiconfig_harness::results::checks::{CheckOutcome, Details, Status};
use aiconfig_harness::results::verdict::RunStatus;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};

fn scenario(iterations: u64, checks: &str) -> Scenario {
    let text = format!(
        r#"
name = "slowdown"
seed = 3

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
count = 500

[load]
concurrency = 8
iterations = {iterations}

# This test judges check logic; whether the harness kept up is tests/starvation.rs's.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = {{ median = "10ms", p99 = "10ms" }}
output_tokens = {{ median = 5, p99 = 5 }}

[[actions]]
at = "500ms"
llm = {{ model = "model-a", latency_factor = 400, for = "3s" }}

{checks}
"#
    );
    scenario::parse(std::path::Path::new("inline.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

const WINDOWED: &str = r#"
[[checks]]
kind = "threshold"
name = "requests p99 per 2 s"
metric = "requests.p99"
max = "1s"
window = "2s"
min_samples = 20

[[checks]]
kind = "threshold"
name = "llm p99 per 2 s"
metric = "llm.p99"
max = "1s"
window = "2s"
min_samples = 20
"#;

const WHOLE_RUN: &str = r#"
[[checks]]
kind = "threshold"
name = "requests p99"
metric = "requests.p99"
max = "1s"

[[checks]]
kind = "threshold"
name = "llm p99"
metric = "llm.p99"
max = "1s"
"#;

async fn run(scenario: &Scenario) -> RunResults {
    let options = RunOptions::quiet(Target::Embedded);
    runner::run(scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn outcome<'a>(results: &'a RunResults, name: &str) -> &'a CheckOutcome {
    results
        .checks
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:#?}", results.checks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mid_run_slowdown_fails_the_windowed_p99_and_the_stall_check_but_not_the_whole_run_p99() {
    let started = Instant::now();
    let results = run(&scenario(2000, &format!("{WINDOWED}{WHOLE_RUN}"))).await;
    let all = || format!("{:#?}", results.checks);
    assert_eq!(results.load.requests, 2000);
    assert_eq!(results.status, RunStatus::Complete);

    for name in ["requests p99 per 2 s", "llm p99 per 2 s"] {
        let o = outcome(&results, name);
        assert_eq!(o.status, Status::Fail, "{name}: {}", o.summary);
        let Details::Threshold(d) = &o.details else {
            unreachable!()
        };
        // The slow requests started in second 0, just after the change at 500 ms.
        assert!(d.value.unwrap() >= 4000.0 * 0.99, "{}", o.summary);
        assert_eq!(d.window_seconds, Some(2));
        assert!(d.window_start_second.unwrap() <= 1, "{}", o.summary);
        assert!(d.samples >= 20, "{}", o.summary);
    }
    for name in ["requests p99", "llm p99"] {
        let o = outcome(&results, name);
        assert_eq!(o.status, Status::Pass, "{name}: {}", o.summary);
    }

    let stall = outcome(&results, "no stall");
    assert_eq!(stall.status, Status::Fail, "{}", stall.summary);
    let Details::Stall(d) = &stall.details else {
        unreachable!()
    };
    assert!(d.longest_seconds >= 2, "{}", stall.summary);
    assert_eq!(d.limit_ms, 1000.0, "{}", stall.summary);

    // The action is in the results, applied at 500 ms and undone 3 s later.
    let [action] = &results.actions[..] else {
        panic!("{:?}", results.actions)
    };
    assert_eq!(
        (action.kind.as_str(), action.error.as_deref()),
        ("llm", None)
    );
    assert!(action.at_ms >= 500.0);
    assert!(action.restored_at_ms.unwrap() >= action.at_ms + 3000.0);
    let applied = outcome(&results, "timed changes applied and propagated");
    assert_eq!(applied.status, Status::Pass, "{}", applied.summary);
    assert!(
        results.checks.len() == 6,
        "four thresholds, the action and the stall check: {}",
        all()
    );
    eprintln!(
        "slowdown run took {:?}\n{}",
        started.elapsed(),
        aiconfig_harness::report::terminal::render(&results)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_on_fail_stops_the_load_and_names_the_threshold() {
    let started = Instant::now();
    let checks = format!("{WINDOWED}abort_on_fail = true\nabort_delay = \"1s\"\n");
    let results = run(&scenario(4000, &checks)).await;
    assert_eq!(
        results.status,
        RunStatus::Aborted {
            threshold: "llm p99 per 2 s".into()
        }
    );
    assert_eq!(results.verdict.exit_code, 4, "an aborted run is incomplete");
    assert!(
        results.load.requests < 4000,
        "{} requests",
        results.load.requests
    );
    assert_eq!(outcome(&results, "llm p99 per 2 s").status, Status::Fail);
    eprintln!("aborted run took {:?}", started.elapsed());
}
