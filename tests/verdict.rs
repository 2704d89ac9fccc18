//! One verdict everywhere: for each kind of run (all passed, a failed check, a baseline
//! regression only, an inconclusive check, an interrupted run, a scenario without checks),
//! every output channel agrees with the exit code: the exit code of `report` through the
//! binary, the terminal summary, the HTML banner, the `summary.md` title (the GitHub job
//! summary) and `junit.xml`. `report results.json` reproduces `summary.md` and `junit.xml`
//! byte for byte, and `compare` the verdict of `run --baseline`.
//!
//! The runs are real (embedded mock-ld, the real Rust SDK), small and made once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aiconfig_harness::compare::{self, baseline, Options};
use aiconfig_harness::report;
use aiconfig_harness::results::verdict::{Outcome, NO_CHECKS};
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario;
use tokio_util::sync::CancellationToken;

fn scenario_text(load: &str, time_scale: f64, checks: &str) -> String {
    format!(
        r#"
name = "verdict"
seed = 9
[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "only"
model = {{ name = "model-v" }}
messages = [{{ role = "system", content = "Help." }}]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"
[population]
count = 300
[load]
{load}
# This test judges check logic; whether the harness kept up is tests/starvation.rs's.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0
[llm]
time_scale = {time_scale}
[llm.models.model-v]
latency = {{ median = "1s", p99 = "2s" }}
ttft = {{ median = "200ms", p99 = "500ms" }}
{checks}
"#
    )
}

const CLOSED: &str = "concurrency = 16\niterations = 300";
/// Long enough that the cancellation lands while the load is under way.
const OPEN_LONG: &str = "model = \"open\"\nrate = 100\nduration = \"30s\"";

/// A threshold that holds (the simulated LLM's p99 is about 2 s × time_scale).
const GENEROUS: &str = "[[checks]]\nkind = \"threshold\"\nmetric = \"llm.p99\"\nmax = \"10s\"\n";
/// Every call takes at least a millisecond: a zero maximum cannot hold.
const IMPOSSIBLE: &str = "[[checks]]\nkind = \"threshold\"\nmetric = \"llm.p50\"\nmax = \"0ms\"\n";
/// `model-v` has no price, so its cost is a lower bound: the check cannot pass.
const UNPRICED_COST: &str =
    "[[checks]]\nkind = \"threshold\"\nmetric = \"cost_per_1k\"\nmax = 100.0\n";

struct Situation {
    name: &'static str,
    results: RunResults,
    expected: Outcome,
    exit_code: u8,
}

async fn run(text: &str, cancel_after: Option<Duration>) -> RunResults {
    let scenario =
        scenario::parse(Path::new("verdict.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            cancel.cancel();
        });
    }
    let options = RunOptions {
        target: Target::Embedded,
        progress: false,
        cancel,
    };
    runner::run(&scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The same run, slower by `factor`, compared with a baseline of the faster one.
async fn regression_only() -> RunResults {
    let base = run(&scenario_text(CLOSED, 0.01, GENEROUS), None).await;
    let mut slow = run(&scenario_text(CLOSED, 0.05, GENEROUS), None).await;
    let saved = baseline::of_results("fast", &base).unwrap();
    let current = baseline::metrics(&slow).unwrap();
    // A regression and nothing else: not judged inconclusive for a busy host's lag (that
    // path is tests/starvation.rs's).
    let comparison =
        compare::compare("fast", &saved.metrics, &current, &Options::default(), None).unwrap();
    slow.set_baseline(Some(comparison));
    slow
}

fn situations() -> &'static [Situation] {
    static MADE: OnceLock<Vec<Situation>> = OnceLock::new();
    MADE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = |name, results, expected, exit_code| Situation {
                name,
                results,
                expected,
                exit_code,
            };
            vec![
                s(
                    "all passed",
                    run(&scenario_text(CLOSED, 0.01, GENEROUS), None).await,
                    Outcome::Passed,
                    0,
                ),
                s(
                    "a failed check",
                    run(&scenario_text(CLOSED, 0.01, IMPOSSIBLE), None).await,
                    Outcome::Failed,
                    1,
                ),
                s(
                    "a baseline regression only",
                    regression_only().await,
                    Outcome::Failed,
                    1,
                ),
                s(
                    "an inconclusive check",
                    run(&scenario_text(CLOSED, 0.01, UNPRICED_COST), None).await,
                    Outcome::Inconclusive,
                    3,
                ),
                s(
                    "an interrupted run",
                    run(
                        &scenario_text(OPEN_LONG, 0.01, GENEROUS),
                        Some(Duration::from_millis(500)),
                    )
                    .await,
                    Outcome::Incomplete,
                    4,
                ),
                s(
                    "a scenario without checks",
                    run(&scenario_text(CLOSED, 0.01, ""), None).await,
                    Outcome::Unchecked,
                    0,
                ),
            ]
        })
    })
}

