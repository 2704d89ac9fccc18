//! The built-in `sdk_parity` check, end to end through the real Python worker (the real
//! Python SDK and AI SDK) and the Rust SDK, against the embedded mock-ld: a run of the
//! built-in application passes it; a run whose team handler tracks one output token more
//! than the LLM answered fails it, naming the token event, its field and both values.
//!
//! The Node worker passes it too.
//!
//! Needs the workers installed (`aiconfig-harness setup-workers`):
//! without them each test says so and passes, except under CI (`CI` set), where that is a
//! failure.

use std::path::Path;
use std::time::Instant;

use aiconfig_harness::results::checks::{CheckOutcome, Details, ParityDetails, Status};
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::workers::install;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario, SdkKind};
use tokio_util::sync::CancellationToken;

/// A 60/40 rollout over 300 contexts, 120 of them in the parity sample. `handler` is a `[load] handler` line or nothing, `llm` more
/// `[llm]` lines.
fn scenario_text(handler: &str, llm: &str) -> String {
    sdk_scenario_text("python", handler, llm)
}

fn sdk_scenario_text(sdk: &str, handler: &str, llm: &str) -> String {
    format!(
        r#"
name = "sdk-parity"
seed = 11

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "large"
model = {{ name = "gpt-4o" }}
messages = [{{ role = "system", content = "You are helpful." }}]

[[ai_configs.variations]]
key = "small"
model = {{ name = "gpt-4o-mini" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
rollout = {{ large = 60, small = 40 }}

[population]
count = 300

[load]
sdk = "{sdk}"
workers = 1
concurrency = 16
parity_sample = 120
{handler}

[llm]
time_scale = 0.01
{llm}

[[checks]]
kind = "rollout_split"
"#
    )
}

/// The workers are installed, or (outside CI) a message and `false`.
fn workers_installed(sdk: SdkKind) -> bool {
    match install::launch(sdk) {
        Ok(_) => true,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the {} workers are missing under CI: {why}",
                sdk.name()
            );
            eprintln!("skipped: {why}");
            false
        }
    }
}

async fn run(text: &str, dir: &Path) -> RunResults {
    let scenario: Scenario =
        scenario::parse(&dir.join("parity.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        target: Target::Embedded,
        progress: false,
        cancel: CancellationToken::new(),
    };
    let started = Instant::now();
    let results = runner::run(&scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("run took {:.1} s", started.elapsed().as_secs_f64());
    results
}

fn parity(results: &RunResults) -> (&CheckOutcome, &ParityDetails) {
    let outcome = results
        .checks
        .iter()
        .find(|c| c.kind() == "sdk_parity")
        .unwrap_or_else(|| panic!("no sdk_parity check in {:#?}", results.checks));
    match &outcome.details {
        Details::SdkParity(d) => (outcome, d),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_agrees_with_the_rust_sdk_and_the_predictor() {
    if !workers_installed(SdkKind::Python) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let results = run(&scenario_text("", ""), dir.path()).await;
    let (outcome, details) = parity(&results);
    eprintln!("{}", outcome.summary);
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert_eq!(details.sample, 120);
    // A usage event and, per LLM call, duration, three token counts and success or error.
    assert!(details.worker_events >= 120 * 2, "{details:#?}");
    assert_eq!(details.worker_events, details.rust_events, "{details:#?}");
    assert_eq!(details.assignments_compared, 120, "{details:#?}");
    assert_eq!(details.predicted, 120, "{details:#?}");
    // The load's own figures are the load's: the sample did not add to them.
    assert_eq!(results.load.requests, 300);
    let events = results.events.as_ref().expect("events verified");
    assert!(results
        .checks
        .iter()
        .filter(|c| c.kind() != "sdk_parity")
        .all(|c| c.status != Status::Fail));
    assert_eq!(
        events.received, events.tracked,
        "the load's events are the load's"
    );
}

/// The built-in application's tracking, as the worker's helper does it, with one output
/// token more than the LLM answered.
const EXTRA_TOKEN_HANDLER: &str = r#"
from ldai.providers.types import LDAIMetrics
from ldai.tracker import TokenUsage


def metrics(response):
    usage = response.usage
    return LDAIMetrics(success=True, tokens=TokenUsage(
        total=usage.total_tokens, input=usage.prompt_tokens,
        output=usage.completion_tokens + 1))


async def handle(ai_config, tracker, context, variables, llm):
    if not ai_config.enabled:
        return
    messages = [{"role": m.role, "content": m.content} for m in ai_config.messages or []]
    messages.append({"role": "user", "content": "Help me with my account."})
    await tracker.track_metrics_of_async(
        metrics,
        lambda: llm.chat.completions.create(model=ai_config.model.name, messages=messages))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_tracks_one_token_more_fails_parity_naming_the_event() {
    if !workers_installed(SdkKind::Python) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("extra_token.py"), EXTRA_TOKEN_HANDLER).expect("written");
    // Not streamed: the handler's call is a whole answer, with no time to first token.
    let text = scenario_text(r#"handler = "extra_token.py:handle""#, "stream = false");
    let results = run(&text, dir.path()).await;
    let (outcome, details) = parity(&results);
    eprintln!("{}", outcome.summary);
    assert_eq!(outcome.status, Status::Fail, "{outcome:#?}");
    let first = &details.differences[0];
    assert_eq!(
        (first.event.as_str(), first.field.as_str()),
        ("$ld:ai:tokens:output", "metricValue"),
        "{details:#?}"
    );
    let (rust, worker): (u64, u64) = (
        first.rust.parse().expect("a count"),
        first.worker.parse().expect("a count"),
    );
    assert_eq!(worker, rust + 1, "{first:?}");
    // Only the output token counts differ: one per successful call of the sample.
    assert!(
        details
            .differences
            .iter()
            .all(|d| d.event == "$ld:ai:tokens:output"),
        "{details:#?}"
    );
    assert!(details.difference_count > 0 && details.difference_count <= 120);
    assert!(
        outcome.summary.contains("$ld:ai:tokens:output"),
        "{}",
        outcome.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sdk_agrees_with_the_rust_sdk_and_the_predictor() {
    if !workers_installed(SdkKind::Node) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let results = run(&sdk_scenario_text("node", "", ""), dir.path()).await;
    let (outcome, details) = parity(&results);
    eprintln!("{}", outcome.summary);
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert_eq!(details.sdk, "node");
    assert!(details.worker_events >= 120 * 2, "{details:#?}");
    assert_eq!(details.worker_events, details.rust_events, "{details:#?}");
    assert_eq!(details.predicted, 120, "{details:#?}");
}
