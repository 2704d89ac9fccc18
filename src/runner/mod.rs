//! `aiconfig-harness run`: sets a scenario up through the REST API, starts SDK clients,
//! drives the load, applies timed actions, flushes and verifies events, and produces the
//! [`RunResults`], with their cost, checks and verdict.
//!
//! Modules: [`setup`] (REST API), [`call`] (one request: AI Config, LLM, tracker),
//! [`llm_call`] (OpenAI-compatible client; [`llm_plan`] reads the simulator's plan; [`retry`] a
//! step's `on_error`: which failures are retried, the waits and each call's seed), [`load`] (closed and open models),
//! [`schedule`] (open-model arrival times), [`actions`] (timed changes and propagation;
//! [`llm_action`] changes the simulated LLM), [`faults`] (mock-ld's faults on a timeline, start-up
//! faults before the SDK clients start), `sdk_start` (each client's wait for initialization,
//! and when one that timed out initialized), [`restarts`] (the embedded mock-ld killed and
//! started again; [`embedded`] holds it), [`live`] (the timeline while the load runs,
//! for thresholds that abort it), [`events`] (flush latency during and after the load,
//! completeness, delivery latency), [`health`] (the load generator's own lag and the
//! machine's pressure), [`simulated`] (the simulated provider's profiles and lateness),
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
pub mod schedule;
mod sdk_start;
mod sdks;
pub mod setup;
pub mod simulated;
pub mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::Client;
use mock_ld::isolated::IsolatedMockLd;
use tokio_util::sync::CancellationToken;

use crate::checks::targeting::Targeting;
use crate::checks::{self, RolloutData};
use crate::cost::{self, PriceTable};
use crate::ld_api::{ApiError, LdApi};
use crate::ld_client::{EventOptions, SdkOptions};
use crate::metrics::Metrics;
use crate::process;
use crate::results::harness::HarnessHealth;
use crate::results::verdict::{RunStatus, Verdict};
use crate::results::{self, LoadInfo, RunResults};
use crate::scenario::population::Generator;
use crate::scenario::{LoadModel, Scenario, SdkKind};
use crate::served::ServedLog;
use call::Workload;
use embedded::EmbeddedMock;
use mock_admin::MockAdmin;
use progress::Progress;
use schedule::Schedule;
use sdks::Sdks;

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

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub target: Target,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Stops the load early (Ctrl-C); results are then marked partial.
    pub cancel: CancellationToken,
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

/// The endpoints of one run, and the embedded mock-ld if there is one.
struct Endpoints {
    sdk_url: String,
    stream_url: Option<String>,
    events_url: Option<String>,
    api_url: String,
    sdk_key: String,
    api_token: String,
    /// mock-ld's admin API (targeting salts, SDK faults), when the SDK URL is a mock-ld.
    admin: Option<MockAdmin>,
    /// The admin API where events are verified, when the events URL is a mock-ld.
    events_admin: Option<MockAdmin>,
    /// The simulated provider's base URL (`…/v1`), unless `[llm] url` names another.
    llm_url: String,
    /// Its admin API (LLM profiles and faults): mock-ld's where the SDKs go, or with
    /// `[[restarts]]` the embedded provider's, which is not restarted.
    llm_admin: Option<MockAdmin>,
    embedded: Option<Arc<EmbeddedMock>>,
    _provider: Option<IsolatedMockLd>,
}

/// Runs a scenario, pricing its LLM calls with the shipped list prices under the
/// scenario's `[prices]`.
pub async fn run(scenario: &Scenario, options: RunOptions) -> Result<RunResults, RunError> {
    run_with_prices(scenario, options, PriceTable::defaults()).await
}

