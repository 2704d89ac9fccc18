//! `aiconfig-harness run` as a CI job runs it: the binary, a scenario file, and its exit
//! code (0 every check passed, 1 a check failed, 2 bad input, 4 interrupted), with `--json`
//! putting the results, and nothing else, on stdout; Ctrl-C (SIGINT) stops the load and
//! still writes what was measured, marked incomplete; command-line overrides are applied,
//! checked and recorded; a CI log gets progress lines.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A small run: 200 evaluations and LLM calls that answer at once; `checks` is appended.
fn scenario(checks: &str) -> String {
    format!(
        r#"name = "cli-run"
seed = 5

[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "only"
model = {{ name = "model-a" }}
messages = [{{ role = "system", content = "Be brief." }}]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[population]
count = 200

# This test judges check logic; whether the harness kept up is tests/starvation.rs's.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm]
time_scale = 0

{checks}"#
    )
}

/// A directory of its own for each test (they run in parallel), removed when dropped.
fn workdir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aiconfig-cli-run-{test}-"))
        .tempdir()
        .unwrap()
}

fn run(dir: &Path, text: &str, extra: &[&str]) -> Output {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--no-progress")
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn json_puts_the_results_alone_on_stdout_and_the_summary_on_stderr() {
    let dir = workdir("json");
    let out = run(
        dir.path(),
        &scenario("[[checks]]\nkind = \"events_complete\"\n"),
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", text(&out.stdout)));
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, written);
    assert_eq!(printed["load"]["requests"], 200);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("scenario cli-run: 200 requests"),
        "{stderr}"
    );
    assert!(stderr.contains("results: "), "{stderr}");
}

#[test]
fn without_json_the_summary_is_on_stdout() {
    let dir = workdir("summary");
    let out = run(dir.path(), &scenario(""), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("scenario cli-run: 200 requests"),
        "{stdout}"
    );
    assert!(dir.path().join("out/summary.txt").is_file());
}

#[test]
fn a_failed_check_exits_1() {
    let dir = workdir("failed");
    // Every call takes at least a microsecond: a zero maximum cannot hold.
    let checks = "[[checks]]\nkind = \"threshold\"\nmetric = \"end_to_end.p50\"\nmax = \"0ms\"\n";
    let out = run(dir.path(), &scenario(checks), &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["verdict"]["outcome"], "failed", "{printed}");
    assert_eq!(printed["verdict"]["exitCode"], 1, "{printed}");
}

