//! `[[faults]]`: switches each of mock-ld's faults on at `run_start + at` and off `duration`
//! later (`POST` and `DELETE /admin/faults`), and records when that actually happened and
//! what mock-ld counted while it was on. A start-up fault (`at = "0s"` of a kind the SDKs'
//! initialization meets, [`TimedFault::is_startup`]) goes on before the SDK clients start
//! instead, and its `duration` counts from then: the clients start while it is on.
//!
//! Never leaves a fault on: when the load ends early (Ctrl-C, an aborting threshold, a
//! failed worker) or the run returns early, every fault still on is switched off before
//! [`Timeline::finish`] returns. A fault mock-ld refuses stops the load: the run would not
//! be the scenario's, so it ends as an input error ([`RunError::Input`]) naming the fault.

use std::time::{Duration, Instant};

use mock_ld::faults::registry::{CountsRead, RefusedEvents};
use mock_ld::faults::spec::Scope;
use mock_ld::faults::{FaultKind, FaultSpec};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::mock_admin::MockAdmin;
use super::RunError;
use crate::metrics::Second;
use crate::results::faults::{FaultWindow, Served, WindowServed};
use crate::scenario::{Scenario, TimedFault};

/// How long one admin call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One fault to switch, and the mock-ld that applies it.
#[derive(Clone, Debug)]
pub struct Plan {
    fault: TimedFault,
    spec: FaultSpec,
    admin: MockAdmin,
    /// A start-up fault: the SDK streams its end are the ones the clients are about to
    /// open, this many (one per Rust SDK client or worker process).
    startup_streams: Option<u64>,
}

/// The control APIs faults go to: mock-ld's where the SDKs, the events and the LLM calls go
/// (one mock-ld for all three unless the target splits them).
#[derive(Clone, Copy, Default)]
pub struct Admins<'a> {
    pub sdk: Option<&'a MockAdmin>,
    pub events: Option<&'a MockAdmin>,
    pub llm: Option<&'a MockAdmin>,
}

/// Each `[[faults]]` entry with the control API that applies it: the events intake's
/// mock-ld for events kinds, the provider's for `llm*` kinds, the SDK endpoints' for the
/// rest. A target without one is an input error, found before anything is set up.
/// `clients` is how many SDK clients the run starts (what a start-up fault keeps away).
pub fn plans(scenario: &Scenario, admins: Admins<'_>, clients: u64) -> Result<Vec<Plan>, RunError> {
    scenario
        .faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let admin = match (fault.kind.is_events(), fault.kind.is_llm()) {
                (true, _) => admins.events,
                (false, true) => admins.llm,
                (false, false) => admins.sdk,
            };
            let admin = admin.cloned().ok_or_else(|| {
                RunError::Input(format!(
                    "field `faults[{i}]` ({}): the target has no mock-ld /admin API to switch faults on; run against mock-ld or remove [[faults]]",
                    fault.kind.name()
                ))
            })?;
            Ok(Plan {
                spec: fault.spec(&scenario.project, &scenario.environment),
                startup_streams: fault.is_startup().then_some(clients),
                fault: fault.clone(),
                admin,
            })
        })
        .collect()
}

/// The faults' task from just before the SDK clients start until the load ends.
pub struct Timeline {
    task: JoinHandle<Vec<(FaultWindow, bool)>>,
    stop: CancellationToken,
    load_start: watch::Sender<Option<Instant>>,
    _guard: tokio_util::sync::DropGuard,
}

impl Timeline {
    /// Starts the timeline before the SDK clients start (`sdk_start`): start-up faults
    /// ([`TimedFault::is_startup`]) go on now, for their `duration` from now; the others
    /// wait for [`Timeline::load_started`] and go on at `at` after it. `load` is cancelled
    /// when mock-ld refuses a fault, to stop the load; dropping the timeline (a run that
    /// returns early) switches every fault off.
    pub fn start(plans: Vec<Plan>, sdk_start: Instant, load: CancellationToken) -> Self {
        let stop = CancellationToken::new();
        let (load_start, started) = watch::channel(None);
        let windows = plans.into_iter().map(|plan| {
            let clock = Clock {
                sdk_start,
                load_start: started.clone(),
            };
            one(plan, clock, stop.clone(), load.clone())
        });
        let task = tokio::spawn(futures::future::join_all(windows));
        Timeline {
            task,
            _guard: stop.clone().drop_guard(),
            stop,
            load_start,
        }
    }

