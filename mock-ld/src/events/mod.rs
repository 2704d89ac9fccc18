//! Events intake: `POST /bulk` and `POST /diagnostic`, and the admin views of what arrived.
//!
//! Every valid post gets 202. A 401, 403, 404 or 413 would make an SDK stop sending events
//! for the rest of its life, so an unknown SDK key is accepted (and counted under env
//! `(unknown)`), and the size bounds ([`crate::bounds`]: the body as sent, then inflated)
//! answer 400, which the SDKs treat as recoverable, like a body that is not JSON. Every
//! refusal is counted in `rejectedPayloads`. The bounds sit far above what an SDK sends.
//! The one exception is a fault switched on through `/admin/faults` ([`crate::faults`]):
//! its payloads are refused (429 or 5xx, never stored) and counted apart, with their events.

pub mod delivery;
pub mod journal;
pub mod log;
#[cfg(test)]
mod properties;
pub mod servable;
pub mod wire;

use std::io::Read;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::connection::Closer;
use crate::error::AppError;
use crate::faults::Refusal;
use crate::AppState;
use log::{EventLog, Incoming, Outcome, Payload, Source};
use serde_json::value::RawValue;
use servable::servable_raw;
use wire::split_payload;

const PAYLOAD_ID: &str = "x-launchdarkly-payload-id";

pub async fn bulk(State(state): State<AppState>, request: Request) -> Response {
    intake(state, request).await
}

pub async fn diagnostic(State(state): State<AppState>, request: Request) -> Response {
    intake(state, request).await
}

async fn intake(state: AppState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Absent when the router is served without mock-ld's listener (`oneshot` tests).
    let closer = parts.extensions.get::<ConnectInfo<Closer>>().map(|c| &c.0);
    let source = source_of(&state, &headers);
    let limit = state.bounds.max_event_body_bytes;
    let body = match read_body(&headers, body, limit).await {
        Ok(body) => body,
        Err(error) => {
            state.events.reject(source);
            tracing::warn!(%error.message, "events payload rejected");
            return error.into_response();
        }
    };
    let payload_id = headers
        .get(PAYLOAD_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let fault = under_fault(
        &state,
        &source,
        payload_id.as_deref(),
        body,
        gzipped,
        closer,
    );
    let body = match fault.await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let received_at = now_millis();
    let log = state.events.clone();
    let journal = state.event_journal.clone();
    let faults = state.faults.clone();
    let inflated_limit = state.bounds.max_inflated_bytes;
    // Decompressing and parsing a 10,000-event payload takes milliseconds; keep it off the
    // threads that drive the SDK streams.
    let result = tokio::task::spawn_blocking(move || {
        let received = Received {
            body: &body,
            gzipped,
            inflated_limit,
            received_at,
        };
        let id = payload_id.clone();
        let outcome = ingest_durably(&log, journal.as_deref(), source, payload_id, received);
        // A refused payload counts as sent again and taken once its events are in the log
        // (stored now, or by an earlier try: a duplicate), in the same closure: a kill
        // cannot come between (it waits for this closure), so the refusal ledger and the
        // event log agree.
        if outcome.is_ok() {
            faults.received(id.as_deref());
        }
        outcome
    })
    .await;
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

/// The answer of a fault on this environment's events, if one is on: refused (counted
/// with its events), the connection closed instead (`eventsClosed`), held first
/// (`eventsTimeout`), or the body back to go on (after `sdkSlow`).
async fn under_fault(
    state: &AppState,
    source: &Source,
    payload_id: Option<&str>,
    body: Bytes,
    gzipped: bool,
    closer: Option<&Closer>,
) -> Result<Bytes, Response> {
    use crate::faults::{hold, refusal, Endpoint, FaultKind};
    let faults = &state.faults;
    let env = (source.project.as_str(), source.env.as_str());
    if let Some(refused) = faults.refuse_events(env, Endpoint::Events.refusing(), payload_id) {
        let fault = refused.fault.clone();
        count_refused(state, refused, body, gzipped).await;
        if let (FaultKind::EventsClosed, Some(closer)) = (fault.fault.kind, closer) {
            // The answer below is never written: hyper's write fails, the connection goes.
            closer.close();
        }
        return Err(refusal(&fault.fault));
    }
    if let Some(slow) = faults.in_environment(env.0, env.1, &[FaultKind::SdkSlow]) {
        slow.count_request();
        tokio::time::sleep(slow.fault.latency()).await;
    }
    let Some(held) = faults.refuse_events(env, &[FaultKind::EventsTimeout], payload_id) else {
        return Ok(body);
    };
    // Counted now, as a client that gives up drops this future mid-hold; the body goes
    // with the count, so a held request keeps no payload while it waits.
    let fault = held.fault.clone();
    count_refused(state, held, body, gzipped).await;
    hold(&fault).await;
    Err(refusal(&fault.fault))
}

/// Adds a refused payload's events to its refusal (already counted as an attempt).
/// Counting inflates and splits the payload: on the blocking pool, like `ingest`, where
/// it goes on even if the client gives up meanwhile and drops this future.
async fn count_refused(state: &AppState, refused: Refusal, body: Bytes, gzipped: bool) {
    let faults = state.faults.clone();
    let limit = state.bounds.max_inflated_bytes;
    let counting = tokio::task::spawn_blocking(move || {
        let events = count_events(&body, gzipped, limit);
        refused.count_events(&faults, events);
    });
    let _ = counting.await;
}

/// How many events a payload holds, and how many are custom (none when it is not a JSON
/// event or array of them).
fn count_events(body: &[u8], gzipped: bool, inflated_limit: usize) -> crate::faults::EventCount {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    let inflated;
    let json = if gzipped || body.starts_with(&[0x1f, 0x8b]) {
        match gunzip(body, inflated_limit) {
            Ok(bytes) => {
                inflated = bytes;
                &inflated[..]
            }
            Err(_) => return crate::faults::EventCount::default(),
        }
    } else {
        body
    };
    let Ok(events) = split_payload(json) else {
        return crate::faults::EventCount::default();
    };
    let custom = events
        .iter()
        .filter(|raw| {
            serde_json::from_str::<Kind<'_>>(raw.get())
                .is_ok_and(|k| k.kind.as_deref() == Some("custom"))
        })
        .count();
    crate::faults::EventCount {
        all: events.len() as u64,
        custom: custom as u64,
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

/// A payload's body as it arrived.
pub struct Received<'a> {
    pub body: &'a [u8],
    /// Sent with `Content-Encoding: gzip`.
    pub gzipped: bool,
    /// Where decompression stops and the payload is refused.
    pub inflated_limit: usize,
    /// When the whole body had been read, ms since the epoch: events' delivery latency
    /// ends here, before mock-ld's own decompressing and parsing.
    pub received_at: u64,
}

/// Bytes of an oversized body read and thrown away, so that its client reads the 400
/// rather than a reset connection; past this the connection is dropped.
const DRAIN_LIMIT: u64 = 1 << 30;

/// The body, kept up to `limit` bytes: one that says or turns out to be larger is refused,
/// its rest read and discarded (up to [`DRAIN_LIMIT`]) without being buffered.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, AppError> {
    let limit = limit as u64;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut keep = declared.is_none_or(|n| n <= limit);
    let capacity = if keep { declared.unwrap_or(0) } else { 0 };
    let mut buffer = BytesMut::with_capacity(capacity as usize);
    let mut read = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::bad_request(format!("the events body could not be read: {e}"))
        })?;
        read += chunk.len() as u64;
        if read > limit && keep {
            keep = false;
            buffer = BytesMut::new();
        }
        if keep {
            buffer.extend_from_slice(&chunk);
        } else if read > DRAIN_LIMIT {
            break;
        }
    }
    if !keep {
        return Err(AppError::bad_request(format!(
            "the events body is larger than {limit} bytes (--max-event-body-bytes)"
        )));
    }
    Ok(buffer.freeze())
}

