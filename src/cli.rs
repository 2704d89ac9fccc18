//! The commands behind `main`: argument types, output files and exit codes
//! (0 passed, 1 a check failed, 2 usage or input error).

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::runner::{self, results::RunResults, RunOptions, Target};
use crate::scenario::{self, Scenario};

pub const OK: u8 = 0;
pub const CHECK_FAILED: u8 = 1;
pub const INPUT_ERROR: u8 = 2;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file; without one, the built-in quickstart (scenarios/quickstart.toml).
    pub scenario: Option<PathBuf>,
    /// Base URL of the SDK endpoints of a running mock-ld or Relay Proxy. Without it, a
    /// mock-ld is started in-process.
    #[arg(long, value_name = "URL", requires_all = ["sdk_key", "api_token"])]
    pub ld_url: Option<String>,
    /// Base URL of the REST API, if not the same as --ld-url (LaunchDarkly:
    /// https://app.launchdarkly.com).
    #[arg(long, value_name = "URL", requires = "ld_url")]
    pub api_url: Option<String>,
    #[arg(long, value_name = "KEY", env = "LD_SDK_KEY")]
    pub sdk_key: Option<String>,
    #[arg(long, value_name = "TOKEN", env = "LD_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Where results go: DIR/results.json and DIR/summary.txt.
    #[arg(long, value_name = "DIR", default_value = "reports/latest")]
    pub out: PathBuf,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(args: RunArgs) -> u8 {
    let scenario = match load_scenario(args.scenario.as_deref()) {
        Ok(scenario) => scenario,
        Err(message) => return input_error(&message),
    };
    let target = match (&args.ld_url, &args.sdk_key, &args.api_token) {
        (Some(url), Some(sdk_key), Some(api_token)) => Target::External {
            sdk_url: url.clone(),
            api_url: args.api_url.clone().unwrap_or_else(|| url.clone()),
            sdk_key: sdk_key.clone(),
            api_token: api_token.clone(),
        },
        _ => Target::Embedded,
    };
    let cancel = CancellationToken::new();
    stop_on_ctrl_c(cancel.clone());
    let progress = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let results = match runner::run(&scenario, RunOptions { target, progress, cancel }).await {
        Ok(results) => results,
        Err(error) => return input_error(&format!("{error:#}")),
    };
    let summary = runner::results::render(&results);
    print!("{summary}");
    if let Err(e) = write_results(&args.out, &results, &summary) {
        return input_error(&format!("writing {}: {e}", args.out.display()));
    }
    println!("\nresults: {}", args.out.join("results.json").display());
    verdict(&results)
}

/// Until the checks stage lands, a run fails when events went missing or a timed change
/// did not reach every SDK client.
fn verdict(results: &RunResults) -> u8 {
    let events_ok = results.events.as_ref().is_none_or(|e| e.complete);
    let actions_ok = results.actions.iter().all(|a| a.error.is_none() && a.clients_missed == 0);
    if events_ok && actions_ok { OK } else { CHECK_FAILED }
}

fn load_scenario(path: Option<&Path>) -> Result<Scenario, String> {
    match path {
        Some(path) => scenario::load(path).map_err(|e| e.to_string()),
        None => scenario::parse(Path::new("scenarios/quickstart.toml (built in)"), scenario::QUICKSTART).map_err(|e| e.to_string()),
    }
}

fn write_results(dir: &Path, results: &RunResults, summary: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(results).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("results.json"), json + "\n")?;
    std::fs::write(dir.join("summary.txt"), summary)
}

/// The first Ctrl-C stops the load and keeps what was measured; a second one exits.
fn stop_on_ctrl_c(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: flushing events and writing partial results (Ctrl-C again to quit)");
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
            Ok(s) => println!("{}: ok ({})", path.display(), s.name),
            Err(e) => {
                eprintln!("{e}");
                code = INPUT_ERROR;
            }
        }
    }
    code
}

pub async fn demo(contexts: usize) -> u8 {
    match crate::demo::run(contexts).await {
        Ok(report) => {
            print!("{}", crate::demo::render(&report));
            if report.passed() { OK } else { CHECK_FAILED }
        }
        Err(error) => input_error(&format!("{error:#}")),
    }
}

fn input_error(message: &str) -> u8 {
    eprintln!("aiconfig-harness: {message}");
    INPUT_ERROR
}
