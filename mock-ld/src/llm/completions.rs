//! `POST /v1/chat/completions`: waits out the plan's latency, then answers as OpenAI does,
//! whole or as an SSE stream of chunks timed by the plan.

use std::convert::Infallible;
use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lateness::Mark;
use super::profile::{Plan, Reply};
use super::sent::{timed_whole, with_plan_headers};
use super::simulator::Simulator;
use super::wire::{completion, ApiError, ChatRequest, Chunk, Ids, Usage, DONE_FRAME};
use crate::faults::{self, FaultKind};
use crate::AppState;

/// Filler output: one word per token. Cheap, and readable in a captured response.
const WORDS: [&str; 16] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "magna",
];

/// Fixes the simulated draw, like OpenAI's `seed` field, for clients that cannot set it.
const SEED_HEADER: &str = "x-mock-seed";

pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match respond(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let request = ChatRequest::parse(body)?;
    // The header is mock-ld's own override, so it wins over the body's `seed`.
    let seed = header_seed(headers)?.or(request.seed.map(|seed| seed as u64));
    let start = Instant::now();
    let mut drawn = state.llm.plan(&request, seed);
    if let Some(fault) = state.faults.on_model(&request.model) {
        fault.count_request();
        match fault.fault.kind {
            // In the model's real time, scaled as the rest of the plan is.
            FaultKind::LlmLatencySpike => {
                let ms = fault.fault.latency_ms.unwrap_or(0) as f64;
                let extra = super::profile::scaled(ms, drawn.time_scale);
                drawn.plan = drawn.plan.delayed(extra);
            }
            FaultKind::LlmTimeout => {
                faults::hold(&fault).await;
                return Err(ApiError::simulated(
                    StatusCode::GATEWAY_TIMEOUT,
                    &request.model,
                ));
            }
            _ => {
                return Ok(faults::refusal_with(&fault.fault, |status| {
                    ApiError::simulated(status, &request.model).into_response()
                }))
            }
        }
    }
    let ids = Ids {
        id: format!("chatcmpl-mock{}", drawn.number),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        model: request.model.clone(),
    };
    let llm = state.llm.clone();
    let response = match drawn.plan {
        Plan::Fail { status, after } => {
            pause_until(start + after, &state.shutdown).await?;
            let error = ApiError::simulated(status, &request.model).into_response();
            timed_whole(error, llm, start + after)
        }
        Plan::Reply(reply) if request.streams() => {
            let stream = TokenStream::new(
                ids,
                reply,
                request.include_usage(),
                start,
                (state.shutdown.clone(), llm),
            );
            sse_response(stream.into_frames())
        }
        Plan::Reply(reply) => {
            pause_until(start + reply.latency, &state.shutdown).await?;
            let usage = Usage::new(reply.prompt_tokens, reply.completion_tokens);
            let content = filler(0..reply.completion_tokens);
            let answer = Json(completion(&ids, &content, finish_reason(&reply), usage));
            timed_whole(answer.into_response(), llm, start + reply.latency)
        }
    };
    Ok(with_plan_headers(response, &drawn, request.streams()))
}

fn header_seed(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(SEED_HEADER) else {
        return Ok(None);
    };
    let seed = value.to_str().ok().and_then(|v| v.trim().parse().ok());
    seed.map(Some).ok_or_else(|| {
        ApiError::invalid_request("the X-Mock-Seed header must be an unsigned integer", None)
    })
}

/// Sleeps without holding a thread; a shutdown cuts the wait short, since a pending
/// response would otherwise hold graceful shutdown until its simulated latency ends.
async fn pause_until(deadline: Instant, shutdown: &CancellationToken) -> Result<(), ApiError> {
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => Ok(()),
        () = shutdown.cancelled() => Err(ApiError::shutting_down()),
    }
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.truncated {
        "length"
    } else {
        "stop"
    }
}

/// The words of tokens `range`, each after a space but the very first, so the chunks of a
/// stream join into the same text a non-streaming answer has.
fn filler(range: Range<u32>) -> String {
    let mut text = String::with_capacity(range.len() * 8);
    for i in range {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[i as usize % WORDS.len()]);
    }
    text
}

