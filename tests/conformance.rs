//! Conformance: LaunchDarkly's own server-side evaluation test data, run through mock-ld and
//! the real Rust SDK.
//!
//! The data is the `server-side-eval` suite of launchdarkly/sdk-test-harness (Apache-2.0),
//! kept in `../shared/conformance/sdk-test-harness/*.yml`; users do not have it, so without
//! it this test passes after saying so. Each file expands into one suite per parameter set
//! (see `conformance/expand.rs`). Each suite gets a fresh mock-ld holding its flags and
//! segments and a fresh SDK client streaming from it; every evaluation's value, variation
//! index and reason must match. A mismatch is either a difference of the Rust SDK 3.2.0 itself
//! (allow-listed below, with the reason) or a bug in mock-ld's handling of the data, which
//! must fail this test. Failures show any field mock-ld served differently than it was given.
//!
//! Run with `cargo test --test conformance -- --nocapture` to see the summary.

mod conformance {
    pub mod compare;
    pub mod evaluate;
    pub mod expand;
    pub mod suite;
}

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aiconfig_harness::ld_client::{start_client, SdkOptions};
use futures::StreamExt;
use launchdarkly_server_sdk::{Client, Context};
use mock_ld::model::{Flag, Segment};
use mock_ld::{MockLd, MockLdHandle};
use serde_json::Value;

use conformance::compare::{changed_fields, json_eq, reasons_eq};
use conformance::evaluate::{evaluate, Actual};
use conformance::expand::{self, Instance};
use conformance::suite::{Evaluation, SdkData, Suite};

/// Where the data lives, relative to this crate.
const DATA_DIR: &str = "../shared/conformance/sdk-test-harness";

/// How long an SDK client may take to receive its first `put`.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Suites run at once, each with its own mock-ld and client. Modest, because other tests
/// and developers share the machine.
const CONCURRENCY: usize = 8;

/// What the Rust SDK tells the harness it can do: the capabilities its own contract-test
/// service declares (launchdarkly/rust-server-sdk, `contract-tests/src/main.rs`). A suite
/// that requires anything else is skipped, as the harness would skip it.
const RUST_SDK_CAPABILITIES: &[&str] = &[
    "server-side",
    "server-side-polling",
    "strongly-typed",
    "all-flags-with-reasons",
    "all-flags-client-side-only",
    "all-flags-details-only-for-tracked-flags",
    "tags",
    "service-endpoints",
    "context-type",
];

/// An evaluation where the Rust SDK 3.2.0 itself answers differently than the data expects.
/// Only a behaviour of the SDK belongs here, with the evidence; a mismatch caused by mock-ld
/// is a mock-ld bug and must keep failing.
struct KnownDifference {
    /// The data file.
    file: &'static str,
    /// The evaluation's name after substitution (the same in every parameter set).
    evaluation: &'static str,
    why: &'static str,
}

/// None so far: every evaluation in the data passes with Rust SDK 3.2.0 and mock-ld, and the
/// SDK's contract-test suppressions (`contract-tests/testharness-suppressions.txt`) suppress
/// no parameterized evaluation test either.
const KNOWN_SDK_DIFFERENCES: &[KnownDifference] = &[];

/// What became of one evaluation.
enum Outcome {
    Passed,
    /// The suite requires a capability the Rust SDK lacks.
    Skipped(String),
    Failed(String),
    /// Failed, but allow-listed in [`KNOWN_SDK_DIFFERENCES`].
    KnownDifference {
        details: String,
        why: &'static str,
    },
}

struct Case {
    /// `file [parameters] suite / evaluation`.
    label: String,
    outcome: Outcome,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_test_harness_server_side_evaluations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA_DIR);
    if !dir.is_dir() {
        println!("skipping conformance: {DATA_DIR} not found");
        return;
    }
    let files = data_files(&dir);
    let instances: Vec<Instance> = files
        .iter()
        .flat_map(|f| expand::load(f).unwrap_or_else(|e| panic!("bad test data: {e}")))
        .collect();
    let suites = instances.len();

    let started = Instant::now();
    let cases: Vec<Case> = futures::stream::iter(instances)
        .map(run_suite)
        .buffered(CONCURRENCY)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    report(&cases, files.len(), suites, started.elapsed());
}

