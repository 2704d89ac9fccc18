//! The built-in `sdk_parity` check, end to end through the real Python worker (the real
//! Python SDK and AI SDK) and the Rust SDK, against the embedded mock-ld: a run of the
//! built-in application passes it; a run whose worker tracks one output token more than the
//! LLM answered (a tampered copy of the worker) fails it, naming the token event, its field
//! and both values; with a team handler it compares what the AI SDK sends itself.
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
    let options = RunOptions::quiet(Target::Embedded);
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

/// The line of the Python worker's token tracking that the tampered copy changes.
const TOKENS_LINE: &str = "input=self.tokens.input, output=self.tokens.output)";

/// A copy of the installed Python worker whose tracker reports one output token more than
/// the LLM answered, under a workers directory of its own (the same venv): what an SDK or
/// AI SDK upgrade that changed an event would look like.
fn tampered_workers(root: &Path) {
    let installed = install::dir(SdkKind::Python);
    let copy = root.join(installed.file_name().expect("a directory name"));
    std::fs::create_dir_all(&copy).unwrap();
    std::os::unix::fs::symlink(installed.join("venv"), copy.join("venv")).unwrap();
    std::fs::copy(installed.join(".installed"), copy.join(".installed")).unwrap();
    let worker = std::fs::read_to_string(installed.join("aiconfig_worker.py")).unwrap();
    assert!(
        worker.contains(TOKENS_LINE),
        "the worker's token tracking changed: update TOKENS_LINE"
    );
    let tampered = worker.replace(
        TOKENS_LINE,
        "input=self.tokens.input, output=self.tokens.output + 1)",
    );
    std::fs::write(copy.join("aiconfig_worker.py"), tampered).unwrap();
}

#[test]
fn a_worker_that_tracks_one_token_more_fails_parity_naming_the_event() {
    if !workers_installed(SdkKind::Python) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("workers");
    tampered_workers(&root);
    let scenario = dir.path().join("parity.toml");
    std::fs::write(&scenario, scenario_text("", "stream = false")).unwrap();
    // The binary, so that only its environment names the tampered workers.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .args(["run", "--json", "--no-progress", "--out"])
        .arg(dir.path().join("out"))
        .arg(&scenario)
        .env(install::DIR_VARIABLE, &root)
        .output()
        .expect("the harness runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: RunResults = serde_json::from_slice(&output.stdout).expect("results.json");
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

/// A team handler's tracking is its own: parity then compares the AI SDK's usage events and
/// what was served, so a handler that tracks differently from the built-in application (here:
/// one output token more) does not fail it.
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
async fn with_a_team_handler_parity_compares_what_the_ai_sdk_itself_sends() {
    if !workers_installed(SdkKind::Python) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("extra_token.py"), EXTRA_TOKEN_HANDLER).expect("written");
    let text = scenario_text(r#"handler = "extra_token.py:handle""#, "stream = false");
    let results = run(&text, dir.path()).await;
    let (outcome, details) = parity(&results);
    eprintln!("{}", outcome.summary);
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert!(details
        .note
        .as_deref()
        .is_some_and(|n| n.contains("handler")));
    // One usage event per request of the sample, on each side.
    assert_eq!(
        (details.worker_events, details.rust_events),
        (120, 120),
        "{details:#?}"
    );
    assert_eq!(details.assignments_compared, 120, "{details:#?}");
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
