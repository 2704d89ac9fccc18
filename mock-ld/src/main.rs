//! The `mock-ld` command: a local LaunchDarkly for SDKs, scripts and CI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mock_ld::{Config, DataSpec, MockLd};

// mimalloc: glibc malloc costs a quarter of `/bulk` throughput in page faults
// (shared/perf-facts.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local LaunchDarkly: SDK streaming and polling, events intake and an admin API.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=mock_ld=debug).\nExit codes: 0 stopped cleanly, 2 usage or input error (a bad --data or --roles file, a damaged --state directory, an address in use)."
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8765", value_name = "ADDR")]
    listen: SocketAddr,
    /// SDK key of the default project's `test` environment.
    #[arg(long, default_value = "sdk-default-test", value_name = "KEY")]
    sdk_key: String,
    /// Admin token of the REST API.
    #[arg(long, default_value = "api-default-admin", value_name = "TOKEN")]
    api_token: String,
    /// Token the control API (/admin, /admin/llm) requires in Authorization. Required when
    /// --listen is not a loopback address: /admin changes anything and bypasses roles.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MOCK_LD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// More REST API tokens (JSON or YAML), each with a built-in role (reader, writer,
    /// admin) or custom-role policies; see mock-ld/examples/roles.yaml.
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
    /// Keep every acknowledged change in DIR (a journal, fsynced before each answer, and
    /// snapshots) and recover it at start, even after kill -9. Without it, memory only.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Seed data (JSON or YAML with flags, flagValues, segments): FILE loads into `test`,
    /// ENV=FILE into ENV. Repeatable.
    #[arg(long, value_name = "[ENV=]FILE")]
    data: Vec<DataSpec>,
    /// Seconds between heartbeat comments on idle streams.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    heartbeat_secs: u64,
    /// Whether to serve the FDv2 data system (`/sdk/stream`, `/sdk/poll`). `off` answers
    /// them with `X-LD-FD-Fallback: true`, so FDv2 SDKs fall back to FDv1 polling: to
    /// try an application against a LaunchDarkly that has not enabled FDv2 for it.
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = on_off, action = clap::ArgAction::Set)]
    fdv2: bool,
    /// Seed of the simulated LLM provider's draws (latency, tokens, errors).
    #[arg(long, default_value_t = 0, value_name = "N")]
    llm_seed: u64,
    /// Profiles of simulated models: JSON or YAML mapping a model name to its profile;
    /// `default` answers for every other model.
    #[arg(long, value_name = "FILE")]
    llm_profiles: Option<PathBuf>,
    /// Received events `/admin/events` keeps listing; older ones are evicted (every count
    /// in `/admin/events/stats` still covers them).
    #[arg(long, default_value_t = mock_ld::events::log::DEFAULT_CAPACITY, value_name = "N")]
    max_stored_events: usize,
    /// Bytes of received events `/admin/events` keeps listing; older ones are evicted
    /// (counted in `evictedEvents`). Sizes take units: 512MiB, 1GB, 1048576.
    #[arg(long, default_value = "512MiB", value_parser = bytes, value_name = "SIZE")]
    max_stored_event_bytes: usize,
    /// Largest `/bulk` or `/diagnostic` body as sent; a larger one gets 400 (never 413,
    /// which stops an SDK's events) and counts in `rejectedPayloads`.
    #[arg(long, default_value = "100MiB", value_parser = bytes, value_name = "SIZE")]
    max_event_body_bytes: usize,
    /// Largest events body after gunzip; decompression stops there and the post gets 400.
    #[arg(long, default_value = "100MiB", value_parser = bytes, value_name = "SIZE")]
    max_inflated_bytes: usize,
    /// Largest request body of the REST API, `/admin` and `/v1`; a larger one gets 413.
    #[arg(long, default_value = "16MiB", value_parser = bytes, value_name = "SIZE")]
    max_api_body_bytes: usize,
    /// Bytes of the audit log (entries kept as patches); the oldest entries go first.
    #[arg(long, default_value = "64MiB", value_parser = bytes, value_name = "SIZE")]
    max_audit_bytes: usize,
    /// Distinct keys each map of counts holds, per environment (`/admin/events/stats`:
    /// custom event keys, flag × variation pairs, kinds) and in `/admin/llm/stats` (model
    /// names); past it, new keys are counted in `overflow` (events) or `(other)` (models).
    #[arg(long, default_value_t = mock_ld::bounds::Bounds::default().max_stat_keys, value_name = "N")]
    max_stat_keys: usize,
    /// Bytes of received events `--state` keeps in `events.jsonl` so that they survive a
    /// restart; past it they are counted in memory only (`journal.full` in the stats). The
    /// events refused under faults (`refused.jsonl`) have as many bytes of their own.
    #[arg(long, default_value = "1GiB", value_parser = bytes, value_name = "SIZE")]
    max_event_journal_bytes: usize,
    /// Versions each AI Config variation keeps; the oldest go first, numbers keep rising.
    #[arg(long, default_value_t = mock_ld::bounds::Bounds::default().max_variation_versions, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_variation_versions: usize,
}