/// The data files, in a stable order.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

/// Runs every evaluation of one suite against its own mock-ld and SDK client.
async fn run_suite(instance: Instance) -> Vec<Case> {
    let suite: Suite = serde_json::from_value(instance.doc).unwrap_or_else(|e| {
        panic!(
            "bad test data: {} [{}]: {e}",
            instance.file, instance.params
        )
    });
    let label = |eval: &Evaluation| {
        format!(
            "{} [{}] {} / {}",
            instance.file,
            instance.params,
            suite.name,
            eval.display_name()
        )
    };
    let all = |outcome: &dyn Fn() -> Outcome| -> Vec<Case> {
        suite
            .evaluations
            .iter()
            .map(|eval| Case {
                label: label(eval),
                outcome: outcome(),
            })
            .collect()
    };

    if let Some(capability) = &suite.require_capability {
        if !RUST_SDK_CAPABILITIES.contains(&capability.as_str()) {
            return all(&|| Outcome::Skipped(format!("requires capability {capability}")));
        }
    }
    let served = match Served::start(&suite.sdk_data).await {
        Ok(served) => served,
        Err(problem) => return all(&|| Outcome::Failed(problem.clone())),
    };
    let cases = suite
        .evaluations
        .iter()
        .map(|eval| Case {
            label: label(eval),
            outcome: classify(&instance.file, eval, check(&served, &suite, eval)),
        })
        .collect();
    served.stop().await;
    cases
}

/// A mock-ld serving one suite's data, and an SDK client that has received it.
struct Served {
    mock: MockLdHandle,
    client: Client,
    /// What mock-ld put to the SDK, for diagnosing failures.
    put: Value,
    /// Items mock-ld served differently than they were given, one line each.
    changes: Vec<String>,
}

impl Served {
    /// The data goes in before the client starts, so the client's first `put` has it all.
    async fn start(data: &SdkData) -> Result<Served, String> {
        let mock = MockLd::start(mock_ld::Config::default())
            .await
            .map_err(|e| format!("mock-ld did not start: {e}"))?;
        let env = mock
            .store()
            .environment("default", "test")
            .expect("mock-ld's default project has a test environment");
        for (key, given) in &data.flags {
            let mut flag: Flag = serde_json::from_value(given.clone()).map_err(|e| {
                format!("mock-ld's model rejects flag {key}: {e}\n    given: {given}")
            })?;
            flag.key.clone_from(key);
            env.upsert_flag(flag);
        }
        for (key, given) in &data.segments {
            let mut segment: Segment = serde_json::from_value(given.clone()).map_err(|e| {
                format!("mock-ld's model rejects segment {key}: {e}\n    given: {given}")
            })?;
            segment.key.clone_from(key);
            env.upsert_segment(segment);
        }
        let put: Value =
            serde_json::from_slice(&env.snapshot().all_json).expect("mock-ld serves JSON");
        let changes = served_changes(data, &put);

        let options = SdkOptions {
            base_url: mock.base_url(),
            stream_url: None,
            events_url: None,
            sdk_key: mock.config().sdk_key.clone(),
            events: None,
        };
        let client = start_client(&options, INIT_TIMEOUT)
            .await
            .map_err(|e| format!("SDK client did not start: {e}\n    mock-ld put: {put}"))?;
        Ok(Served {
            mock,
            client,
            put,
            changes,
        })
    }

    async fn stop(self) {
        self.client.close();
        // Shutdown waits for open connections; a stuck one must not stall the whole run.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.mock.shutdown()).await;
    }
}

/// Every flag or segment whose served form lost or changed a given field.
fn served_changes(data: &SdkData, put: &Value) -> Vec<String> {
    let kinds = [("flags", &data.flags), ("segments", &data.segments)];
    kinds
        .into_iter()
        .flat_map(|(kind, items)| {
            items.iter().flat_map(move |(key, given)| {
                let served = put.get(kind).and_then(|all| all.get(key));
                changed_fields(given, served)
                    .into_iter()
                    .map(move |change| format!("{kind}/{key}{change}"))
            })
        })
        .collect()
}

