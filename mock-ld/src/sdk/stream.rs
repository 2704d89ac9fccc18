//! `GET /all`: the streaming data source every SDK uses by default.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::{authorize, frames};
use crate::error::AppError;
use crate::store::Environment;
use crate::AppState;

pub async fn all(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let env = authorize(&state.store, &headers)?;
    tracing::debug!(project = %env.project, env = %env.key, "stream connected");
    let body = Body::from_stream(sse_frames(env, state.shutdown.clone(), state.heartbeat));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The frames of one stream: a `put`, then every change as it happens, a heartbeat when
/// quiet, and a clean end when mock-ld shuts down (an open stream would otherwise hold
/// graceful shutdown forever).
fn sse_frames(
    env: std::sync::Arc<Environment>,
    shutdown: CancellationToken,
    heartbeat: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let (snapshot, updates) = env.subscribe();
    let first = Some(snapshot.put_frame.clone());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (env, updates, first, ticker, shutdown),
        |(env, mut updates, first, mut ticker, shutdown)| async move {
            if let Some(put) = first {
                return Some((Ok(put), (env, updates, None, ticker, shutdown)));
            }
            let frame = tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                next = updates.recv() => next_frame(&env, &mut updates, next)?,
                _ = ticker.tick() => Bytes::from_static(frames::HEARTBEAT),
            };
            Some((Ok(frame), (env, updates, None, ticker, shutdown)))
        },
    )
}

/// A stream that fell so far behind that changes were dropped gets a fresh `put`, which
/// replaces everything it had (as LaunchDarkly's own Relay does on reconnect).
fn next_frame(
    env: &Environment,
    updates: &mut broadcast::Receiver<Bytes>,
    next: Result<Bytes, RecvError>,
) -> Option<Bytes> {
    match next {
        Ok(frame) => Some(frame),
        Err(RecvError::Lagged(missed)) => {
            tracing::warn!(env = %env.key, missed, "slow stream resynchronized with a put");
            let (snapshot, fresh) = env.subscribe();
            *updates = fresh;
            Some(snapshot.put_frame.clone())
        }
        Err(RecvError::Closed) => None,
    }
}
