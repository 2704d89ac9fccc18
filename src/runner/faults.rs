//! `[[faults]]`: switches each of mock-ld's faults on at `run_start + at` and off `duration`
//! later (`POST` and `DELETE /admin/faults`), and records when that actually happened and
//! what mock-ld counted while it was on.
//!
//! Never leaves a fault on: when the load ends early (Ctrl-C, an aborting threshold, a
//! failed worker) or the run returns early, every fault still on is switched off before
//! [`Timeline::finish`] returns. A fault mock-ld refuses stops the load: the run would not
//! be the scenario's, so it ends as an input error ([`RunError::Input`]) naming the fault.

use std::time::{Duration, Instant};

use mock_ld::faults::registry::{CountsRead, RefusedEvents};
use mock_ld::faults::{FaultKind, FaultSpec};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::mock_admin::MockAdmin;
use super::RunError;
use crate::results::faults::FaultWindow;
use crate::scenario::{Scenario, TimedFault};

/// How long one admin call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One fault to switch, and the mock-ld that applies it.
#[derive(Clone, Debug)]
pub struct Plan {
    fault: TimedFault,
    spec: FaultSpec,
    admin: MockAdmin,
}

/// Each `[[faults]]` entry with the control API that applies it: the events intake's
/// mock-ld for events kinds, the SDK endpoints' (which also simulates the provider) for
/// the rest. A target without one is an input error, found before anything is set up.
pub fn plans(
    scenario: &Scenario,
    admin: Option<&MockAdmin>,
    events_admin: Option<&MockAdmin>,
) -> Result<Vec<Plan>, RunError> {
    scenario
        .faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let events = matches!(fault.kind, FaultKind::EventsError | FaultKind::EventsTimeout);
            let admin = if events { events_admin } else { admin };
            let admin = admin.cloned().ok_or_else(|| {
                RunError::Input(format!(
                    "field `faults[{i}]` ({}): the target has no mock-ld /admin API to switch faults on; run against mock-ld or remove [[faults]]",
                    fault.kind.name()
                ))
            })?;
            Ok(Plan {
                spec: fault.spec(&scenario.project, &scenario.environment),
                fault: fault.clone(),
                admin,
            })
        })
        .collect()
}

/// The faults' task while the load runs.
pub struct Timeline {
    task: JoinHandle<Vec<(FaultWindow, bool)>>,
    stop: CancellationToken,
    _guard: tokio_util::sync::DropGuard,
}

impl Timeline {
    /// Starts switching `plans` on and off relative to `run_start`. `load` is cancelled
    /// when mock-ld refuses a fault, to stop the load; dropping the timeline (a run that
    /// returns early) switches every fault off.
    pub fn start(plans: Vec<Plan>, run_start: Instant, load: CancellationToken) -> Self {
        let stop = CancellationToken::new();
        let windows = plans
            .into_iter()
            .map(|plan| one(plan, run_start, stop.clone(), load.clone()));
        let task = tokio::spawn(futures::future::join_all(windows));
        Timeline {
            task,
            _guard: stop.clone().drop_guard(),
            stop,
        }
    }

    /// Ends the timeline (faults not yet due are not applied, faults on are switched off)
    /// and returns the windows in the scenario's order, with the first refusal's message.
    pub async fn finish(self) -> (Vec<FaultWindow>, Option<String>) {
        self.stop.cancel();
        let all = self.task.await.unwrap_or_default();
        let refusal = all
            .iter()
            .find(|(_, refused)| *refused)
            .and_then(|(w, _)| w.error.clone());
        (all.into_iter().map(|(w, _)| w).collect(), refusal)
    }
}

/// Applies one fault for its window; the window, and whether mock-ld refused it.
async fn one(
    plan: Plan,
    run_start: Instant,
    stop: CancellationToken,
    load: CancellationToken,
) -> (FaultWindow, bool) {
    let Plan { fault, spec, admin } = plan;
    let since_start = || run_start.elapsed().as_secs_f64() * 1e3;
    let mut window = FaultWindow {
        fault: resolved(&spec),
        description: fault.description.clone(),
        planned_at_ms: fault.at.as_secs_f64() * 1e3,
        planned_duration_ms: fault.duration.as_secs_f64() * 1e3,
        on_ms: None,
        off_ms: None,
        id: None,
        counts: CountsRead::default(),
        error: None,
        streams_before: None,
        streams_back_ms: None,
    };
    let due = run_start + fault.at;
    tokio::select! {
        () = stop.cancelled() => {
            window.error = Some("not applied: the load ended before it was due".into());
            return (window, false);
        }
        () = tokio::time::sleep_until(due.into()) => {}
    }
    let scope = stream_scope(&spec);
    if let Some((project, env)) = &scope {
        window.streams_before = open_streams(&admin, project, env).await;
    }
    let on = match switch_on(&admin, &spec).await {
        Ok(answer) => answer,
        Err(e) => {
            window.error = Some(format!("fault {} at {:?}: {e}", spec.kind.name(), fault.at));
            load.cancel();
            return (window, true);
        }
    };
    window.on_ms = Some(since_start());
    window.id = Some(on.id);
    window.counts = on.counts;
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep_until((due + fault.duration).into()) => {}
    }
    match switch_off(&admin, on.id).await {
        Ok(off) => {
            window.off_ms = Some(since_start());
            window.counts = off.counts;
        }
        Err(e) => window.error = Some(format!("switching it off: {e}")),
    }
    if let (Some((project, env)), Some(before)) = (&scope, window.streams_before) {
        let off = Instant::now();
        if streams_back(&admin, project, env, before, &stop).await {
            window.streams_back_ms = Some(off.elapsed().as_secs_f64() * 1e3);
        }
    }
    (window, false)
}

