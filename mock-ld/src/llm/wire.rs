//! The OpenAI chat completions wire format: the request fields the simulator reads, the
//! `chat.completion` and `chat.completion.chunk` objects, and OpenAI's error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Stands in for the backend configuration hash OpenAI reports.
const SYSTEM_FINGERPRINT: &str = "fp_mock_ld";

/// The request fields the simulator uses; every other field (`temperature`, `tools`,
/// `user`, …) is accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    /// OpenAI's own determinism parameter; here it fixes the simulated draw.
    pub seed: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: a string, or an array of parts of which only text counts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

impl ChatRequest {
    /// Reads a request body, answering what OpenAI would for one it cannot use.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let request: ChatRequest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let param = (path != ".").then_some(path);
            ApiError::invalid_request(
                format!(
                    "could not parse the JSON body of your request: {}",
                    e.inner()
                ),
                param,
            )
        })?;
        if request.messages.is_empty() {
            return Err(ApiError::invalid_request(
                "[] is too short - 'messages'",
                Some("messages".into()),
            ));
        }
        Ok(request)
    }

    pub fn streams(&self) -> bool {
        self.stream == Some(true)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// `max_completion_tokens` replaced the deprecated `max_tokens`; either caps the output.
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The prompt's size: a token per four characters of text, rounded up, and at least one
    /// per message (its role and framing cost tokens even when it is empty).
    pub fn prompt_tokens(&self) -> u32 {
        let per_message = |m: &ChatMessage| {
            let chars = match &m.content {
                None => 0,
                Some(Content::Text(text)) => text.chars().count(),
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .filter_map(|p| p.text.as_ref())
                    .map(|t| t.chars().count())
                    .sum(),
            };
            u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX).max(1)
        };
        self.messages
            .iter()
            .map(per_message)
            .fold(0, u32::saturating_add)
    }
}

/// What every object of one completion shares.
#[derive(Clone, Debug)]
pub struct Ids {
    pub id: String,
    pub created: u64,
    pub model: String,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: PromptTokensDetails::default(),
            completion_tokens_details: CompletionTokensDetails::default(),
        }
    }
}

/// A simulated model caches nothing and reasons about nothing, so the details are zeros;
/// OpenAI sends them all the same.
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct PromptTokensDetails {
    cached_tokens: u32,
    audio_tokens: u32,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u32,
    audio_tokens: u32,
    accepted_prediction_tokens: u32,
    rejected_prediction_tokens: u32,
}

/// A `chat.completion` object with one choice.
pub fn completion(
    ids: &Ids,
    content: &str,
    finish_reason: &str,
    usage: Usage,
) -> serde_json::Value {
    json!({
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    })
}

/// One `chat.completion.chunk`. `usage` is `None` when the client did not ask for usage
/// (the field is left out), `Some(None)` on the chunks before the last (`null`).
/// Typed rather than `json!` like [`completion`]: a stream sends one per token.
#[derive(Serialize)]
pub struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

/// The first delta carries the role; the last (the finish) is empty.
#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl<'a> Chunk<'a> {
    fn new(ids: &'a Ids, choice: Option<ChunkChoice<'a>>, usage: Option<Option<Usage>>) -> Self {
        Chunk {
            id: &ids.id,
            object: "chat.completion.chunk",
            created: ids.created,
            model: &ids.model,
            choices: choice.into_iter().collect(),
            service_tier: "default",
            system_fingerprint: SYSTEM_FINGERPRINT,
            usage,
        }
    }

    /// Content tokens; the first chunk of a completion also names the role.
    pub fn content(ids: &'a Ids, text: &'a str, first: bool, with_usage: bool) -> Self {
        let delta = Delta {
            role: first.then_some("assistant"),
            content: Some(text),
        };
        Self::new(
            ids,
            Some(ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: None,
            }),
            with_usage.then_some(None),
        )
    }

    pub fn finish(ids: &'a Ids, finish_reason: &'a str, with_usage: bool) -> Self {
        let choice = ChunkChoice {
            index: 0,
            delta: Delta::default(),
            logprobs: None,
            finish_reason: Some(finish_reason),
        };
        Self::new(ids, Some(choice), with_usage.then_some(None))
    }

    /// The chunk `stream_options.include_usage` adds: no choices, only usage.
    pub fn usage(ids: &'a Ids, usage: Usage) -> Self {
        Self::new(ids, None, Some(Some(usage)))
    }

    /// The chunk as one SSE frame.
    pub fn frame(&self) -> Bytes {
        let mut frame = b"data: ".to_vec();
        serde_json::to_writer(&mut frame, self).expect("a chunk serializes");
        frame.extend_from_slice(b"\n\n");
        Bytes::from(frame)
    }
}

