//! Calling an OpenAI-compatible chat completions endpoint the way an application would,
//! with reqwest, measuring time to first token on streamed responses.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

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
}

/// A chat request: the model and the interpolated messages.
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Value,
    pub stream: bool,
}

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
        .json(&body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => return failed(started, format!("request failed: {e}")),
    };
    if !response.status().is_success() {
        let status = response.status();
        // Read the body so the connection can be reused.
        let _ = response.bytes().await;
        return failed(started, format!("HTTP {}", status.as_u16()));
    }
    if request.stream {
        read_stream(response, started).await
    } else {
        match response.json::<Reply>().await {
            Ok(reply) => finished(started, None, reply.usage),
            Err(e) => failed(started, format!("unreadable reply: {e}")),
        }
    }
}

/// Reads `data: {chunk}` frames until `[DONE]`; the usage comes in the last chunk.
async fn read_stream(response: reqwest::Response, started: Instant) -> LlmOutcome {
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut first_token = None;
    let mut usage = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return failed(started, format!("stream broke: {e}")),
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = find_frame_end(&buffer) {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let Some(data) = frame.strip_prefix(b"data: ") else {
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                return finished(started, first_token, usage);
            }
            let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
                continue;
            };
            if first_token.is_none() && has_content(&chunk) {
                first_token = Some(started.elapsed());
            }
            if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
                usage = serde_json::from_value(u.clone()).ok();
            }
        }
    }
    failed(started, "stream ended before [DONE]".to_owned())
}

fn find_frame_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n")
}

fn has_content(chunk: &Value) -> bool {
    chunk["choices"][0]["delta"]["content"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
}

fn finished(started: Instant, first_token: Option<Duration>, usage: Option<Usage>) -> LlmOutcome {
    let usage = usage.unwrap_or_default();
    LlmOutcome {
        duration: started.elapsed(),
        time_to_first_token: first_token,
        input_tokens: usage.prompt_tokens,
        cached_input_tokens: usage.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
        output_tokens: usage.completion_tokens,
        error: None,
    }
}

fn failed(started: Instant, error: String) -> LlmOutcome {
    LlmOutcome {
        duration: started.elapsed(),
        error: Some(error),
        ..LlmOutcome::default()
    }
}
