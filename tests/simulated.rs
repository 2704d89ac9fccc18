//! Simulated latencies labelled: a run against mock-ld's simulator records, per call, the
//! plan its answer told (real time and excess), reads the simulator's profiles and
//! lateness, and its reports say the LLM latencies were simulated, with the time scale.

use aiconfig_harness::report::markdown;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::{Config, MockLd};

/// Two models: `fixed` always draws 100 ms; `other` has no profile of its own, so mock-ld's
/// `default` answers for it (scaled too, the scenario's time scale going on `default`).
fn scenario_text(llm_url: &str) -> String {
    format!(
        r#"
name = "simulated"
seed = 3

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "a"
model = {{ name = "fixed" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.variations]]
key = "b"
model = {{ name = "other" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
rollout = {{ a = 50, b = 50 }}

[population]
count = 200

[load]
concurrency = 8
iterations = 200

[llm]
time_scale = 0.05
{llm_url}

[llm.models.fixed]
latency = {{ median = "100ms", p99 = "100ms" }}
ttft = {{ median = "20ms", p99 = "20ms" }}
error_rate = 0.1
"#
    )
}

fn parse(text: &str) -> Scenario {
    scenario::parse(std::path::Path::new("inline.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(scenario: &Scenario) -> RunResults {
    let options = RunOptions::quiet(Target::Embedded);
    runner::run(scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_run_records_its_plans_and_lateness_and_says_so() {
    let results = run(&parse(&scenario_text(""))).await;
    let sim = results
        .simulated
        .as_ref()
        .expect("mock-ld simulated the calls");
    assert_eq!(sim.time_scale, Some(0.05));
    let (fixed, other) = (&sim.profiles["fixed"], &sim.profiles["other"]);
    assert!(!fixed.default && other.default, "{:?}", sim.profiles);
    assert_eq!((fixed.latency_ms.median, fixed.error_rate), (100.0, 0.1));
    assert_eq!((fixed.time_scale, other.time_scale), (0.05, 0.05));

    let mut calls = 0;
    for (_, key, v) in results.variations() {
        let l = &v.latency;
        assert!(v.ai_calls > 0, "variation {key} was served");
        assert_eq!(l.llm.count, v.ai_calls, "{key}");
        assert_eq!(l.llm_planned_real_time.count, v.ai_calls, "{key}");
        assert_eq!(
            l.llm_excess.count + v.llm_ahead_of_plan,
            v.ai_calls,
            "{key}"
        );
        calls += v.ai_calls;
    }
    // A fixed draw of 100 ms is planned as 5 ms and reported as 100 ms in real time (its
    // errors answer after a fifth of it: 20 ms).
    let a = &results.configs["assistant"].variations["a"];
    assert!((a.latency.llm_planned_real_time.max_ms - 100.0).abs() < 0.5);
    assert!(a.errors > 0 && (a.latency.llm_planned_real_time.min_ms - 20.0).abs() < 0.1);
    // A fresh embedded mock-ld: its lateness counts this run's calls, each once.
    assert_eq!(sim.lateness.first_token.count, calls);
    assert_eq!(sim.lateness.last_chunk.count, calls);

    let summary = markdown::render(&results).unwrap();
    assert!(
        summary.contains(
            "Simulated: LLM, TTFT and end-to-end latencies come from mock-ld's simulated provider"
        ),
        "{summary}"
    );
    assert!(summary.contains("time_scale 0.05"), "{summary}");
    assert!(
        summary.contains("other (mock-ld default) log-normal"),
        "{summary}"
    );
    assert!(
        summary.contains("planned (real time) n / p50 / p99 ms"),
        "{summary}"
    );
    assert!(summary.contains("simulator lateness, first token (sent − planned)"));
}

/// With `[llm] url` the run treats the provider as a real one: no profiles or lateness are
/// read; a mock-ld behind that URL still tells each answer's plan, and the reports say the
/// plans came without the simulator's details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_provider_gets_no_simulated_section() {
    let provider = MockLd::start(Config::default()).await.unwrap();
    let url = format!("url = \"{}/v1\"", provider.base_url());
    let results = run(&parse(&scenario_text(&url))).await;
    assert_eq!(results.simulated, None);
    let calls: u64 = results.variations().map(|(_, _, v)| v.ai_calls).sum();
    let planned: u64 = results
        .variations()
        .map(|(_, _, v)| v.latency.llm_excess.count + v.llm_ahead_of_plan)
        .sum();
    assert_eq!((calls, planned), (200, 200));
    let summary = markdown::render(&results).unwrap();
    assert!(!summary.contains("Simulated: "), "{summary}");
    assert!(
        summary.contains("its profiles and lateness were not read"),
        "{summary}"
    );
}
