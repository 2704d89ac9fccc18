//! The endpoints LaunchDarkly's server-side SDKs call: the `/all` stream, the polling
//! endpoints, and FDv2's stream and poll ([`fdv2`]). Events intake lives in [`crate::events`].

pub mod fdv2;
pub mod frames;
pub mod poll;
pub mod stream;
pub mod throttle;

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};

use crate::error::AppError;
use crate::store::{Environment, Store};

/// The SDK key an SDK sent: raw in `Authorization` (all current SDKs), or with the
/// `api_key ` scheme that Relay and older SDKs use.
pub fn sdk_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    Some(value.strip_prefix("api_key ").unwrap_or(value).trim())
}

/// The environment selected by the request's SDK key, or 401 as LaunchDarkly answers.
pub fn authorize(store: &Store, headers: &HeaderMap) -> Result<Arc<Environment>, AppError> {
    let key = sdk_key(headers)
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "missing SDK key"))?;
    store
        .environment_by_sdk_key(key)
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "unknown SDK key"))
}

/// [`authorize`], then the environment's faults (`crate::faults`) for `endpoint`: a
/// refusal as its status and message, a slow answer after its latency.
pub async fn admit(
    state: &crate::AppState,
    headers: &HeaderMap,
    endpoint: crate::faults::Endpoint,
) -> Result<Arc<Environment>, AppError> {
    use crate::faults::{fault_error, sdk_gate, Gate};
    let env = authorize(&state.store, headers)?;
    match sdk_gate(&state.faults, &env.project, &env.key, endpoint) {
        Gate::Open => {}
        Gate::Slow(latency) => tokio::time::sleep(latency).await,
        Gate::Refuse(fault) => return Err(fault_error(&fault.fault)),
    }
    Ok(env)
}
