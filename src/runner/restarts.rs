//! `[[restarts]]`: stops the embedded mock-ld at `run_start + at` and starts it again
//! `down` later ([`EmbeddedMock`]), one after another in the file's order (validation keeps
//! them apart), recording when that happened, whether the received events it had counted
//! were still counted after, and when the SDKs' streams were back.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::embedded::EmbeddedMock;
use super::events::EventStats;
use super::faults::{open_streams, streams_back};
use super::mock_admin::MockAdmin;
use super::RunError;
use crate::results::restarts::RestartWindow;
use crate::scenario::{Restart, Scenario};

/// What the restarts act on and read.
pub struct Target {
    pub mock: Arc<EmbeddedMock>,
    pub admin: MockAdmin,
    pub project: String,
    pub environment: String,
    /// mock-ld's event counts in the scenario's environment.
    pub stats: EventStats,
}

/// The restarts' task while the load runs.
pub struct Restarts {
    task: JoinHandle<Vec<RestartWindow>>,
    stop: CancellationToken,
}

impl Restarts {
    /// An input error when the scenario has `[[restarts]]` but the run no embedded mock-ld
    /// to restart (`embedded` is false).
    pub fn check(scenario: &Scenario, embedded: bool) -> Result<(), RunError> {
        if scenario.restarts.is_empty() || embedded {
            return Ok(());
        }
        Err(RunError::Input(
            "field `restarts[0]`: a restart stops and starts the embedded mock-ld; against another target, remove [[restarts]] (or restart that target yourself)".into(),
        ))
    }

    pub fn start(restarts: Vec<Restart>, target: Option<Target>, run_start: Instant) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_all(restarts, target, run_start, stop.clone()));
        Restarts { task, stop }
    }

    /// Ends the timeline: a restart not yet due does not happen; one under way is finished
    /// (mock-ld is always running again when this returns, unless it could not start).
    pub async fn finish(self) -> Vec<RestartWindow> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn run_all(
    restarts: Vec<Restart>,
    target: Option<Target>,
    run_start: Instant,
    stop: CancellationToken,
) -> Vec<RestartWindow> {
    let mut windows: Vec<RestartWindow> = restarts.iter().map(planned).collect();
    let Some(target) = target else {
        return windows;
    };
    for (i, (restart, window)) in restarts.iter().zip(&mut windows).enumerate() {
        tokio::select! {
            () = stop.cancelled() => {
                window.error = Some("not done: the load ended before it was due".into());
                continue;
            }
            () = tokio::time::sleep_until((run_start + restart.at).into()) => {}
        }
        // The streams are waited for until the next restart is due, at most.
        let next = restarts.get(i + 1).map(|r| run_start + r.at);
        one(restart, window, &target, run_start).await;
        if let Some(before) = window.streams_before.filter(|_| window.error.is_none()) {
            window.streams_back_ms = streams_back_by(&target, before, next, &stop).await;
        }
    }
    windows
}

fn planned(restart: &Restart) -> RestartWindow {
    RestartWindow {
        description: restart.description.clone(),
        planned_at_ms: restart.at.as_secs_f64() * 1e3,
        planned_down_ms: restart.down.as_secs_f64() * 1e3,
        ..RestartWindow::default()
    }
}

/// Stops mock-ld, waits `down` (whatever `stop` says: a stopped mock-ld must start again),
/// and starts it.
async fn one(restart: &Restart, window: &mut RestartWindow, target: &Target, run_start: Instant) {
    let since_start = || run_start.elapsed().as_secs_f64() * 1e3;
    let (project, env) = (&target.project, &target.environment);
    window.streams_before = open_streams(&target.admin, project, env).await;
    window.events_before = target.stats.received_events().await;
    target.mock.stop().await;
    window.stopped_ms = Some(since_start());
    tokio::time::sleep(restart.down).await;
    if let Err(e) = target.mock.start_again().await {
        window.error = Some(format!("could not start mock-ld again: {e}"));
        return;
    }
    window.started_ms = Some(since_start());
    window.events_after = target.stats.replayed_events().await;
}

/// How long after now `before` streams were open again, waiting until `next` at most.
async fn streams_back_by(
    target: &Target,
    before: u64,
    next: Option<Instant>,
    stop: &CancellationToken,
) -> Option<f64> {
    let started = Instant::now();
    let (project, env) = (&target.project, &target.environment);
    let back = async {
        let back = streams_back(&target.admin, project, env, before, stop).await;
        back.then(|| started.elapsed().as_secs_f64() * 1e3)
    };
    match next {
        Some(at) => tokio::time::timeout_at(at.into(), back)
            .await
            .ok()
            .flatten(),
        None => back.await,
    }
}
