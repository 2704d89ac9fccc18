//! mock-ld: a local LaunchDarkly that the real server-side SDKs accept unchanged.
//!
//! Module map:
//! - [`model`]: flags and segments in canonical wire form.
//! - [`store`]: projects, environments, versions, and the broadcast of changes to streams.
//! - [`sdk`]: what SDKs call for data: the `/all` stream and the polling endpoints.
//! - [`events`]: `/bulk` and `/diagnostic` intake, typed records, counts, delivery latency.
//! - [`hdr`]: HDR histograms as JSON carries them (V2-deflate, base64), shared with the harness.
//! - [`admin`]: `/admin`, the control API for tests and scripts.
//! - [`faults`]: faults on purpose (`/admin/faults`): SDK endpoints or the provider misbehaving.
//! - [`datafile`]: seed data in the SDK file-data-source format.
//! - [`api`]: `/api/v2`, LaunchDarkly's REST API for AI Configs, targeting and segments, with
//!   tokens and roles and the audit log.
//! - [`state`]: durable state on disk (`--state`): snapshot and journal files.
//! - [`llm`]: a simulated OpenAI-compatible LLM provider (`/v1/chat/completions`).
//! - [`logging`]: the binaries' log setup (`RUST_LOG`, `NO_COLOR`).
//! - [`bounds`]: every byte bound on what mock-ld takes in and keeps.
//! - [`clock`]: wall-clock milliseconds, as events and faults record them.
//! - [`connection`]: accepted connections a handler can close without answering.
//! - [`process`]: process settings at start (transparent huge pages off, the open-file limit
//!   raised), for mock-ld's binary and the harness's.
//!
//! Embed it with [`MockLd::start`] (on the caller's runtime) or [`isolated::IsolatedMockLd`]
//! (on a runtime of its own, beside a load generator); the `mock-ld` binary is a thin
//! command line around it.

pub mod admin;
pub mod api;
pub mod bounds;
pub mod clock;
pub mod connection;
pub mod datafile;
pub mod error;
pub mod events;
pub mod faults;
pub mod hdr;
pub mod isolated;
pub mod llm;
pub mod logging;
pub mod model;
pub mod process;
#[cfg(test)]
mod properties;
pub mod sdk;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use bounds::Bounds;
use error::AppError;
use events::log::EventLog;
use store::Store;

/// Connect bursts of hundreds of SDKs overflow tokio's default backlog of 128 and stall
/// for a second; LaunchDarkly-scale tests need more.
const LISTEN_BACKLOG: u32 = 4096;

/// How mock-ld starts.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// SDK key of the default project's `test` environment.
    pub sdk_key: String,
    /// Admin token of the REST API.
    pub api_token: String,
    /// A roles file (JSON or YAML) defining more REST API tokens and what they may do.
    pub roles: Option<PathBuf>,
    /// Where every acknowledged change is made durable; memory only when `None`.
    pub state_dir: Option<PathBuf>,
    /// Seed data files, each loaded into an environment of the default project, on top of
    /// any recovered state.
    pub data: Vec<DataSpec>,
    /// Interval between heartbeat comments on idle streams.
    pub heartbeat: Duration,
    /// Whether `/sdk/stream` and `/sdk/poll` serve FDv2; when off they tell SDKs to fall
    /// back to FDv1 (`X-LD-FD-Fallback: true`).
    pub fdv2: bool,
    /// Seed of the simulated LLM provider's draws.
    pub llm_seed: u64,
    /// How many received events `/admin/events` keeps listing (counts cover all).
    pub max_stored_events: usize,
    /// The byte bounds on bodies, stored events and the audit log.
    pub bounds: Bounds,
    /// When set, `/admin` (the control API) needs it in `Authorization`.
    pub admin_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sdk_key: "sdk-default-test".to_owned(),
            api_token: "api-default-admin".to_owned(),
            roles: None,
            state_dir: None,
            data: Vec::new(),
            heartbeat: Duration::from_secs(60),
            fdv2: true,
            llm_seed: 0,
            max_stored_events: events::log::DEFAULT_CAPACITY,
            bounds: Bounds::default(),
            admin_token: None,
        }
    }
}

/// A seed data file and the environment (of the default project) it loads into.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub env: String,
    pub path: PathBuf,
}

impl std::str::FromStr for DataSpec {
    type Err = std::convert::Infallible;

    /// `FILE` loads into `test`; `ENV=FILE` into `ENV`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.split_once('=') {
            Some((env, path)) if !env.is_empty() && !env.contains(['/', '.']) => DataSpec {
                env: env.to_owned(),
                path: path.into(),
            },
            _ => DataSpec {
                env: "test".to_owned(),
                path: s.into(),
            },
        })
    }
}

