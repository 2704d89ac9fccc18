//! What `run --sdk python|node` costs over the team's own code: requests per second of the
//! harness driving W worker processes of the real SDK and AI SDK, against a plain loop
//! (`benches/sdk_workers/plain_loop.{py,mjs}`) in W processes of the same runtime and the
//! same installed packages, running the same per-request code (`completion_config` with the
//! step's variables, the `openai` call with the request's `X-Mock-Seed`, the AI SDK's
//! tracking helper) over the same contexts and seeds, against the same mock-ld at
//! `time_scale = 0`. Figures only, no timing assertions.
//!
//! Legs alternate plain, harness, harness, plain, …, so that a drift of this shared machine
//! does not favour either side; each pair's ratio is printed, then the ratio of the sums.
//! Every harness run uses an AI Config key of its own (setting up an existing one is a
//! conflict); the plain loops use one set up once, identical to them.
//!
//! `cargo bench --bench sdk_workers [-- python|node] [--requests N] [--rounds R]`.
//! `cargo test --benches` runs one small round per SDK, and skips an SDK whose workers are
//! not installed (`aiconfig-harness setup-workers`), except under `CI=true`, where that
//! fails. `SDK_WORKERS_MOCK_LD=/path/to/mock-ld` runs that binary instead of building one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use aiconfig_harness::ld_api::LdApi;
use aiconfig_harness::results::verdict::RunStatus;
use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::call::request_seed;
use aiconfig_harness::runner::mock_admin::MockAdmin;
use aiconfig_harness::runner::workers::install;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario::{self, population::Generator, Scenario, SdkKind};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Worker processes of the harness, and processes of the plain loop.
const PROCESSES: usize = 2;
/// The run's concurrency: each of the processes runs half.
const CONCURRENCY: usize = 16;
const VARIABLES: &str = r#"{"company": "Acme"}"#;
const PROMPT: &str = "How do I reset my password?";
const EVENT_CAPACITY: usize = 30_000;
const FLUSH_INTERVAL_MS: u64 = 1_000;
/// The plain loops' config; each harness run sets up `bench-<sdk>-<n>`.
const PLAIN_CONFIG: &str = "bench-plain";

/// The scenario of one leg: one AI Config (`config`), a tier rule and a fallthrough, one
/// step, the closed model, LLM answers at once without errors.
fn scenario(config: &str, sdk: SdkKind, requests: u64) -> Scenario {
    let text = format!(
        r#"
name = "sdk-workers-bench"
seed = 5
[[ai_configs]]
key = "{config}"
[[ai_configs.variations]]
key = "small"
model = {{ name = "gpt-4o-mini", provider = "openai" }}
messages = [{{ role = "system", content = "You help {{{{ldctx.key}}}} at {{{{company}}}}." }}]
[[ai_configs.variations]]
key = "large"
model = {{ name = "gpt-4o", provider = "openai" }}
messages = [{{ role = "system", content = "You are a senior engineer at {{{{company}}}}." }}]
[[ai_configs.targeting]]
kind = "addRule"
clauses = [{{ contextKind = "user", attribute = "tier", op = "in", values = ["premium"] }}]
variation = "large"
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "small"
[population]
count = {requests}
[population.kinds.user.attributes]
tier = {{ weighted = {{ free = 70, premium = 30 }} }}
[[steps]]
config = "{config}"
variables = {VARIABLES_TOML}
prompt = "{PROMPT}"
[load]
model = "closed"
concurrency = {CONCURRENCY}
sdk = "{sdk}"
workers = {PROCESSES}
parity_sample = 0
[load.events]
capacity = {EVENT_CAPACITY}
flush_interval = "{FLUSH_INTERVAL_MS}ms"
# This bench compares rates; the shared machine's lag is not what it judges.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0
[llm]
time_scale = 0
stream = false
[llm.models.gpt-4o-mini]
latency = {{ median = "800ms", p99 = "3s" }}
output_tokens = {{ median = 120, p99 = 400 }}
error_rate = 0
[llm.models.gpt-4o]
latency = {{ median = "800ms", p99 = "3s" }}
output_tokens = {{ median = 250, p99 = 800 }}
error_rate = 0
"#,
        sdk = sdk.name(),
    );
    scenario::parse("sdk-workers.toml".as_ref(), &text).expect("the bench scenario is valid")
}

