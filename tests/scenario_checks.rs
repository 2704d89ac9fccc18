//! Every shipped scenario's checks say what it is for, pass, and can fail.
//!
//! For each file in `scenarios/`: a quick variant (only the load made smaller: population,
//! iterations, duration; never the checks, targeting or LLM behaviour) runs with the
//! embedded mock-ld, and every check passes. Then two mutated copies of the quick variant:
//! - every two-arm rollout skewed to 70/30 (the larger arm to 70): the sample-ratio check
//!   fails;
//! - the simulated LLM 5× slower (`llm.time_scale` × 5): every latency threshold fails.
//!
//! The quick variants keep enough contexts in each rollout for the sample-ratio test to see
//! 70/30 (a few hundred: p below 1e-5), and a load a debug build serves without becoming
//! CPU-bound, since the latency limits are the shipped ones.
//! A scenario whose mutation cannot apply says why where its test is.

use std::path::{Path, PathBuf};

use aiconfig_harness::ld_api::LdApi;
use aiconfig_harness::results::checks::{Details, Status};
use aiconfig_harness::results::verdict::Outcome;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::MockLd;
use toml::{Table, Value};

fn path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file)
}

/// The shipped file with the load edits applied: `("population.count", 1000)` and the like.
fn quick(file: &str, load: &[(&str, Value)]) -> Table {
    let text = std::fs::read_to_string(path(file)).unwrap();
    let mut table: Table = toml::from_str(&text).unwrap();
    for (key, value) in load {
        assert!(
            key.starts_with("population.") || key.starts_with("load."),
            "a quick variant changes the load's size only, not {key}"
        );
        let (parent, leaf) = key.rsplit_once('.').unwrap();
        let mut at = &mut table;
        for part in parent.split('.') {
            at = at
                .entry(part)
                .or_insert_with(|| Value::Table(Table::new()))
                .as_table_mut()
                .unwrap();
        }
        at.insert(leaf.to_owned(), value.clone());
    }
    // These runs judge the shipped checks; whether the harness kept up is
    // tests/starvation.rs's concern.
    let load = table
        .entry("load")
        .or_insert_with(|| Value::Table(Table::new()));
    let mut overload = Table::new();
    overload.insert("lag_p99".into(), Value::String("1h".into()));
    overload.insert("memory_pressure".into(), Value::Float(1.0));
    load.as_table_mut()
        .unwrap()
        .insert("overload".into(), Value::Table(overload));
    table
}

fn parse(file: &str, table: &Table) -> Scenario {
    let text = toml::to_string(table).unwrap();
    scenario::parse(&path(file), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Every two-arm rollout of the AI Configs' targeting set to 70/30, the larger arm (the
/// first of equals) to 70; returns how many were changed.
fn skew(table: &mut Table) -> usize {
    let mut skewed = 0;
    let configs = table
        .get_mut("ai_configs")
        .and_then(Value::as_array_mut)
        .unwrap();
    for config in configs {
        let Some(targeting) = config.get_mut("targeting").and_then(Value::as_array_mut) else {
            continue;
        };
        for instruction in targeting {
            let Some(rollout) = instruction.get_mut("rollout").and_then(Value::as_table_mut) else {
                continue;
            };
            if rollout.len() != 2 {
                continue;
            }
            let weight = |v: &Value| v.as_integer().unwrap();
            let larger = rollout
                .iter()
                .fold(None::<(&String, i64)>, |best, (k, v)| match best {
                    Some((_, w)) if w >= weight(v) => best,
                    _ => Some((k, weight(v))),
                })
                .unwrap()
                .0
                .clone();
            for (key, value) in rollout.iter_mut() {
                *value = Value::Integer(if *key == larger { 70 } else { 30 });
            }
            skewed += 1;
        }
    }
    skewed
}

/// The simulated LLM 5× slower: `llm.time_scale` × 5, or 5 when it is unset.
fn slow_down(table: &mut Table) {
    let llm = table
        .entry("llm")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .unwrap();
    let scale = llm
        .get("time_scale")
        .map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap());
    llm.insert(
        "time_scale".into(),
        Value::Float(scale.map_or(5.0, |s| s * 5.0)),
    );
}

async fn run(scenario: &Scenario) -> RunResults {
    run_on(scenario, Target::Embedded).await
}

async fn run_on(scenario: &Scenario, target: Target) -> RunResults {
    // One run at a time: a latency limit measures the simulated LLM, and ten runs sharing
    // two cores would measure their own scheduling instead.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = std::time::Instant::now();
    let options = RunOptions::quiet(target);
    let results = runner::run(scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.name));
    println!("{}: run took {:.1?}", scenario.name, started.elapsed());
    results
}

