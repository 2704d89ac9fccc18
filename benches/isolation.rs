//! Does the harness measure the simulated LLM provider as an independent load tool does?
//!
//! One simulated model with a fixed profile (40 ms, first token at 10 ms, 20 tokens) is
//! served by mock-ld in one of three places:
//! - `shared`: on the harness's own tokio runtime (how `run` embedded it before);
//! - `thread`: on a runtime and threads of its own in the same process
//!   (`mock_ld::isolated`, how `run` embeds it now);
//! - `process`: the `mock-ld` binary as a child process.
//!
//! Against each, legs alternate A/B/A/B: A is the harness (`runner::run`, an open-model
//! scenario at `--rate`, one LLM call per request, its `llm` latency), B is `hey` at the same
//! rate with the same streamed request body. Then the same again beside two busy loops
//! (`yes`). Each leg prints p50/p95/p99 with n; each place and condition prints the A legs
//! pooled against the B legs pooled, and their ratios.
//!
//! `cargo bench --bench isolation [-- --secs 6 --rate 40 --modes shared,thread,process]`
//! (hey gets `-c rate/10 -q 10`);
//! `cargo test --benches` runs one short leg of each tool (and skips `hey` when it is absent).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use aiconfig_harness::results::latency::LatencySummary;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario;
use hdrhistogram::Histogram;
use mock_ld::isolated::IsolatedMockLd;
use mock_ld::{MockLd, MockLdHandle};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MODEL: &str = "iso-model";
const SYSTEM: &str = "Be brief.";
const PROMPT: &str = "Hello";
/// Requests per second of each hey worker (`-q`): 100 ms apart, well over the 40 ms a
/// request takes, so no worker falls behind its ticks.
const HEY_WORKER_RATE: f64 = 10.0;
/// The busy loops end by themselves even if the bench is killed.
const BUSY_LIMIT_SECS: u64 = 900;

/// Where mock-ld runs.
enum Place {
    Shared(MockLdHandle),
    Thread(IsolatedMockLd),
    Process(common::MockLdProcess),
}

impl Place {
    async fn start(mode: &str) -> Place {
        match mode {
            "shared" => Place::Shared(MockLd::start(mock_ld::Config::default()).await.unwrap()),
            "thread" => Place::Thread(
                IsolatedMockLd::start(mock_ld::Config::default())
                    .await
                    .unwrap(),
            ),
            "process" => {
                let bin = common::mock_ld_binary("isolation", "ISOLATION_MOCK_LD").unwrap();
                Place::Process(common::start_mock_ld(&bin, &[], Some(4 << 30)).unwrap())
            }
            other => panic!("--modes takes shared, thread, process; not {other:?}"),
        }
    }

    fn base_url(&self) -> String {
        match self {
            Place::Shared(m) => m.base_url(),
            Place::Thread(m) => m.base_url(),
            Place::Process(p) => p.base_url.clone(),
        }
    }
}

/// One leg's samples, as a histogram of microseconds.
struct Leg {
    tool: &'static str,
    latency: Histogram<u64>,
    /// The harness's judgement of itself (results.harness): its lag and whether it kept up.
    health: Option<String>,
}

fn summary_line(label: &str, h: &Histogram<u64>) -> String {
    let s = LatencySummary::of(h);
    format!(
        "{label}: n={} p50={:.2} ms p95={:.2} ms p99={:.2} ms",
        s.count, s.p50_ms, s.p95_ms, s.p99_ms
    )
}

/// An LLM-bound scenario: each request evaluates an AI Config and calls the simulated
/// model once. `key` is new per leg, since a second run may not recreate an AI Config.
fn scenario(key: &str, rate: f64, secs: u64) -> scenario::Scenario {
    let text = format!(
        r#"
name = "isolation"
seed = 1
[[ai_configs]]
key = "{key}"
[[ai_configs.variations]]
key = "only"
model = {{ name = "{MODEL}" }}
messages = [{{ role = "system", content = "{SYSTEM}" }}]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"
[population]
count = 1000
[[steps]]
config = "{key}"
prompt = "{PROMPT}"
[load]
model = "open"
rate = {rate}
duration = "{secs}s"
stall_check = false
[load.events]
enabled = false
[llm.models.{MODEL}]
latency = {{ median = "40ms", p99 = "40ms" }}
ttft = {{ median = "10ms", p99 = "10ms" }}
output_tokens = {{ median = 20, p99 = 20 }}
"#
    );
    scenario::parse("isolation.toml".as_ref(), &text).expect("the bench scenario is valid")
}

static LEGS: AtomicUsize = AtomicUsize::new(0);

/// A: the harness drives the scenario against the place's mock-ld; its LLM latency.
async fn harness_leg(base_url: &str, rate: f64, secs: u64) -> Leg {
    let key = format!("iso-{}", LEGS.fetch_add(1, Ordering::Relaxed));
    let target = Target::External {
        sdk_url: base_url.to_owned(),
        stream_url: None,
        events_url: None,
        api_url: base_url.to_owned(),
        sdk_key: common::SDK_KEY.to_owned(),
        api_token: mock_ld::Config::default().api_token,
        admin_token: None,
    };
    let options = RunOptions {
        target,
        progress: false,
        cancel: CancellationToken::new(),
    };
    let results = runner::run(&scenario(&key, rate, secs), options)
        .await
        .expect("the harness leg runs");
    assert_eq!(
        results.load.failed_requests, 0,
        "the harness leg had failures"
    );
    let mut latency = Histogram::new(3).unwrap();
    for variation in results.configs[&key].variations.values() {
        latency
            .add(
                variation
                    .latency
                    .llm
                    .histogram()
                    .expect("a valid histogram"),
            )
            .unwrap();
    }
    let h = &results.harness;
    let health = format!(
        "lag probe p99 {:.2} ms (n = {}); {}",
        h.lag_probe.p99_ms,
        h.lag_probe.count,
        h.overload_note().unwrap_or_else(|| "kept up".into())
    );
    Leg {
        tool: "harness",
        latency,
        health: Some(health),
    }
}