const VARIABLES_TOML: &str = r#"{ company = "Acme" }"#;

/// The bench's mock-ld and where the plain loops find their contexts.
struct Bench {
    mock: common::MockLdProcess,
    contexts: PathBuf,
    _dir: tempfile::TempDir,
    requests: u64,
}

impl Bench {
    /// Starts mock-ld, sets the simulated models' profiles (time scale 0) and the plain
    /// loops' AI Config, and writes the population's contexts with each request's seed.
    async fn start(bin: &Path, requests: u64) -> Bench {
        let mock = common::start_mock_ld(bin, &[], Some(4 << 30)).expect("mock-ld starts");
        // The SDK named here does not matter: only the AI Config and the models are set up.
        let setup = scenario(PLAIN_CONFIG, SdkKind::Python, requests);
        MockAdmin::new(format!("{}/admin", mock.base_url), None)
            .expect("admin client")
            .set_llm_profiles(&setup)
            .await
            .expect("LLM profiles set");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        LdApi::new(
            http,
            &mock.base_url,
            &mock_ld::Config::default().api_token,
            &setup.project,
        )
        .set_up(&setup)
        .await
        .expect("the plain loops' AI Config is set up");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let contexts = dir.path().join("contexts.jsonl");
        write_contexts(&setup, &contexts);
        Bench {
            mock,
            contexts,
            _dir: dir,
            requests,
        }
    }

    fn target(&self) -> Target {
        let config = mock_ld::Config::default();
        Target::External {
            sdk_url: self.mock.base_url.clone(),
            stream_url: None,
            events_url: None,
            api_url: self.mock.base_url.clone(),
            sdk_key: common::SDK_KEY.to_owned(),
            api_token: config.api_token,
            admin_token: None,
        }
    }
}

/// One line per request, in the harness's order: request `n` is context `n` with the seed
/// the harness sends for its first step.
fn write_contexts(s: &Scenario, path: &Path) {
    let population = Generator::new(&s.population, s.seed).expect("valid population");
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("contexts file"));
    for n in 0..population.count() {
        let context = population.context(n).expect("valid context");
        let line = serde_json::json!({"context": context, "seed": request_seed(n, 0).to_string()});
        writeln!(out, "{line}").expect("write contexts");
    }
    out.flush().expect("write contexts");
}

/// A leg's figures.
struct Leg {
    rate: f64,
    requests: u64,
    errors: u64,
    /// CPU seconds of the SDK side during the load: the plain loops', or the harness's
    /// workers' and coordinator's (`harness.cpuSeconds`).
    cpu: f64,
    /// CPU seconds of mock-ld over the whole leg (its events and evaluations included).
    mock_cpu: f64,
}

impl Leg {
    fn cpu_us_per_request(&self) -> f64 {
        self.cpu * 1e6 / self.requests.max(1) as f64
    }

    fn mock_us_per_request(&self) -> f64 {
        self.mock_cpu * 1e6 / self.requests.max(1) as f64
    }
}

/// mock-ld's CPU seconds so far.
fn mock_cpu(bench: &Bench) -> f64 {
    common::cpu_ns(bench.mock.pid()) as f64 / 1e9
}

/// The harness's leg: `run` with config `bench-<sdk>-<n>`; its load's requests per second.
async fn harness_leg(bench: &Bench, sdk: SdkKind, n: usize) -> Leg {
    let s = scenario(&format!("bench-{}-{n}", sdk.name()), sdk, bench.requests);
    let mock_before = mock_cpu(bench);
    let options = RunOptions {
        target: bench.target(),
        progress: false,
        cancel: CancellationToken::new(),
    };
    let results: RunResults = runner::run(&s, options).await.expect("the bench run");
    assert!(
        matches!(results.status, RunStatus::Complete),
        "the harness run did not complete: {:?}",
        results.status
    );
    Leg {
        rate: results.load.achieved_rate,
        requests: results.load.requests,
        errors: results.load.failed_requests,
        cpu: results
            .harness
            .cpu_seconds
            .expect("the harness measures its CPU time on Linux"),
        mock_cpu: mock_cpu(bench) - mock_before,
    }
}