#[test]
fn a_bad_scenario_exits_2_naming_file_line_and_column() {
    let dir = workdir("bad");
    let bad = scenario("").replace("count = 200", "count = 200\ncolour = \"blue\"");
    let out = run(dir.path(), &bad, &["--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("scenario.toml:16:1"), "{stderr}");
    assert!(stderr.contains("field `population.colour`"), "{stderr}");
}

/// `[[faults]]` need mock-ld's control API: a target without one (here, nothing listening)
/// is an input error before anything starts, naming the fault.
#[test]
fn faults_against_a_target_without_mock_lds_admin_api_exit_2() {
    let dir = workdir("faults");
    let faulty = scenario("[[faults]]\nat = \"1s\"\nduration = \"1s\"\nkind = \"llmOutage\"\n");
    let url = "http://127.0.0.1:9";
    let out = run(
        dir.path(),
        &faulty,
        &[
            "--ld-url",
            url,
            "--sdk-key",
            "sdk-x",
            "--api-token",
            "api-x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("field `faults[0]` (llmOutage): the target has no mock-ld /admin API"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
}

/// `validate` loads without running: a scenario without checks is valid (exit 0) but gets a
/// warning on stderr, since no run of it can fail; one with checks gets none.
#[test]
fn validate_warns_of_a_scenario_without_checks() {
    let dir = workdir("validate");
    let (bare, checked) = (
        dir.path().join("bare.toml"),
        dir.path().join("checked.toml"),
    );
    std::fs::write(&bare, scenario("")).unwrap();
    std::fs::write(
        &checked,
        scenario("[[checks]]\nkind = \"events_complete\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .arg("validate")
        .args([&bare, &checked])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("bare.toml: ok (cli-run)"), "{stdout}");
    assert!(stdout.contains("checked.toml: ok (cli-run)"), "{stdout}");
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: {}: no checks: this run cannot fail",
            bare.display()
        ),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_load_and_writes_partial_results() {
    let dir = workdir("ctrl-c");
    let file = dir.path().join("scenario.toml");
    // 1,500 requests over 30 s, unless stopped.
    let load = "[load]\nmodel = \"open\"\nrate = 50\nduration = \"30s\"\n";
    std::fs::write(&file, scenario(load)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--json")
        .env("RUST_LOG", "aiconfig_harness=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the load is under way, however long the setup took.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("load started") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the run ended before its load started: {seen}");
        }
        seen.push_str(&line);
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The rest of stderr and all of stdout are read while the run finishes: a full pipe
    // would stop it.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        rest
    });
    let mut stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut printed = Vec::new();
        stdout.read_to_end(&mut printed).unwrap();
        printed
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the run did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = rest.join().unwrap();
    // An interrupted run did not complete, whatever its checks said: exit 4.
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("stopping: flushing events"), "{stderr}");
    let printed: Value = serde_json::from_slice(&printed.join().unwrap()).unwrap();
    assert_eq!(printed["status"]["state"], "interrupted");
    assert_eq!(printed["verdict"]["outcome"], "incomplete");
    let requests = printed["load"]["requests"].as_u64().unwrap();
    assert!(requests < 1500, "{requests} requests");
    assert!(dir.path().join("out/results.json").is_file());
}

/// Overrides replace the file's values and are recorded; with stderr not a terminal, as in
/// CI, a progress line comes every 5 s; a bad override is an input error naming its flag.
#[test]
fn overrides_are_applied_and_recorded_and_a_ci_log_gets_progress_lines() {
    let dir = workdir("overrides");
    let toml = scenario("[load]\nmodel = \"open\"\nrate = 1000\nduration = \"1s\"\n");
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    let harness = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(extra)
            .output()
            .unwrap()
    };
    // 40 requests a second for 6 s: long enough for one progress line.
    let out = harness(&[
        "--rate",
        "40",
        "--duration",
        "6s",
        "--population",
        "300",
        "--seed",
        "11",
        "--json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let progress = stderr
        .lines()
        .find(|l| l.starts_with("progress "))
        .unwrap_or_else(|| panic!("no progress line in\n{stderr}"));
    assert!(
        progress.contains(" of 240 requests (") && progress.contains("p99 ≈ "),
        "{progress}"
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["load"]["requests"], 240, "{printed}");
    assert_eq!(printed["scenario"]["seed"], 11);
    assert_eq!(printed["scenario"]["population"], 300);
    let overrides = &printed["scenario"]["overrides"];
    assert_eq!(overrides["load.rate"], "40");
    assert_eq!(overrides["load.duration"], "6s");
    assert_eq!(overrides["population.count"], "300");
    assert_eq!(overrides["seed"], "11");
    assert!(text(&out.stderr)
        .contains("(overridden: load.duration=6s, load.rate=40, population.count=300, seed=11)"));

    let bad = harness(&["--population", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("field `population.count`: --population 0: "),
        "{}",
        text(&bad.stderr)
    );
}

/// Fields of results.json that are timings or follow from them, removed before two runs
/// of one seed are compared: latencies and their histograms, durations and rates, the
/// per-second timeline, the load generator's own figures, how events were batched into
/// payloads, and the words of checks and verdicts that quote timings.
const TIMING: &[&str] = &[
    "latency",
    "hdr",
    "durationMs",
    "achievedRate",
    "timeline",
    "harness",
    "flushLatency",
    "payloads",
    "summary",
    "headline",
    "details",
];

/// Whether a check judges a timing (a latency or throughput threshold, the stall check),
/// whose status may differ between two runs of one seed.
fn judges_timing(check: &Value) -> bool {
    let unit = check["details"]["unit"].as_str().unwrap_or_default();
    check["kind"] == "stall" || (check["kind"] == "threshold" && ["ms", "per_s"].contains(&unit))
}

/// `results` with every [`TIMING`] field removed, at any depth, and the checks and verdict
/// that judge timings.
fn without_timing(mut results: Value) -> Value {
    results["checks"]
        .as_array_mut()
        .unwrap()
        .retain(|c| !judges_timing(c));
    results.as_object_mut().unwrap().remove("verdict");
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !TIMING.contains(&k.as_str()) && !k.ends_with("Ms"));
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut results);
    results
}

/// Runs the shipped scenario `name` twice with `args`; returns both results.
fn twice(name: &str, args: &[&str]) -> [Value; 2] {
    [0, 1].map(|i| {
        let dir = workdir(&format!("seeded-{name}-{i}"));
        let out = Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
            .arg("run")
            .arg(format!("scenarios/{name}.toml"))
            .args(args)
            .args(["--json", "--no-progress", "--out"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        // Latency checks may be inconclusive on a busy host (exit 3); nothing may fail.
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 3),
            "{}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn errors(results: &Value) -> u64 {
    results["configs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c["variations"].as_object().unwrap().values())
        .map(|v| v["errors"].as_u64().unwrap())
        .sum()
}

#[test]
fn the_same_seed_gives_the_same_run_but_for_its_timings() {
    // The quickstart (closed model: three models with error rates, a rollout, 10 % feedback)
    // at 48 virtual users, so requests reach the simulated provider in a different order each
    // run; and model-ab-test (open model: arrivals on a schedule).
    for (name, args) in [
        (
            "quickstart",
            &["--iterations", "1500", "--concurrency", "48"][..],
        ),
        ("model-ab-test", &["--rate", "200", "--duration", "4s"][..]),
    ] {
        let [a, b] = twice(name, args);
        assert!(
            errors(&a) > 0,
            "{name}: errors happen, so the comparison covers them"
        );
        assert!(
            a["cost"]["total"]["costUsd"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        let (a, b) = (without_timing(a), without_timing(b));
        assert_eq!(a, b, "{name}: the same seed, another run");
    }
}