/// Writes results.json and the reports as `run` does; returns the directory.
fn write_run(situation: &Situation, channel: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "aiconfig-verdict-{}-{channel}-{}",
        std::process::id(),
        situation.name.replace(' ', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&situation.results).unwrap() + "\n",
    )
    .unwrap();
    report::write(&situation.results, &dir).unwrap();
    dir
}

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_situations_have_the_verdicts_they_were_made_for() {
    for s in situations() {
        let v = &s.results.verdict;
        assert_eq!(
            (v.outcome, v.exit_code),
            (s.expected, s.exit_code),
            "{}: {}",
            s.name,
            v.headline
        );
    }
}

#[test]
fn the_exit_code_of_report_is_the_verdicts_and_its_files_are_byte_identical() {
    for s in situations() {
        let dir = write_run(s, "exit");
        let again = dir.join("again");
        let results = dir.join("results.json");
        let out = harness(&[
            "report",
            results.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(i32::from(s.exit_code)),
            "{}: {}",
            s.name,
            String::from_utf8_lossy(&out.stderr)
        );
        for file in ["summary.md", "junit.xml"] {
            assert!(
                std::fs::read(dir.join(file)).unwrap() == std::fs::read(again.join(file)).unwrap(),
                "{}: `report` wrote another {file}",
                s.name
            );
        }
        let unchecked_warning = String::from_utf8_lossy(&out.stderr).contains(NO_CHECKS);
        assert_eq!(
            unchecked_warning,
            s.expected == Outcome::Unchecked,
            "{}",
            s.name
        );
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn the_terminal_summary_ends_with_the_verdict() {
    for s in situations() {
        let text = report::terminal::render(&s.results);
        let last = text.lines().last().unwrap();
        let word = match s.expected {
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Unchecked => "NO CHECKS",
            Outcome::Incomplete => "INCOMPLETE",
        };
        assert!(last.starts_with(&format!("{word}: ")), "{}: {last}", s.name);
        assert_eq!(
            text.contains("PASSED"),
            s.expected == Outcome::Passed,
            "{}: {text}",
            s.name
        );
    }
}

#[test]
fn the_html_banner_shows_the_verdict_and_is_green_only_when_it_passed() {
    for s in situations() {
        let dir = write_run(s, "html");
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let banner = html
            .lines()
            .find(|l| l.contains("id=\"verdict\""))
            .unwrap_or_else(|| panic!("{}: no verdict banner", s.name));
        assert!(
            banner.contains(&format!("data-exit-code=\"{}\"", s.exit_code)),
            "{}: {banner}",
            s.name
        );
        assert_eq!(
            banner.contains("banner pass"),
            s.expected == Outcome::Passed,
            "{}: {banner}",
            s.name
        );
        assert!(banner.contains(&s.results.verdict.headline.replace('"', "&quot;")));
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn the_summary_md_title_is_the_verdict() {
    for s in situations() {
        let dir = write_run(s, "md");
        let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        let title = md.lines().next().unwrap();
        assert!(title.starts_with("## "), "{}: {title}", s.name);
        assert_eq!(
            title.starts_with("## ✅"),
            s.expected == Outcome::Passed,
            "{}: {title}",
            s.name
        );
        let passed_word = title.contains(" PASSED ");
        assert_eq!(passed_word, s.expected == Outcome::Passed, "{title}");
        if s.expected == Outcome::Unchecked {
            assert!(title.contains(NO_CHECKS), "{title}");
        }
        if s.expected == Outcome::Incomplete {
            assert!(title.contains("INCOMPLETE"), "{title}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

/// A JUnit reader shows red when there are failures, and nothing green that was not
/// green: failures exactly when the exit code is 1 or 4, skipped cases when inconclusive or
/// unchecked, a failure per regressed metric with its figures.
#[test]
fn junit_fails_exactly_when_the_exit_code_says_so() {
    for s in situations() {
        let dir = write_run(s, "junit");
        let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
        let count = |attr: &str| -> usize {
            let start = xml.find("<testsuite name=").unwrap();
            let tag = &xml[start..xml[start..].find('>').unwrap() + start];
            let at = tag.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
            tag[at..at + tag[at..].find('"').unwrap()].parse().unwrap()
        };
        let (failures, skipped) = (count("failures"), count("skipped"));
        assert_eq!(
            failures > 0,
            matches!(s.exit_code, 1 | 4),
            "{}: {xml}",
            s.name
        );
        assert_eq!(
            skipped > 0,
            matches!(s.expected, Outcome::Inconclusive | Outcome::Unchecked),
            "{}: {xml}",
            s.name
        );
        assert_eq!(failures, xml.matches("<failure ").count());
        assert!(xml.contains(&format!(
            "<property name=\"exitCode\" value=\"{}\"/>",
            s.exit_code
        )));
        if s.name == "a baseline regression only" {
            let regression = xml
                .lines()
                .find(|l| l.contains("<failure ") && l.contains("type=\"regression\""))
                .unwrap_or_else(|| panic!("no regression failure in {xml}"));
            for part in ["baseline", "allowed", " ms"] {
                assert!(regression.contains(part), "{regression}");
            }
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn compare_reproduces_the_verdict_of_run_with_a_baseline() {
    let s = situations()
        .iter()
        .find(|s| s.name == "a baseline regression only")
        .unwrap();
    let dir = write_run(s, "compare");
    // The run without its comparison, as `run` without `--baseline` would have written it.
    let mut plain = s.results.clone();
    plain.set_baseline(None);
    let plain_path = dir.join("plain.json");
    std::fs::write(&plain_path, serde_json::to_string_pretty(&plain).unwrap()).unwrap();
    // The baseline the situation was compared with, saved as `baseline save` saves it.
    let base = run_blocking(&scenario_text(CLOSED, 0.01, GENEROUS));
    let base_path = dir.join("base-results.json");
    std::fs::write(&base_path, serde_json::to_string_pretty(&base).unwrap()).unwrap();
    let baselines = dir.join("baselines");
    let save = harness(&[
        "baseline",
        "save",
        base_path.to_str().unwrap(),
        "--name",
        "fast",
        "--dir",
        baselines.to_str().unwrap(),
    ]);
    assert_eq!(save.status.code(), Some(0));
    let out = harness(&[
        "compare",
        plain_path.to_str().unwrap(),
        "--baseline",
        baselines.join("fast.json").to_str().unwrap(),
        "--out",
        dir.join("compared").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let junit = std::fs::read_to_string(dir.join("compared/junit.xml")).unwrap();
    assert!(junit.contains("type=\"regression\""), "{junit}");
    std::fs::remove_dir_all(dir).ok();
}

fn run_blocking(text: &str) -> RunResults {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(text, None))
}
