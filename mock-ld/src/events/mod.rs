//! Events intake: `POST /bulk` and `POST /diagnostic`, and the admin views of what arrived.
//!
//! Every valid post gets 202. A 401, 403, 404 or 413 would make an SDK stop sending events
//! for the rest of its life, so there is no body-size limit and an unknown SDK key is
//! accepted (and counted under env `(unknown)`). Only a body that is not JSON gets 400,
//! which the SDKs treat as recoverable.

pub mod log;
pub mod wire;

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::AppError;
use crate::AppState;
use log::{EventLog, Outcome, Payload, Source};
use wire::{split_payload, Event};

const PAYLOAD_ID: &str = "x-launchdarkly-payload-id";

pub async fn bulk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    intake(state, headers, body).await
}

pub async fn diagnostic(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    intake(state, headers, body).await
}

async fn intake(state: AppState, headers: HeaderMap, body: Bytes) -> Response {
    let source = source_of(&state, &headers);
    let payload_id = headers
        .get(PAYLOAD_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let log = state.events.clone();
    // Decompressing and parsing a 10,000-event payload takes milliseconds; keep it off the
    // threads that drive the SDK streams.
    let result =
        tokio::task::spawn_blocking(move || ingest(&log, source, payload_id, gzipped, &body)).await;
    match result {
        Ok(Ok(outcome)) => {
            tracing::debug!(?outcome, "events payload");
            StatusCode::ACCEPTED.into_response()
        }
        Ok(Err(error)) => {
            tracing::warn!(%error.message, "events payload rejected");
            error.into_response()
        }
        Err(join) => {
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, join.to_string()).into_response()
        }
    }
}

fn source_of(state: &AppState, headers: &HeaderMap) -> Source {
    match crate::sdk::sdk_key(headers).and_then(|key| state.store.environment_by_sdk_key(key)) {
        Some(env) => Source {
            project: env.project.clone(),
            env: env.key.clone(),
        },
        None => Source {
            project: String::new(),
            env: "(unknown)".to_owned(),
        },
    }
}

/// Decompresses, parses and records one payload. Public for the intake benchmark.
pub fn ingest(
    log: &EventLog,
    source: Source,
    payload_id: Option<String>,
    gzipped: bool,
    body: &[u8],
) -> Result<Outcome, AppError> {
    let inflated;
    // Some clients compress without saying so; the gzip magic number tells.
    let json = if gzipped || body.starts_with(&[0x1f, 0x8b]) {
        inflated = gunzip(body).map_err(|e| {
            log.reject(source.clone());
            AppError::bad_request(format!("body is not valid gzip: {e}"))
        })?;
        &inflated[..]
    } else {
        body
    };
    let raw_events = split_payload(json).map_err(|e| {
        log.reject(source.clone());
        AppError::bad_request(format!("body is not a JSON event or array of events: {e}"))
    })?;
    let events = raw_events
        .into_iter()
        .map(|raw| (raw, Event::parse(raw)))
        .collect();
    Ok(log.record(
        Payload {
            source,
            payload_id,
            events,
        },
        now_millis(),
    ))
}

fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() * 8);
    flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
