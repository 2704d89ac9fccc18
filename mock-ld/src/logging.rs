//! Logs on stderr for both binaries (`mock-ld` and `aiconfig-harness`): `RUST_LOG` filters
//! them, and they are coloured only on a terminal and without `NO_COLOR`, so a CI log file
//! holds no escape codes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Starts logging; `default_filter` applies when `RUST_LOG` is unset or invalid. A process
/// that already logs keeps its own setup.
pub fn init(default_filter: &str) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .try_init()
        .ok();
}