/// A secret as start-up shows it: enough to tell which one, not enough to use it
/// (`api-…dmin`); short ones not at all.
fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// `on` or `off`.
fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?} is neither on nor off")),
    }
}

/// A size such as `64MiB`, `100MB` or `1048576` (bytes).
fn bytes(text: &str) -> Result<usize, String> {
    let size = parse_size::parse_size(text).map_err(|e| e.to_string())?;
    usize::try_from(size).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    mock_ld::logging::init("mock_ld=info");
    mock_ld::process::disable_transparent_huge_pages();
    mock_ld::process::raise_open_file_limit();
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() && cli.admin_token.is_none() {
        eprintln!(
            "mock-ld: --listen {} is not a loopback address: set --admin-token (or MOCK_LD_ADMIN_TOKEN), since /admin can change every flag and the simulated provider",
            cli.listen
        );
        return ExitCode::from(2);
    }
    let profiles = match cli.llm_profiles.as_deref().map(mock_ld::llm::load_profiles) {
        None => mock_ld::llm::Profiles::new(),
        Some(Ok(profiles)) => profiles,
        Some(Err(error)) => {
            eprintln!("mock-ld: {error}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        listen: cli.listen,
        sdk_key: cli.sdk_key,
        api_token: cli.api_token,
        roles: cli.roles,
        state_dir: cli.state,
        data: cli.data,
        heartbeat: Duration::from_secs(cli.heartbeat_secs.max(1)),
        fdv2: cli.fdv2,
        llm_seed: cli.llm_seed,
        max_stored_events: cli.max_stored_events,
        bounds: mock_ld::bounds::Bounds {
            max_event_body_bytes: cli.max_event_body_bytes,
            max_inflated_bytes: cli.max_inflated_bytes,
            max_api_body_bytes: cli.max_api_body_bytes,
            max_stored_event_bytes: cli.max_stored_event_bytes,
            max_audit_bytes: cli.max_audit_bytes,
            max_stat_keys: cli.max_stat_keys,
            max_event_journal_bytes: cli.max_event_journal_bytes,
            max_variation_versions: cli.max_variation_versions,
        },
        admin_token: cli.admin_token,
    };
    let handle = match MockLd::start(config).await {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("mock-ld: {error}");
            return ExitCode::from(2);
        }
    };
    println!("mock-ld listening on {}", handle.base_url());
    for env in handle.store().environments() {
        println!(
            "  project {} environment {}: SDK key {}",
            env.project,
            env.key,
            mask(&env.sdk_key)
        );
    }
    for (secret, token) in handle.api().tokens().list() {
        println!(
            "  API token: {} ({}, {})",
            mask(secret),
            token.name,
            token.role
        );
    }
    if let Some(token) = &handle.config().admin_token {
        println!("  control API (/admin): token {}", mask(token));
    }
    if let Some(dir) = &handle.config().state_dir {
        println!("  durable state: {}", dir.display());
    }
    for (model, profile) in profiles {
        handle.llm().set_profile(model, profile);
    }
    println!(
        "  LLM provider: {}/v1 (OpenAI-compatible)",
        handle.base_url()
    );
    wait_for_signal().await;
    eprintln!("mock-ld: shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
