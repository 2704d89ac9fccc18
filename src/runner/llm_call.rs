//! Calling an OpenAI-compatible chat completions endpoint the way an application would,
//! with reqwest, measuring time to first token on streamed responses.
//!
//! A streamed answer is read as server-sent events by `sse-stream` (the WHATWG framing: LF,
//! CRLF or CR line ends, `:` comments, `data:` with or without its space, several `data:`
//! lines joined by `\n`), so any OpenAI-compatible provider `[llm] url` names is read as
//! an application's SSE client would read it.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use sse_stream::SseByteStream;

use super::llm_plan::Planned;

/// The most one streamed answer may send without completing an event (comments and partial
/// lines included). Past it the call fails, so a provider that sends an endless line cannot
/// grow the harness's memory: a stream holds at most this much plus one network read.
/// OpenAI's chunks are well under a kilobyte.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// What one LLM call took and returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmOutcome {
    pub duration: Duration,
    /// Streamed calls only: time until the first content arrived.
    pub time_to_first_token: Option<Duration>,
    pub input_tokens: u64,
    /// Of the input tokens, those the provider served from its prompt cache.
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    /// `None` on success; the status or transport error otherwise.
    pub error: Option<String>,
    /// What mock-ld's simulator planned for the call; none from another provider.
    pub plan: Option<Planned>,
    /// The HTTP status of an answer that was not a success; none for a transport error or
    /// a stream that failed after its 200.
    pub status: Option<u16>,
    /// Such an answer's `Retry-After` (seconds, or an HTTP date: the time until it).
    pub retry_after: Option<Duration>,
}

impl LlmOutcome {
    /// Whether an application retries this failure: 429, 5xx, a timeout or a transport
    /// or stream error; another 4xx is the request's own fault and would fail again.
    pub fn retryable(&self) -> bool {
        self.error.is_some() && self.status.is_none_or(|s| s == 429 || s >= 500)
    }
}

/// A chat request: the model and the interpolated messages.
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Value,
    pub stream: bool,
    /// The request's identity, sent as `X-Mock-Seed`: mock-ld's simulator draws the reply's
    /// latency, tokens and failure from it, so the same request gets the same reply in every
    /// run whatever the order of arrival. Other providers ignore the header.
    pub seed: u64,
}

/// The header mock-ld's simulated provider keys its draws by.
pub const SEED_HEADER: &str = "x-mock-seed";

#[derive(Default, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    /// OpenAI's `usage.prompt_tokens_details.cached_tokens`.
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    usage: Option<Usage>,
}

/// POSTs `{base}/chat/completions` and reads the whole answer.
pub async fn chat(http: &reqwest::Client, base: &str, request: &ChatRequest<'_>) -> LlmOutcome {
    let started = Instant::now();
    let body = json!({
        "model": request.model,
        "messages": request.messages,
        "stream": request.stream,
        "stream_options": if request.stream { json!({"include_usage": true}) } else { Value::Null },
    });
    let response = match http
        .post(format!("{base}/chat/completions"))
        .header(SEED_HEADER, request.seed)
        .json(&body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => return failed(started, format!("request failed: {e}")),
    };
    let plan = Planned::from_headers(response.headers());
    let outcome = read_answer(response, started, request.stream).await;
    LlmOutcome { plan, ..outcome }
}

async fn read_answer(response: reqwest::Response, started: Instant, stream: bool) -> LlmOutcome {
    if !response.status().is_success() {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| super::retry_after::parse(v, SystemTime::now()));
        // Read the body so the connection can be reused.
        let _ = response.bytes().await;
        return LlmOutcome {
            status: Some(status.as_u16()),
            retry_after,
            ..failed(started, format!("HTTP {}", status.as_u16()))
        };
    }
    if stream {
        read_sse(response.bytes_stream(), started).await
    } else {
        match response.json::<Reply>().await {
            Ok(reply) => finished(started, None, reply.usage),
            Err(e) => failed(started, format!("unreadable reply: {e}")),
        }
    }
}