    /// The load starts now: the other faults are due relative to `run_start`.
    pub fn load_started(&self, run_start: Instant) {
        self.load_start.send_replace(Some(run_start));
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

/// The two origins of a fault's time: the SDK clients' start (start-up faults) and the
/// load's start (the rest, and every time the results give).
#[derive(Clone)]
struct Clock {
    sdk_start: Instant,
    load_start: watch::Receiver<Option<Instant>>,
}

impl Clock {
    /// The load's start, once known; `None` when `stop` came first.
    async fn load_start(&mut self, stop: &CancellationToken) -> Option<Instant> {
        tokio::select! {
            () = stop.cancelled() => None,
            started = self.load_start.wait_for(Option::is_some) => started.ok().and_then(|s| *s),
        }
    }

    /// Milliseconds from the load's start to `t`, negative before it (a start-up fault);
    /// from the SDKs' start when the load never started.
    fn ms(&self, t: Instant) -> f64 {
        let zero = (*self.load_start.borrow()).unwrap_or(self.sdk_start);
        match t.checked_duration_since(zero) {
            Some(after) => after.as_secs_f64() * 1e3,
            None => -(zero - t).as_secs_f64() * 1e3,
        }
    }
}

/// When a fault went on and off, as instants; turned into ms once the load's start is known.
#[derive(Default)]
struct Switched {
    on: Option<Instant>,
    off: Option<Instant>,
}

/// Applies one fault for its window; the window, and whether mock-ld refused it.
async fn one(
    plan: Plan,
    mut clock: Clock,
    stop: CancellationToken,
    load: CancellationToken,
) -> (FaultWindow, bool) {
    let Plan {
        fault,
        spec,
        admin,
        startup_streams,
    } = plan;
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
        at_startup: startup_streams.is_some(),
        served: None,
    };
    let mut switched = Switched::default();
    let refused = apply(
        (&fault, &spec, &admin, startup_streams),
        &mut clock,
        &stop,
        &load,
        (&mut window, &mut switched),
    )
    .await;
    window.on_ms = switched.on.map(|t| clock.ms(t));
    window.off_ms = switched.off.map(|t| clock.ms(t));
    (window, refused)
}

/// Waits for the fault's time, switches it on and off and waits for the streams it ended;
/// whether mock-ld refused it.
async fn apply(
    (fault, spec, admin, startup_streams): (&TimedFault, &FaultSpec, &MockAdmin, Option<u64>),
    clock: &mut Clock,
    stop: &CancellationToken,
    load: &CancellationToken,
    (window, switched): (&mut FaultWindow, &mut Switched),
) -> bool {
    let origin = match startup_streams {
        Some(_) => Some(clock.sdk_start),
        None => clock.load_start(stop).await,
    };
    let Some(origin) = origin else {
        window.error = Some("not applied: the load ended before it was due".into());
        return false;
    };
    let due = origin + fault.at;
    tokio::select! {
        () = stop.cancelled() => {
            window.error = Some("not applied: the load ended before it was due".into());
            return false;
        }
        () = tokio::time::sleep_until(due.into()) => {}
    }
    let scope = stream_scope(spec);
    if let Some((project, env)) = &scope {
        // Before a start-up fault no client has a stream yet: those it keeps away are the
        // ones the clients are about to open.
        window.streams_before = open_streams(admin, project, env)
            .await
            .map(|open| open + startup_streams.unwrap_or(0));
    }
    let on = match switch_on(admin, spec).await {
        Ok(answer) => answer,
        Err(e) => {
            window.error = Some(format!("fault {} at {:?}: {e}", spec.kind.name(), fault.at));
            load.cancel();
            return true;
        }
    };
    switched.on = Some(Instant::now());
    window.id = Some(on.id);
    window.counts = on.counts;
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep_until((due + fault.duration).into()) => {}
    }
    match switch_off(admin, on.id).await {
        Ok(off) => {
            switched.off = Some(Instant::now());
            window.counts = off.counts;
        }
        Err(e) => window.error = Some(format!("switching it off: {e}")),
    }
    if let (Some((project, env)), Some(before)) = (&scope, window.streams_before) {
        let off = Instant::now();
        if streams_back(admin, project, env, before, stop).await {
            window.streams_back_ms = Some(off.elapsed().as_secs_f64() * 1e3);
        }
    }
    false
}

/// The longest the SDKs' streams are waited for after a fault goes off.
const RECONNECT_WAIT: Duration = Duration::from_secs(60);

/// The environment whose streams `spec` ends, for the kinds that end them: the scope
/// mock-ld's own check gives it (its defaults filled in).
fn stream_scope(spec: &FaultSpec) -> Option<(String, String)> {
    let ends_streams = matches!(
        spec.kind,
        FaultKind::StreamRefused | FaultKind::StreamDropped | FaultKind::SdkUnavailable
    );
    if !ends_streams {
        return None;
    }
    match spec.check().ok()?.scope {
        Scope::Environment {
            project,
            environment,
        } => Some((project, environment)),
        Scope::Llm { .. } => None,
    }
}

/// Streams open in one environment, as mock-ld counts them (`GET /admin/environments`).
pub(super) async fn open_streams(admin: &MockAdmin, project: &str, env: &str) -> Option<u64> {
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
pub(super) async fn streams_back(
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
        Scope::Environment {
            project,
            environment,
        } => (Some(project), Some(environment), None),
        Scope::Llm { model } => (None, None, model),
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

/// The seconds after a fault's window whose evaluations its `served.after` counts.
pub const AFTER_SECONDS: u64 = 10;

/// Adds to each window that went on the evaluations and fallback served in the seconds it
/// overlapped and the [`AFTER_SECONDS`] after, from the run's per-second timeline (a
/// start-up fault, on before the load, from second 0).
pub fn add_served(windows: &mut [FaultWindow], timeline: &[Second]) {
    let sum = |from: u64, to: u64| {
        let mut served = Served::default();
        for s in timeline.iter().take(to as usize).skip(from as usize) {
            served.evaluations += s.evaluations;
            served.fallback += s.fallback_served;
        }
        served
    };
    let end = timeline.len() as f64;
    for w in windows {
        let Some(on) = w.on_ms else { continue };
        let off = w.off_ms.map_or(end, |ms| ms / 1000.0);
        let from = (on / 1000.0).floor().max(0.0) as u64;
        let to = off.ceil().max(from as f64) as u64;
        w.served = Some(WindowServed {
            from_second: from,
            to_second: to,
            during: sum(from, to),
            after_seconds: AFTER_SECONDS,
            after: sum(to, to + AFTER_SECONDS),
        });
    }
}