/// Why mock-ld could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Data(#[from] datafile::DataFileError),
    #[error("--roles {0}")]
    Roles(datafile::DataFileError),
    #[error("--state: {0}")]
    State(#[from] state::StateError),
    #[error("cannot start its own tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error("--data names environment {0:?}, which the default project does not have (it has test and production)")]
    UnknownEnvironment(String),
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub events: Arc<EventLog>,
    pub shutdown: CancellationToken,
    pub heartbeat: Duration,
    /// `--fdv2`: whether FDv2 is served.
    pub fdv2: bool,
    pub llm: Arc<llm::Simulator>,
    /// The faults switched on through `/admin/faults`.
    pub faults: Arc<faults::Faults>,
    /// `--state`: where received events are made durable.
    pub event_journal: Option<Arc<events::journal::EventJournal>>,
    pub api: Arc<api::Api>,
    pub bounds: Bounds,
    /// `--admin-token`: what `/admin` needs, when set.
    pub admin_token: Option<Arc<str>>,
}

/// Every route mock-ld serves.
pub fn router(state: AppState) -> Router {
    let max_body = state.bounds.max_api_body_bytes;
    let admin_token = state.admin_token.clone();
    // Every route here, and any added to these routers, reads its body within the bound.
    let bounded = Router::new()
        .merge(admin::routes())
        .merge(faults::routes())
        .merge(llm::routes())
        .merge(api::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(move |response: Response| {
            std::future::ready(too_large_as_json(response, max_body))
        }))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                refuse_declared_too_large(max_body, request, next)
            },
        ))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                admin::guard(admin_token.clone(), request, next)
            },
        ));
    // Polling answers are paced under `sdkThrottled` here; streams pace themselves, as the
    // fault may come on while they are open.
    let polling = Router::new()
        .route("/sdk/latest-all", get(sdk::poll::latest_all))
        .route("/sdk/poll", get(sdk::fdv2::poll::poll))
        .route("/sdk/latest-flags", get(sdk::poll::latest_flags))
        .route("/sdk/latest-flags/{key}", get(sdk::poll::latest_flag))
        .route("/sdk/latest-segments", get(sdk::poll::latest_segments))
        .route("/sdk/latest-segments/{key}", get(sdk::poll::latest_segment))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sdk::throttle::polling,
        ));
    Router::new()
        .route("/all", get(sdk::stream::all))
        .route("/sdk/stream", get(sdk::fdv2::stream::stream))
        .merge(polling)
        // The intake reads its own body within its own bounds, and never answers 413,
        // which would stop an SDK's events for good (see `events`).
        .route("/bulk", post(events::bulk))
        .route("/diagnostic", post(events::diagnostic))
        .merge(bounded)
        .with_state(state)
}

/// Bytes of an oversized REST or admin body read and thrown away before the 413, so that
/// its client reads the answer rather than a broken pipe (a 2 MiB `PUT` lost that race on a
/// busy machine); past this the connection is dropped.
const DRAIN_LIMIT: usize = 64 << 20;

/// A body whose `Content-Length` is past the bound is refused before any handler: read to
/// its end (up to [`DRAIN_LIMIT`]) without being kept, then answered 413. A body without a
/// length is cut off by `DefaultBodyLimit` where it crosses the bound.
async fn refuse_declared_too_large(
    max_body: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_none_or(|n| n <= max_body as u64) {
        return next.run(request).await;
    }
    let mut chunks = request.into_body().into_data_stream();
    let mut read = 0;
    while let Some(Ok(chunk)) = futures::StreamExt::next(&mut chunks).await {
        read += chunk.len();
        if read > DRAIN_LIMIT {
            break;
        }
    }
    too_large_as_json(StatusCode::PAYLOAD_TOO_LARGE.into_response(), max_body)
}

/// axum's 413 for a body past the bound, as a `{code, message}` body.
fn too_large_as_json(response: Response, max_body: usize) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    let message =
        format!("the request body is larger than {max_body} bytes (--max-api-body-bytes)");
    AppError::new(StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
}

/// Entry point for embedding mock-ld.
pub struct MockLd;

