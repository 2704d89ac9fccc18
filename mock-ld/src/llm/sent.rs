//! When an answer actually leaves the simulator: the plan told in response headers, and a
//! body that records its lateness at the moment hyper takes its bytes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

use super::lateness::Mark;
use super::profile::Plan;
use super::simulator::{Drawn, Simulator};

/// Planned time from the request's arrival to its last chunk (a whole or error answer: to
/// the answer), in milliseconds as scheduled, that is after the time scale.
pub const PLAN_LATENCY_HEADER: &str = "x-mock-plan-latency-ms";
/// A streamed reply's planned time to its first content chunk, as scheduled.
pub const PLAN_TTFT_HEADER: &str = "x-mock-plan-ttft-ms";
/// The profile's `timeScale` the plan's waits were multiplied by: the real-time plan is
/// the scheduled one divided by it.
pub const TIME_SCALE_HEADER: &str = "x-mock-time-scale";

/// Tells the client the request's plan.
pub fn with_plan_headers(mut response: Response, drawn: &Drawn, streamed: bool) -> Response {
    let (latency, ttft) = match drawn.plan {
        Plan::Reply(reply) => (reply.latency, streamed.then_some(reply.ttft)),
        Plan::Fail { after, .. } => (after, None),
    };
    let headers = response.headers_mut();
    headers.insert(PLAN_LATENCY_HEADER, millis(latency));
    if let Some(ttft) = ttft {
        headers.insert(PLAN_TTFT_HEADER, millis(ttft));
    }
    let scale = HeaderValue::from_str(&drawn.time_scale.to_string())
        .expect("a number is a valid header value");
    headers.insert(TIME_SCALE_HEADER, scale);
    response
}

/// To the microsecond, as the waits are scheduled.
fn millis(duration: Duration) -> HeaderValue {
    let text = format!("{:.3}", duration.as_secs_f64() * 1e3);
    HeaderValue::from_str(&text).expect("a number is a valid header value")
}

/// A whole answer (reply or error) whose lateness, against `planned`, is recorded as both
/// its first token and its last chunk when hyper first takes data from its body: after
/// the head is written, as close to the socket as the simulator sees.
pub fn timed_whole(response: Response, llm: Arc<Simulator>, planned: Instant) -> Response {
    let (parts, body) = response.into_parts();
    let body = SentAt {
        inner: body,
        on_sent: Some((llm, planned)),
    };
    Response::from_parts(parts, Body::new(body))
}

struct SentAt {
    inner: Body,
    on_sent: Option<(Arc<Simulator>, Instant)>,
}

impl http_body::Body for SentAt {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            if let Some((llm, planned)) = self.on_sent.take() {
                let sent = Instant::now();
                llm.lateness().record(Mark::FirstToken, planned, sent);
                llm.lateness().record(Mark::LastChunk, planned, sent);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    // Kept, so a whole answer still goes with its Content-Length.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
