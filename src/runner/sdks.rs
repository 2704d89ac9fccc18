//! The SDK a run drives: the Rust SDK's clients in this process, or a pool of Python or
//! Node worker processes (`workers`). Everything the runner does differently for them is
//! here: starting, driving the load, flushing, closing, and how the results name the SDK.

use std::sync::Arc;

use launchdarkly_server_sdk::Client;

use super::endpoints::Endpoints;
use super::workers::feed::{self, Feeder};
use super::workers::install;
use super::workers::pool::{Pool, Sinks};
use super::workers::protocol::{Hello, LlmSettings, LoadSettings, SdkSettings, PROTOCOL_VERSION};
use super::{health, RunError};
use crate::results::SdkInfo;
use crate::scenario::{LoadModel, Scenario, SdkKind};

pub enum Sdks {
    Rust(Vec<Arc<Client>>),
    Workers(Pool),
}

impl Sdks {
    /// The Rust SDK's clients; none for workers (actions then measure no propagation).
    pub fn rust_clients(&self) -> Vec<Arc<Client>> {
        match self {
            Sdks::Rust(clients) => clients.clone(),
            Sdks::Workers(_) => Vec::new(),
        }
    }

    /// What the results say ran the load.
    pub fn info(&self, scenario: &Scenario) -> SdkInfo {
        match self {
            Sdks::Rust(_) => SdkInfo::rust(scenario.load.sdk_clients),
            Sdks::Workers(pool) => SdkInfo {
                name: pool.ready.sdk.clone(),
                version: pool.ready.sdk_version.clone(),
                ai_sdk_version: pool.ready.ai_sdk_version.clone(),
                runtime: pool.ready.runtime.clone(),
                workers: pool.workers(),
            },
        }
    }
}

impl Sdks {
    /// Asks every SDK to send its events now; a worker that cannot is logged, since the
    /// event check then says what did not arrive.
    pub async fn flush(&mut self) {
        match self {
            Sdks::Rust(clients) => clients.iter().for_each(|c| c.flush()),
            Sdks::Workers(pool) => {
                if let Err(e) = pool.flush().await {
                    tracing::warn!(error = %e, "a worker could not flush its events");
                }
            }
        }
    }

    /// Closes every SDK client (which sends what is left of its events).
    pub async fn close(self) {
        match self {
            // `close()` blocks while the event processor shuts down.
            Sdks::Rust(clients) => {
                let _ = tokio::task::spawn_blocking(move || clients.iter().for_each(|c| c.close()))
                    .await;
            }
            Sdks::Workers(pool) => {
                if let Err(e) = pool.close().await {
                    tracing::warn!(error = %e, "a worker did not close cleanly");
                }
            }
        }
    }
}

/// The worker processes the load runs in: none for the Rust SDK, in-process.
pub fn worker_processes(scenario: &Scenario) -> usize {
    match scenario.load.sdk {
        SdkKind::Rust => 0,
        _ => worker_count(scenario),
    }
}

/// Worker processes for the scenario's SDK: its `workers`, else one per core; never more
/// than the requests the load may have in flight, each worker holding at least one.
pub fn worker_count(scenario: &Scenario) -> usize {
    let load = &scenario.load;
    let in_flight = match load.model {
        LoadModel::Closed => load.concurrency,
        LoadModel::Open => load.max_in_flight,
    };
    load.workers
        .unwrap_or_else(health::cores)
        .min(in_flight)
        .max(1)
}

/// The SDK clients a run starts: the Rust SDK's clients, or one per worker process.
pub fn client_count(scenario: &Scenario) -> u64 {
    match scenario.load.sdk {
        SdkKind::Rust => scenario.load.sdk_clients as u64,
        _ => worker_count(scenario) as u64,
    }
}

/// Starts the worker pool of a Python or Node run.
pub async fn start_workers(
    scenario: &Scenario,
    endpoints: &Endpoints,
    llm_base: &str,
) -> Result<Pool, RunError> {
    let launch = install::launch(scenario.load.sdk).map_err(RunError::Scenario)?;
    let n = worker_count(scenario);
    let hellos = (0..n)
        .map(|worker| hello(scenario, endpoints, llm_base, worker, n))
        .collect();
    Pool::start(&launch, hellos, scenario.load.init_timeout)
        .await
        .map_err(|e| {
            RunError::Scenario(format!(
                "starting the {} workers: {e}",
                scenario.load.sdk.name()
            ))
        })
}