/// Runs `scenario` with its SDK clients served `served` (the same AI Configs, set up on a
/// second mock-ld) while the REST API, where the run sets up and reads the targeting back
/// for the rollout checks, says what `scenario` says: a data source that serves another
/// split than the one configured, as `tests/checks.rs` does it. (Skewing the configuration
/// itself would not do: the rollout checks expect what the configuration says.)
async fn run_served(scenario: &Scenario, served: &Scenario) -> RunResults {
    let rest = MockLd::start(mock_ld::Config::default()).await.unwrap();
    let sdk = MockLd::start(mock_ld::Config {
        llm_seed: scenario.seed,
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    LdApi::new(
        http,
        &sdk.base_url(),
        &sdk.config().api_token,
        &served.project,
    )
    .set_up(served)
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let sdk_key = sdk
        .store()
        .environment(&scenario.project, &scenario.environment)
        .unwrap()
        .sdk_key
        .clone();
    let target = Target::External {
        sdk_url: sdk.base_url(),
        stream_url: None,
        events_url: None,
        api_url: rest.base_url(),
        sdk_key,
        api_token: rest.config().api_token.clone(),
        admin_token: None,
    };
    run_on(scenario, target).await
}

/// Every outcome, one line each, for panic messages.
fn listing(results: &RunResults) -> String {
    results
        .checks
        .iter()
        .map(|o| format!("  {} {}: {}", o.status.as_str(), o.name, o.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a scenario's test does besides the quick variant passing.
#[derive(Clone, Copy, PartialEq)]
enum Mutations {
    /// Skewed to 70/30, the sample-ratio check fails; 5× slower, every latency threshold.
    Both,
    /// Only the 5× slower LLM (no rollout the rollout check covers).
    SlowOnly,
    /// Only the 70/30 skew (no LLM call to slow down).
    SkewOnly,
}

/// `load` makes the quick variant; `slow_load` is applied on top of it for the 5× slower
/// copy only, to keep a closed model's run short (its duration grows with the LLM's latency,
/// and a latency threshold needs no rollout-sized sample).
async fn check(
    file: &str,
    load: &[(&str, Value)],
    slow_load: &[(&str, Value)],
    mutations: Mutations,
) {
    let base = quick(file, load);

    let scenario = parse(file, &base);
    assert!(!scenario.checks.is_empty(), "{file}: no checks");
    let results = run(&scenario).await;
    assert_eq!(
        results.verdict.outcome,
        Outcome::Passed,
        "{file} (quick variant): not every check passed:\n{}",
        listing(&results)
    );
    println!("{file} (quick variant):\n{}", listing(&results));

    if mutations != Mutations::SlowOnly {
        let mut skewed = base.clone();
        assert!(skew(&mut skewed) > 0, "{file}: no two-arm rollout to skew");
        let results = run_served(&scenario, &parse(file, &skewed)).await;
        let srm: Vec<_> = results
            .checks
            .iter()
            .filter(|o| matches!(o.details, Details::RolloutSrm(_)))
            .collect();
        assert!(!srm.is_empty(), "{file}: no sample-ratio check");
        assert!(
            srm.iter().all(|o| o.status == Status::Fail),
            "{file} skewed to 70/30: the sample-ratio check did not fail:\n{}",
            listing(&results)
        );
        println!("{file} (70/30):\n{}", listing(&results));
    }

    if mutations != Mutations::SkewOnly {
        let mut slow = quick(file, &[load, slow_load].concat());
        slow_down(&mut slow);
        let results = run(&parse(file, &slow)).await;
        let latency: Vec<_> = results
            .checks
            .iter()
            .filter(|o| matches!(&o.details, Details::Threshold(d) if d.unit == "ms"))
            .collect();
        assert!(!latency.is_empty(), "{file}: no latency threshold");
        assert!(
            latency.iter().all(|o| o.status == Status::Fail),
            "{file} with a 5× slower LLM: a latency threshold did not fail:\n{}",
            listing(&results)
        );
        println!("{file} (LLM 5× slower):\n{}", listing(&results));
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i)
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// Every file in `scenarios/` has a test below.
#[test]
fn every_shipped_scenario_is_covered() {
    let mut files: Vec<String> = std::fs::read_dir(path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "agent-with-tools.toml",
            "b2b-multi-context.toml",
            "events-degraded.toml",
            "geo-targeting.toml",
            "ld-outage.toml",
            "ld-restart.toml",
            "mid-run-prompt-change.toml",
            "model-ab-test.toml",
            "provider-rate-limit.toml",
            "quickstart.toml",
            "scale-1m.toml",
            "summarize-translate-chain.toml",
            "tier-based-models.toml",
        ],
        "a new scenario needs a test here"
    );
}

/// Premium users (15 %) split 60/40: 3,000 contexts put 464 in the rollout, where 70/30
/// gives p = 2.6e-6 (the population is seeded: the same every run). 16 virtual users, not
/// 64: a debug build at 64 is CPU-bound and its latencies are the harness's, not the LLM's.
/// The slower copy runs 600 requests at the shipped 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart() {
    check(
        "quickstart.toml",
        &[
            ("population.count", int(3_000)),
            ("load.concurrency", int(16)),
        ],
        &[("load.iterations", int(600)), ("load.concurrency", int(64))],
        Mutations::Both,
    )
    .await;
}

/// Premium users (30 %) split 60/40 over 20,000 contexts: about 6,000 in the rollout. Its
/// step does not call the LLM (`call_llm = false`), so a slower LLM changes nothing and the
/// scenario has no latency threshold (evaluation is what it benchmarks, see BENCHMARKS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_1m() {
    check(
        "scale-1m.toml",
        &[("population.count", int(20_000))],
        &[],
        Mutations::SkewOnly,
    )
    .await;
}

/// 50/50 between two tool sets: 500 contexts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_tools() {
    check(
        "agent-with-tools.toml",
        &[("population.count", int(500))],
        &[("load.iterations", int(250))],
        Mutations::Both,
    )
    .await;
}

/// 50/50 between two models: 200 requests/s (not 500, which a debug build cannot serve
/// without its own latency) for 3 s, 600 contexts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_ab_test() {
    check(
        "model-ab-test.toml",
        &[("load.rate", int(200)), ("load.duration", text("3s"))],
        &[],
        Mutations::Both,
    )
    .await;
}

/// Rules on user and organization, no percentage rollout: the 70/30 skew does not apply.
/// 1,000 contexts, 16 virtual users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2b_multi_context() {
    check(
        "b2b-multi-context.toml",
        &[
            ("population.count", int(1_000)),
            ("load.concurrency", int(16)),
        ],
        &[("load.iterations", int(500))],
        Mutations::SlowOnly,
    )
    .await;
}

