//! The parity phase of a Python or Node run, after the load and its event check: the
//! sample's requests (0..N, N = `[load] parity_sample` at most the population) run again,
//! first through one worker (a second phase of protocol 2), then through one Rust SDK client
//! and the harness's AI layer ([`Workload`]). What each side served is recorded apart, and
//! the tracker events each sent are read back from mock-ld's event log
//! (`/admin/events?kind=custom`), which the embedded mock-ld keeps for this (its
//! [`event_list`] bound). `checks::parity` compares them.
//!
//! The two sides are told apart by time: one side's events are all received before the
//! other starts, and each event carries the `creationDate` its SDK gave it when tracked, so
//! events created in the worker's window are the worker's, those in the Rust window Rust's,
//! and the load's, all created before, neither's. Requests go in chunks small enough that
//! no SDK's event buffer and not the event log overflows within one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::call::Workload;
use super::endpoints::{event_options, Endpoints};
use super::mock_admin::MockAdmin;
use super::workers::feed::Feeder;
use super::workers::pool::{Pool, Sinks};
use super::{live, progress::Progress};
use crate::checks::parity::{ParityData, Side};
use crate::checks::targeting::Targeting;
use crate::ld_client::start_client;
use crate::scenario::population::Generator;
use crate::scenario::{Scenario, SdkKind};
use crate::served::ServedLog;

/// At most this many tracker events per step are planned for (usage, duration, time to
/// first token, three token counts, success or error, feedback: eight), so that a chunk of
/// requests fits an SDK's event buffer whatever a handler adds.
const EVENTS_PER_STEP: u64 = 10;
/// The event log an embedded mock-ld keeps when a parity phase will run: enough for a
/// chunk of both sides, and at most this (about 1 KB each).
const MAX_EVENT_LIST: u64 = 100_000;
/// How long each side's events may take to arrive after its flush.
const ARRIVAL: Duration = Duration::from_secs(20);
/// No new event for this long after a flush: the rest was dropped.
const QUIET: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

/// The worker that runs the sample.
const WORKER: usize = 0;

/// Requests in the sample: `parity_sample` at most the population; 0 when the run has no
/// parity check (the Rust SDK, or `parity_sample = 0`).
pub fn sample(scenario: &Scenario) -> u64 {
    match scenario.load.sdk {
        SdkKind::Rust => 0,
        _ => scenario.load.parity_sample.min(scenario.population.count),
    }
}

/// The events an embedded mock-ld must keep listing for the parity phase: 0 without one.
pub fn event_list(scenario: &Scenario) -> usize {
    let per_chunk = 2 * chunk(scenario) * per_request(scenario);
    match sample(scenario) {
        0 => 0,
        _ if !scenario.load.events.enabled => 0,
        _ => per_chunk.min(MAX_EVENT_LIST) as usize,
    }
}

fn per_request(scenario: &Scenario) -> u64 {
    (scenario.effective_steps().len() as u64).max(1) * EVENTS_PER_STEP
}

/// Requests per chunk: one side's events of a chunk fit its SDK's event buffer, and both
/// sides' fit the event list.
fn chunk(scenario: &Scenario) -> u64 {
    let room = (scenario.load.events.capacity as u64).min(MAX_EVENT_LIST / 2);
    (room / per_request(scenario))
        .max(1)
        .min(sample(scenario).max(1))
}

/// What the phase needs of the run.
pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub endpoints: &'a Endpoints,
    pub http: reqwest::Client,
    pub llm_base: String,
    pub targetings: &'a [(String, Result<Targeting, String>)],
    pub cancel: CancellationToken,
}

