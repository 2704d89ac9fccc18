//! The `sdkThrottled` fault: stream and polling bodies sent at the fault's byte rate, as
//! over a slow link. A body is cut into slices of a tenth of a second's bytes, each sent
//! when the link would have carried it; the rest of a frame waits in the frame itself (no
//! copy, and nothing more is read from the body meanwhile), so throttling buffers at most
//! the one frame the body already made. The pace follows the environment's faults as they
//! change: an open stream slows when the fault goes on and speeds up when it goes off, and
//! shutdown sends what is left at once, so the body ends as it would unthrottled.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::{EnvironmentFaults, FaultKind};
use crate::AppState;

/// Slices per second of throttled bytes: small enough that the bytes trickle in.
const SLICES_PER_SECOND: u64 = 10;

/// `body`, paced by the `sdkThrottled` fault of the environment `faults` watches, if any is
/// on (each body counted once per fault that slows it).
pub fn paced<S, E>(
    body: S,
    faults: watch::Receiver<EnvironmentFaults>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let pace = Pace {
        body,
        faults,
        shutdown,
        rest: Bytes::new(),
        link_free_at: None,
        counted_for: None,
    };
    futures::stream::unfold(pace, |mut pace| async move {
        let next = pace.next().await?;
        Some((next, pace))
    })
}

struct Pace<S> {
    body: S,
    faults: watch::Receiver<EnvironmentFaults>,
    shutdown: CancellationToken,
    /// What is left of the frame being sent.
    rest: Bytes,
    /// When the slow link has carried the last slice sent.
    link_free_at: Option<Instant>,
    /// The fault this body was counted against.
    counted_for: Option<u64>,
}

impl<S, E> Pace<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    async fn next(&mut self) -> Option<Result<Bytes, E>> {
        loop {
            if self.rest.is_empty() {
                match self.body.next().await? {
                    Ok(frame) => self.rest = frame,
                    Err(error) => return Some(Err(error)),
                }
                continue;
            }
            let Some(rate) = self.rate() else {
                self.link_free_at = None;
                return Some(Ok(std::mem::take(&mut self.rest)));
            };
            let len = (rate / SLICES_PER_SECOND).clamp(1, self.rest.len() as u64);
            let start = self
                .link_free_at
                .map_or_else(Instant::now, |at| at.max(Instant::now()));
            // Rounded up, so a body never arrives sooner than its size allows.
            let done = start + Duration::from_nanos((len * 1_000_000_000).div_ceil(rate));
            tokio::select! {
                () = tokio::time::sleep_until(done) => {
                    self.link_free_at = Some(done);
                    return Some(Ok(self.rest.split_to(len as usize)));
                }
                // The fault went off, or another came on: pace anew.
                Ok(()) = self.faults.changed() => {}
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    /// The rate of the environment's `sdkThrottled` fault now (none at shutdown).
    fn rate(&mut self) -> Option<u64> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let faults = self.faults.borrow_and_update();
        let fault = faults
            .iter()
            .find(|a| a.fault.kind == FaultKind::SdkThrottled)?;
        if self.counted_for.replace(fault.id) != Some(fault.id) {
            fault.count_request();
        }
        fault.fault.bytes_per_second
    }
}

/// Polling answers (`route_layer` over the polling routes), paced while their
/// environment's `sdkThrottled` fault is on. Looks the environment up only while some
/// fault is on.
pub async fn polling(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let env = if state.faults.any() {
        super::authorize(&state.store, request.headers()).ok()
    } else {
        None
    };
    let response = next.run(request).await;
    let Some(env) = env else { return response };
    let faults = state.faults.watch_environment(&env.project, &env.key);
    let throttled = faults
        .borrow()
        .iter()
        .any(|a| a.fault.kind == FaultKind::SdkThrottled);
    if !throttled || response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = paced(body.into_data_stream(), faults, state.shutdown.clone());
    Response::from_parts(parts, Body::from_stream(body))
}