/// hey's workers (`-c`) for `rate`; its `-q` is per worker.
fn hey_workers(rate: f64) -> usize {
    (rate / HEY_WORKER_RATE).ceil().max(1.0) as usize
}

fn hey_available() -> bool {
    Command::new("hey")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The request body the harness sends for the scenario's step.
fn request_body() -> String {
    serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string()
}

/// B: hey at the same rate (`-q` is per worker) and body; its per-request times, read
/// from its CSV output (seconds, to 0.1 ms) so that both tools' percentiles are computed
/// the same way.
async fn hey_leg(base_url: &str, rate: f64, secs: u64) -> Leg {
    let url = format!("{base_url}/v1/chat/completions");
    let workers = hey_workers(rate);
    let output = tokio::process::Command::new("timeout")
        .arg((secs + 30).to_string())
        .arg("hey")
        .args(["-z", &format!("{secs}s"), "-c", &workers.to_string()])
        .args(["-q", &format!("{}", rate / workers as f64)])
        .args([
            "-m",
            "POST",
            "-T",
            "application/json",
            "-d",
            &request_body(),
        ])
        .args(["-o", "csv", &url])
        .output()
        .await
        .expect("hey runs");
    assert!(output.status.success(), "hey failed: {output:?}");
    let mut latency = Histogram::new(3).unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let seconds: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(-1.0);
        let status = fields.nth(5).unwrap_or("");
        assert_eq!(status, "200", "hey got a failed request: {line}");
        latency.record((seconds * 1e6).round() as u64).unwrap();
    }
    Leg {
        tool: "hey",
        latency,
        health: None,
    }
}

/// `count` busy loops, killed when dropped.
struct Busy(Vec<Child>);

impl Busy {
    fn start(count: usize) -> Busy {
        Busy(
            (0..count)
                .map(|_| {
                    Command::new("timeout")
                        .args([&BUSY_LIMIT_SECS.to_string(), "yes"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("`yes` starts")
                })
                .collect(),
        )
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // SIGTERM, which `timeout` passes on to `yes`; a SIGKILL would orphan `yes`.
        for child in &mut self.0 {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// A/B/A/B against one place in one condition; prints each leg, the pooled figures and
/// the ratios of the harness's percentiles to hey's.
async fn alternate(label: &str, base_url: &str, rate: f64, secs: u64, pairs: usize, hey: bool) {
    let mut pooled: Vec<Leg> = Vec::new();
    for _ in 0..pairs {
        let mut legs = vec![harness_leg(base_url, rate, secs).await];
        if hey {
            legs.push(hey_leg(base_url, rate, secs).await);
        }
        for leg in legs {
            println!("  {label} {}", summary_line(leg.tool, &leg.latency));
            if let Some(health) = &leg.health {
                println!("    {health}");
            }
            match pooled.iter_mut().find(|p| p.tool == leg.tool) {
                Some(p) => p.latency.add(&leg.latency).unwrap(),
                None => pooled.push(leg),
            }
        }
    }
    for leg in &pooled {
        println!("{label} pooled {}", summary_line(leg.tool, &leg.latency));
    }
    if let [a, b] = &pooled[..] {
        let (a, b) = (
            LatencySummary::of(&a.latency),
            LatencySummary::of(&b.latency),
        );
        println!(
            "{label} ratio harness/hey: p50 {:.3}  p95 {:.3}  p99 {:.3}",
            a.p50_ms / b.p50_ms,
            a.p95_ms / b.p95_ms,
            a.p99_ms / b.p99_ms
        );
    }
}

struct Args {
    quick: bool,
    secs: u64,
    rate: f64,
    modes: Vec<String>,
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this without it.
    let quick = !args.iter().any(|a| a == "--bench");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let number = |flag: &str, default: f64| {
        value(flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} takes a number"))
        })
    };
    let default_modes = if quick {
        "thread"
    } else {
        "shared,thread,process"
    };
    Args {
        quick,
        secs: number("--secs", if quick { 1.0 } else { 6.0 }) as u64,
        rate: number("--rate", if quick { 20.0 } else { 40.0 }),
        modes: value("--modes")
            .map_or(default_modes, String::as_str)
            .split(',')
            .map(str::to_owned)
            .collect(),
    }
}

#[tokio::main]
async fn main() {
    aiconfig_harness::process::disable_transparent_huge_pages();
    let args = args();
    let hey = hey_available();
    if !hey {
        println!("isolation: `hey` is not installed (apt-get install hey); harness legs only");
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "isolation: {} s legs at {}/s, hey -c {}; load average at start: {}",
        args.secs,
        args.rate,
        hey_workers(args.rate),
        loadavg.trim()
    );
    let pairs = if args.quick { 1 } else { 2 };
    for mode in &args.modes {
        let place = Place::start(mode).await;
        let url = place.base_url();
        alternate(
            &format!("{mode} idle"),
            &url,
            args.rate,
            args.secs,
            pairs,
            hey,
        )
        .await;
        if !args.quick {
            let busy = Busy::start(2);
            alternate(
                &format!("{mode} busy×2"),
                &url,
                args.rate,
                args.secs,
                pairs,
                hey,
            )
            .await;
            drop(busy);
        }
    }
}