/// Makes one evaluation and compares it with what the data expects.
fn check(served: &Served, suite: &Suite, eval: &Evaluation) -> Outcome {
    let context_json = match eval.context_json() {
        Some(json) => json,
        None => return Outcome::Failed("bad test data: no context".into()),
    };
    let context: Context = match serde_json::from_value(context_json.clone()) {
        Ok(context) => context,
        Err(e) => return Outcome::Failed(format!("the SDK rejects context {context_json}: {e}")),
    };
    let (value_type, default) = match eval.call(&suite.sdk_data.flags) {
        Ok(call) => call,
        Err(e) => return Outcome::Failed(format!("bad test data: {e}")),
    };
    let actual = match evaluate(
        &served.client,
        &context,
        &eval.flag_key,
        value_type,
        &default,
    ) {
        Ok(actual) => actual,
        Err(e) => return Outcome::Failed(format!("bad test data: {e}")),
    };

    let expect = &eval.expect;
    let mut differs = Vec::new();
    if !json_eq(&expect.value, &actual.value) {
        differs.push("value");
    }
    if !json_eq(&expect.value, &actual.plain_value) {
        differs.push("value without detail");
    }
    if expect.variation_index != actual.variation_index {
        differs.push("variationIndex");
    }
    if !reasons_eq(&expect.reason, &actual.reason) {
        differs.push("reason");
    }
    if differs.is_empty() {
        return Outcome::Passed;
    }
    Outcome::Failed(describe(
        served,
        eval,
        &format!("{value_type:?}"),
        &default,
        &actual,
        &differs,
    ))
}

fn describe(
    served: &Served,
    eval: &Evaluation,
    value_type: &str,
    default: &Value,
    actual: &Actual,
    differs: &[&str],
) -> String {
    let expect = &eval.expect;
    let mut text = format!(
        "{} differ\n    evaluated {} as {value_type} with default {default}, context {}\n    \
         expected: value {}, variationIndex {:?}, reason {}\n    \
         actual:   value {} (without detail {}), variationIndex {:?}, reason {}",
        differs.join(", "),
        eval.flag_key,
        eval.context_json().unwrap_or(&Value::Null),
        expect.value,
        expect.variation_index,
        expect.reason,
        actual.value,
        actual.plain_value,
        actual.variation_index,
        actual.reason,
    );
    if served.changes.is_empty() {
        let flag = served.put.get("flags").and_then(|f| f.get(&eval.flag_key));
        text += &format!(
            "\n    mock-ld served the flag as given: {}",
            flag.unwrap_or(&Value::Null)
        );
    } else {
        // Not necessarily the cause: mock-ld drops fields its model does not know, such as
        // the `clauss` typo in segment-recursion.yml, which SDKs ignore anyway.
        text += "\n    mock-ld served items differently than given (a mock-ld bug if it explains this):";
        for change in &served.changes {
            text += &format!("\n      {change}");
        }
    }
    text
}

/// Turns a failure into a known difference if the allow-list names it.
fn classify(file: &str, eval: &Evaluation, outcome: Outcome) -> Outcome {
    let known = KNOWN_SDK_DIFFERENCES
        .iter()
        .find(|k| k.file == file && k.evaluation == eval.display_name());
    match (outcome, known) {
        (Outcome::Failed(details), Some(k)) => Outcome::KnownDifference {
            details,
            why: k.why,
        },
        (outcome, _) => outcome,
    }
}

/// Prints the summary and fails the test if any evaluation failed.
fn report(cases: &[Case], files: usize, suites: usize, elapsed: Duration) {
    let count = |f: fn(&Outcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Passed));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    let known = count(|o| matches!(o, Outcome::KnownDifference { .. }));
    println!(
        "conformance: {} evaluations in {files} files, {passed} passed, {failed} failed, \
         {skipped} skipped, {known} known SDK differences ({suites} suites, {:.1}s)",
        cases.len(),
        elapsed.as_secs_f64()
    );
    for case in cases {
        match &case.outcome {
            Outcome::Skipped(why) => println!("  skipped: {} ({why})", case.label),
            Outcome::KnownDifference { details, why } => {
                println!(
                    "  known SDK difference: {} ({why})\n    {details}",
                    case.label
                )
            }
            _ => {}
        }
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed(details) => Some(format!("FAILED {}\n    {details}", c.label)),
            _ => None,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{failed} of {} conformance evaluations failed:\n{}",
        cases.len(),
        failures.join("\n")
    );
}
