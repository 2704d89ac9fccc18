//! `aiconfig-harness run`: sets a scenario up through the REST API, starts SDK clients,
//! drives the load, applies timed actions, flushes and verifies events, and produces the
//! [`RunResults`], with their cost, checks and verdict.
//!
//! Modules: [`setup`] (REST API), [`call`] (one request: AI Config, LLM, tracker),
//! [`llm_call`] (OpenAI-compatible client; [`llm_plan`] reads the simulator's plan; [`retry`] a
//! step's `on_error`: which failures are retried, the waits and each call's seed;
//! [`retry_after`] reads a provider's `Retry-After`), [`load`] (closed and open models),
//! [`schedule`] (open-model arrival times), [`actions`] (timed changes and propagation;
//! [`llm_action`] changes the simulated LLM), [`faults`] (mock-ld's faults on a timeline, start-up
//! faults before the SDK clients start), `sdk_start` (each client's wait for initialization,
//! and when one that timed out initialized), [`restarts`] (the embedded mock-ld killed and
//! started again; [`embedded`] holds it), [`live`] (the timeline while the load runs,
//! for thresholds that abort it), [`events`] (flush latency during and after the load,
//! completeness, delivery latency), [`health`] (the load generator's own lag and the
//! machine's pressure), [`simulated`] (the simulated provider's profiles and lateness),
//! `endpoints` (where the SDKs, REST calls, events and LLM calls go; the embedded mock-ld),
//! [`progress`], [`parity`] (after a Python or Node load, its sample again through one
//! worker and the Rust SDK, for the `sdk_parity` check),
//! [`collect`] (metrics into results).
//!
//! After the load, the cost ([`crate::cost`]) and the checks ([`crate::checks`]) are
//! evaluated into the results.

pub mod actions;
pub mod call;
mod collect;
mod embedded;
mod endpoints;
pub mod events;
pub mod faults;
pub mod health;
pub mod live;
pub mod llm_action;
pub mod llm_call;
pub mod llm_plan;
pub mod load;
pub mod mock_admin;
mod parity;
pub mod progress;
mod restarts;
pub mod retry;
pub mod retry_after;
pub mod schedule;
mod sdk_start;
mod sdks;
pub mod setup;
pub mod simulated;
pub mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::Client;
use mock_ld::faults::registry::RefusedEvents;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checks::targeting::Targeting;
use crate::checks::{self, RolloutData};
use crate::cost::PriceTable;
use crate::ld_api::{ApiError, LdApi};
use crate::metrics::Metrics;
use crate::results::harness::HarnessHealth;
use crate::results::verdict::RunStatus;
use crate::results::{self, RunResults};
use crate::scenario::population::Generator;
use crate::scenario::{LoadModel, Scenario, SdkKind};
use crate::served::ServedLog;
use call::Workload;
use collect::{assemble, LoadFigures};
use endpoints::Endpoints;
use mock_admin::MockAdmin;
use progress::Progress;
use schedule::Schedule;
use sdks::Sdks;
use workers::pool::PoolError;

/// Where LaunchDarkly is.
#[derive(Clone, Debug)]
pub enum Target {
    /// A mock-ld started in-process on 127.0.0.1:0, on a tokio runtime and threads of its
    /// own, so that what it serves is not late because the load generator was busy.
    Embedded,
    /// A running mock-ld, Relay Proxy or LaunchDarkly: base URL of the SDK endpoints, the
    /// streaming and events URLs where they differ from it (LaunchDarkly has a host for
    /// each), the REST API's base URL, the SDK key and an API token.
    External {
        sdk_url: String,
        stream_url: Option<String>,
        events_url: Option<String>,
        api_url: String,
        sdk_key: String,
        api_token: String,
        /// mock-ld's `--admin-token`, when the target is a mock-ld that has one.
        admin_token: Option<String>,
    },
}