/// How to start the plain loop of `sdk`: the installed worker's interpreter, and the loop's
/// file (for Node, copied beside a link to the worker's `node_modules`, since an ES module
/// resolves packages from where it lives).
fn plain_command(sdk: SdkKind, scratch: &Path) -> Command {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sdk_workers");
    let workers = install::dir(sdk);
    match sdk {
        SdkKind::Python => {
            let mut c = Command::new(workers.join("venv/bin/python"));
            c.arg(here.join("plain_loop.py"));
            c
        }
        _ => {
            let file = scratch.join("plain_loop.mjs");
            std::fs::copy(here.join("plain_loop.mjs"), &file).expect("copy plain_loop.mjs");
            let link = scratch.join("node_modules");
            if !link.exists() {
                std::os::unix::fs::symlink(workers.join("node_modules"), &link)
                    .expect("link node_modules");
            }
            let mut c = Command::new("node");
            c.arg(file);
            c
        }
    }
}

/// A plain loop's process, its stdout read line by line.
struct PlainProcess {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl PlainProcess {
    /// The next JSON object it prints (other lines, a library's log, are skipped).
    fn next_json(&mut self) -> serde_json::Value {
        for line in self.lines.by_ref() {
            let line = line.expect("read the plain loop's stdout");
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                if value.is_object() {
                    return value;
                }
            }
        }
        let status = self.child.wait();
        panic!("a plain loop ended without its figures ({status:?})");
    }
}

