//! A starved load generator is reported as such, never as a regression: the harness binary
//! is frozen (SIGSTOP) for 200 ms of every 500 ms, as a machine whose other work takes the
//! CPU would freeze it, but on a fixed schedule so the starvation is the same on any host.
//! Its lag probe sees the stalls, the run says the load generator was overloaded, and the
//! latency thresholds it would have failed are inconclusive (exit code 3), while the count
//! checks still judge. The unstarved half runs the same scenario and may pass or, on a busy
//! host, be inconclusive, but never fail.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// LLM calls of 20 ms (p99 40 ms) at 8 virtual users, about 3 s of load; the latency
/// thresholds hold with room to spare unless the harness itself is late.
const SCENARIO: &str = r#"name = "starvation"
seed = 11

[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "only"
model = { name = "model-a" }
messages = [{ role = "system", content = "Be brief." }]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[population]
count = 1000

[load]
concurrency = 8

[load.events]
flush_interval = "1s"

[llm.models.model-a]
latency = { median = "20ms", p99 = "40ms" }
ttft = { median = "5ms", p99 = "10ms" }

[[checks]]
kind = "threshold"
metric = "llm.p99"
max = "150ms"

[[checks]]
kind = "threshold"
metric = "requests.p99"
max = "150ms"

[[checks]]
kind = "threshold"
metric = "error_rate"
max = 0.01

[[checks]]
kind = "events_complete"
"#;

/// A directory of its own for each test (they run in parallel), removed when dropped.
fn workdir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aiconfig-starvation-{test}-"))
        .tempdir()
        .unwrap()
}

fn start(dir: &Path) -> Child {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    Command::new(env!("CARGO_BIN_EXE_aiconfig-harness"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--no-progress")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Freezes `pid` for `stopped` of every `period` until `done`, and always leaves it running.
fn starve(pid: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (stopped, running) = (Duration::from_millis(200), Duration::from_millis(300));
    std::thread::spawn(move || {
        let pid = Pid::from_raw(pid as i32);
        while !done.load(Ordering::Relaxed) {
            if kill(pid, Signal::SIGSTOP).is_err() {
                return;
            }
            std::thread::sleep(stopped);
            let _ = kill(pid, Signal::SIGCONT);
            std::thread::sleep(running);
        }
    })
}

/// Waits for the child at most `limit`, killing it past that.
fn finish(mut child: Child, limit: Duration) -> (i32, String) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            return (status.code().unwrap_or(-1), text);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("out/results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn status_of<'a>(r: &'a Value, name_part: &str) -> &'a str {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no check named {name_part}: {}", r["checks"]))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn a_starved_load_generator_is_reported_and_its_latency_checks_are_inconclusive() {
    let dir = workdir("starved");
    let child = start(dir.path());
    let done = Arc::new(AtomicBool::new(false));
    let starver = starve(child.id(), done.clone());
    let (code, output) = finish(child, Duration::from_secs(240));
    done.store(true, Ordering::Relaxed);
    starver.join().unwrap();

    let r = results(dir.path());
    let harness = &r["harness"];
    let probe = &harness["lagProbe"];
    println!("lag probe: {probe}\noverloaded: {}", harness["overloaded"]);
    // 200 ms stalls in every 500 ms: two ticks in five are late, by up to 200 ms.
    assert!(probe["p99Ms"].as_f64().unwrap() > 100.0, "{probe}");
    assert!(probe["count"].as_u64().unwrap() > 100, "{probe}");
    let overloaded = harness["overloaded"].as_array().unwrap();
    assert!(
        overloaded
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("lag probe p99")),
        "{overloaded:?}"
    );
    assert_eq!(code, 3, "inconclusive, never failed:\n{output}");
    assert_eq!(r["verdict"]["outcome"], "inconclusive");
    let headline = r["verdict"]["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("the load generator was overloaded (lag probe p99"),
        "{headline}"
    );
    for latency in ["llm.p99", "requests.p99"] {
        assert_eq!(status_of(&r, latency), "inconclusive", "{latency}");
    }
    // Counts are the system's whatever the harness's lateness.
    assert_eq!(status_of(&r, "error_rate"), "pass");
    assert_eq!(status_of(&r, "events complete"), "pass");
    let summary = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(
        summary.contains("OVERLOADED: the load generator"),
        "{summary}"
    );
}

#[test]
fn an_unstarved_load_generator_passes_or_is_inconclusive_never_failed() {
    let dir = workdir("unstarved");
    let (code, output) = finish(start(dir.path()), Duration::from_secs(240));
    let r = results(dir.path());
    println!(
        "lag probe: {}\noverloaded: {}",
        r["harness"]["lagProbe"], r["harness"]["overloaded"]
    );
    assert!(
        code == 0 || (code == 3 && !r["harness"]["overloaded"].as_array().unwrap().is_empty()),
        "exit {code}: a quiet run passes, a busy host's is inconclusive with its lag shown:\n{output}"
    );
    assert_eq!(status_of(&r, "error_rate"), "pass");
    assert_eq!(status_of(&r, "events complete"), "pass");
}
