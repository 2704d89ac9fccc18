//! The `aiconfig-harness` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc: the evaluation loop allocates per call (the SDK clones JSON variations).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load tests and observability checks for LaunchDarkly AI Configs.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 all checks passed, 1 a check failed, 2 usage or input error.\nLogs go to stderr; set RUST_LOG (e.g. RUST_LOG=info)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start mock-ld in-process with the demo AI Config, evaluate it with the real Rust SDK
    /// for synthetic users, and check the 60/40 premium rollout and the events that arrived.
    Demo {
        /// How many synthetic contexts to evaluate.
        #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u32).range(3..))]
        contexts: u32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Demo { contexts } => match aiconfig_harness::demo::run(contexts as usize).await {
            Ok(report) => {
                print!("{}", aiconfig_harness::demo::render(&report));
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(error) => {
                eprintln!("aiconfig-harness: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}