/// Runs the sample through worker 0 and the Rust SDK; `Err` says why it could not be run
/// (the check is then inconclusive).
pub async fn run(inputs: &Inputs<'_>, pool: &mut Pool) -> Result<ParityData, String> {
    let scenario = inputs.scenario;
    if !scenario.load.events.enabled {
        return Err("events are off ([load.events] enabled = false)".into());
    }
    let admin =
        inputs.endpoints.events_admin.as_ref().ok_or(
            "the events go to a target without mock-ld's event log to read them back from",
        )?;
    let n = sample(scenario);
    if n == 0 {
        return Err("the population is empty".into());
    }
    let started = Instant::now();
    let keys = variation_keys(scenario, inputs.targetings);
    let worker_served = Arc::new(ServedLog::new(keys.clone(), n, None));
    let rust_served = Arc::new(ServedLog::new(keys.clone(), n, None));
    let workload = rust_workload(inputs, rust_served.clone()).await?;
    let log = EventLog::new(admin, scenario);
    let mut sides = (Side::default(), Side::default());
    let step = chunk(scenario);
    let mut from = 0;
    while from < n {
        if inputs.cancel.is_cancelled() {
            return Err("the run was interrupted".into());
        }
        let to = (from + step).min(n);
        let windows = run_chunk(inputs, pool, &workload, &worker_served, from..to).await?;
        let events = log.custom_events().await?;
        for event in events {
            match windows.side_of(&event) {
                Some(Which::Worker) => sides.0.events.push(event),
                Some(Which::Rust) => sides.1.events.push(event),
                None => {}
            }
        }
        from = to;
    }
    workload.close().await;
    if sides.0.events.is_empty() && sides.1.events.is_empty() && log.stored().await == 0 {
        return Err("mock-ld keeps no events to list (its --max-stored-events is 0)".into());
    }
    tracing::info!(
        sample = n,
        worker_events = sides.0.events.len(),
        rust_events = sides.1.events.len(),
        seconds = started.elapsed().as_secs_f64(),
        "parity phase done"
    );
    sides.0.served = worker_served.records();
    sides.1.served = rust_served.records();
    Ok(ParityData {
        sdk: scenario.load.sdk.name().into(),
        sample: n,
        handler: scenario.load.handler.is_some(),
        keys,
        worker: sides.0,
        rust: sides.1,
    })
}

/// Each AI Config's variation keys, in the order served codes index them: the targeting's
/// where it was read (so that the predictor's codes are the same), else the scenario's.
fn variation_keys(
    scenario: &Scenario,
    targetings: &[(String, Result<Targeting, String>)],
) -> Vec<(String, Vec<String>)> {
    scenario
        .ai_configs
        .iter()
        .map(|config| {
            let read = targetings
                .iter()
                .find(|(c, _)| *c == config.key)
                .and_then(|(_, t)| t.as_ref().ok());
            let keys = match read {
                Some(t) => t.variation_keys.clone(),
                None => config.variations.iter().map(|v| v.key.clone()).collect(),
            };
            (config.key.clone(), keys)
        })
        .collect()
}

/// The Rust side: one SDK client with the load's settings, and a [`Workload`] over it that
/// records what it serves into `served`.
async fn rust_workload(inputs: &Inputs<'_>, served: Arc<ServedLog>) -> Result<RustSide, String> {
    let scenario = inputs.scenario;
    let endpoints = inputs.endpoints;
    // Events on, whatever the load had: the phase compares the tracked events too.
    let options = endpoints.sdk_options(Some(event_options(scenario)));
    let client = start_client(&options, scenario.load.init_timeout)
        .await
        .map_err(|e| format!("the Rust SDK client: {e}"))?;
    let client = Arc::new(client);
    let population = Generator::new(&scenario.population, scenario.seed)?;
    let workload = Workload::new(
        scenario,
        std::slice::from_ref(&client),
        population,
        inputs.http.clone(),
        inputs.llm_base.clone(),
        served,
    );
    Ok(RustSide { client, workload })
}

struct RustSide {
    client: Arc<launchdarkly_server_sdk::Client>,
    workload: Workload,
}

impl RustSide {
    /// Runs requests `range`, `concurrency` at a time; returns the events handed over.
    async fn run(&self, range: std::ops::Range<u64>, concurrency: usize) -> u64 {
        let handed = self.workload.handed_events();
        let before = handed.load(Ordering::Acquire);
        futures::stream::iter(range)
            .map(|index| self.workload.request(index))
            .buffer_unordered(concurrency.max(1))
            .for_each(|_| async {})
            .await;
        handed.load(Ordering::Acquire) - before
    }

    async fn close(self) {
        let client = self.client;
        let _ = tokio::task::spawn_blocking(move || client.close()).await;
    }
}

/// Which SDK created an event.
enum Which {
    Worker,
    Rust,
}

/// The `creationDate` windows (ms since the epoch) of one chunk: the worker's, then Rust's.
struct Windows {
    worker_from: u64,
    rust_from: u64,
    rust_to: u64,
}

impl Windows {
    fn side_of(&self, event: &Value) -> Option<Which> {
        let date = event.get("creationDate").and_then(Value::as_f64)? as u64;
        if date >= self.worker_from && date < self.rust_from {
            Some(Which::Worker)
        } else if date >= self.rust_from && date < self.rust_to {
            Some(Which::Rust)
        } else {
            None
        }
    }
}