/// Reads a streamed answer's events until `data: [DONE]`; the usage comes in the last
/// chunk. The time to first token is taken when the first chunk with content is read.
///
/// OpenAI ends a stream with `[DONE]`, but its SDKs also end without an error when the
/// body simply ends. A body that ends cleanly after a `finish_reason` is therefore a
/// success (the answer is complete; the usage chunk may be missing, as OpenAI warns for
/// interrupted streams); one that ends before any `finish_reason` is an error, since the
/// answer was cut short. A broken connection is an error either way, and so is a chunk
/// with an `error` object (how OpenAI reports a failure mid-stream).
pub async fn read_sse<S, E>(body: S, started: Instant) -> LlmOutcome
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    // Bytes read since the last complete event; the reader resets it at each event.
    let pending = AtomicUsize::new(0);
    let body = body.map(|read| {
        let bytes = read.map_err(BodyError::Read)?;
        let total = pending.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
        if total > MAX_EVENT_BYTES {
            return Err(BodyError::TooLong);
        }
        Ok(bytes)
    });
    let mut events = pin!(SseByteStream::new(body));
    let (mut first_token, mut usage, mut finish) = (None, None, false);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(_) if pending.load(Ordering::Relaxed) > MAX_EVENT_BYTES => {
                return failed(
                    started,
                    format!(
                        "stream sent more than {MAX_EVENT_BYTES} bytes without completing an event"
                    ),
                )
            }
            Err(e) => return failed(started, format!("stream broke: {}", source_of(&e))),
        };
        pending.store(0, Ordering::Relaxed);
        let Some(data) = event.data else { continue };
        let data = data.trim_ascii();
        if data == "[DONE]" {
            return finished(started, first_token, usage);
        }
        // Data that is not a chunk (a provider's own notice) is skipped, as SDKs do.
        let Ok(chunk) = serde_json::from_str::<StreamChunk>(data) else {
            continue;
        };
        if let Some(error) = chunk.error {
            let message = error.message.unwrap_or_else(|| "no message".to_owned());
            return failed(started, format!("provider error in stream: {message}"));
        }
        if first_token.is_none() && chunk.choices.content {
            first_token = Some(started.elapsed());
        }
        finish |= chunk.choices.finished;
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    if finish {
        finished(started, first_token, usage)
    } else {
        failed(
            started,
            "stream ended before [DONE] and before any finish_reason".to_owned(),
        )
    }
}

/// The byte stream's error, or the reader's own when it refused an over-long event.
#[derive(Debug)]
enum BodyError<E> {
    Read(E),
    TooLong,
}

impl<E: fmt::Display> fmt::Display for BodyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Read(e) => write!(f, "{e}"),
            BodyError::TooLong => write!(f, "event longer than {MAX_EVENT_BYTES} bytes"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BodyError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Read(e) => e.source(),
            BodyError::TooLong => None,
        }
    }
}

/// The transport's error under the decoder's "body error:" wrapper, with its causes
/// (reqwest's own text says only "error decoding response body").
fn source_of(error: &sse_stream::Error) -> String {
    let mut text = String::new();
    let mut next = match error {
        sse_stream::Error::Body(inner) => Some(&**inner as &dyn std::error::Error),
        other => {
            text = other.to_string();
            std::error::Error::source(other)
        }
    };
    while let Some(e) = next {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

/// The parts of a `chat.completion.chunk` the harness reads, parsed without allocating:
/// whether any choice carries content or a `finish_reason`, the usage, and an error.
#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Choices,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<StreamError>,
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Default)]
struct Choices {
    content: bool,
    finished: bool,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<NonEmpty>,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChoicesVisitor;
        impl<'de> Visitor<'de> for ChoicesVisitor {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Choices, E> {
                Ok(Choices::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut choices = Choices::default();
                while let Some(choice) = seq.next_element::<Choice>()? {
                    choices.content |= choice.delta.and_then(|d| d.content).is_some_and(|c| c.0);
                    choices.finished |= choice.finish_reason.is_some();
                }
                Ok(choices)
            }
        }
        deserializer.deserialize_any(ChoicesVisitor)
    }
}

/// Whether a delta's `content` is a non-empty string, read without copying it.
struct NonEmpty(bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NonEmptyVisitor;
        impl<'de> Visitor<'de> for NonEmptyVisitor {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("content")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NonEmpty, E> {
                Ok(NonEmpty(!v.is_empty()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmpty, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NonEmpty(false))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NonEmpty, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NonEmpty(false))
            }
        }
        deserializer.deserialize_any(NonEmptyVisitor)
    }
}

fn finished(started: Instant, first_token: Option<Duration>, usage: Option<Usage>) -> LlmOutcome {
    let usage = usage.unwrap_or_default();
    LlmOutcome {
        duration: started.elapsed(),
        time_to_first_token: first_token,
        input_tokens: usage.prompt_tokens,
        cached_input_tokens: usage.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
        output_tokens: usage.completion_tokens,
        ..LlmOutcome::default()
    }
}

