//! The commands behind `main`: argument types and output files. Exit codes are the
//! verdict's (`results::verdict`), or 2 for usage and input errors.

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::compare::{self, baseline::Baseline, tolerance::Rule};
use crate::cost::PriceTable;
use crate::report;
use crate::results::comparison::Comparison;
use crate::results::verdict::{self, Outcome, EXIT_INPUT_ERROR, EXIT_PASSED, NO_CHECKS};
use crate::results::{self, RunResults};
use crate::runner::{self, RunOptions, Target};
use crate::scenario::{self, Scenario};

/// Writes to stdout. A reader that went away (`aiconfig-harness run | head`) is not an
/// error worth a panic: what it did not read is also in the files written.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

macro_rules! say_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Where a command's lines for people go: stdout, or stderr when stdout carries JSON.
#[derive(Clone, Copy)]
enum Console {
    Stdout,
    Stderr,
}

impl Console {
    /// Writes `text`; a closed pipe (`| head`) is not an error worth a panic.
    fn say(self, text: std::fmt::Arguments) {
        use std::io::Write as _;
        let _ = match self {
            Console::Stdout => std::io::stdout().lock().write_fmt(text),
            Console::Stderr => std::io::stderr().lock().write_fmt(text),
        };
    }
}

const OK: u8 = EXIT_PASSED;
const INPUT_ERROR: u8 = EXIT_INPUT_ERROR;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file; without one, the built-in quickstart (scenarios/quickstart.toml).
    pub scenario: Option<PathBuf>,
    /// Base URL of the SDK endpoints of a running mock-ld or Relay Proxy, or of
    /// LaunchDarkly's polling service (https://sdk.launchdarkly.com). Without it, a mock-ld
    /// is started in-process.
    #[arg(long, value_name = "URL", requires_all = ["sdk_key", "api_token"])]
    pub ld_url: Option<String>,
    /// Streaming URL, if not --ld-url (LaunchDarkly: https://stream.launchdarkly.com; EU
    /// instance: https://stream.eu.launchdarkly.com).
    #[arg(long, value_name = "URL", requires = "ld_url")]
    pub stream_url: Option<String>,
    /// Events URL, if not --ld-url (LaunchDarkly: https://events.launchdarkly.com; EU
    /// instance: https://events.eu.launchdarkly.com). Events are verified when it is a
    /// mock-ld.
    #[arg(long, value_name = "URL", requires = "ld_url")]
    pub events_url: Option<String>,
    /// Base URL of the REST API, if not the same as --ld-url (LaunchDarkly:
    /// https://app.launchdarkly.com; EU instance: https://app.eu.launchdarkly.com).
    #[arg(long, value_name = "URL", requires = "ld_url")]
    pub api_url: Option<String>,
    #[arg(long, value_name = "KEY", env = "LD_SDK_KEY")]
    pub sdk_key: Option<String>,
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LD_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// mock-ld's --admin-token, when the --ld-url mock-ld has one (its /admin verifies
    /// events and sets the simulated provider's profiles).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MOCK_LD_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "ld_url"
    )]
    pub admin_token: Option<String>,
    /// Where results go: DIR/results.json, DIR/summary.txt and the reports [default:
    /// reports/SCENARIO/TIMESTAMP, the run's start in UTC, e.g.
    /// reports/quickstart/20261122T151800Z]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress on stderr (a bar on a terminal, else a line every 5 s with the requests
    /// done, their rate, the failures and the p99 so far).
    #[arg(long)]
    pub no_progress: bool,
    /// Print the results (results.json) on stdout instead of the summary, which goes to
    /// stderr with the other messages.
    #[arg(long)]
    pub json: bool,
    /// Model prices: JSON, USD per million tokens (`{"MODEL": {"input", "output",
    /// "cachedInput"}}`) or LiteLLM's model_prices_and_context_window.json as is. They go over
    /// the shipped list prices; a scenario's [prices] go over them.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Compare with this baseline (a name in reports/baselines/, or a path); a regression
    /// fails the run.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub compare: CompareFlags,
    #[command(flatten)]
    pub overrides: OverrideFlags,
}