fn sse_response(
    frames: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Body::from_stream(frames).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One streamed completion: content chunks on the plan's schedule, the finish chunk at the
/// full latency, then the usage chunk if asked for, then `[DONE]`.
struct TokenStream {
    ids: Ids,
    reply: Reply,
    include_usage: bool,
    start: Instant,
    sent: u32,
    step: Step,
    shutdown: CancellationToken,
    /// Where the stream records how late its first token and `[DONE]` went out.
    llm: Arc<Simulator>,
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Tokens,
    Finish,
    Usage,
    Done,
    End,
}

impl TokenStream {
    fn new(
        ids: Ids,
        reply: Reply,
        include_usage: bool,
        start: Instant,
        (shutdown, llm): (CancellationToken, Arc<Simulator>),
    ) -> Self {
        TokenStream {
            ids,
            reply,
            include_usage,
            start,
            sent: 0,
            step: Step::Tokens,
            shutdown,
            llm,
        }
    }

    fn into_frames(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut stream| async move {
            let frame = stream.next_frame().await?;
            Some((Ok(frame), stream))
        })
    }

    /// Token 0 is due at the time to first token; the rest spread evenly from there to the
    /// full latency.
    fn due(&self, token: u32) -> Instant {
        let n = self.reply.completion_tokens;
        let first = self.start + self.reply.ttft;
        if token == 0 || n < 2 {
            return first;
        }
        let rest = self.reply.latency.saturating_sub(self.reply.ttft);
        first + rest.mul_f64(f64::from(token) / f64::from(n - 1))
    }

    /// The next frame, or `None` at the end (or on shutdown, which cuts the stream short).
    async fn next_frame(&mut self) -> Option<Bytes> {
        let with_usage = self.include_usage;
        match self.step {
            Step::Tokens => self.next_tokens().await,
            Step::Finish => {
                pause_until(self.start + self.reply.latency, &self.shutdown)
                    .await
                    .ok()?;
                self.step = if with_usage { Step::Usage } else { Step::Done };
                Some(Chunk::finish(&self.ids, finish_reason(&self.reply), with_usage).frame())
            }
            Step::Usage => {
                self.step = Step::Done;
                let usage = Usage::new(self.reply.prompt_tokens, self.reply.completion_tokens);
                Some(Chunk::usage(&self.ids, usage).frame())
            }
            Step::Done => {
                self.step = Step::End;
                // Recorded as the frame is handed to hyper, which polls for it right after
                // writing the one before.
                let planned = self.start + self.reply.latency;
                let lateness = self.llm.lateness();
                lateness.record(Mark::LastChunk, planned, Instant::now());
                Some(Bytes::from_static(DONE_FRAME))
            }
            Step::End => None,
        }
    }

    /// Waits for the next token, then sends it with every other token already due: a
    /// schedule finer than the timer's millisecond ticks coalesces instead of falling behind.
    async fn next_tokens(&mut self) -> Option<Bytes> {
        pause_until(self.due(self.sent), &self.shutdown)
            .await
            .ok()?;
        let now = Instant::now();
        let n = self.reply.completion_tokens;
        let mut end = self.sent + 1;
        while end < n && self.due(end) <= now {
            end += 1;
        }
        let text = filler(self.sent..end);
        let frame = Chunk::content(&self.ids, &text, self.sent == 0, self.include_usage).frame();
        if self.sent == 0 {
            let lateness = self.llm.lateness();
            lateness.record(Mark::FirstToken, self.due(0), Instant::now());
        }
        self.sent = end;
        if end == n {
            self.step = Step::Finish;
        }
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn filler_has_one_word_per_token_and_chunks_join_up() {
        assert_eq!(filler(0..3), "lorem ipsum dolor");
        assert_eq!(filler(0..40).split(' ').count(), 40);
        assert_eq!(filler(0..2) + &filler(2..5), filler(0..5));
    }

    #[test]
    fn tokens_are_due_from_the_first_token_time_to_the_full_latency() {
        let reply = Reply {
            latency: Duration::from_millis(150),
            ttft: Duration::from_millis(30),
            prompt_tokens: 1,
            completion_tokens: 5,
            truncated: false,
        };
        let stream = TokenStream::new(
            Ids {
                id: String::new(),
                created: 0,
                model: String::new(),
            },
            reply,
            false,
            Instant::now(),
            (CancellationToken::new(), Arc::new(Simulator::new(0))),
        );
        let offsets: Vec<u128> = (0..5)
            .map(|i| (stream.due(i) - stream.start).as_millis())
            .collect();
        assert_eq!(offsets, [30, 60, 90, 120, 150]);
    }
}