/// Decompresses, parses and records one payload. Public for the intake benchmark.
pub fn ingest(
    log: &EventLog,
    source: Source,
    payload_id: Option<String>,
    received: Received<'_>,
) -> Result<Outcome, AppError> {
    ingest_durably(log, None, source, payload_id, received)
}

/// [`ingest`], then the stored payload appended to `journal` (`--state`) before it is
/// acknowledged.
fn ingest_durably(
    log: &EventLog,
    journal: Option<&journal::EventJournal>,
    source: Source,
    payload_id: Option<String>,
    received: Received<'_>,
) -> Result<Outcome, AppError> {
    let refuse = |message: String| {
        log.reject(source.clone());
        AppError::bad_request(message)
    };
    let inflated;
    // Some clients compress without saying so; the gzip magic number tells.
    let json = if received.gzipped || received.body.starts_with(&[0x1f, 0x8b]) {
        inflated = gunzip(received.body, received.inflated_limit).map_err(refuse)?;
        &inflated[..]
    } else {
        received.body
    };
    let at = received.received_at;
    let outcome = record_json(log, source.clone(), payload_id.clone(), json, at).map_err(refuse)?;
    if let (Some(journal), Outcome::Stored { .. }) = (journal, &outcome) {
        journal.append(&source, payload_id.as_deref(), at, json);
    }
    Ok(outcome)
}

/// Parses a payload's JSON (inflated) and records it: the intake's and the journal's replay.
fn record_json(
    log: &EventLog,
    source: Source,
    payload_id: Option<String>,
    json: &[u8],
    received_at: u64,
) -> Result<Outcome, String> {
    let raw_events = split_payload(json)
        .map_err(|e| format!("body is not a JSON event or array of events: {e}"))?;
    // Rewritten events (see `servable`) live here, beside the body the others borrow from.
    let rewritten: Vec<Option<Box<RawValue>>> =
        raw_events.iter().map(|raw| servable_raw(raw)).collect();
    let events = raw_events
        .iter()
        .zip(&rewritten)
        .map(|(raw, fixed)| Incoming::parse(fixed.as_deref().unwrap_or(raw)))
        .collect();
    Ok(log.record(
        Payload {
            source,
            payload_id,
            events,
        },
        received_at,
    ))
}

/// The inflated body, decompressed as a stream that stops one byte past `limit`: a gzip
/// bomb costs at most `limit` bytes of memory, never its expanded size.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(8).min(limit));
    let mut decoder =
        flate2::read::MultiGzDecoder::new(body).take((limit as u64).saturating_add(1));
    decoder
        .read_to_end(&mut out)
        .map_err(|e| format!("body is not valid gzip: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "the events body inflates to more than {limit} bytes (--max-inflated-bytes)"
        ));
    }
    Ok(out)
}

pub use crate::clock::now_millis;
