//! `compare` end to end: a small scenario run for real (embedded mock-ld, the real Rust SDK,
//! the simulated LLM at 1/4 of its latency) passes against a baseline of an identical run
//! and fails against one whose LLM is twice as slow; the binary's exit codes follow.

use std::path::Path;
use std::process::Command;

use aiconfig_harness::compare::{self, baseline, Options};
use aiconfig_harness::results::comparison::{Comparison, Row, RowKind, Status};
use aiconfig_harness::results::RunResults as Results;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario;

/// 1,500 requests over 64 virtual users: about 9 s per run at a 400 ms median LLM call
/// (time to first token 100 ms), at about 160 requests a second. Latencies are kept well
/// above the scheduling jitter of a busy 2-core CI machine, which a rerun must not mistake
/// for a regression: at `time_scale = 0.25` (a 25 ms time to first token, 600 requests a
/// second on a debug build) a rerun beside other builds moved TTFT 41.6 → 45.6 ms, D = 0.117,
/// and regressed.
fn scenario_text(llm_median: &str, llm_p99: &str) -> String {
    format!(
        r#"
name = "compare-test"
seed = 7

[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "small"
model = {{ name = "model-s" }}
messages = [{{ role = "system", content = "You help." }}]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "small"

[population]
count = 1500

[load]
concurrency = 64

# This test judges check logic; whether the harness kept up is tests/starvation.rs's.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm]
time_scale = 1

[llm.models.model-s]
latency = {{ median = "{llm_median}", p99 = "{llm_p99}" }}
ttft = {{ median = "100ms", p99 = "300ms" }}
output_tokens = {{ median = 100, p99 = 300 }}

[prices]
model-s = {{ input = 1.0, output = 2.0 }}
"#
    )
}

/// A run's results.json, and the same read back.
struct Run {
    json: String,
    results: Results,
}

async fn run(text: &str) -> Run {
    let scenario =
        scenario::parse(Path::new("compare-test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions::quiet(Target::Embedded);
    let results = runner::run(&scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    Run {
        json: serde_json::to_string_pretty(&results).unwrap(),
        results,
    }
}

fn compare_with(base: &Run, now: &Run) -> Comparison {
    let baseline = baseline::of_results("base", &base.results).unwrap();
    let current = baseline::metrics(&now.results).unwrap();
    // The statistics alone: whether either run's load generator was overloaded is
    // tests/starvation.rs's and the compare unit tests' concern.
    compare::compare(
        "base",
        &baseline.metrics,
        &current,
        &Options::default(),
        None,
    )
    .unwrap()
}

fn row<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} in\n{}", c.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_passes_and_doubled_llm_latency_regresses() {
    let base = run(&scenario_text("400ms", "1200ms")).await;
    let rerun = run(&scenario_text("400ms", "1200ms")).await;
    let slow = run(&scenario_text("800ms", "2400ms")).await;

    let same = compare_with(&base, &rerun);
    assert_eq!(same.regressions(), 0, "a rerun must pass:\n{}", same.text());

    let doubled = compare_with(&base, &slow);
    let llm = row(&doubled, "llm");
    assert_eq!(llm.status, Status::Regressed, "\n{}", doubled.text());
    let RowKind::Latency {
        percentiles, ks, ..
    } = &llm.kind
    else {
        panic!("llm is a latency")
    };
    assert!(
        percentiles
            .iter()
            .any(|p| p.label == "p50" && p.status == Status::Regressed),
        "\n{}",
        doubled.text()
    );
    let ks = ks.expect("both runs have LLM calls");
    assert!(ks.regressed && ks.test.slower && ks.test.d > 0.3, "{ks:?}");
    assert_eq!(
        row(&doubled, "assistant/small/llm").status,
        Status::Regressed
    );
    assert_eq!(
        row(&doubled, "evaluation").status,
        Status::Ok,
        "the SDK did not get slower:\n{}",
        doubled.text()
    );
    assert!(doubled.markdown().contains("❌ regressed"));

    exit_codes(&base, &rerun, &slow);
}

/// `baseline save` and `compare` through the binary: 0 on the rerun, 1 on the slow run,
/// 2 for a missing baseline and for a baseline of another scenario.
fn exit_codes(base: &Run, rerun: &Run, slow: &Run) {
    let dir = tempdir();
    let write = |name: &str, r: &Run| {
        let path = dir.join(name);
        std::fs::write(&path, &r.json).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (rerun, slow) = (write("rerun.json", rerun), write("slow.json", slow));
    let saved = save_baseline(&dir, &write("base.json", base));
    let compare = |results: &str, extra: &[&str]| {
        harness(&[&["compare", results, "--baseline", &saved], extra].concat())
    };

    assert_eq!(compare(&rerun, &[]).status.code(), Some(0));
    let slow_out = compare(&slow, &[]);
    assert_eq!(slow_out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&slow_out.stdout).contains("REGRESSED"));
    // A generous tolerance turns the regression into a pass. Its absolute part is the SDKs'
    // 5 s flush interval: a summary is up to one interval old when it is sent, so with a
    // handful of summaries `delivery.summary` moved 271 → 1844 ms between two runs in CI.
    let lenient = compare(&slow, &["--tolerance", "*=500%,5s", "--ks-min-effect", "1"]);
    assert_eq!(
        lenient.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&lenient.stdout)
    );

    overloaded(&dir, base, &saved, (&slow, &rerun));

    let missing = harness(&["compare", &rerun, "--baseline", "no-such-baseline"]);
    assert_eq!(missing.status.code(), Some(2));
    let other = std::fs::read_to_string(&saved)
        .unwrap()
        .replace("\"name\": \"compare-test\"", "\"name\": \"another\"");
    let other_path = dir.join("other.json");
    std::fs::write(&other_path, other).unwrap();
    assert_eq!(
        harness(&[
            "compare",
            &rerun,
            "--baseline",
            other_path.to_str().unwrap()
        ])
        .status
        .code(),
        Some(2)
    );
    std::fs::remove_dir_all(dir).ok();
}

/// An overloaded load generator: the slow run, had its harness been late, exits 3 (not 1)
/// with the overload named; such a run is no baseline unless `--force`, which marks the file,
/// and an on-time rerun compared against that file is inconclusive too.
fn overloaded(dir: &Path, base: &Run, saved: &str, (slow, rerun): (&str, &str)) {
    let reason = "lag probe p99 99.0 ms > 20 ms (n = 300)";
    let mark = |r: &Results| {
        let mut r = r.clone();
        r.harness.overloaded = vec![reason.to_owned()];
        r.decide();
        r
    };
    let slow: Results = serde_json::from_str(&std::fs::read_to_string(slow).unwrap()).unwrap();
    let late_slow = dir.join("late-slow.json");
    std::fs::write(&late_slow, serde_json::to_string(&mark(&slow)).unwrap()).unwrap();
    let out = harness(&["compare", late_slow.to_str().unwrap(), "--baseline", saved]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains(reason) && stdout.contains("INCONCLUSIVE"),
        "{stdout}"
    );
    assert!(!stdout.contains("REGRESSED"), "{stdout}");

    // An overloaded run compared with a baseline is inconclusive, so no baseline by default.
    let mut late = mark(&base.results);
    let baseline = baseline::of_results("base", &base.results).unwrap();
    let current = baseline::metrics(&late).unwrap();
    let note = late.harness.overload_note();
    let options = Options::default();
    late.set_baseline(Some(
        compare::compare("base", &baseline.metrics, &current, &options, note).unwrap(),
    ));
    let late_path = dir.join("late.json");
    std::fs::write(&late_path, serde_json::to_string(&late).unwrap()).unwrap();
    let baselines = dir.join("baselines");
    let save = |extra: &[&str]| {
        let args = [
            "baseline",
            "save",
            late_path.to_str().unwrap(),
            "--name",
            "late",
        ];
        let dir_args = ["--dir", baselines.to_str().unwrap()];
        harness(&[&args[..], &dir_args, extra].concat())
    };
    let refused = save(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("inconclusive run") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!baselines.join("late.json").exists());
    assert_eq!(save(&["--force"]).status.code(), Some(0));
    let forced = std::fs::read_to_string(baselines.join("late.json")).unwrap();
    assert!(
        forced.contains("\"inconclusive\": \"the load generator was overloaded"),
        "{forced}"
    );
    assert!(forced.contains(reason), "{forced}");
    // Against a baseline whose harness was late, latencies cannot be judged either.
    let against = harness(&[
        "compare",
        rerun,
        "--baseline",
        baselines.join("late.json").to_str().unwrap(),
    ]);
    assert_eq!(against.status.code(), Some(3));
}

/// `baseline save` into `dir/baselines`; returns the file's path.
fn save_baseline(dir: &Path, results: &str) -> String {
    let baselines = dir.join("baselines");
    let save = harness(&[
        "baseline",
        "save",
        results,
        "--name",
        "ci",
        "--dir",
        baselines.to_str().unwrap(),
    ]);
    assert_eq!(
        save.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&save.stderr)
    );
    let saved = baselines.join("ci.json");
    assert!(
        std::fs::read_to_string(&saved)
            .unwrap()
            .contains("\"hdr\": \"HISTF"),
        "baselines keep the histograms"
    );
    saved.to_str().unwrap().to_owned()
}

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .args(args)
        .output()
        .unwrap()
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aiconfig-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