fn failed(started: Instant, error: String) -> LlmOutcome {
    LlmOutcome {
        duration: started.elapsed(),
        error: Some(error),
        ..LlmOutcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Every test's bound: a read that hangs fails the test instead.
    const BOUND: Duration = Duration::from_secs(10);

    fn chunk(content: &str) -> String {
        format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#
        )
    }

    const FINISH: &str =
        r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
    const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}"#;

    /// A whole answer as a provider might frame it: CRLF line ends, comments, an event
    /// whose JSON spans three `data:` lines, `data:` without its space, and an `event:`
    /// and `id:` field the reader ignores.
    fn crlf_answer() -> String {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        [
            ": OPENROUTER PROCESSING\r\n\r\n".to_owned(),
            format!("data: {role}\r\n\r\n"),
            format!("id: 1\r\nevent: message\r\ndata:{}\r\n\r\n", chunk("Hello")),
            ":keep-alive\r\n".to_owned(),
            "data: {\"choices\":[{\"index\":0,\r\ndata:  \"delta\":{\"content\":\" world\"},\r\ndata: \"finish_reason\":null}]}\r\n\r\n".to_owned(),
            format!("data: {FINISH}\r\n\r\n"),
            format!("data: {USAGE}\r\n\r\n"),
            "data: [DONE]\r\n\r\n".to_owned(),
        ]
        .concat()
    }

    async fn read_pieces(pieces: Vec<Vec<u8>>) -> LlmOutcome {
        let body = futures::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, Infallible>(Bytes::from(p))),
        );
        tokio::time::timeout(BOUND, read_sse(body, Instant::now()))
            .await
            .expect("the read ends")
    }

    fn succeeded(outcome: &LlmOutcome) {
        assert_eq!(outcome.error, None, "{outcome:?}");
        assert_eq!(
            (
                outcome.input_tokens,
                outcome.cached_input_tokens,
                outcome.output_tokens
            ),
            (7, 2, 3),
            "{outcome:?}"
        );
        assert!(outcome.time_to_first_token.is_some(), "{outcome:?}");
    }

    #[tokio::test]
    async fn crlf_comments_multi_line_data_and_no_space_are_read() {
        succeeded(&read_pieces(vec![crlf_answer().into_bytes()]).await);
        // LF and lone CR line ends too.
        let lf = crlf_answer().replace("\r\n", "\n");
        succeeded(&read_pieces(vec![lf.into_bytes()]).await);
        let cr = crlf_answer().replace("\r\n", "\r");
        succeeded(&read_pieces(vec![cr.into_bytes()]).await);
    }

    #[tokio::test]
    async fn an_answer_split_at_any_byte_reads_the_same() {
        let answer = crlf_answer().into_bytes();
        for at in 1..answer.len() {
            let outcome = read_pieces(vec![answer[..at].to_vec(), answer[at..].to_vec()]).await;
            assert_eq!(outcome.error, None, "split at {at}");
            assert_eq!(outcome.output_tokens, 3, "split at {at}");
        }
        let bytes = answer.iter().map(|b| vec![*b]).collect();
        succeeded(&read_pieces(bytes).await);
    }

    #[tokio::test]
    async fn time_to_first_token_is_the_first_chunk_with_content() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let pieces: Vec<(u64, String)> = vec![
            (0, format!("data: {role}\n\n")),
            (60, format!("data: {}\n\n", chunk("Hi"))),
            (
                60,
                format!("data: {FINISH}\n\ndata: {USAGE}\n\ndata: [DONE]\n\n"),
            ),
        ];
        let body = futures::stream::iter(pieces).then(|(wait, piece)| async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            Ok::<_, Infallible>(Bytes::from(piece))
        });
        let outcome = read_sse(body, Instant::now()).await;
        succeeded(&outcome);
        let ttft = outcome.time_to_first_token.unwrap();
        assert!(ttft >= Duration::from_millis(60), "{ttft:?}");
        assert!(
            outcome.duration >= ttft + Duration::from_millis(60),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_done_is_an_error_only_without_a_finish_reason() {
        let answer = crlf_answer();
        let without_done = answer.replace("data: [DONE]\r\n\r\n", "");
        succeeded(&read_pieces(vec![without_done.into_bytes()]).await);
        let cut = format!("data: {}\n\ndata: {}\n\n", chunk("a"), chunk("b"));
        let outcome = read_pieces(vec![cut.into_bytes()]).await;
        assert_eq!(
            outcome.error.as_deref(),
            Some("stream ended before [DONE] and before any finish_reason")
        );
        // A last event without its blank line is not an event, per the spec.
        let unterminated = format!("data: {FINISH}\n");
        assert!(read_pieces(vec![unterminated.into_bytes()])
            .await
            .error
            .is_some());
    }

    #[tokio::test]
    async fn an_error_object_mid_stream_fails_the_call() {
        let body = format!(
            "data: {}\n\ndata: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"server_error\"}}}}\n\n",
            chunk("a")
        );
        let outcome = read_pieces(vec![body.into_bytes()]).await;
        assert_eq!(
            outcome.error.as_deref(),
            Some("provider error in stream: overloaded")
        );
    }

    #[tokio::test]
    async fn an_endless_line_fails_at_the_cap() {
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        // `data: xxxx…` that never ends, nor does the stream.
        let body = futures::stream::once(async { Ok(Bytes::from_static(b"data: ")) })
            .chain(futures::stream::repeat(piece.clone()).map(Ok::<_, Infallible>));
        let outcome = tokio::time::timeout(BOUND, read_sse(body, Instant::now()))
            .await
            .expect("the read ends");
        let error = outcome.error.unwrap();
        assert!(
            error.contains("more than 1048576 bytes without completing an event"),
            "{error}"
        );
        // The same for a line of another field, and for a comment that never ends.
        for start in [&b"event: "[..], b": "] {
            let body = futures::stream::once(async move { Ok(Bytes::from(start)) })
                .chain(futures::stream::repeat(piece.clone()).map(Ok::<_, Infallible>));
            let outcome = tokio::time::timeout(BOUND, read_sse(body, Instant::now()))
                .await
                .expect("the read ends");
            assert!(outcome.error.is_some());
        }
        // Events just under the cap, one after another, are fine.
        let big = format!(
            "data: {{\"pad\":\"{}\"}}\n\n",
            "x".repeat(MAX_EVENT_BYTES - 40)
        );
        let mut pieces = vec![big.clone().into_bytes(), big.into_bytes()];
        pieces.push(crlf_answer().into_bytes());
        succeeded(&read_pieces(pieces).await);
    }

    /// A one-connection HTTP/1.1 server on 127.0.0.1 that answers with exactly these pieces
    /// of body, each its own chunk of a chunked response, written and flushed apart so they
    /// arrive as separate reads; `cut` drops the connection after the last piece instead
    /// of ending the body.
    async fn serve(pieces: Vec<Vec<u8>>, cut: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The request's head and its body (Content-Length).
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            for piece in pieces {
                let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
                frame.extend_from_slice(&piece);
                frame.extend_from_slice(b"\r\n");
                socket.write_all(&frame).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if !cut {
                socket.write_all(b"0\r\n\r\n").await.unwrap();
                // Wait for the client to close.
                let _ = socket.read(&mut buf).await;
            }
        });
        format!("http://{addr}/v1")
    }

    async fn call(base: &str) -> LlmOutcome {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let request = ChatRequest {
            model: "m",
            messages: json!([{"role": "user", "content": "hi"}]),
            stream: true,
            seed: 7,
        };
        tokio::time::timeout(BOUND, chat(&http, base, &request))
            .await
            .expect("the call ends")
    }

    #[tokio::test]
    async fn over_http_events_split_mid_line_and_mid_crlf_are_read() {
        let answer = crlf_answer().into_bytes();
        // Cut inside a `data:` prefix, between CR and LF, inside the JSON, and inside `[DONE]`.
        let cr = answer.windows(2).position(|w| w == b"\r\n").unwrap() + 1;
        let mut cuts = vec![cr, 30, 31, 64, 65, 200, answer.len() - 5];
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for at in cuts {
            pieces.push(answer[from..at].to_vec());
            from = at;
        }
        pieces.push(answer[from..].to_vec());
        succeeded(&call(&serve(pieces, false).await).await);
    }

    #[tokio::test]
    async fn over_http_a_connection_cut_mid_stream_is_an_error() {
        let pieces = vec![
            format!("data: {}\n\n", chunk("Hello")).into_bytes(),
            b"data: {\"choices\":[{\"ind".to_vec(),
        ];
        let outcome = call(&serve(pieces, true).await).await;
        let error = outcome.error.unwrap();
        assert!(error.starts_with("stream broke: "), "{error}");
        // Even after the finish: only `[DONE]` or the body's clean end completes the call.
        let pieces = vec![format!("data: {}\n\ndata: {FINISH}\n\n", chunk("Hello")).into_bytes()];
        let outcome = call(&serve(pieces, true).await).await;
        assert!(outcome.error.unwrap().starts_with("stream broke: "));
    }
}