/// [`run`] with other prices (`--prices FILE`); the scenario's `[prices]` go over them.
pub async fn run_with_prices(
    scenario: &Scenario,
    options: RunOptions,
    prices: PriceTable,
) -> Result<RunResults, RunError> {
    restarts::Restarts::check(scenario, matches!(options.target, Target::Embedded))?;
    let endpoints = endpoints(scenario, &options.target).await?;
    let admins = faults::Admins {
        sdk: endpoints.admin.as_ref(),
        events: endpoints.events_admin.as_ref(),
        llm: endpoints.llm_admin.as_ref(),
    };
    let fault_plans = faults::plans(scenario, admins, sdks::client_count(scenario))?;
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
            Some((admin, simulated::Before::read(admin, scenario).await))
        }
        _ => None,
    };
    // Read back before the load: what was configured is what the rollout checks predict from.
    let targetings = read_targetings(&api, scenario, endpoints.admin.as_ref()).await;
    let llm_base = scenario
        .llm
        .url
        .clone()
        .unwrap_or_else(|| endpoints.llm_url.clone());
    // The parity phase's Rust side calls the same LLM endpoint.
    let llm_base_parity = llm_base.clone();
    // Before any fault goes on: what mock-ld refused in this environment until now.
    let refused_before = refused_events(scenario, &endpoints).await;
    // Start-up faults go on now, before the SDK clients start; the rest wait for the load.
    let fault_timeline =
        faults::Timeline::start(fault_plans, Instant::now(), options.cancel.clone());
    let (sdks, rust_starts) = match scenario.load.sdk {
        SdkKind::Rust => {
            let (clients, starts) = start_clients(scenario, &endpoints).await?;
            (Sdks::Rust(clients), Some(starts))
        }
        _ => (
            Sdks::Workers(sdks::start_workers(scenario, &endpoints, &llm_base).await?),
            None,
        ),
    };
    let clients = sdks.rust_clients();
    let sdk_info = sdks.info(scenario);

    let progress = Arc::new(Progress::default());
    let run_start = Instant::now();
    let cpu_start = process::cpu_time();
    let stalls_start = health::StallTotals::read();
    let probe = health::LagProbe::start();
    let served = Arc::new(served_log(scenario, &targetings, run_start));
    let actions = tokio::spawn(actions::run_actions(
        api.clone(),
        scenario.environment.clone(),
        scenario.actions.clone(),
        clients.clone(),
        endpoints.llm_admin.clone(),
        run_start,
        options.cancel.clone(),
    ));
    fault_timeline.load_started(run_start);
    let restarts = restarts::Restarts::start(
        scenario.restarts.clone(),
        restart_target(scenario, &endpoints),
        run_start,
        options.cancel.clone(),
    );
    let aborted = Arc::new(live::Aborted::default());
    let live = live::Live::new(run_start);
    watch_aborts(scenario, &live, &options.cancel, &aborted);
    let event_stats = event_stats(scenario, &endpoints);
    tracing::info!(scenario = %scenario.name, model = ?scenario.load.model, sdk = %sdk_info.describe(), "load started");
    let (mut metrics, target_rate, flushes, worker_failure, mut sdks) = match sdks {
        Sdks::Rust(clients) => {
            let population =
                Generator::new(&scenario.population, scenario.seed).map_err(RunError::Scenario)?;
            let workload = Arc::new(Workload::new(
                scenario,
                &clients,
                population,
                http.clone(),
                llm_base,
                served.clone(),
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
                progress.clone(),
                &options,
                run_start,
                live.clone(),
            )
            .await;
            let flushes = match sampler {
                Some(sampler) => Some(sampler.finish().await),
                None => None,
            };
            metrics
                .tracked_events
                .insert("$ld:ai:sdk:info".into(), setup_events);
            (metrics, target_rate, flushes, None, Sdks::Rust(clients))
        }
        Sdks::Workers(mut pool) => {
            let (feeder, sinks) =
                sdks::worker_feed(scenario, (live.clone(), progress.clone(), served.clone()))?;
            let target_rate = target_rate(scenario);
            let bar = options
                .progress
                .then(|| progress::spawn(progress.clone(), feeder.total()));
            let (metrics, failure) = pool.run(feeder, sinks, options.cancel.clone()).await;
            progress::finish(bar).await;
            // No samples during the load: the workers' SDKs flush on their own interval,
            // and the final flush below is the one sample.
            let flushes = event_stats.is_some().then(events::FlushSeries::default);
            (metrics, target_rate, flushes, failure, Sdks::Workers(pool))
        }
    };
    // Every recorder has handed its seconds over by now.
    metrics.timeline = live.seconds();
    tracing::info!(
        requests = metrics.requests,
        "load finished; flushing events"
    );
    let elapsed = run_start.elapsed();
    let cpu = process::cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start))
        .map(|own| own + Duration::from_secs_f64(metrics.worker_cpu_seconds));
    let simulated = match simulator {
        Some((admin, before)) => Some(before.finish(admin).await),
        None => None,
    };
    let pressure = stalls_start
        .zip(health::StallTotals::read())
        .map(|(start, end)| start.until(&end, elapsed));
    let harness = harness_health(
        scenario,
        &metrics,
        simulated.as_ref(),
        probe.stop().await,
        cpu,
        pressure,
        elapsed,
    );
    let status = match (aborted.by(), worker_failure) {
        (_, Some(failure)) => RunStatus::WorkerFailed {
            message: failure.to_string(),
        },
        (Some(threshold), None) => RunStatus::Aborted { threshold },
        (None, None) if options.cancel.is_cancelled() => RunStatus::Interrupted,
        (None, None) => RunStatus::Complete,
    };
    // Actions still pending when the load ends are not applied.
    options.cancel.cancel();
    let actions = actions.await.unwrap_or_default();
    let (mut fault_windows, fault_refused) = fault_timeline.finish().await;
    faults::add_served(&mut fault_windows, &metrics.timeline);
    let sdk_start = match (&rust_starts, &sdks) {
        (Some(starts), _) => Some(starts.summary(run_start)),
        (None, Sdks::Workers(pool)) => Some(pool.sdk_start(scenario)),
        (None, Sdks::Rust(_)) => None,
    };
    drop(rust_starts);
    // mock-ld is running again before the events are flushed and counted.
    let (restart_windows, restart_failed) = restarts.finish().await;

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
    let parity = match &mut sdks {
        Sdks::Workers(pool) if parity::sample(scenario) > 0 => {
            let inputs = parity::Inputs {
                scenario,
                endpoints: &endpoints,
                http: http.clone(),
                llm_base: llm_base_parity,
                targetings: &targetings,
                // The run's token was cancelled to end the actions: the phase is bounded
                // by its sample instead.
                cancel: CancellationToken::new(),
            };
            Some(match matches!(status, RunStatus::Complete) {
                true => parity::run(&inputs, pool).await,
                false => Err("the load did not complete".into()),
            })
        }
        _ => None,
    };
    sdks.close().await;
    if let Some(refused) = fault_refused {
        return Err(RunError::Input(refused));
    }
    // Nothing after it measured the system: an incomplete run (exit 4) that says why.
    if let Some(failed) = restart_failed {
        return Err(RunError::Scenario(failed));
    }
    let refused_events = match refused_before {
        Some(Ok(before)) => refused_events(scenario, &endpoints)
            .await
            .and_then(Result::ok)
            .map(|after| {
                let after = after.unwrap_or_else(|| {
                    results::faults::empty_refusals(&scenario.project, &scenario.environment)
                });
                results::faults::refused_since(before.as_ref(), &after)
            }),
        _ => None,
    };
    let figures = LoadFigures {
        elapsed,
        harness,
        target_rate,
        status,
        events,
        actions,
        simulated,
        sdk: sdk_info,
        faults: fault_windows,
        restarts: restart_windows,
        refused_events,
        sdk_start,
    };
    let prices = prices.with_scenario(&scenario.prices);
    let mut results = assemble(scenario, &metrics, figures, &prices);
    let rollouts = rollout_data(targetings, &served);
    results.checks = evaluate_checks(scenario, &results, &metrics, &rollouts, parity.as_ref())?;
    results.decide();
    Ok(results)
}