impl MockLd {
    /// Recovers durable state, loads the seed data, binds `config.listen` and serves until
    /// the handle shuts down.
    pub async fn start(config: Config) -> Result<MockLdHandle, StartError> {
        let store = Arc::new(Store::with_default_project(&config.sdk_key));
        let tokens = api::Tokens::load(&config.api_token, config.roles.as_deref())
            .map_err(StartError::Roles)?;
        let api = open_api(store.clone(), tokens, &config)?;
        let listener = bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let events = Arc::new(
            EventLog::with_limits(
                config.max_stored_events,
                config.bounds.max_stored_event_bytes,
            )
            .with_max_stat_keys(config.bounds.max_stat_keys),
        );
        let event_journal = match &config.state_dir {
            Some(dir) => Some(Arc::new(events::journal::EventJournal::open(
                dir,
                config.bounds.max_event_journal_bytes as u64,
                &events,
            )?)),
            None => None,
        };
        let faults = match &config.state_dir {
            Some(dir) => Arc::new(faults::Faults::durable(
                dir,
                config.bounds.max_event_journal_bytes as u64,
            )?),
            None => Arc::default(),
        };
        let state = AppState {
            store,
            events,
            event_journal,
            shutdown: CancellationToken::new(),
            heartbeat: config.heartbeat,
            fdv2: config.fdv2,
            llm: Arc::new(
                llm::Simulator::new(config.llm_seed).with_max_models(config.bounds.max_stat_keys),
            ),
            faults,
            api,
            bounds: config.bounds,
            admin_token: config.admin_token.as_deref().map(Arc::from),
        };
        let task = tokio::spawn(serve(
            listener,
            router(state.clone()),
            state.shutdown.clone(),
        ));
        if config.state_dir.is_some() {
            let compaction = api::compact_when_due(state.api.clone(), state.shutdown.clone());
            tokio::spawn(compaction);
        }
        tracing::info!(%addr, "mock-ld listening");
        Ok(MockLdHandle {
            addr,
            config,
            state,
            task: Some(task),
        })
    }
}

/// The REST API over `store`: recovered from `--state` if given, then seeded with `--data`,
/// then journaling (see [`api::Api::recover`] for the order).
fn open_api(
    store: Arc<Store>,
    tokens: api::Tokens,
    config: &Config,
) -> Result<Arc<api::Api>, StartError> {
    let mut api = api::Api::new(store.clone(), tokens, config.bounds.max_audit_bytes);
    let state_dir = config
        .state_dir
        .as_deref()
        .map(|dir| api.recover(dir, &config.sdk_key))
        .transpose()?;
    load_data(&api, &config.data)?;
    if let Some(dir) = state_dir {
        api.start_journal(dir)?;
    }
    Ok(Arc::new(api))
}

fn load_data(api: &api::Api, data: &[DataSpec]) -> Result<(), StartError> {
    for spec in data {
        let env = api
            .store()
            .environment("default", &spec.env)
            .ok_or_else(|| StartError::UnknownEnvironment(spec.env.clone()))?;
        let (flags, segments) = datafile::load(&spec.path)?.into_items();
        tracing::info!(file = %spec.path.display(), env = %spec.env, flags = flags.len(), segments = segments.len(), "seed data loaded");
        let ai_configs = api::adopt_seeded_ai_configs(api, "default", &flags);
        tracing::debug!(ai_configs, "seeded AI Config flags listed as AI Configs");
        for flag in flags {
            env.upsert_flag(flag);
        }
        for segment in segments {
            env.upsert_segment(segment);
        }
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish. Streams watch the same token and end themselves.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    // A make-service: serving the bare Router would clone its whole route table into every
    // connection, tripling the memory of each open SDK stream. Each request carries its
    // connection's `Closer` (the `eventsClosed` fault cuts it).
    let listener = connection::Listener(listener);
    let app = app.into_make_service_with_connect_info::<connection::Closer>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "mock-ld server failed");
    }
}

/// A running mock-ld. Dropping it shuts the server down.
pub struct MockLdHandle {
    addr: SocketAddr,
    config: Config,
    state: AppState,
    task: Option<JoinHandle<()>>,
}

impl MockLdHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, the one base URL for streaming, polling and events.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.state.store
    }

    pub fn events(&self) -> &Arc<EventLog> {
        &self.state.events
    }

    /// The REST API: its tokens, and durable state.
    pub fn api(&self) -> &Arc<api::Api> {
        &self.state.api
    }

    /// The simulated LLM provider served at `/v1`.
    pub fn llm(&self) -> &Arc<llm::Simulator> {
        &self.state.llm
    }

    /// Ends every stream, waits for the server to stop and, with durable state, writes a
    /// snapshot so the next start has no journal to replay.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if self.config.state_dir.is_some() {
            api::write_snapshot(self.state.api.clone()).await;
        }
    }
}

impl Drop for MockLdHandle {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_specs_name_an_environment_or_default_to_test() {
        let spec: DataSpec = "seed.yaml".parse().unwrap();
        assert_eq!(
            spec,
            DataSpec {
                env: "test".into(),
                path: "seed.yaml".into()
            }
        );
        let spec: DataSpec = "production=dir/seed.json".parse().unwrap();
        assert_eq!(
            spec,
            DataSpec {
                env: "production".into(),
                path: "dir/seed.json".into()
            }
        );
        let spec: DataSpec = "./a=b.json".parse().unwrap();
        assert_eq!(spec.env, "test");
    }
}