impl Drop for PlainProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The plain loop's leg: W processes, started together once all are ready; requests per
/// second from the go to the last one's figures (as the harness times its load).
fn plain_leg(bench: &Bench, sdk: SdkKind) -> Leg {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let mock_before = mock_cpu(bench);
    let mut processes: Vec<PlainProcess> = (0..PROCESSES)
        .map(|i| {
            let mut child = plain_command(sdk, scratch.path())
                .arg("--contexts")
                .arg(&bench.contexts)
                .args(["--process", &i.to_string()])
                .args(["--processes", &PROCESSES.to_string()])
                .args(["--concurrency", &(CONCURRENCY / PROCESSES).to_string()])
                .args(["--config", PLAIN_CONFIG])
                .args(["--variables", VARIABLES])
                .args(["--prompt", PROMPT])
                .args(["--sdk-key", common::SDK_KEY])
                .args(["--base-url", &bench.mock.base_url])
                .args(["--event-capacity", &EVENT_CAPACITY.to_string()])
                .args(["--flush-interval-ms", &FLUSH_INTERVAL_MS.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the plain loop");
            let stdin = child.stdin.take().expect("piped stdin");
            let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
            PlainProcess {
                child,
                stdin,
                lines,
            }
        })
        .collect();
    for p in &mut processes {
        assert_eq!(p.next_json()["ready"], true, "the plain loop is ready");
    }
    let started = Instant::now();
    for p in &mut processes {
        writeln!(p.stdin, "go").expect("start the plain loop");
        p.stdin.flush().expect("start the plain loop");
    }
    let (mut requests, mut errors, mut cpu) = (0, 0, 0.0);
    for p in &mut processes {
        let figures = p.next_json();
        requests += figures["requests"].as_u64().expect("requests");
        errors += figures["errors"].as_u64().expect("errors");
        cpu += figures["cpuSeconds"].as_f64().expect("cpuSeconds");
    }
    let elapsed = started.elapsed();
    for mut p in processes {
        // Let each close its SDK (which flushes) before the next leg.
        let _ = wait_bounded(&mut p.child, Duration::from_secs(30));
    }
    Leg {
        rate: requests as f64 / elapsed.as_secs_f64(),
        requests,
        errors,
        cpu,
        mock_cpu: mock_cpu(bench) - mock_before,
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether the workers of `sdk` can run here; when not: skip, or fail under CI.
fn installed(sdk: SdkKind) -> bool {
    match install::launch(sdk) {
        Ok(_) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("sdk_workers: CI=true and {why}")
        }
        Err(why) => {
            println!("sdk_workers {}: SKIPPED: {why}", sdk.name());
            false
        }
    }
}

/// `rounds` pairs of legs for one SDK, alternating which goes first; prints each pair and
/// the ratio of the summed rates, then CPU per request on each side (less noisy than the
/// rate on a shared machine, and it says where a difference goes).
async fn compare(bench: &Bench, sdk: SdkKind, rounds: usize) {
    let name = sdk.name();
    let (mut harness_legs, mut plain_legs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (harness, plain) = if round % 2 == 0 {
            let plain = tokio::task::block_in_place(|| plain_leg(bench, sdk));
            (harness_leg(bench, sdk, round).await, plain)
        } else {
            let harness = harness_leg(bench, sdk, round).await;
            (
                harness,
                tokio::task::block_in_place(|| plain_leg(bench, sdk)),
            )
        };
        assert_eq!(
            harness.requests, bench.requests,
            "the harness ran every request"
        );
        assert_eq!(
            plain.requests, bench.requests,
            "the plain loop ran every request"
        );
        println!(
            "sdk_workers {name} round {round} ({} first): harness {:.0} req/s ({} failed, {:.0} µs CPU/request, mock-ld {:.0}), plain {:.0} req/s ({} failed, {:.0} µs CPU/request, mock-ld {:.0}), ratio {:.3}",
            if round % 2 == 0 { "plain" } else { "harness" },
            harness.rate,
            harness.errors,
            harness.cpu_us_per_request(),
            harness.mock_us_per_request(),
            plain.rate,
            plain.errors,
            plain.cpu_us_per_request(),
            plain.mock_us_per_request(),
            harness.rate / plain.rate
        );
        harness_legs.push(harness);
        plain_legs.push(plain);
    }
    let sum = |legs: &[Leg], f: fn(&Leg) -> f64| legs.iter().map(f).sum::<f64>();
    let (harness_rate, plain_rate) = (sum(&harness_legs, |l| l.rate), sum(&plain_legs, |l| l.rate));
    let (harness_cpu, plain_cpu) = (sum(&harness_legs, |l| l.cpu), sum(&plain_legs, |l| l.cpu));
    let requests = bench.requests as f64 * rounds as f64;
    println!(
        "sdk_workers {name}: {PROCESSES} processes, concurrency {CONCURRENCY}, {} requests a leg, {rounds} rounds: harness mean {:.0} req/s, plain mean {:.0} req/s, ratio {:.3}; CPU per request: harness {:.0} µs (workers and coordinator), plain {:.0} µs, plain ÷ harness {:.3}",
        bench.requests,
        harness_rate / rounds as f64,
        plain_rate / rounds as f64,
        harness_rate / plain_rate,
        harness_cpu * 1e6 / requests,
        plain_cpu * 1e6 / requests,
        plain_cpu / harness_cpu,
    );
}

fn flag_value(args: &[String], flag: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    aiconfig_harness::process::disable_transparent_huge_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this without it.
    let quick = !args.iter().any(|a| a == "--bench");
    let requests = flag_value(&args, "--requests").unwrap_or(if quick { 100 } else { 4_000 });
    let rounds = flag_value(&args, "--rounds").unwrap_or(if quick { 1 } else { 4 });
    let wanted = |sdk: SdkKind| {
        let named: Vec<&String> = args
            .iter()
            .filter(|a| a.as_str() == "python" || a.as_str() == "node")
            .collect();
        named.is_empty() || named.iter().any(|a| a.as_str() == sdk.name())
    };
    let sdks: Vec<SdkKind> = [SdkKind::Python, SdkKind::Node]
        .into_iter()
        .filter(|&sdk| wanted(sdk) && installed(sdk))
        .collect();
    if sdks.is_empty() {
        return;
    }
    let bin = common::mock_ld_binary("sdk_workers", "SDK_WORKERS_MOCK_LD").expect("mock-ld");
    let bench = Bench::start(&bin, requests as u64).await;
    for sdk in sdks {
        compare(&bench, sdk, rounds).await;
    }
}