impl Target {
    /// A mock-ld this process started (`mock_ld::MockLd::start`), as a running one: SDKs,
    /// REST API and events at its base URL, with the SDK key of `project`/`environment`
    /// (`None` when it has no such environment) and its `--admin-token`, if it has one.
    pub fn in_process(
        mock: &mock_ld::MockLdHandle,
        (project, environment): (&str, &str),
        admin_token: Option<&str>,
    ) -> Option<Target> {
        let sdk_key = mock
            .store()
            .environment(project, environment)?
            .sdk_key
            .clone();
        Some(Target::External {
            sdk_url: mock.base_url(),
            stream_url: None,
            events_url: None,
            api_url: mock.base_url(),
            sdk_key,
            api_token: mock.config().api_token.clone(),
            admin_token: admin_token.map(str::to_owned),
        })
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub target: Target,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Stops the load early (Ctrl-C); results are then marked partial.
    pub cancel: CancellationToken,
}

impl RunOptions {
    /// Against `target`, without a progress bar, stopped early only through `cancel`.
    pub fn quiet(target: Target) -> Self {
        RunOptions {
            target,
            progress: false,
            cancel: CancellationToken::new(),
        }
    }
}

/// Why a run could not be carried out (as opposed to a check failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("mock-ld: {0}")]
    MockLd(#[from] mock_ld::StartError),
    #[error("setting up the scenario: {0}")]
    Setup(#[from] ApiError),
    #[error(transparent)]
    Sdk(#[from] crate::ld_client::SdkError),
    #[error("{0}")]
    Scenario(String),
    /// The scenario asks for what the target cannot do, or mock-ld refused it (a fault):
    /// an input error, exit 2, as a bad scenario file is.
    #[error("{0}")]
    Input(String),
}

/// Runs a scenario, pricing its LLM calls with the shipped list prices under the
/// scenario's `[prices]`.
pub async fn run(scenario: &Scenario, options: RunOptions) -> Result<RunResults, RunError> {
    run_with_prices(scenario, options, PriceTable::defaults()).await
}

/// [`run`] with other prices (`--prices FILE`); the scenario's `[prices]` go over them.
///
/// The phases, in order: [`prepare`] (endpoints, REST set-up, what is read before the
/// load), start-up faults and the SDK clients ([`start_sdks`]), the load with its timeline
/// of actions, faults and restarts ([`Running`], [`load`]), then [`aftermath`] (flush and
/// verify events, the parity phase, what mock-ld refused) and the results with their checks.
pub async fn run_with_prices(
    scenario: &Scenario,
    options: RunOptions,
    prices: PriceTable,
) -> Result<RunResults, RunError> {
    restarts::Restarts::check(scenario, matches!(options.target, Target::Embedded))?;
    // Raw events the parity phase reads one by one, if it runs.
    let listed = parity::event_list(scenario);
    let endpoints = Endpoints::of(scenario, &options.target, listed).await?;
    let admins = faults::Admins {
        sdk: endpoints.admin.as_ref(),
        events: endpoints.events_admin.as_ref(),
        llm: endpoints.llm_admin.as_ref(),
    };
    let fault_plans = faults::plans(scenario, admins, sdks::client_count(scenario))?;
    let mut prepared = prepare(scenario, endpoints).await?;
    // Start-up faults go on now, before the SDK clients start; the rest wait for the load.
    let fault_timeline =
        faults::Timeline::start(fault_plans, Instant::now(), options.cancel.clone());
    let (sdks, rust_starts) = start_sdks(scenario, &prepared).await?;
    let sdk_info = sdks.info(scenario);
    let running = Running::start(scenario, &prepared, &sdks, &options);
    fault_timeline.load_started(running.start);
    let restarts = restarts::Restarts::start(
        scenario.restarts.clone(),
        prepared.endpoints.restart_target(scenario),
        running.start,
        options.cancel.clone(),
    );
    tracing::info!(scenario = %scenario.name, model = ?scenario.load.model, sdk = %sdk_info.describe(), "load started");
    let event_stats = prepared.event_stats.clone();
    let mut loaded = load(scenario, sdks, &prepared, &running, &options, &event_stats).await?;
    tracing::info!(
        requests = loaded.metrics.requests,
        "load finished; flushing events"
    );
    let elapsed = running.start.elapsed();
    let simulated = match (prepared.simulator.take(), &prepared.endpoints.llm_admin) {
        (Some(before), Some(admin)) => Some(before.finish(admin).await),
        _ => None,
    };
    let status = running.status(loaded.worker_failure.take(), &options.cancel);
    let Running {
        start: run_start,
        served,
        actions,
        own,
        ..
    } = running;
    let harness = own
        .finish(
            scenario,
            &loaded.metrics,
            simulated.as_ref(),
            (elapsed, sdks::worker_processes(scenario)),
        )
        .await;
    // Actions still pending when the load ends are not applied.
    options.cancel.cancel();
    let actions = actions.await.unwrap_or_default();
    let (mut fault_windows, fault_refused) = fault_timeline.finish().await;
    faults::add_served(&mut fault_windows, &loaded.metrics.timeline);
    let sdk_start = match (&rust_starts, &loaded.sdks) {
        (Some(starts), _) => Some(starts.summary(run_start)),
        (None, Sdks::Workers(pool)) => Some(pool.sdk_start(scenario)),
        (None, Sdks::Rust(_)) => None,
    };
    drop(rust_starts);
    // mock-ld is running again before the events are flushed and counted.
    let (restart_windows, restart_failed) = restarts.finish().await;
    let after = aftermath(scenario, &prepared, loaded, event_stats, &status).await;
    if let Some(refused) = fault_refused {
        return Err(RunError::Input(refused));
    }
    // Nothing after it measured the system: an incomplete run (exit 4) that says why.
    if let Some(failed) = restart_failed {
        return Err(RunError::Scenario(failed));
    }
    let figures = LoadFigures {
        elapsed,
        harness,
        target_rate: after.target_rate,
        status,
        events: after.events,
        actions,
        simulated,
        sdk: sdk_info,
        faults: fault_windows,
        restarts: restart_windows,
        refused_events: after.refused_events,
        sdk_start,
    };
    let prices = prices.with_scenario(&scenario.prices);
    let mut results = assemble(scenario, &after.metrics, figures, &prices);
    let rollouts = rollout_data(prepared.targetings, &served);
    results.checks = evaluate_checks(
        scenario,
        &results,
        &after.metrics,
        &rollouts,
        after.parity.as_ref(),
    )?;
    results.decide();
    Ok(results)
}

/// What a run has set up before its SDK clients start.
struct Prepared {
    endpoints: Endpoints,
    http: reqwest::Client,
    api: Arc<LdApi>,
    /// The simulated provider's profiles and lateness before the load, when it answers the
    /// LLM calls.
    simulator: Option<simulated::Before>,
    /// Read back before the load: what was configured is what the rollout checks predict
    /// from.
    targetings: Vec<(String, Result<Targeting, String>)>,
    /// Where the LLM calls go: `[llm] url`, or the simulated provider.
    llm_base: String,
    /// What mock-ld had refused in the environment before any fault went on.
    refused_before: Option<Result<Option<RefusedEvents>, String>>,
    /// mock-ld's event counts for the scenario's environment from before the SDKs started
    /// (when its events go to a mock-ld and are on), counting what it lost for good
    /// with faults or restarts.
    event_stats: Option<events::EventStats>,
}

/// Sets the scenario up through the REST API and reads what the load is judged against.
async fn prepare(scenario: &Scenario, endpoints: Endpoints) -> Result<Prepared, RunError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| RunError::Scenario(e.to_string()))?;
    let api = Arc::new(LdApi::new(
        http.clone(),
        &endpoints.api_url,
        &endpoints.api_token,
        &scenario.project,
    ));
    api.set_up(scenario).await?;
    if let Some(admin) = &endpoints.llm_admin {
        admin.set_llm_profiles(scenario).await?;
    }
    // mock-ld's simulator answers the LLM calls unless the scenario names another provider.
    let simulator = match &endpoints.llm_admin {
        Some(admin) if scenario.llm.url.is_none() => {
            Some(simulated::Before::read(admin, scenario).await)
        }
        _ => None,
    };
    let targetings = read_targetings(&api, scenario, endpoints.admin.as_ref()).await;
    let llm_base = scenario
        .llm
        .url
        .clone()
        .unwrap_or_else(|| endpoints.llm_url.clone());
    let refused_before = endpoints.refused_events(scenario).await;
    let event_stats = match endpoints.event_stats(scenario) {
        // Every count the run reports or checks is the difference from this read.
        Some(stats) => Some(stats.from_now().await.map_err(|e| {
            RunError::Scenario(format!(
                "reading mock-ld's event counts before the load: {e}; without them the events received could not be told from earlier runs'"
            ))
        })?),
        None => None,
    };
    // With faults or restarts, what mock-ld lost for good (a second try refused) counts as
    // accounted for.
    let event_stats = match (event_stats, &refused_before, &endpoints.events_admin) {
        (Some(stats), Some(Ok(before)), Some(admin)) => {
            Some(stats.with_refusals(admin, before.as_ref()))
        }
        (stats, ..) => stats,
    };
    Ok(Prepared {
        endpoints,
        http,
        api,
        simulator,
        targetings,
        llm_base,
        refused_before,
        event_stats,
    })
}

/// The scenario's SDK clients: the Rust SDK's in-process (with each one's start), or the
/// Python or Node workers.
async fn start_sdks(
    scenario: &Scenario,
    prepared: &Prepared,
) -> Result<(Sdks, Option<sdk_start::Starts>), RunError> {
    let endpoints = &prepared.endpoints;
    Ok(match scenario.load.sdk {
        SdkKind::Rust => {
            let events = scenario
                .load
                .events
                .enabled
                .then(|| endpoints::event_options(scenario));
            let options = endpoints.sdk_options(events);
            let (clients, starts) = sdk_start::start_rust(scenario, &options).await?;
            (Sdks::Rust(clients), Some(starts))
        }
        _ => {
            let pool = sdks::start_workers(scenario, endpoints, &prepared.llm_base).await?;
            (Sdks::Workers(pool), None)
        }
    })
}

/// The load under way: its start, what records it, and the timed actions beside it.
struct Running {
    start: Instant,
    progress: Arc<Progress>,
    served: Arc<ServedLog>,
    live: Arc<live::Live>,
    aborted: Arc<live::Aborted>,
    actions: JoinHandle<Vec<results::ActionResults>>,
    own: health::OwnFigures,
}

impl Running {
    /// Starts the clock, the load generator's own measurements, the timed actions and the
    /// thresholds that may abort the load.
    fn start(scenario: &Scenario, prepared: &Prepared, sdks: &Sdks, options: &RunOptions) -> Self {
        let start = Instant::now();
        let own = health::OwnFigures::start();
        let served = Arc::new(served_log(scenario, &prepared.targetings, start));
        let actions = tokio::spawn(actions::run_actions(
            prepared.api.clone(),
            scenario.environment.clone(),
            scenario.actions.clone(),
            sdks.rust_clients(),
            prepared.endpoints.llm_admin.clone(),
            start,
            options.cancel.clone(),
        ));
        let aborted = Arc::new(live::Aborted::default());
        let live = live::Live::new(start);
        watch_aborts(scenario, &live, &options.cancel, &aborted);
        Running {
            start,
            progress: Arc::new(Progress::default()),
            served,
            live,
            aborted,
            actions,
            own,
        }
    }

