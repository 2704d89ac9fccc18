//! Faults on purpose: LaunchDarkly's SDK endpoints or the simulated provider misbehaving,
//! switched on and off through `/admin/faults` (behind the admin token like all of
//! `/admin`), so that any SDK or test, not only the harness, can see what users get.
//!
//! - [`spec`]: what a fault is and what it takes, checked with a message naming the field.
//! - [`registry`]: the faults on, their counts, the last ones off.
//! - [`refused`]: events refused per environment and the payload ids that tell a retry;
//!   [`journal`] keeps them in `--state DIR/refused.jsonl` across a restart.
//!
//! Where each kind acts: the SDK streams (FDv1 and FDv2 share one live stream body, which
//! watches its environment's faults), the polling endpoints, through [`sdk_gate`] here, the
//! events intake, through [`Faults::refuse_events`], and the simulated provider, through
//! [`Faults::on_model`]. This module knows none of them.
//!
//! `POST /admin/faults` a [`spec::FaultSpec`] → 201 and its record; `GET /admin/faults` →
//! `{active, ended, refusedEvents}` (and `journal` with `--state`); `DELETE /admin/faults/{id}` → its final record (404
//! when not on); `DELETE /admin/faults` → `{ended}`, every fault switched off.

pub mod journal;
pub mod refused;
pub mod registry;
pub mod spec;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

pub use registry::{Active, EnvironmentFaults, EventCount, Faults, Record, Refusal};
pub use spec::{Fault, FaultKind, FaultSpec, HOLD_LIMIT, RATE_LIMIT_RETRY_AFTER_SECS};

use crate::error::AppError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/faults", get(list).post(add).delete(clear))
        .route("/admin/faults/{id}", delete(remove))
}

async fn add(State(state): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let spec: FaultSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        AppError::bad_request(format!(
            "line {} column {}: field `{}`: {inner}",
            inner.line(),
            inner.column(),
            e.path()
        ))
    })?;
    let fault = spec.check().map_err(AppError::bad_request)?;
    if let spec::Scope::Environment {
        project,
        environment,
    } = &fault.scope
    {
        if state.store.environment(project, environment).is_none() {
            return Err(AppError::not_found(
                "environment",
                &format!("{project}/{environment}"),
            ));
        }
    }
    let record = state.faults.add(fault).map_err(|_| {
        AppError::new(
            StatusCode::CONFLICT,
            format!(
                "{} faults are on already, the most at once; switch one off first",
                registry::MAX_ACTIVE
            ),
        )
    })?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    let (active, ended) = state.faults.records();
    let mut answer = json!({
        "active": active,
        "ended": ended,
        "refusedEvents": state.faults.refused_events(),
    });
    if let Some(journal) = state.faults.journal_status() {
        answer["journal"] = json!(journal);
    }
    Json(answer)
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Record>, AppError> {
    let number = id
        .parse::<u64>()
        .map_err(|_| AppError::bad_request(format!("fault id {id:?} is not a number")))?;
    state
        .faults
        .remove(number)
        .await
        .map(Json)
        .ok_or_else(|| AppError::not_found("fault on", &id))
}

async fn clear(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "ended": state.faults.clear().await }))
}

/// What an SDK endpoint does under the faults of its environment.
pub enum Gate {
    /// Serve as usual.
    Open,
    /// Serve, after this long.
    Slow(std::time::Duration),
    /// Answer as this fault says ([`refusal`]).
    Refuse(Arc<Active>),
}

/// Which SDK endpoint asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Stream,
    Polling,
    Events,
}

impl Endpoint {
    /// The kinds that refuse this endpoint's requests outright.
    pub fn refusing(self) -> &'static [FaultKind] {
        match self {
            Self::Stream => &[FaultKind::SdkUnavailable, FaultKind::StreamRefused],
            Self::Polling => &[FaultKind::SdkUnavailable, FaultKind::PollingError],
            Self::Events => &[
                FaultKind::SdkUnavailable,
                FaultKind::EventsError,
                FaultKind::EventsClosed,
            ],
        }
    }
}

/// How `endpoint` of environment `env` answers now: refused, slowed, or as usual, the
/// request counted against the fault. Events payloads are refused through
/// [`Faults::refuse_events`], which counts the payload too.
pub fn sdk_gate(faults: &Faults, project: &str, env: &str, endpoint: Endpoint) -> Gate {
    if let Some(fault) = faults.in_environment(project, env, endpoint.refusing()) {
        fault.count_request();
        return Gate::Refuse(fault);
    }
    if let Some(fault) = faults.in_environment(project, env, &[FaultKind::SdkSlow]) {
        fault.count_request();
        return Gate::Slow(fault.fault.latency());
    }
    Gate::Open
}

/// A refusing fault's status, with a message naming it (SDKs log it).
pub fn fault_error(fault: &Fault) -> AppError {
    AppError::new(
        fault.answer_status(),
        format!("refused by mock-ld's {} fault", fault.kind.name()),
    )
}

/// [`fault_error`] as a response, with `Retry-After` when the fault has one.
pub fn refusal(fault: &Fault) -> Response {
    refusal_with(fault, |_| fault_error(fault).into_response())
}

/// A refusing fault's answer: `body` (given the fault's status, for bodies that word it, as
/// OpenAI's do) with that status, and `Retry-After` when the fault has one.
pub fn refusal_with(fault: &Fault, body: impl FnOnce(StatusCode) -> Response) -> Response {
    let status = fault.answer_status();
    let mut response = body(status);
    *response.status_mut() = status;
    if let Some(secs) = fault.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Waits while `fault` holds a request (at most [`HOLD_LIMIT`]).
pub async fn hold(fault: &Active) {
    tokio::select! {
        () = fault.off.cancelled() => {}
        () = tokio::time::sleep(HOLD_LIMIT) => {}
    }
}
