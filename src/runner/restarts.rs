//! `[[restarts]]`: stops the embedded mock-ld at `run_start + at` and starts it again
//! `down` later ([`EmbeddedMock`]), one after another in the file's order (validation keeps
//! them apart), recording when that happened, whether the events it had taken (read once it
//! had stopped) were exactly those it read back from its journal, and when the SDKs'
//! streams were back.

use std::sync::Arc;
use std::time::Instant;

use mock_ld::events::log::{EventLog, Filter};
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
    task: JoinHandle<(Vec<RestartWindow>, Option<String>)>,
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

    /// Runs the restarts from `run_start`; a mock-ld that cannot start again cancels `load`,
    /// since what follows would measure a target that is gone, not the system.
    pub fn start(
        restarts: Vec<Restart>,
        target: Option<Target>,
        run_start: Instant,
        load: CancellationToken,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_all(restarts, target, run_start, stop.clone(), load));
        Restarts { task, stop }
    }

    /// Ends the timeline: a restart not yet due does not happen; one under way has mock-ld
    /// started again at once, its `down` cut short as a fault is switched off when the load
    /// ends (a Ctrl-C does not wait out a long `down`), so mock-ld is running again when this
    /// returns, unless it could not start: then the second value says which and why.
    pub async fn finish(self) -> (Vec<RestartWindow>, Option<String>) {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn run_all(
    restarts: Vec<Restart>,
    target: Option<Target>,
    run_start: Instant,
    stop: CancellationToken,
    load: CancellationToken,
) -> (Vec<RestartWindow>, Option<String>) {
    let mut windows: Vec<RestartWindow> = restarts.iter().map(planned).collect();
    let Some(target) = target else {
        return (windows, None);
    };
    let mut failed = None;
    for (i, (restart, window)) in restarts.iter().zip(&mut windows).enumerate() {
        if failed.is_some() {
            window.error = Some("not done: mock-ld could not start again before".into());
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => {
                window.error = Some("not done: the load ended before it was due".into());
                continue;
            }
            () = tokio::time::sleep_until((run_start + restart.at).into()) => {}
        }
        // The streams are waited for until the next restart is due, at most.
        let next = restarts.get(i + 1).map(|r| run_start + r.at);
        one(i, restart, window, &target, run_start, &stop).await;
        if window.started_ms.is_none() {
            load.cancel();
            failed = window.error.as_ref().map(|e| format!("restarts[{i}]: {e}"));
            continue;
        }
        if let Some(before) = window.streams_before.filter(|_| window.error.is_none()) {
            window.streams_back_ms = streams_back_by(&target, before, next, &stop).await;
        }
    }
    (windows, failed)
}

fn planned(restart: &Restart) -> RestartWindow {
    RestartWindow {
        description: restart.description.clone(),
        planned_at_ms: restart.at.as_secs_f64() * 1e3,
        planned_down_ms: restart.down.as_secs_f64() * 1e3,
        ..RestartWindow::default()
    }
}

/// Stops mock-ld, waits `down` or until the load ends (`stop`), and starts it again: a
/// stopped mock-ld must start again, before the events are flushed and counted.
async fn one(
    index: usize,
    restart: &Restart,
    window: &mut RestartWindow,
    target: &Target,
    run_start: Instant,
    stop: &CancellationToken,
) {
    let since_start = || run_start.elapsed().as_secs_f64() * 1e3;
    let (project, env) = (&target.project, &target.environment);
    window.streams_before = open_streams(&target.admin, project, env).await;
    let stopped = target.mock.stop().await;
    window.stopped_ms = Some(since_start());
    tracing::info!(
        restart = index,
        description = restart.description.as_deref().unwrap_or(""),
        down_ms = restart.down.as_millis() as u64,
        "mock-ld stopped"
    );
    // Read once it has stopped, no request being handled any more: exactly what it took.
    window.events_before = stopped.map(|log| taken_events(&log, project, env));
    if window.events_before.is_none() {
        tracing::warn!(
            "mock-ld still ran after its stop: the events it took are not known exactly"
        );
    }
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(restart.down) => {}
    }
    if let Err(e) = target.mock.start_again().await {
        window.error = Some(format!("could not start mock-ld again: {e}"));
        return;
    }
    window.started_ms = Some(since_start());
    tracing::info!(restart = index, "mock-ld started again");
    window.events_after = target.stats.replayed_events().await;
}

/// Events of every kind in the environment's payloads that `log` took.
fn taken_events(log: &EventLog, project: &str, env: &str) -> u64 {
    let filter = Filter {
        project: Some(project.to_owned()),
        env: Some(env.to_owned()),
        ..Filter::default()
    };
    log.stats(&filter).events
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A mock-ld that cannot start again (something else took its port while it was down)
    /// ends the load at once, and the restarts after it are not done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_that_fails_ends_the_load() {
        let mock = Arc::new(
            EmbeddedMock::start(mock_ld::Config::default(), true)
                .await
                .unwrap(),
        );
        let addr = mock.addr();
        let admin = MockAdmin::new(format!("http://{addr}/admin"), None).unwrap();
        let target = Target {
            mock: mock.clone(),
            stats: EventStats::new(&admin, "default", "test"),
            admin,
            project: "default".into(),
            environment: "test".into(),
        };
        let restart = |at| Restart {
            at: Duration::from_millis(at),
            down: Duration::from_secs(2),
            description: None,
        };
        let load = CancellationToken::new();
        let restarts = Restarts::start(
            vec![restart(0), restart(5000)],
            Some(target),
            Instant::now(),
            load.clone(),
        );
        // Taken while it is down (tokio's listener reuses the address as mock-ld's does),
        // and held.
        let take = async {
            loop {
                if mock.with(|_| ()).await.is_none() {
                    if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
                        break l;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let taken = tokio::time::timeout(Duration::from_secs(2), take)
            .await
            .expect("the port taken while mock-ld is down");
        tokio::time::timeout(Duration::from_secs(60), load.cancelled())
            .await
            .expect("the load is cancelled");
        let (windows, failed) = restarts.finish().await;
        drop(taken);
        let failed = failed.expect("a failure");
        assert!(
            failed.starts_with("restarts[0]: could not start mock-ld again"),
            "{failed}"
        );
        assert!(windows[0].stopped_ms.is_some() && windows[0].started_ms.is_none());
        assert!(windows[1].stopped_ms.is_none() && windows[1].error.is_some());
    }
}