    /// How the load ended.
    fn status(&self, worker_failure: Option<PoolError>, cancel: &CancellationToken) -> RunStatus {
        match (self.aborted.by(), worker_failure) {
            (_, Some(failure)) => RunStatus::WorkerFailed {
                message: failure.to_string(),
            },
            (Some(threshold), None) => RunStatus::Aborted { threshold },
            (None, None) if cancel.is_cancelled() => RunStatus::Interrupted,
            (None, None) => RunStatus::Complete,
        }
    }
}

/// What the load hands on to what follows it.
struct Loaded {
    metrics: Metrics,
    target_rate: Option<f64>,
    /// The flush samples taken during the load, when mock-ld's event counts are read.
    flushes: Option<events::FlushSeries>,
    worker_failure: Option<PoolError>,
    sdks: Sdks,
}

/// Drives the load through the SDK clients until it is done or cancelled.
async fn load(
    scenario: &Scenario,
    sdks: Sdks,
    prepared: &Prepared,
    running: &Running,
    options: &RunOptions,
    event_stats: &Option<events::EventStats>,
) -> Result<Loaded, RunError> {
    let mut loaded = match sdks {
        Sdks::Rust(clients) => {
            load_rust(scenario, clients, prepared, running, options, event_stats).await?
        }
        Sdks::Workers(mut pool) => {
            let (feeder, sinks) = sdks::worker_feed(
                scenario,
                (
                    running.live.clone(),
                    running.progress.clone(),
                    running.served.clone(),
                ),
            )?;
            let bar = options
                .progress
                .then(|| progress::spawn(running.progress.clone(), feeder.total()));
            let (metrics, failure) = pool.run(feeder, sinks, options.cancel.clone()).await;
            progress::finish(bar).await;
            Loaded {
                metrics,
                target_rate: target_rate(scenario),
                // No samples during the load: the workers' SDKs flush on their own
                // interval, and the final flush is the one sample.
                flushes: event_stats.is_some().then(events::FlushSeries::default),
                worker_failure: failure,
                sdks: Sdks::Workers(pool),
            }
        }
    };
    // Every recorder has handed its seconds over by now.
    loaded.metrics.timeline = running.live.seconds();
    Ok(loaded)
}

/// The load through the Rust SDK clients in-process, its flushes sampled meanwhile.
async fn load_rust(
    scenario: &Scenario,
    clients: Vec<Arc<Client>>,
    prepared: &Prepared,
    running: &Running,
    options: &RunOptions,
    event_stats: &Option<events::EventStats>,
) -> Result<Loaded, RunError> {
    let population =
        Generator::new(&scenario.population, scenario.seed).map_err(RunError::Scenario)?;
    let workload = Arc::new(Workload::new(
        scenario,
        &clients,
        population,
        prepared.http.clone(),
        prepared.llm_base.clone(),
        running.served.clone(),
    ));
    let setup_events = workload.setup_events();
    let sampler = event_stats.clone().map(|stats| {
        events::FlushSampler::start(
            stats,
            clients.clone(),
            workload.handed_events(),
            scenario.load.events.flush_interval,
        )
    });
    let (mut metrics, target_rate) = drive(
        scenario,
        workload,
        running.progress.clone(),
        options,
        running.start,
        running.live.clone(),
    )
    .await;
    let flushes = match sampler {
        Some(sampler) => Some(sampler.finish().await),
        None => None,
    };
    metrics
        .tracked_events
        .insert("$ld:ai:sdk:info".into(), setup_events);
    Ok(Loaded {
        metrics,
        target_rate,
        flushes,
        worker_failure: None,
        sdks: Sdks::Rust(clients),
    })
}

/// What is read after the load and its timeline have ended.
struct Aftermath {
    metrics: Metrics,
    target_rate: Option<f64>,
    events: Option<results::EventResults>,
    parity: Option<Result<checks::parity::ParityData, String>>,
    /// Refused by mock-ld in the environment over the run.
    refused_events: Option<RefusedEvents>,
}

/// Flushes and verifies the events, runs the parity phase after a worker load that
/// completed, closes the SDK clients, and reads what mock-ld refused over the run.
async fn aftermath(
    scenario: &Scenario,
    prepared: &Prepared,
    loaded: Loaded,
    event_stats: Option<events::EventStats>,
    status: &RunStatus,
) -> Aftermath {
    let Loaded {
        metrics,
        target_rate,
        flushes,
        mut sdks,
        ..
    } = loaded;
    let events = match (event_stats, flushes) {
        (Some(stats), Some(series)) => {
            Some(events::flush_and_verify(&stats, sdks.flush(), &metrics, series).await)
        }
        // Events off, or a target without mock-ld's event log to verify against.
        _ => {
            sdks.flush().await;
            None
        }
    };
    // Read as close to the received counts as can be: a refused payload's retry taken
    // between the two reads would be neither received nor refused.
    let refused_events = refused_over_run(scenario, prepared).await;
    let parity = match &mut sdks {
        Sdks::Workers(pool) if parity::sample(scenario) > 0 => {
            Some(parity_phase(scenario, prepared, pool, status).await)
        }
        _ => None,
    };
    sdks.close().await;
    Aftermath {
        refused_events,
        metrics,
        target_rate,
        events,
        parity,
    }
}

/// The sample of a worker load again through one worker and the Rust SDK.
async fn parity_phase(
    scenario: &Scenario,
    prepared: &Prepared,
    pool: &mut workers::pool::Pool,
    status: &RunStatus,
) -> Result<checks::parity::ParityData, String> {
    if !matches!(status, RunStatus::Complete) {
        return Err("the load did not complete".into());
    }
    let inputs = parity::Inputs {
        scenario,
        endpoints: &prepared.endpoints,
        http: prepared.http.clone(),
        llm_base: prepared.llm_base.clone(),
        targetings: &prepared.targetings,
        // The run's token was cancelled to end the actions: the phase is bounded by its
        // sample instead.
        cancel: CancellationToken::new(),
    };
    parity::run(&inputs, pool).await
}

/// The events payloads mock-ld refused in the environment from before the load until now
/// (a mock-ld shared by earlier runs keeps counting); `None` without faults or restarts, or
/// when either count could not be read.
async fn refused_over_run(scenario: &Scenario, prepared: &Prepared) -> Option<RefusedEvents> {
    let unread = |when: &str, error: &str| {
        tracing::warn!(
            %error,
            "mock-ld's refused events could not be read {when}: the run has no refused-event counts or event accounting"
        );
    };
    let before = match prepared.refused_before.as_ref()? {
        Ok(before) => before,
        Err(e) => {
            unread("before the load", e);
            return None;
        }
    };
    let after = match prepared.endpoints.refused_events(scenario).await? {
        Ok(after) => after,
        Err(e) => {
            unread("after the load", &e);
            return None;
        }
    };
    let after = after.unwrap_or_else(|| {
        results::faults::empty_refusals(&scenario.project, &scenario.environment)
    });
    Some(results::faults::refused_since(before.as_ref(), &after))
}

/// The results of a run whose setup failed: nothing measured, status `setupFailed` with
/// the reason, so that every output still says what happened (exit code 4).
pub fn setup_failed(scenario: &Scenario, message: &str) -> RunResults {
    let figures = LoadFigures {
        elapsed: Duration::ZERO,
        harness: HarnessHealth {
            bounds: scenario.load.overload.bounds(),
            ..HarnessHealth::default()
        },
        target_rate: None,
        status: RunStatus::SetupFailed {
            message: message.to_owned(),
        },
        events: None,
        actions: Vec::new(),
        simulated: None,
        sdk: results::SdkInfo {
            name: scenario.load.sdk.name().into(),
            ..results::SdkInfo::default()
        },
        faults: Vec::new(),
        restarts: Vec::new(),
        refused_events: None,
        sdk_start: None,
    };
    let mut results = assemble(
        scenario,
        &Metrics::default(),
        figures,
        &PriceTable::defaults(),
    );
    results.decide();
    results
}

/// The targeting of every AI Config a rollout check covers, or why it could not be read.
async fn read_targetings(
    api: &LdApi,
    scenario: &Scenario,
    admin: Option<&MockAdmin>,
) -> Vec<(String, Result<Targeting, String>)> {
    let mut targetings = Vec::new();
    for config in checks::rollout_configs(scenario) {
        let targeting = checks::targeting::read(
            api,
            &scenario.environment,
            &config,
            admin.map(|a| (&a.http, a.base.as_str())),
        )
        .await;
        targetings.push((config, targeting));
    }
    targetings
}

/// Records what each context is served for every AI Config whose targeting was read, until
/// the first action is due.
fn served_log(
    scenario: &Scenario,
    targetings: &[(String, Result<Targeting, String>)],
    run_start: Instant,
) -> ServedLog {
    let configs = targetings
        .iter()
        .filter_map(|(config, t)| Some((config.clone(), t.as_ref().ok()?.variation_keys.clone())))
        .collect();
    let cutoff = first_action(scenario).map(|at| run_start + at);
    ServedLog::new(configs, scenario.population.count, cutoff)
}

/// When the first change to an AI Config is due (a change to the LLM serves the same).
fn first_action(scenario: &Scenario) -> Option<Duration> {
    scenario
        .actions
        .iter()
        .filter(|a| a.changes_flags())
        .map(|a| a.at)
        .min()
}

/// With thresholds that may abort the load, starts the task that judges them on the live
/// timeline every second (it ends with the load).
fn watch_aborts(
    scenario: &Scenario,
    live: &Arc<live::Live>,
    cancel: &CancellationToken,
    aborted: &Arc<live::Aborted>,
) {
    let thresholds: Vec<_> = scenario
        .checks
        .iter()
        .filter_map(|spec| match &spec.kind {
            crate::scenario::checks::CheckKind::Threshold(t) if t.abort.is_some() => {
                Some((checks::check_name(spec)?, t.clone()))
            }
            _ => None,
        })
        .collect();
    if thresholds.is_empty() {
        return;
    }
    tokio::spawn(live::watch(
        live.clone(),
        thresholds,
        cancel.clone(),
        aborted.clone(),
    ));
}

fn rollout_data(
    targetings: Vec<(String, Result<Targeting, String>)>,
    served: &ServedLog,
) -> Vec<RolloutData> {
    let mut records = served.records();
    targetings
        .into_iter()
        .map(|(config, targeting)| {
            let served = records
                .iter()
                .position(|(c, _)| *c == config)
                .map(|i| records.swap_remove(i).1);
            RolloutData {
                config,
                targeting,
                served,
            }
        })
        .collect()
}

fn evaluate_checks(
    scenario: &Scenario,
    results: &RunResults,
    metrics: &Metrics,
    rollouts: &[RolloutData],
    parity: Option<&Result<checks::parity::ParityData, String>>,
) -> Result<Vec<results::checks::CheckOutcome>, RunError> {
    // A second generator: the load's went with the workload, and contexts are a pure
    // function of the seed and the index.
    let population =
        Generator::new(&scenario.population, scenario.seed).map_err(RunError::Scenario)?;
    let inputs = checks::Inputs {
        scenario,
        results,
        metrics,
        cost: &results.cost,
        population: &population,
        rollouts,
        before_ms: first_action(scenario).map(|at| at.as_secs_f64() * 1e3),
        parity,
    };
    Ok(checks::evaluate(&inputs))
}

/// The open model's scheduled rate, requests per second.
fn target_rate(scenario: &Scenario) -> Option<f64> {
    if scenario.load.model != LoadModel::Open {
        return None;
    }
    let schedule = Schedule::from_load(&scenario.load)?;
    Some(schedule.total() as f64 / schedule.duration().as_secs_f64().max(1e-9))
}

/// Runs the load model the scenario asks for; returns its metrics and, for the open model,
/// the scheduled rate.
async fn drive(
    scenario: &Scenario,
    workload: Arc<Workload>,
    progress: Arc<Progress>,
    options: &RunOptions,
    run_start: Instant,
    live: Arc<live::Live>,
) -> (Metrics, Option<f64>) {
    let load = &scenario.load;
    let cancel = options.cancel.clone();
    match (load.model, Schedule::from_load(load)) {
        (LoadModel::Open, Some(schedule)) => {
            let total = schedule.total();
            let rate = total as f64 / schedule.duration().as_secs_f64().max(1e-9);
            let bar = options
                .progress
                .then(|| progress::spawn(progress.clone(), total));
            let metrics = load::open(
                workload,
                schedule,
                load.max_in_flight,
                progress,
                cancel,
                run_start,
                live,
            )
            .await;
            progress::finish(bar).await;
            (metrics, Some(rate))
        }
        _ => {
            let total = scenario.iterations();
            let bar = options
                .progress
                .then(|| progress::spawn(progress.clone(), total));
            let metrics = load::closed(
                workload,
                total,
                load.concurrency,
                progress,
                cancel,
                run_start,
                live,
            )
            .await;
            progress::finish(bar).await;
            (metrics, None)
        }
    }
}