/// Country rules, no percentage rollout: the 70/30 skew does not apply. 100 requests/s for
/// 4 s (400/s would make a debug build CPU-bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_targeting() {
    check(
        "geo-targeting.toml",
        &[("load.rate", int(100)), ("load.duration", text("4s"))],
        &[],
        Mutations::SlowOnly,
    )
    .await;
}

/// The 50/50 rollout arrives by an action at 3 s; the rollout check covers only evaluations
/// before the first action (when everyone is on v1), so the 70/30 skew does not apply. The
/// run keeps both actions (at 3 s and 6 s) and ends a second after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_run_prompt_change() {
    check(
        "mid-run-prompt-change.toml",
        &[("load.rate", int(100)), ("load.duration", text("7s"))],
        &[],
        Mutations::SlowOnly,
    )
    .await;
}

/// One variation per config, no rollout: the 70/30 skew does not apply. 600 contexts, 16
/// virtual users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summarize_translate_chain() {
    check(
        "summarize-translate-chain.toml",
        &[
            ("population.count", int(600)),
            ("load.concurrency", int(16)),
        ],
        &[("load.iterations", int(300))],
        Mutations::SlowOnly,
    )
    .await;
}

/// A rule per tier, no percentage rollout: the 70/30 skew does not apply. 1,000 contexts, 16
/// virtual users (at 32 a debug build is CPU-bound: llm.p50 46 ms against 14-18 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_based_models() {
    check(
        "tier-based-models.toml",
        &[
            ("population.count", int(1_000)),
            ("load.concurrency", int(16)),
        ],
        &[("load.iterations", int(500))],
        Mutations::SlowOnly,
    )
    .await;
}