/// One chunk through the worker, then through Rust, each side's events received before
/// the next starts.
async fn run_chunk(
    inputs: &Inputs<'_>,
    pool: &mut Pool,
    rust: &RustSide,
    served: &Arc<ServedLog>,
    range: std::ops::Range<u64>,
) -> Result<Windows, String> {
    let scenario = inputs.scenario;
    let log = EventLog::new(
        inputs.endpoints.events_admin.as_ref().expect("checked"),
        scenario,
    );
    let worker_from = boundary().await;
    let before = log.custom_count().await?;
    let population = Generator::new(&scenario.population, scenario.seed)?;
    let feeder = Arc::new(Feeder::range(scenario, population, range.clone()));
    let sinks = sinks(scenario, served.clone(), range.end);
    let result = pool
        .phase(WORKER, feeder, sinks, inputs.cancel.clone())
        .await
        .map_err(|e| {
            format!(
                "the {} worker's parity phase: {e}",
                scenario.load.sdk.name()
            )
        })?;
    pool.flush_one(WORKER)
        .await
        .map_err(|e| format!("flushing the worker: {e}"))?;
    log.wait_for(before + result.handed_events).await?;

    let rust_from = boundary().await;
    let before = log.custom_count().await?;
    let handed = rust.run(range, concurrency(scenario)).await;
    rust.client.flush();
    log.wait_for(before + handed).await?;
    let rust_to = boundary().await;
    Ok(Windows {
        worker_from,
        rust_from,
        rust_to,
    })
}

/// What the worker's parity phase reports into: its own timeline and progress (the load's
/// figures stay the load's), and `served`.
fn sinks(scenario: &Scenario, served: Arc<ServedLog>, population: u64) -> Sinks {
    let served_slots = scenario
        .effective_steps()
        .iter()
        .map(|s| served.slot(&s.config))
        .collect();
    Sinks {
        live: live::Live::new(Instant::now()),
        progress: Arc::new(Progress::default()),
        served,
        served_slots,
        population,
    }
}

/// The Rust side's requests at once: as many as worker 0 runs at once.
fn concurrency(scenario: &Scenario) -> usize {
    let load = &scenario.load;
    let workers = super::sdks::worker_count(scenario);
    let total = match load.model {
        crate::scenario::LoadModel::Closed => load.concurrency,
        crate::scenario::LoadModel::Open => load.max_in_flight,
    };
    total.div_ceil(workers).clamp(1, 1024)
}

/// A millisecond no event of the side before it was created in: the clock is read after
/// a tick, so the windows do not share a millisecond.
async fn boundary() -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(2)).await;
    now
}

/// mock-ld's event log of the scenario's environment, through its admin API.
struct EventLog<'a> {
    admin: &'a MockAdmin,
    query: String,
}

impl<'a> EventLog<'a> {
    fn new(admin: &'a MockAdmin, scenario: &Scenario) -> Self {
        EventLog {
            admin,
            query: format!("project={}&env={}", scenario.project, scenario.environment),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.admin.get_json(path).await
    }

    /// Custom events received so far (counted, whether listed or not).
    async fn custom_count(&self) -> Result<u64, String> {
        let stats = self
            .get(&format!("events/stats?{}&delivery=false", self.query))
            .await?;
        Ok(stats["byKind"]["custom"].as_u64().unwrap_or(0))
    }

    /// Waits until `target` custom events were received, or nothing more arrives (some were
    /// dropped: the comparison then shows which).
    async fn wait_for(&self, target: u64) -> Result<(), String> {
        let started = Instant::now();
        let (mut last, mut changed) = (0, Instant::now());
        while started.elapsed() < ARRIVAL && changed.elapsed() < QUIET {
            let count = self.custom_count().await?;
            if count >= target {
                return Ok(());
            }
            if count != last {
                (last, changed) = (count, Instant::now());
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::warn!(target, received = last, "parity: not every event arrived");
        Ok(())
    }

    /// The custom events mock-ld lists (the newest it keeps), as sent.
    async fn custom_events(&self) -> Result<Vec<Value>, String> {
        let listing = self
            .get(&format!("events?{}&kind=custom", self.query))
            .await?;
        let items = listing["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .filter_map(|mut item| item.get_mut("event").map(Value::take))
            .collect())
    }

    /// Events of every kind mock-ld lists for the environment.
    async fn stored(&self) -> u64 {
        self.get(&format!("events?{}", self.query))
            .await
            .ok()
            .and_then(|l| l["totalCount"].as_u64())
            .unwrap_or(0)
    }
}