/// The frame that ends every OpenAI stream.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// An error as OpenAI answers it: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid_request(message: impl Into<String>, param: Option<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    /// The error a profile's `errorRate` injects, worded and typed as OpenAI's own.
    pub fn simulated(status: StatusCode, model: &str) -> Self {
        let (message, kind, code) = match status {
            StatusCode::TOO_MANY_REQUESTS => (
                format!("Rate limit reached for {model} on requests per min (RPM) (simulated by mock-ld). Please try again in 1s."),
                "requests",
                Some("rate_limit_exceeded"),
            ),
            StatusCode::UNAUTHORIZED => ("Incorrect API key provided (simulated by mock-ld).".to_owned(), "invalid_request_error", Some("invalid_api_key")),
            s if s.is_server_error() => (
                "The server had an error while processing your request. Sorry about that! (simulated by mock-ld)".to_owned(),
                "server_error",
                None,
            ),
            s => (format!("Simulated error {} from mock-ld.", s.as_u16()), "invalid_request_error", None),
        };
        ApiError {
            status,
            message,
            kind,
            param: None,
            code,
        }
    }

    /// A request cut short because mock-ld is shutting down.
    pub fn shutting_down() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "mock-ld is shutting down.".to_owned(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn prompt_tokens_are_a_quarter_of_the_characters_and_one_per_message_at_least() {
        let r = request(json!({"model": "m", "messages": [
            {"role": "system", "content": "abcde"},
            {"role": "user", "content": "Hello world!"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "user", "content": [{"type": "text", "text": "12345678"}, {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "user", "content": "ééé"},
        ]}));
        assert_eq!(r.prompt_tokens(), 2 + 3 + 1 + 2 + 1);
    }

    #[test]
    fn unknown_fields_are_ignored_and_options_read() {
        let r = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
            "tools": [{"type": "function"}], "user": "u", "stream": true, "stream_options": {"include_usage": true},
            "max_tokens": 50, "max_completion_tokens": 20, "seed": -3}),
        );
        assert!(r.streams() && r.include_usage());
        assert_eq!((r.max_tokens(), r.seed), (Some(20), Some(-3)));
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let err =
            ChatRequest::parse(br#"{"model": "m", "messages": [], "stream": "yes"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("stream"));
        let err = ChatRequest::parse(br#"{"model": "m", "messages": []}"#).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (StatusCode::BAD_REQUEST, Some("messages"))
        );
    }

    #[test]
    fn chunks_carry_usage_null_until_the_usage_chunk() {
        let ids = Ids {
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m".into(),
        };
        let frame = Chunk::content(&ids, "hi", true, true).frame();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(
            text.starts_with("data: {") && text.ends_with("}\n\n"),
            "{text}"
        );
        let chunk: serde_json::Value = serde_json::from_str(&text[6..]).unwrap();
        assert_eq!(chunk["usage"], serde_json::Value::Null);
        assert_eq!(
            chunk["choices"][0]["delta"],
            json!({"role": "assistant", "content": "hi"})
        );
        let chunk: serde_json::Value =
            serde_json::from_slice(&Chunk::finish(&ids, "stop", false).frame()[6..]).unwrap();
        assert!(chunk.get("usage").is_none());
        assert_eq!(chunk["choices"][0]["delta"], json!({}));
        let chunk: serde_json::Value =
            serde_json::from_slice(&Chunk::usage(&ids, Usage::new(2, 3)).frame()[6..]).unwrap();
        assert_eq!(
            (
                chunk["choices"].as_array().unwrap().len(),
                &chunk["usage"]["total_tokens"]
            ),
            (0, &json!(5))
        );
    }
}
