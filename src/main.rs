//! The `aiconfig-harness` command: thin; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aiconfig_harness::cli;

// mimalloc: the evaluation loop allocates per call (the SDK clones JSON variations).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load tests and observability checks for LaunchDarkly AI Configs.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = format!(
        "{}\nLogs go to stderr; set RUST_LOG (e.g. RUST_LOG=info).",
        aiconfig_harness::results::verdict::EXIT_CODES_HELP
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario (by default the built-in quickstart) against an embedded mock-ld,
    /// or against a running mock-ld, Relay Proxy or LaunchDarkly.
    Run(Box<cli::RunArgs>),
    /// Start mock-ld in-process with the demo AI Config, evaluate it with the real Rust SDK
    /// for synthetic users, and check the 60/40 premium rollout and the events that arrived.
    Demo {
        /// How many synthetic contexts to evaluate.
        #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u32).range(3..))]
        contexts: u32,
    },
    /// Check a scenario file without running it.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Write report.html, summary.md and junit.xml of a results.json (`run` writes them too).
    Report(cli::ReportArgs),
    /// Save a run's metrics, latency histograms included, as a baseline to compare with.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Compare a results.json with a baseline: exit 1 on a regression.
    Compare(cli::CompareArgs),
    /// Install what `run --sdk python` and `run --sdk node` need: the worker with the pinned
    /// SDK and AI SDK, in a Python venv or node_modules under a cache directory
    /// ($AICONFIG_HARNESS_WORKERS, else ~/.cache/aiconfig-harness/workers). Needs python3 or
    /// node with npm, and the package registry; does nothing when already installed.
    SetupWorkers(cli::SetupWorkersArgs),
}

#[derive(Subcommand, Debug)]
enum BaselineCommand {
    /// Write reports/baselines/NAME.json from a results.json.
    Save(cli::BaselineSaveArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    mock_ld::logging::init("warn");
    aiconfig_harness::process::disable_transparent_huge_pages();
    let code = match Cli::parse().command {
        Command::Run(args) => cli::run(*args).await,
        Command::Demo { contexts } => cli::demo(contexts as usize).await,
        Command::Validate { scenarios } => cli::validate(&scenarios),
        Command::Report(args) => cli::report(args),
        Command::Baseline {
            command: BaselineCommand::Save(args),
        } => cli::baseline_save(args),
        Command::Compare(args) => cli::compare(args),
        Command::SetupWorkers(args) => cli::setup_workers(&args),
    };
    ExitCode::from(code)
}