/// 50/50 under `/bulk` 503 then 429 windows: 50 requests/s (the duration stays, since the
/// faults are due at up to 13 s), 800 contexts in the rollout. Its only other check is the
/// error rate, which a slower LLM does not move: the skew only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_degraded() {
    check(
        "events-degraded.toml",
        &[("load.rate", int(50))],
        &[],
        Mutations::SkewOnly,
    )
    .await;
}

/// 50/50 under 429 bursts and a timeout spike on one arm's model: 50 requests/s for the
/// shipped 14 s (the faults are due at up to 11 s), 700 contexts; the skew only, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_rate_limit() {
    check(
        "provider-rate-limit.toml",
        &[("load.rate", int(50))],
        &[],
        Mutations::SkewOnly,
    )
    .await;
}

/// mock-ld killed and restarted mid-run at 20 requests/s: the shipped checks pass (no LLM
/// call failed, the events lost within their bound), every event received before the
/// restart was read back from the journal, the stream came back, and the events not
/// received are the ones sent while mock-ld was down (none refused: no fault).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ld_restart() {
    let file = "ld-restart.toml";
    let results = run(&parse(file, &quick(file, &[("load.rate", int(20))]))).await;
    assert_eq!(
        results.verdict.outcome,
        Outcome::Passed,
        "{file}:\n{}",
        listing(&results)
    );
    let restart = &results.restarts[0];
    assert_eq!(restart.events_kept(), Some(true), "{restart:?}");
    assert_eq!(restart.streams_before, Some(1), "{restart:?}");
    assert!(restart.streams_back_ms.is_some(), "{restart:?}");
    let a = results.event_accounting.expect("eventAccounting");
    assert_eq!(a.refused, 0, "{a:?}");
    assert!(a.never_received > 0, "{a:?}");
    println!("{file}: {restart:?}; {a:?}");
}

/// LaunchDarkly unreachable at start-up and for 10 s with a change made during it, at 20
/// requests/s: the application serves on (its checks pass: no error, no fallback once
/// initialized, streams back, the change propagated after the outage), the start-up fault
/// timed the SDK client out and the fallback was served until it initialized, then none;
/// the mid-run fault refused streams and events, and every tracker event is accounted for,
/// the ones not received all refused by the faults (none lost otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ld_outage() {
    let file = "ld-outage.toml";
    let results = run(&parse(file, &quick(file, &[("load.rate", int(20))]))).await;
    assert_eq!(
        results.verdict.outcome,
        Outcome::Passed,
        "{file}:\n{}",
        listing(&results)
    );
    // At start-up: the client timed out, served the fallback while the fault was on, and
    // none once it had initialized.
    let start = results.sdk_start.as_ref().expect("sdkStart");
    assert_eq!(start.timed_out, 1, "{start:?}");
    assert_eq!(start.initialized_later.count, 1, "{start:?}");
    let startup = &results.faults[0];
    assert!(
        startup.at_startup && startup.on_ms.unwrap() < 0.0,
        "{startup:?}"
    );
    assert!(startup.served.unwrap().during.fallback > 0, "{startup:?}");
    let initialized_s = start.initialized_later.max_ms / 1000.0;
    let after: u64 = results
        .timeline
        .iter()
        .filter(|s| s.second as f64 > initialized_s.ceil())
        .map(|s| s.fallback_served)
        .sum();
    assert_eq!(
        after, 0,
        "fallback after the SDK initialized at {initialized_s} s"
    );
    println!("{file}: {}", start.describe());
    let window = &results.faults[1];
    assert!(
        window.counts.requests > 0 && window.counts.payloads > 0,
        "{window:?}"
    );
    // The one SDK client's stream ended with the outage and came back after it.
    assert_eq!(window.streams_before, Some(1), "{window:?}");
    assert!(window.streams_back_ms.is_some(), "{window:?}");
    assert_eq!(window.served.unwrap().during.fallback, 0, "{window:?}");
    println!("{file}: streams back {}", window.streams_back());
    let a = results.event_accounting.expect("eventAccounting");
    assert!(a.refused > 0, "{a:?}");
    assert_eq!(
        a.tracked,
        a.received + a.refused + a.never_received,
        "{a:?}"
    );
    assert_eq!(a.never_received, 0, "{a:?}");
    let change = &results.actions[0];
    println!("{file}: {a:?}; change: {change:?}");
}