/// With `[[faults]]` or `[[restarts]]`, the events payloads mock-ld where events go has
/// refused so far in the scenario's environment (`Some(Ok(None))`: none yet); `None`
/// without either, or without mock-ld.
async fn refused_events(
    scenario: &Scenario,
    endpoints: &Endpoints,
) -> Option<Result<Option<mock_ld::faults::registry::RefusedEvents>, String>> {
    let admin = endpoints.events_admin.as_ref()?;
    if scenario.faults.is_empty() && scenario.restarts.is_empty() {
        return None;
    }
    Some(faults::refused_events(admin, &scenario.project, &scenario.environment).await)
}

/// What `[[restarts]]` restart and read: the embedded mock-ld, when there are any.
fn restart_target(scenario: &Scenario, endpoints: &Endpoints) -> Option<restarts::Target> {
    if scenario.restarts.is_empty() {
        return None;
    }
    let admin = endpoints.admin.clone()?;
    Some(restarts::Target {
        mock: endpoints.embedded.clone()?,
        stats: events::EventStats::new(&admin, &scenario.project, &scenario.environment),
        admin,
        project: scenario.project.clone(),
        environment: scenario.environment.clone(),
    })
}

/// mock-ld's event counts for the scenario's environment, when its events go to a mock-ld
/// and are on.
fn event_stats(scenario: &Scenario, endpoints: &Endpoints) -> Option<events::EventStats> {
    let admin = endpoints.events_admin.as_ref()?;
    scenario
        .load
        .events
        .enabled
        .then(|| events::EventStats::new(admin, &scenario.project, &scenario.environment))
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

/// What the load and its aftermath produced besides the metrics.
struct LoadFigures {
    elapsed: Duration,
    harness: HarnessHealth,
    target_rate: Option<f64>,
    status: RunStatus,
    events: Option<results::EventResults>,
    actions: Vec<results::ActionResults>,
    simulated: Option<results::simulated::SimulatedInfo>,
    sdk: results::SdkInfo,
    faults: Vec<results::faults::FaultWindow>,
    restarts: Vec<results::restarts::RestartWindow>,
    refused_events: Option<mock_ld::faults::registry::RefusedEvents>,
    sdk_start: Option<results::sdk_start::SdkStart>,
}

/// The results of a run, its checks still to be evaluated and its verdict decided.
fn assemble(
    scenario: &Scenario,
    metrics: &Metrics,
    figures: LoadFigures,
    prices: &PriceTable,
) -> RunResults {
    let LoadFigures {
        elapsed,
        harness,
        target_rate,
        status,
        events,
        actions,
        simulated,
        sdk,
        faults,
        restarts,
        refused_events,
        sdk_start,
    } = figures;
    let event_accounting = events
        .as_ref()
        .zip(refused_events.as_ref())
        .map(|(e, r)| results::faults::EventAccounting::of(e, r));
    RunResults {
        schema_version: results::SCHEMA_VERSION,
        scenario: collect::scenario_info(scenario),
        status,
        duration_ms: elapsed.as_secs_f64() * 1e3,
        load: LoadInfo {
            model: format!("{:?}", scenario.load.model).to_lowercase(),
            sdk_clients: scenario.load.sdk_clients,
            requests: metrics.requests,
            failed_requests: metrics.failed_requests,
            target_rate,
            achieved_rate: metrics.requests as f64 / elapsed.as_secs_f64().max(1e-9),
            sdk,
        },
        harness,
        requests_corrected: metrics.requests_corrected.summary(),
        requests_raw: metrics.requests_raw.summary(),
        configs: collect::config_results(metrics),
        context_kinds: metrics.context_kinds.clone(),
        timeline: collect::timeline(metrics),
        simulated,
        events,
        actions,
        faults,
        restarts,
        event_accounting,
        refused_events,
        sdk_start,
        cost: cost::compute(metrics, prices),
        checks: Vec::new(),
        baseline: None,
        verdict: Verdict::of(&[], None, &RunStatus::Complete, None),
    }
}

/// The load generator's own figures over the load, judged against the scenario's bounds.
fn harness_health(
    scenario: &Scenario,
    metrics: &Metrics,
    simulated: Option<&results::simulated::SimulatedInfo>,
    lag_probe: results::LatencySummary,
    cpu: Option<Duration>,
    pressure: Option<results::harness::Pressure>,
    elapsed: Duration,
) -> HarnessHealth {
    let cores = health::cores();
    let wall = elapsed.as_secs_f64().max(1e-9) * cores as f64;
    let mut harness = HarnessHealth {
        lag_probe,
        worker_lag_probe: (scenario.load.sdk != SdkKind::Rust)
            .then(|| metrics.worker_lag_probe.summary()),
        probe_interval_ms: health::PROBE_INTERVAL.as_secs_f64() * 1e3,
        schedule_lag: (scenario.load.model == LoadModel::Open)
            .then(|| metrics.schedule_lag.summary()),
        cpu_seconds: cpu.map(|c| c.as_secs_f64()),
        cpu_share: cpu.map(|c| c.as_secs_f64() / wall),
        cores,
        worker_processes: match scenario.load.sdk {
            SdkKind::Rust => 0,
            _ => sdks::worker_count(scenario),
        },
        pressure,
        bounds: scenario.load.overload.bounds(),
        overloaded: Vec::new(),
    };
    let lateness = simulated.map(|s| {
        [
            ("simulator first-token lateness", &s.lateness.first_token),
            ("simulator last-chunk lateness", &s.lateness.last_chunk),
        ]
    });
    health::judge(&mut harness, lateness.as_ref().map_or(&[], |l| &l[..]));
    harness
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

async fn endpoints(scenario: &Scenario, target: &Target) -> Result<Endpoints, RunError> {
    match target {
        Target::External {
            sdk_url,
            stream_url,
            events_url,
            api_url,
            sdk_key,
            api_token,
            admin_token,
        } => {
            let trim = |url: &String| url.trim_end_matches('/').to_owned();
            let sdk_url = trim(sdk_url);
            let events_url = events_url.as_ref().map(trim);
            let token = admin_token.as_deref();
            let admin = MockAdmin::probe(format!("{sdk_url}/admin"), token).await?;
            // Events are verified where they go.
            let events_admin = match &events_url {
                Some(url) => MockAdmin::probe(format!("{url}/admin"), token).await?,
                None => admin.clone(),
            };
            Ok(Endpoints {
                llm_url: format!("{sdk_url}/v1"),
                llm_admin: admin.clone(),
                admin,
                events_admin,
                sdk_url,
                stream_url: stream_url.as_ref().map(trim),
                events_url,
                api_url: api_url.trim_end_matches('/').to_owned(),
                sdk_key: sdk_key.clone(),
                api_token: api_token.clone(),
                embedded: None,
                _provider: None,
            })
        }
        Target::Embedded => embedded_endpoints(scenario).await,
    }
}

/// A closed mock-ld in-process; with `[[restarts]]`, restartable, and its simulated
/// provider apart in a second one that stays up (a provider is not down when LaunchDarkly
/// is).
async fn embedded_endpoints(scenario: &Scenario) -> Result<Endpoints, RunError> {
    // Closed even in-process: nothing else on the machine may change the run.
    let admin_token = uuid::Uuid::new_v4().to_string();
    // Raw events it keeps listing: none (nothing else can list them, its port is not
    // announced, and the load's events are read through their counts, which cover every
    // event; 100,000 listed cost about 100 MB), unless a parity phase will read its events
    // one by one (`parity::event_list`).
    let config = mock_ld::Config {
        llm_seed: scenario.seed,
        max_stored_events: parity::event_list(scenario),
        admin_token: Some(admin_token.clone()),
        ..mock_ld::Config::default()
    };
    let restartable = !scenario.restarts.is_empty();
    let mock = EmbeddedMock::start(config.clone(), restartable).await?;
    let base = format!("http://{}", mock.addr());
    let admin = MockAdmin::new(format!("{base}/admin"), Some(&admin_token))?;
    let (env, api_token) = mock
        .with(|m| {
            let env = m
                .store()
                .environment(&scenario.project, &scenario.environment);
            (env, m.config().api_token.clone())
        })
        .await
        .expect("just started");
    let env = env.ok_or_else(|| {
        RunError::Scenario(format!(
            "the embedded mock-ld has no environment {:?} in project {:?}",
            scenario.environment, scenario.project
        ))
    })?;
    let provider = match restartable {
        true => Some(IsolatedMockLd::start(config).await?),
        false => None,
    };
    let (llm_url, llm_admin) = match &provider {
        Some(p) => (
            format!("{}/v1", p.base_url()),
            MockAdmin::new(format!("{}/admin", p.base_url()), Some(&admin_token))?,
        ),
        None => (format!("{base}/v1"), admin.clone()),
    };
    Ok(Endpoints {
        sdk_url: base.clone(),
        stream_url: None,
        events_url: None,
        api_url: base,
        sdk_key: env.sdk_key.clone(),
        api_token,
        admin: Some(admin.clone()),
        events_admin: Some(admin),
        llm_url,
        llm_admin: Some(llm_admin),
        embedded: Some(Arc::new(mock)),
        _provider: provider,
    })
}

async fn start_clients(
    scenario: &Scenario,
    endpoints: &Endpoints,
) -> Result<(Vec<Arc<Client>>, sdk_start::Starts), RunError> {
    let options = SdkOptions {
        base_url: endpoints.sdk_url.clone(),
        stream_url: endpoints.stream_url.clone(),
        events_url: endpoints.events_url.clone(),
        sdk_key: endpoints.sdk_key.clone(),
        events: scenario.load.events.enabled.then_some(EventOptions {
            capacity: scenario.load.events.capacity,
            flush_interval: scenario.load.events.flush_interval,
        }),
    };
    Ok(sdk_start::start_rust(scenario, &options).await?)
}