fn hello(
    scenario: &Scenario,
    endpoints: &Endpoints,
    llm_base: &str,
    worker: usize,
    workers: usize,
) -> Hello {
    let load = &scenario.load;
    // The run's bounds shared out: each worker holds its part, the first ones the remainder.
    let share = |total: usize| (total / workers + usize::from(worker < total % workers)).max(1);
    Hello {
        protocol: PROTOCOL_VERSION,
        worker,
        workers,
        sdk: SdkSettings {
            sdk_key: endpoints.sdk_key.clone(),
            base_uri: endpoints.sdk_url.clone(),
            stream_uri: endpoints
                .stream_url
                .clone()
                .unwrap_or_else(|| endpoints.sdk_url.clone()),
            events_uri: endpoints
                .events_url
                .clone()
                .unwrap_or_else(|| endpoints.sdk_url.clone()),
            send_events: load.events.enabled,
            event_capacity: load.events.capacity,
            flush_interval_ms: load.events.flush_interval.as_millis() as u64,
            init_timeout_ms: load.init_timeout.as_millis() as u64,
            serve_uninitialized: scenario.startup_fault_planned(),
        },
        llm: LlmSettings {
            base_url: llm_base.to_owned(),
            stream: scenario.llm.stream,
            api_key: std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "mock".into()),
        },
        steps: feed::step_specs(scenario),
        load: match load.model {
            LoadModel::Closed => LoadSettings::Closed {
                concurrency: share(load.concurrency),
            },
            LoadModel::Open => LoadSettings::Open {
                max_in_flight: share(load.max_in_flight),
            },
        },
        handler: load.handler.clone(),
    }
}

/// The feeder and sinks of a worker run.
pub fn worker_feed(
    scenario: &Scenario,
    sinks_base: (
        Arc<super::live::Live>,
        Arc<super::progress::Progress>,
        Arc<crate::served::ServedLog>,
    ),
) -> Result<(Arc<Feeder>, Sinks), RunError> {
    let population =
        crate::scenario::population::Generator::new(&scenario.population, scenario.seed)
            .map_err(RunError::Scenario)?;
    let schedule = match scenario.load.model {
        LoadModel::Open => super::schedule::Schedule::from_load(&scenario.load),
        LoadModel::Closed => None,
    };
    let (live, progress, served) = sinks_base;
    let served_slots = scenario
        .effective_steps()
        .iter()
        .map(|s| served.slot(&s.config))
        .collect();
    let sinks = Sinks {
        live,
        progress,
        served,
        served_slots,
        population: scenario.population.count,
    };
    Ok((Arc::new(Feeder::new(scenario, population, schedule)), sinks))
}

impl SdkInfo {
    /// The in-process Rust SDK and the harness's AI layer.
    pub fn rust(clients: usize) -> Self {
        SdkInfo {
            name: SdkKind::Rust.name().into(),
            version: crate::ld_client::SDK_VERSION.into(),
            ai_sdk_version: format!("harness-ai {}", crate::ai::AI_SDK_VERSION),
            runtime: "in-process".into(),
            workers: clients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(load: &str) -> Scenario {
        let text = format!(
            "name = \"w\"\n[[ai_configs]]\nkey = \"a\"\n[[ai_configs.variations]]\nkey = \"v\"\nmodel = {{ name = \"m\" }}\n[population]\ncount = 10\n[load]\nsdk = \"python\"\n{load}"
        );
        crate::scenario::parse(std::path::Path::new("w.toml"), &text).unwrap()
    }

    #[test]
    fn no_more_workers_than_requests_in_flight() {
        assert_eq!(worker_count(&scenario("workers = 4\nconcurrency = 2\n")), 2);
        assert_eq!(
            worker_count(&scenario("workers = 4\nconcurrency = 16\n")),
            4
        );
        let open =
            "model = \"open\"\nrate = 5\nduration = \"1s\"\nmax_in_flight = 3\nworkers = 8\n";
        assert_eq!(worker_count(&scenario(open)), 3);
    }
}
