//! `GET /all`, the streaming data source every SDK uses by default, and the live SSE body
//! that it and the FDv2 stream (`/sdk/stream`, [`super::fdv2::stream`]) share.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{admit, frames};
use crate::error::AppError;
use crate::faults::{Endpoint, EnvironmentFaults, FaultKind};
use crate::store::{ChangeFrames, Environment, Fdv2StreamCount};
use crate::AppState;

pub async fn all(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Stream).await?;
    tracing::debug!(project = %env.project, env = %env.key, "stream connected");
    let (snapshot, updates) = env.subscribe();
    let first = vec![snapshot.put_frame.clone()];
    Ok(sse_response(Live::new(env, first, updates, &FDV1, &state)))
}

/// How one kind of stream renders an environment's changes.
pub struct Protocol {
    /// The frames of one change.
    pub change: fn(&ChangeFrames) -> Bytes,
    /// A fresh start for a stream that fell so far behind that changes were dropped, and
    /// the receiver to go on with: it replaces everything the SDK had, as LaunchDarkly's
    /// own Relay does on reconnect.
    pub resync: fn(&Environment) -> (Vec<Bytes>, broadcast::Receiver<ChangeFrames>),
    /// What to send before the stream ends at shutdown.
    pub farewell: Option<fn() -> Bytes>,
    /// An event whose data is not JSON (the `streamMalformed` fault).
    pub malformed: fn() -> Bytes,
}

/// FDv1: `patch` and `delete` events, a `put` to resync, and no farewell (FDv1 has none).
const FDV1: Protocol = Protocol {
    change: |change| change.fdv1.clone(),
    resync: |env| {
        let (snapshot, updates) = env.subscribe();
        (vec![snapshot.put_frame.clone()], updates)
    },
    farewell: None,
    malformed: || Bytes::from_static(b"event: patch\ndata: {\"path\": \"/flags/\", \"data\": \n\n"),
};

/// One stream's state: frames to send first, then live changes.
pub struct Live {
    env: Arc<Environment>,
    pending: VecDeque<Bytes>,
    updates: broadcast::Receiver<ChangeFrames>,
    protocol: &'static Protocol,
    shutdown: CancellationToken,
    heartbeat: Duration,
    /// The environment's faults, changing when one of them is switched on or off.
    fault_changes: watch::Receiver<EnvironmentFaults>,
    /// The fault that stalls this stream (counted once), and whether it was sent its
    /// malformed event.
    stalled_by: Option<u64>,
    malformed_sent: bool,
    /// Keeps an FDv2 stream counted while it lives.
    _counted: Option<Fdv2StreamCount>,
}

impl Live {
    pub fn new(
        env: Arc<Environment>,
        first: Vec<Bytes>,
        updates: broadcast::Receiver<ChangeFrames>,
        protocol: &'static Protocol,
        state: &AppState,
    ) -> Self {
        Live {
            fault_changes: state.faults.watch_environment(&env.project, &env.key),
            env,
            pending: first.into(),
            updates,
            protocol,
            shutdown: state.shutdown.clone(),
            heartbeat: state.heartbeat,
            stalled_by: None,
            malformed_sent: false,
            _counted: None,
        }
    }

    /// Counts this stream among the environment's FDv2 streams while it lives.
    pub fn counted_as_fdv2(mut self) -> Self {
        self._counted = Some(self.env.count_fdv2_stream());
        self
    }

    /// What the environment's stream faults make of this stream now (each stream counted
    /// once per fault that ends, stalls or corrupts it).
    fn fault_action(&mut self) -> FaultAction {
        let fault = self
            .fault_changes
            .borrow_and_update()
            .iter()
            .find(|a| STREAM_FAULTS.contains(&a.fault.kind))
            .cloned();
        let Some(fault) = fault else {
            self.stalled_by = None;
            return FaultAction::None;
        };
        match fault.fault.kind {
            FaultKind::StreamStalled => {
                if self.stalled_by.replace(fault.id) != Some(fault.id) {
                    fault.count_request();
                }
                FaultAction::Stall
            }
            FaultKind::StreamMalformed if self.pending.is_empty() && !self.malformed_sent => {
                self.malformed_sent = true;
                fault.count_request();
                FaultAction::Send((self.protocol.malformed)())
            }
            FaultKind::StreamMalformed => FaultAction::None,
            // Dropped: a new stream gets its payload first, then ends.
            FaultKind::StreamDropped if !self.pending.is_empty() => FaultAction::None,
            _ => {
                fault.count_request();
                FaultAction::End
            }
        }
    }
}

/// The faults that act on open streams (refusals end them: the SDK's reconnect is refused).
const STREAM_FAULTS: &[FaultKind] = &[
    FaultKind::SdkUnavailable,
    FaultKind::StreamRefused,
    FaultKind::StreamDropped,
    FaultKind::StreamStalled,
    FaultKind::StreamMalformed,
];

enum FaultAction {
    None,
    End,
    /// Send nothing, not even heartbeats, until the fault is off.
    Stall,
    Send(Bytes),
}

/// A `200 text/event-stream` response streaming `live` (paced under `sdkThrottled`).
pub fn sse_response(live: Live) -> Response {
    let (faults, shutdown) = (live.fault_changes.clone(), live.shutdown.clone());
    let frames = super::throttle::paced(Box::pin(sse_frames(live)), faults, shutdown);
    let mut response = (StatusCode::OK, Body::from_stream(frames)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The frames of one stream: its first frames, then every change as it happens, a
/// heartbeat when quiet, and a clean end when mock-ld shuts down (an open stream would
/// otherwise hold graceful shutdown forever).
fn sse_frames(live: Live) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let heartbeat = live.heartbeat;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold((Some(live), ticker), |(live, mut ticker)| async move {
        let mut live = live?;
        loop {
            match live.fault_action() {
                FaultAction::None => {}
                FaultAction::End => return None,
                FaultAction::Send(frame) => return Some((Ok(frame), (Some(live), ticker))),
                FaultAction::Stall => {
                    tokio::select! {
                        () = live.shutdown.cancelled() => return None,
                        _ = live.fault_changes.changed() => continue,
                    }
                }
            }
            if let Some(frame) = live.pending.pop_front() {
                return Some((Ok(frame), (Some(live), ticker)));
            }
            let frame = tokio::select! {
                biased;
                () = live.shutdown.cancelled() => {
                    let farewell = live.protocol.farewell?;
                    return Some((Ok(farewell()), (None, ticker)));
                }
                _ = live.fault_changes.changed() => continue,
                next = live.updates.recv() => next_frame(&mut live, next)?,
                _ = ticker.tick() => Bytes::from_static(frames::HEARTBEAT),
            };
            return Some((Ok(frame), (Some(live), ticker)));
        }
    })
}

fn next_frame(live: &mut Live, next: Result<ChangeFrames, RecvError>) -> Option<Bytes> {
    match next {
        Ok(change) => Some((live.protocol.change)(&change)),
        Err(RecvError::Lagged(missed)) => {
            tracing::warn!(env = %live.env.key, missed, "slow stream resynchronized");
            let (first, fresh) = (live.protocol.resync)(&live.env);
            live.updates = fresh;
            live.pending = first.into();
            live.pending.pop_front()
        }
        Err(RecvError::Closed) => None,
    }
}
