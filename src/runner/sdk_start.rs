//! The SDK clients' start: each waits at most `load.init_timeout` for initialization, as an
//! application does. With a start-up fault planned a timeout is what the run measures: the
//! client serves the fallback and keeps trying, and a watcher notes when it initializes.
//! Without one a timeout stays the run error it always was.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::Client;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::ld_client::{start_waiting, SdkError, SdkOptions};
use crate::results::sdk_start::{ClientStart, SdkStart};
use crate::scenario::Scenario;

/// How often a client that timed out is asked whether it has initialized since.
const LATER_POLL: Duration = Duration::from_millis(20);

/// Each Rust client's wait, and for those that timed out, when they initialized later.
pub struct Starts {
    timeout: Duration,
    startup_fault: bool,
    clients: Vec<(Duration, bool, Arc<OnceLock<Instant>>)>,
    _watchers: DropGuard,
}

impl Starts {
    /// What the results say, with times after `run_start`.
    pub fn summary(&self, run_start: Instant) -> SdkStart {
        let clients: Vec<ClientStart> = self
            .clients
            .iter()
            .map(|(waited, initialized, later)| ClientStart {
                waited_ms: waited.as_secs_f64() * 1e3,
                initialized: *initialized,
                later_ms: later
                    .get()
                    .map(|t| t.saturating_duration_since(run_start).as_secs_f64() * 1e3),
            })
            .collect();
        SdkStart::of(
            self.timeout.as_secs_f64() * 1e3,
            self.startup_fault,
            &clients,
        )
    }
}

/// Starts the scenario's Rust SDK clients, all at once, each waiting at most
/// `load.init_timeout`.
pub async fn start_rust(
    scenario: &Scenario,
    options: &SdkOptions,
) -> Result<(Vec<Arc<Client>>, Starts), SdkError> {
    let timeout = scenario.load.init_timeout;
    let startup_fault = scenario.startup_fault_planned();
    let starts = (0..scenario.load.sdk_clients).map(|_| start_waiting(options, timeout));
    let started = futures::future::try_join_all(starts).await?;
    let stop = CancellationToken::new();
    let mut clients = Vec::with_capacity(started.len());
    let mut records = Vec::with_capacity(started.len());
    for s in started {
        if !s.initialized && !startup_fault {
            return Err(SdkError::Timeout {
                url: options.base_url.clone(),
                timeout,
            });
        }
        let client = Arc::new(s.client);
        let later = Arc::new(OnceLock::new());
        if !s.initialized {
            tokio::spawn(watch_later(client.clone(), later.clone(), stop.clone()));
        }
        records.push((s.waited, s.initialized, later));
        clients.push(client);
    }
    if records.iter().any(|(_, initialized, _)| !initialized) {
        tracing::warn!(
            timeout = ?timeout,
            "SDK clients did not initialize in time: the load starts with them serving the fallback"
        );
    }
    let starts = Starts {
        timeout,
        startup_fault,
        clients: records,
        _watchers: stop.drop_guard(),
    };
    Ok((clients, starts))
}

/// Notes when `client` initializes, until `stop`.
async fn watch_later(client: Arc<Client>, at: Arc<OnceLock<Instant>>, stop: CancellationToken) {
    loop {
        if client.initialized() {
            let _ = at.set(Instant::now());
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(LATER_POLL) => {}
        }
    }
}