/// Values in place of the scenario file's, checked as strictly and recorded in the results.
#[derive(Args, Debug, Clone, Default)]
pub struct OverrideFlags {
    /// Contexts in the population (`population.count`).
    #[arg(long, value_name = "N")]
    pub population: Option<u64>,
    /// Closed model: virtual users (`load.concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Closed model: requests in all (`load.iterations`).
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Open model: requests per second (`load.rate`).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Open model: how long the rate is held (`load.duration`), e.g. `30s`, `2m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// The seed of the population and the simulated LLM (`seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// The SDK that runs the load (`load.sdk`): rust (in-process), or python or node
    /// (worker processes; `aiconfig-harness setup-workers` installs what they need).
    #[arg(long, value_name = "SDK")]
    pub sdk: Option<scenario::SdkKind>,
    /// Python and Node: worker processes (`load.workers`) [default: one per core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

impl OverrideFlags {
    fn overrides(&self) -> scenario::Overrides {
        scenario::Overrides {
            population: self.population,
            concurrency: self.concurrency,
            rate: self.rate,
            duration: self.duration,
            iterations: self.iterations,
            seed: self.seed,
            sdk: self.sdk,
            workers: self.workers,
            external_target: false,
        }
    }
}

/// How `compare` and `run --baseline` judge a change.
#[derive(Args, Debug, Clone)]
pub struct CompareFlags {
    /// Allowed change of the metrics matching PATTERN (`*` matches anything): relative and
    /// absolute, both must be exceeded to regress. Repeatable; e.g. `llm=10%,5ms`,
    /// `*/error_rate=50%,0.005`. A latency's percentiles are METRIC.p50, .p95 and .p99.
    /// Defaults: p50/p95 20%,5ms; p99 50%,10ms; SDK evaluation and AI layer 100%,20ms;
    /// flush 200%,1s; event delivery 50%,500ms; error rates 50%,0.005; throughput 30%,0; cost per 1,000 requests 10%,0.
    #[arg(long, value_name = "PATTERN=REL%,ABS")]
    pub tolerance: Vec<Rule>,
    /// Significance level of the Kolmogorov–Smirnov test on latency histograms.
    #[arg(long, value_name = "P", default_value_t = 0.001)]
    pub ks_alpha: f64,
    /// Smallest KS distance D (largest gap between the CDFs, 0 to 1) that fails a latency.
    #[arg(long, value_name = "D", default_value_t = 0.1)]
    pub ks_min_effect: f64,
}

impl CompareFlags {
    fn options(&self) -> compare::Options {
        let tolerances = compare::tolerance::Tolerances {
            rules: self.tolerance.clone(),
        };
        compare::Options {
            tolerances,
            alpha: self.ks_alpha,
            min_effect: self.ks_min_effect,
        }
    }
}

pub async fn run(args: RunArgs) -> u8 {
    let overrides = scenario::Overrides {
        external_target: args.ld_url.is_some(),
        ..args.overrides.overrides()
    };
    let scenario = match load_scenario(args.scenario.as_deref(), &overrides) {
        Ok(scenario) => scenario,
        Err(message) => return input_error(&message),
    };
    for warning in &scenario.warnings {
        eprintln!("warning: {warning}");
    }
    // Workers that are not installed: said before anything starts, with the command.
    if scenario.load.sdk != scenario::SdkKind::Rust {
        if let Err(missing) = runner::workers::install::launch(scenario.load.sdk) {
            return input_error(&missing);
        }
    }
    // A missing or foreign baseline is an input error, found before the run, not after it.
    let baseline = match args
        .baseline
        .as_deref()
        .map(compare::baseline::load)
        .transpose()
    {
        Ok(baseline) => baseline,
        Err(e) => return input_error(&e.to_string()),
    };
    if let Some(b) = baseline
        .as_ref()
        .filter(|b| b.scenario.name != scenario.name)
    {
        return input_error(&format!(
            "baseline `{}` is of scenario `{}`, not `{}`",
            b.name, b.scenario.name, scenario.name
        ));
    }
    let target = match (&args.ld_url, &args.sdk_key, &args.api_token) {
        (Some(url), Some(sdk_key), Some(api_token)) => Target::External {
            sdk_url: url.clone(),
            stream_url: args.stream_url.clone(),
            events_url: args.events_url.clone(),
            api_url: args.api_url.clone().unwrap_or_else(|| url.clone()),
            sdk_key: sdk_key.clone(),
            api_token: api_token.clone(),
            admin_token: args.admin_token.clone(),
        },
        _ => Target::Embedded,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run_directory(&scenario.name, std::time::SystemTime::now()));
    let cancel = CancellationToken::new();
    stop_on_ctrl_c(cancel.clone());
    // A bar on a terminal, a line every few seconds in a CI log.
    let progress = !args.no_progress;
    let prices = match &args.prices {
        Some(path) => match PriceTable::with_file(path) {
            Ok(prices) => prices,
            Err(message) => return input_error(&message),
        },
        None => PriceTable::defaults(),
    };
    let run = runner::run_with_prices(
        &scenario,
        RunOptions {
            target,
            progress,
            cancel,
        },
        prices,
    )
    .await;
    let mut results = match run {
        Ok(results) => results,
        // Not a run of the scenario: nothing to report, as with a bad scenario file.
        Err(runner::RunError::Input(message)) => return input_error(&message),
        // Nothing was measured, but the run's outputs still say so, with exit code 4.
        Err(error) => runner::setup_failed(&scenario, &format!("{error:#}")),
    };
    if let Some(b) = &baseline {
        match comparison(b, &results, &args.compare) {
            Ok(c) => results.set_baseline(Some(c)),
            Err(message) => return input_error(&message),
        }
    }
    let console = if args.json {
        Console::Stderr
    } else {
        Console::Stdout
    };
    let json = match write_outputs(&results, &out, console) {
        Ok(json) => json,
        Err(message) => return input_error(&message),
    };
    if args.json {
        say!("{json}");
    }
    results.verdict.exit_code
}

/// Writes results.json, summary.txt and the reports, and shows the summary; returns
/// results.json's text.
fn write_outputs(results: &RunResults, out: &Path, console: Console) -> Result<String, String> {
    let summary = report::terminal::render(results);
    console.say(format_args!("{summary}"));
    warn_unchecked(results);
    let json = write_results(out, results, &summary)
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    console.say(format_args!(
        "\nresults: {}\n",
        out.join("results.json").display()
    ));
    write_reports(results, out, console)?;
    Ok(json)
}

/// A run that cannot fail says so on stderr too, where CI logs keep it.
fn warn_unchecked(results: &RunResults) {
    if results.verdict.outcome == Outcome::Unchecked {
        eprintln!("warning: scenario {}: {NO_CHECKS}", results.scenario.name);
    }
}

fn comparison(
    baseline: &Baseline,
    results: &RunResults,
    flags: &CompareFlags,
) -> Result<Comparison, String> {
    if baseline.scenario.name != results.scenario.name {
        return Err(format!(
            "baseline `{}` is of scenario `{}`, these results of `{}`",
            baseline.name, baseline.scenario.name, results.scenario.name
        ));
    }
    let current = compare::baseline::metrics(results).map_err(|e| e.to_string())?;
    let overload = results.harness.overload_note().or_else(|| {
        (!baseline.overloaded.is_empty()).then(|| {
            format!(
                "the baseline's load generator was overloaded ({})",
                baseline.overloaded.join("; ")
            )
        })
    });
    compare::compare(
        &baseline.name,
        &baseline.metrics,
        &current,
        &flags.options(),
        overload,
    )
    .map_err(|e| e.to_string())
}

fn write_reports(results: &RunResults, out: &Path, console: Console) -> Result<(), String> {
    let written = report::write(results, out).map_err(|e| e.to_string())?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    console.say(format_args!("reports: {}\n", names.join(", ")));
    Ok(())
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A results.json written by `run`.
    pub results: PathBuf,
    /// Where report.html, summary.md and junit.xml go; by default beside RESULTS.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `report`: the reports of a results file, and its verdict's exit code: the same files
/// and code as the `run` that wrote it.
pub fn report(args: ReportArgs) -> u8 {
    let results = match results::load(&args.results) {
        Ok(results) => results,
        Err(e) => return input_error(&e.to_string()),
    };
    let out = args.out.unwrap_or_else(|| {
        args.results
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    if let Err(message) = write_reports(&results, &out, Console::Stdout) {
        return input_error(&message);
    }
    say_verdict(&results);
    results.verdict.exit_code
}

fn say_verdict(results: &RunResults) {
    warn_unchecked(results);
    say_line!(
        "{}: {}",
        results.verdict.outcome.word(),
        results.verdict.headline
    );
}

#[derive(Args, Debug)]
pub struct BaselineSaveArgs {
    /// A results.json written by `run`.
    pub results: PathBuf,
    /// The baseline's name: it is written to DIR/NAME.json.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_name = "DIR", default_value = compare::baseline::DIR)]
    pub dir: PathBuf,
    /// Save an inconclusive run too (e.g. the load generator was overloaded); the file
    /// records the verdict's headline, and latency comparisons against a run whose load
    /// generator was overloaded are inconclusive.
    #[arg(long)]
    pub force: bool,
}

pub fn baseline_save(args: BaselineSaveArgs) -> u8 {
    match compare::baseline::save(&args.results, &args.name, &args.dir, args.force) {
        Ok(path) => {
            say_line!("baseline `{}` saved: {}", args.name, path.display());
            OK
        }
        Err(e) => input_error(&e.to_string()),
    }
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A results.json written by `run`.
    pub results: PathBuf,
    /// A baseline name in reports/baselines/, or a path to a baseline file.
    #[arg(long, value_name = "NAME")]
    pub baseline: String,
    /// Also write report.html, summary.md and junit.xml of the compared results here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub flags: CompareFlags,
}

/// `compare`: the results' verdict with this baseline's comparison in it: 0, 1, 3 or 4 as
/// `run --baseline` would have exited, 2 for an unreadable or mismatched input.
pub fn compare(args: CompareArgs) -> u8 {
    let compared = compare::baseline::load(&args.baseline)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let mut results = results::load(&args.results).map_err(|e| e.to_string())?;
            results.set_baseline(Some(comparison(&b, &results, &args.flags)?));
            Ok(results)
        });
    let results = match compared {
        Ok(results) => results,
        Err(message) => return input_error(&message),
    };
    if let Some(c) = &results.baseline {
        say!("{}", c.text());
    }
    if let Some(out) = &args.out {
        if let Err(message) = write_reports(&results, out, Console::Stdout) {
            return input_error(&message);
        }
    }
    say_verdict(&results);
    results.verdict.exit_code
}

fn load_scenario(path: Option<&Path>, overrides: &scenario::Overrides) -> Result<Scenario, String> {
    match path {
        Some(path) => scenario::load_with(path, overrides).map_err(|e| e.to_string()),
        None => scenario::parse_with(
            Path::new("scenarios/quickstart.toml (built in)"),
            scenario::QUICKSTART,
            overrides,
        )
        .map_err(|e| e.to_string()),
    }
}

/// Writes results.json and summary.txt; returns results.json's text.
fn write_results(dir: &Path, results: &RunResults, summary: &str) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(results).map_err(std::io::Error::other)? + "\n";
    std::fs::write(dir.join("results.json"), &json)?;
    std::fs::write(dir.join("summary.txt"), summary)?;
    Ok(json)
}

/// The first Ctrl-C stops the load and keeps what was measured; a second one exits.
fn stop_on_ctrl_c(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nstopping: flushing events and writing partial results (Ctrl-C again to quit)"
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

pub fn validate(paths: &[PathBuf]) -> u8 {
    let mut code = OK;
    for path in paths {
        match scenario::load(path) {
            Ok(s) => {
                say_line!("{}: ok ({})", path.display(), s.name);
                if s.checks.is_empty() {
                    eprintln!("{}", no_checks_warning(path));
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = INPUT_ERROR;
            }
        }
    }
    code
}

/// What `validate` says of a scenario without `[[checks]]`: it still loads, but passes
/// whatever happens.
fn no_checks_warning(path: &Path) -> String {
    format!("warning: {}: {NO_CHECKS}", path.display())
}

pub async fn demo(contexts: usize) -> u8 {
    match crate::demo::run(contexts).await {
        Ok(report) => {
            say!("{}", crate::demo::render(&report));
            if report.passed() {
                OK
            } else {
                verdict::EXIT_FAILED
            }
        }
        Err(error) => input_error(&format!("{error:#}")),
    }
}

/// `reports/SCENARIO/TIMESTAMP`: one directory per run, so runs never overwrite each other
/// and sort by time. Characters a path should not carry become `-`, and a name that is
/// only dots becomes `scenario`.
fn run_directory(scenario: &str, started: std::time::SystemTime) -> PathBuf {
    let mut name: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.chars().all(|c| c == '.') {
        name = "scenario".into();
    }
    let stamp = chrono::DateTime::<chrono::Utc>::from(started).format("%Y%m%dT%H%M%SZ");
    PathBuf::from("reports").join(name).join(stamp.to_string())
}

fn input_error(message: &str) -> u8 {
    eprintln!("aiconfig-harness: {message}");
    INPUT_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn each_run_gets_a_directory_named_for_its_scenario_and_start() {
        let started = UNIX_EPOCH + Duration::from_secs(1_795_360_680);
        assert_eq!(
            run_directory("quickstart", started),
            PathBuf::from("reports/quickstart/20261122T151800Z")
        );
        assert_eq!(
            run_directory("a b/../c", started),
            PathBuf::from("reports/a-b-..-c/20261122T151800Z")
        );
        assert_eq!(
            run_directory("..", started),
            PathBuf::from("reports/scenario/20261122T151800Z")
        );
    }
}

#[derive(Args, Debug)]
pub struct SetupWorkersArgs {
    /// The SDKs to install workers for [default: python and node].
    #[arg(long, value_name = "SDK", value_parser = ["python", "node"])]
    pub sdk: Vec<String>,
}

/// `setup-workers`: installs the Python and Node workers; 0 when every one is ready.
pub fn setup_workers(args: &SetupWorkersArgs) -> u8 {
    use crate::runner::workers::install;
    let sdks: Vec<scenario::SdkKind> = match args.sdk.is_empty() {
        true => vec![scenario::SdkKind::Python, scenario::SdkKind::Node],
        false => args.sdk.iter().filter_map(|s| s.parse().ok()).collect(),
    };
    let mut code = OK;
    for sdk in sdks {
        if let Err(e) = install::setup(sdk, &|line| eprintln!("{line}")) {
            eprintln!("error: installing the {} workers: {e}", sdk.name());
            code = INPUT_ERROR;
        }
    }
    code
}