/// The longest the SDKs' streams are waited for after a fault goes off.
const RECONNECT_WAIT: Duration = Duration::from_secs(60);

/// The environment whose streams `spec` ends, for the kinds that end them.
fn stream_scope(spec: &FaultSpec) -> Option<(String, String)> {
    let ends_streams = matches!(
        spec.kind,
        FaultKind::StreamRefused | FaultKind::StreamDropped | FaultKind::SdkUnavailable
    );
    ends_streams.then(|| {
        let project = spec.project.clone().unwrap_or_else(|| "default".into());
        let env = spec.environment.clone().unwrap_or_else(|| "test".into());
        (project, env)
    })
}

/// Streams open in one environment, as mock-ld counts them (`GET /admin/environments`).
async fn open_streams(admin: &MockAdmin, project: &str, env: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Environments {
        items: Vec<Environment>,
    }
    #[derive(Deserialize)]
    struct Environment {
        project: String,
        key: String,
        streams: u64,
    }
    let all: Environments = admin.get_json("environments").await.ok()?;
    all.items
        .into_iter()
        .find(|e| e.project == project && e.key == env)
        .map(|e| e.streams)
}

/// Whether `before` streams are open again in the environment, polled every 50 ms until
/// then, the load's end (`stop`), or [`RECONNECT_WAIT`].
async fn streams_back(
    admin: &MockAdmin,
    project: &str,
    env: &str,
    before: u64,
    stop: &CancellationToken,
) -> bool {
    let deadline = Instant::now() + RECONNECT_WAIT;
    while Instant::now() < deadline && !stop.is_cancelled() {
        if open_streams(admin, project, env)
            .await
            .is_some_and(|n| n >= before)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `spec` with mock-ld's defaults filled in, as its check reads it.
fn resolved(spec: &FaultSpec) -> FaultSpec {
    let Ok(fault) = spec.check() else {
        return spec.clone();
    };
    let (project, environment, model) = match fault.scope {
        mock_ld::faults::spec::Scope::Environment {
            project,
            environment,
        } => (Some(project), Some(environment), None),
        mock_ld::faults::spec::Scope::Llm { model } => (None, None, model),
    };
    FaultSpec {
        kind: fault.kind,
        status: fault.status,
        retry_after: fault.retry_after,
        latency_ms: fault.latency_ms,
        bytes_per_second: fault.bytes_per_second,
        project,
        environment,
        model,
    }
}

/// What mock-ld answers about one fault (its `Record`; the rest is what was sent).
#[derive(Deserialize)]
struct Answer {
    id: u64,
    counts: CountsRead,
}

async fn switch_on(admin: &MockAdmin, spec: &FaultSpec) -> Result<Answer, String> {
    let url = format!("{}/faults", admin.base);
    let request = admin.http.post(&url).json(spec);
    answer(request, &format!("POST {url}")).await
}

async fn switch_off(admin: &MockAdmin, id: u64) -> Result<Answer, String> {
    let url = format!("{}/faults/{id}", admin.base);
    answer(admin.http.delete(&url), &format!("DELETE {url}")).await
}

/// Sends the call; mock-ld's refusal comes back with its status and message.
async fn answer(request: reqwest::RequestBuilder, call: &str) -> Result<Answer, String> {
    let response = request
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{call}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        return Err(format!("mock-ld refused it ({status}): {message}"));
    }
    response
        .json()
        .await
        .map_err(|e| format!("{call}: reading the answer: {e}"))
}

/// The events payloads mock-ld has refused in `project`/`environment` so far (`None` when
/// it has refused none there).
pub async fn refused_events(
    admin: &MockAdmin,
    project: &str,
    environment: &str,
) -> Result<Option<RefusedEvents>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct List {
        refused_events: Vec<RefusedEvents>,
    }
    let list: List = admin.get_json("faults").await?;
    Ok(list
        .refused_events
        .into_iter()
        .find(|r| r.project == project && r.environment == environment))
}
