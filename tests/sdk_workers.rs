//! The Python and Node SDKs in the loop (`run --sdk python|node`): the same scenario through
//! the Rust SDK and through worker processes of the real Python and Node SDK and AI SDK serves
//! every context the same variation, tracks the same events and costs the same; a worker
//! killed mid-run aborts the run with its stderr; a team's handler runs in the Python worker.
//!
//! The workers must be installed (`aiconfig-harness setup-workers`, which `scripts/test`
//! runs); without them these tests skip with a message, and fail under `CI=true`.

use std::path::Path;
use std::time::{Duration, Instant};

use aiconfig_harness::results::checks::Status;
use aiconfig_harness::results::verdict::RunStatus;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::workers::install;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, Overrides, Scenario, SdkKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// One test at a time: each starts worker processes, and the kill test finds its worker
/// among this process's children.
static SERIAL: Mutex<()> = Mutex::const_new(());

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/scenarios/sdk-parity.toml"
);

fn installed(sdk: SdkKind) -> bool {
    match install::launch(sdk) {
        Ok(_) => true,
        Err(missing) if std::env::var("CI").as_deref() == Ok("true") => panic!("{missing}"),
        Err(missing) => {
            eprintln!("skipped: {missing}");
            false
        }
    }
}

fn load(sdk: SdkKind, edit: impl FnOnce(&mut String)) -> Scenario {
    let mut text = std::fs::read_to_string(SCENARIO).unwrap();
    edit(&mut text);
    let overrides = Overrides {
        sdk: Some(sdk),
        workers: (sdk != SdkKind::Rust).then_some(2),
        ..Overrides::default()
    };
    scenario::parse_with(Path::new(SCENARIO), &text, &overrides).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(scenario: &Scenario, cancel: CancellationToken) -> RunResults {
    let options = RunOptions {
        target: Target::Embedded,
        progress: false,
        cancel,
    };
    runner::run(scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// What must be the same whichever SDK ran the scenario.
#[derive(Debug, PartialEq)]
struct Same {
    requests: u64,
    failed: u64,
    /// Tokens in and out and cost, per model.
    by_model: Vec<(String, u64, u64, String)>,
    /// Tracker events by key, each SDK's identity event left out.
    tracked: Vec<(String, u64)>,
    /// Evaluations per variation.
    served: Vec<(String, u64)>,
}

fn same(r: &RunResults) -> Same {
    Same {
        requests: r.load.requests,
        failed: r.load.failed_requests,
        by_model: r
            .cost
            .by_model
            .iter()
            .map(|(m, c)| {
                (
                    m.clone(),
                    c.input_tokens,
                    c.output_tokens,
                    format!("{:.6}", c.cost_usd),
                )
            })
            .collect(),
        tracked: r
            .events
            .as_ref()
            .expect("events verified")
            .tracked
            .iter()
            .filter(|(k, _)| *k != "$ld:ai:sdk:info")
            .map(|(k, n)| (k.clone(), *n))
            .collect(),
        served: r.configs["assistant"]
            .variations
            .iter()
            .map(|(k, v)| (k.clone(), v.evaluations))
            .collect(),
    }
}

fn assert_every_check_passed(r: &RunResults) {
    assert_eq!(r.status, RunStatus::Complete, "{}", r.load.sdk.describe());
    for check in &r.checks {
        assert_eq!(
            check.status,
            Status::Pass,
            "{}: {}: {}",
            r.load.sdk.name,
            check.name,
            check.summary
        );
    }
    assert!(
        r.checks.iter().any(|c| c.name.contains("exact")),
        "the exact split check ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_python_and_node_sdks_serve_track_and_cost_the_same() {
    let _serial = SERIAL.lock().await;
    if !installed(SdkKind::Python) || !installed(SdkKind::Node) {
        return;
    }
    let mut runs = Vec::new();
    for sdk in [SdkKind::Rust, SdkKind::Python, SdkKind::Node] {
        let started = Instant::now();
        let results = run(&load(sdk, |_| {}), CancellationToken::new()).await;
        eprintln!(
            "{}: {:.1} s",
            results.load.sdk.describe(),
            started.elapsed().as_secs_f64()
        );
        assert_eq!(results.load.sdk.name, sdk.name());
        assert!(!results.load.sdk.version.is_empty());
        assert_every_check_passed(&results);
        runs.push(results);
    }
    let rust = same(&runs[0]);
    assert!(
        rust.failed > 0,
        "the simulated errors are part of what must match"
    );
    assert!(rust
        .tracked
        .iter()
        .any(|(k, _)| k.starts_with("$ld:ai:feedback")));
    for other in &runs[1..] {
        assert_eq!(
            same(other),
            rust,
            "{} differs from the Rust SDK",
            other.load.sdk.describe()
        );
        // Worker runs report their workers' event-loop lag, with its n.
        assert!(other
            .harness
            .worker_lag_probe
            .as_ref()
            .is_some_and(|l| l.count > 0));
    }
}

/// The pids of this process's children running `needle`.
fn children_running(needle: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: comm may hold spaces, so read after its `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(me.as_str()) && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// How many sockets process `pid` has open.
fn sockets(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_aborts_the_run_with_its_stderr() {
    let _serial = SERIAL.lock().await;
    if !installed(SdkKind::Python) {
        return;
    }
    // Long enough to be killed in: calls of about 200 ms, 16 at a time.
    let scenario = load(SdkKind::Python, |t| {
        *t = t
            .replace("count = 1_500", "count = 20_000")
            .replace("time_scale = 0\n", "time_scale = 0.25\n");
    });
    let run = tokio::spawn(async move { run(&scenario, CancellationToken::new()).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        let workers = children_running("aiconfig_worker.py");
        // Past start-up, the load is running: besides its SDK's stream, the worker holds
        // its LLM client's connections (8 calls at a time).
        // The last one started: the first one's driver is not the first to be waited for.
        if let Some(&busy) = workers.iter().filter(|&&pid| sockets(pid) >= 6).max() {
            break busy;
        }
        assert!(Instant::now() < deadline, "the workers did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap()
        .success());
    let results = run.await.unwrap();
    eprintln!(
        "aborted {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let RunStatus::WorkerFailed { message } = &results.status else {
        panic!("not aborted: {:?}", results.status);
    };
    assert!(message.contains("exited before the run ended"), "{message}");
    assert!(message.contains("signal: 9"), "{message}");
    assert_eq!(results.verdict.exit_code, 4);
    assert!(
        results.verdict.headline.contains("worker"),
        "{}",
        results.verdict.headline
    );
    // The surviving worker was stopped, not run to the end.
    assert!(results.load.requests < 20_000, "{}", results.load.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_team_handler_runs_in_the_python_worker() {
    let _serial = SERIAL.lock().await;
    if !installed(SdkKind::Python) {
        return;
    }
    let handler = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/handlers/support_handler.py"
    );
    let scenario = load(SdkKind::Python, |t| {
        *t = t.replace(
            "[load]\n",
            &format!("[load]\nhandler = \"{handler}:handle\"\n"),
        );
    });
    assert_eq!(
        scenario.load.handler.as_deref(),
        Some(&*format!("{handler}:handle"))
    );
    let results = run(&scenario, CancellationToken::new()).await;
    assert_every_check_passed(&results);
    let events = results.events.as_ref().unwrap();
    // The handler's own tracking: its feedback on every answered call, and the AI SDK's
    // duration and token events around its LLM call.
    let tracked = |key: &str| events.tracked.get(key).copied().unwrap_or(0);
    assert_eq!(
        tracked("$ld:ai:generation:success"),
        results.load.requests - results.load.failed_requests
    );
    assert_eq!(
        tracked("$ld:ai:feedback:user:positive"),
        tracked("$ld:ai:generation:success")
    );
    assert_eq!(tracked("$ld:ai:duration:total"), results.load.requests);
    assert!(results.cost.total.input_tokens > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_team_handler_runs_in_the_node_worker() {
    let _serial = SERIAL.lock().await;
    if !installed(SdkKind::Node) {
        return;
    }
    let handler = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/handlers/support_handler.mjs"
    );
    let scenario = load(SdkKind::Node, |t| {
        *t = t.replace(
            "[load]\n",
            &format!("[load]\nhandler = \"{handler}#handle\"\n"),
        );
    });
    let results = run(&scenario, CancellationToken::new()).await;
    assert_every_check_passed(&results);
    let events = results.events.as_ref().unwrap();
    let tracked = |key: &str| events.tracked.get(key).copied().unwrap_or(0);
    // The AI SDK's OpenAI helper around the handler's call: a duration and a success or an
    // error per call.
    let answered = results.load.requests - results.load.failed_requests;
    assert_eq!(tracked("$ld:ai:generation:success"), answered);
    assert_eq!(
        tracked("$ld:ai:generation:error"),
        results.load.failed_requests
    );
    assert_eq!(tracked("$ld:ai:duration:total"), results.load.requests);
    assert!(results.cost.total.output_tokens > 0);
}

/// `on_error` through every SDK: with the provider rate-limiting `model-a` throughout
/// (429, `Retry-After: 1`, switched on before the run), each step waits the Retry-After,
/// retries once, then falls back to `model-b`; the Rust, Python and Node SDKs make the same
/// calls, track the same events and cost the same (and the built-in `sdk_parity` check
/// compares a sample context by context).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdk_retries_and_falls_back_the_same_under_a_rate_limit() {
    let _serial = SERIAL.lock().await;
    if !installed(SdkKind::Python) || !installed(SdkKind::Node) {
        return;
    }
    const N: u64 = 20;
    let mut runs = Vec::new();
    for sdk in [SdkKind::Rust, SdkKind::Python, SdkKind::Node] {
        let mock = rate_limited_mock().await;
        let text = format!(
            r#"
name = "retries"
seed = 23

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "You are terse." }}]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[[steps]]
config = "assistant"
on_error = {{ retries = 1, max_retry_after = "2s", fallback_model = "model-b" }}

[population]
count = {N}

[load]
concurrency = 10
iterations = {N}
parity_sample = 10
# Every request waits out a 1 s Retry-After: seconds with none completed are the
# application's waits, not a stall.
stall_after = "10s"

[llm.models.model-a]
latency = {{ median = "5ms", p99 = "5ms" }}

[llm.models.model-b]
latency = {{ median = "5ms", p99 = "20ms" }}
output_tokens = {{ median = 20, p99 = 80 }}

[prices]
model-a = {{ input = 1.0, output = 2.0 }}
model-b = {{ input = 3.0, output = 7.0 }}
"#
        );
        let overrides = Overrides {
            sdk: Some(sdk),
            workers: (sdk != SdkKind::Rust).then_some(2),
            ..Overrides::default()
        };
        let scenario = scenario::parse_with(Path::new("retries.toml"), &text, &overrides)
            .unwrap_or_else(|e| panic!("{e}"));
        let options = RunOptions::quiet(external(&mock));
        let r = tokio::time::timeout(Duration::from_secs(120), runner::run(&scenario, options))
            .await
            .expect("the run ends within 2 minutes")
            .unwrap_or_else(|e| panic!("{e:#}"));
        let name = r.load.sdk.name.clone();
        assert_eq!(r.status, RunStatus::Complete, "{name}");
        for check in &r.checks {
            assert_eq!(
                check.status,
                Status::Pass,
                "{name}: {}: {}",
                check.name,
                check.summary
            );
        }
        let v = &r.configs["assistant"].variations["only"];
        // Per step: model-a (429), a wait of 1 s, model-a again (429), then model-b.
        assert_eq!(
            (v.ai_calls, v.errors, v.successes, v.retries),
            (3 * N, 2 * N, N, N),
            "{name}: {v:#?}"
        );
        assert_eq!(
            (v.fallbacks, v.fallback_successes, v.failed_steps),
            (N, N, 0),
            "{name}: {v:#?}"
        );
        assert!(
            v.latency.end_to_end.min_ms >= 998.0,
            "{name}: {:?}",
            v.latency.end_to_end
        );
        assert_eq!(
            r.cost.by_model.keys().collect::<Vec<_>>(),
            ["model-b"],
            "{name}"
        );
        runs.push((name, same(&r), v.retries, v.fallbacks));
    }
    let (_, rust, ..) = &runs[0];
    for (name, other, ..) in &runs[1..] {
        assert_eq!(other, rust, "{name} differs from the Rust SDK");
    }
}

const TOKEN: &str = "sdk-workers-token";

/// A mock-ld whose provider answers 429 with `Retry-After: 1` to every `model-a` call.
async fn rate_limited_mock() -> mock_ld::MockLdHandle {
    let mock = mock_ld::MockLd::start(mock_ld::Config {
        admin_token: Some(TOKEN.into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();
    reqwest::Client::new()
        .post(format!("{}/admin/faults", mock.base_url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"kind": "llmRateLimited", "model": "model-a", "retryAfter": 1}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    mock
}

fn external(mock: &mock_ld::MockLdHandle) -> Target {
    Target::in_process(mock, ("default", "test"), Some(TOKEN))
        .expect("mock-ld's default environment")
}

/// The `Retry-After` values and seeds the workers' copies of the retry rules must read and
/// draw as the Rust runner does (`runner::retry_after`, `runner::retry`), so that every SDK
/// waits and calls alike: delay seconds, the three HTTP-date forms, and what is neither.
#[test]
fn the_workers_read_retry_after_and_draw_seeds_as_the_rust_runner_does() {
    if !installed(SdkKind::Python) || !installed(SdkKind::Node) {
        return;
    }
    use aiconfig_harness::runner::{retry, retry_after};
    // 90 s before RFC 9110's example date, Fri, 31 Dec 1999 23:59:59 GMT.
    let now_secs: u64 = 946_684_799 - 90;
    let now = std::time::UNIX_EPOCH + Duration::from_secs(now_secs);
    let inputs = [
        "120",
        " 7 ",
        "Fri, 31 Dec 1999 23:59:59 GMT",
        "Friday, 31-Dec-99 23:59:59 GMT",
        "Fri Dec 31 23:59:59 1999",
        "Thu, 30 Dec 1999 23:59:59 GMT",
        "Fri Dec  3 23:59:59 1999",
        "Tuesday, 31-Dec-69 23:59:59 GMT",
        "Thursday, 01-Jan-70 00:00:00 GMT",
        "31 Dec 1999 23:59:59 GMT",
        "Fri, 31 Dec 1999 23:59:59 +0000",
        "Mon, 31 Dec 1999 23:59:59 GMT",
        "Wed, 30 Feb 2000 00:00:00 GMT",
        "Thu, 01 Jan 1960 00:00:00 GMT",
        "Fryday, 31-Dec-99 23:59:59 GMT",
        "-1",
        "+5",
        "1.5",
        "soon",
        "Fri, 32 Dec 1999 23:59:59 GMT",
    ];
    let expected: Vec<Option<f64>> = inputs
        .iter()
        .map(|v| retry_after::parse(v, now).map(|d| d.as_secs_f64()))
        .collect();
    let seeds = (
        retry::mix64(0).to_string(),
        retry::attempt_seed(42, 1).to_string(),
    );
    let inputs_json = serde_json::to_string(&inputs).unwrap();
    let python = format!(
        r#"import json, os, sys
from datetime import datetime, timezone
sys.path.insert(0, os.environ["WORKER_DIR"])
import aiconfig_worker as w
now = datetime.fromtimestamp({now_secs}, timezone.utc)
print(json.dumps({{
    "retryAfter": [w.retry_after_of({{"retry-after": v}}, now) for v in json.loads(os.environ["INPUTS"])],
    "mix64": str(w.mix64(0)),
    "attemptSeed": str(w.attempt_seed(42, 1)),
}}))"#
    );
    let node = format!(
        r#"const {{ retryAfterOf, mix64, attemptSeed }} = await import(new URL("lib/retry.mjs", "file://" + process.env.WORKER_DIR + "/"));
const inputs = JSON.parse(process.env.INPUTS);
console.log(JSON.stringify({{
  retryAfter: inputs.map((v) => retryAfterOf(new Headers({{ "retry-after": v }}), {now_secs} * 1000)),
  mix64: String(mix64(0)),
  attemptSeed: attemptSeed("42", 1),
}}));"#
    );
    for (sdk, args) in [
        (SdkKind::Python, vec!["-c".to_owned(), python]),
        (
            SdkKind::Node,
            vec!["--input-type=module".into(), "-e".into(), node],
        ),
    ] {
        let launch = install::launch(sdk).unwrap();
        let out = std::process::Command::new(&launch.program)
            .args(&args)
            .env("WORKER_DIR", install::dir(sdk))
            .env("INPUTS", &inputs_json)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", sdk.name());
        let got: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {stderr}", sdk.name()));
        let read: Vec<Option<f64>> = got["retryAfter"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: {got}", sdk.name()))
            .iter()
            .map(serde_json::Value::as_f64)
            .collect();
        for ((input, want), read) in inputs.iter().zip(&expected).zip(&read) {
            assert_eq!(read, want, "{}: Retry-After {input:?}", sdk.name());
        }
        assert_eq!(read.len(), expected.len(), "{}: {got}", sdk.name());
        let drawn = (got["mix64"].as_str(), got["attemptSeed"].as_str());
        let want = (Some(seeds.0.as_str()), Some(seeds.1.as_str()));
        assert_eq!(drawn, want, "{}: seeds", sdk.name());
    }
}
