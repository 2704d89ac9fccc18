//! What a fault is: its kind, what it takes, and where it applies. One flat, strict JSON
//! (and TOML) shape, `{"kind": "eventsError", "status": 503, "environment": "test"}`, read
//! into [`FaultSpec`] and checked into a typed [`Fault`] with a message naming the field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The faults mock-ld injects. SDK kinds apply to one environment's SDK endpoints, FDv1 and
/// FDv2 alike; `llm*` kinds to the simulated provider (one model, or every model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// Streams (`/all`, `/sdk/stream`) answered with `status` (default 503); open ones end.
    StreamRefused,
    /// Open streams end at once, and each new one right after its first payload.
    StreamDropped,
    /// Streams stay open and send nothing, not even heartbeats; a new one sends no payload.
    StreamStalled,
    /// Each stream gets one event whose data is not JSON (the Python SDK restarts the
    /// stream; the Rust and Node SDKs skip the event and read on).
    StreamMalformed,
    /// Polling endpoints (`/sdk/latest-*`, `/sdk/poll`) answer `status` (default 503).
    PollingError,
    /// `/bulk` and `/diagnostic` answer `status` (429 or 5xx; default 503), with
    /// `Retry-After: retryAfter` seconds when given. The payload is refused, not stored.
    EventsError,
    /// `/bulk` and `/diagnostic` hold the request unanswered while the fault lasts (at most
    /// [`HOLD_LIMIT`]), then answer 503: the SDK's own timeout decides.
    EventsTimeout,
    /// `/bulk` and `/diagnostic` read the request, then close the connection without a
    /// byte of answer: the SDK sees a transport error. The payload is refused, not stored.
    EventsClosed,
    /// Every SDK endpoint of the environment (streams, polling, events) answers 503.
    SdkUnavailable,
    /// Every SDK endpoint answers `latencyMs` later (a stream's first payload included).
    SdkSlow,
    /// Stream and polling bodies go out at `bytesPerSecond` at most, open streams' too, until
    /// the fault ends (a slow link: the bytes trickle in, not late all at once).
    SdkThrottled,
    /// The provider answers 429 with `Retry-After: retryAfter` (default
    /// [`RATE_LIMIT_RETRY_AFTER_SECS`]).
    LlmRateLimited,
    /// The provider answers `status` (5xx; default 500).
    LlmError,
    /// The provider holds the call unanswered while the fault lasts (at most [`HOLD_LIMIT`]),
    /// then answers 504: the client's timeout decides.
    LlmTimeout,
    /// Each call is answered `latencyMs` later than planned.
    LlmLatencySpike,
    /// The provider answers 503 to every call.
    LlmOutage,
}

/// The longest a held request (`eventsTimeout`, `llmTimeout`) waits for its fault to end.
pub const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// The longest `latencyMs` may add, and `retryAfter` may ask for.
pub const MAX_LATENCY_MS: u64 = 600_000;
pub const MAX_RETRY_AFTER_SECS: u64 = 3_600;
/// `llmRateLimited`'s `Retry-After` when none is given, in seconds.
pub const RATE_LIMIT_RETRY_AFTER_SECS: u64 = 1;
/// The largest `bytesPerSecond`: past this a loopback link is no slower than without it.
pub const MAX_BYTES_PER_SECOND: u64 = 1 << 30;

/// The longest `model` name: far past any provider's, and short enough that the faults on
/// and the ended ones `/admin/faults` keeps stay small (a name is copied into each record).
pub const MAX_MODEL_BYTES: usize = 1_024;

impl FaultKind {
    /// Kinds that act on the events intake (`/bulk`, `/diagnostic`).
    pub fn is_events(self) -> bool {
        matches!(
            self,
            Self::EventsError | Self::EventsTimeout | Self::EventsClosed
        )
    }

    pub fn is_llm(self) -> bool {
        matches!(
            self,
            Self::LlmRateLimited
                | Self::LlmError
                | Self::LlmTimeout
                | Self::LlmLatencySpike
                | Self::LlmOutage
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::StreamRefused => "streamRefused",
            Self::StreamDropped => "streamDropped",
            Self::StreamStalled => "streamStalled",
            Self::StreamMalformed => "streamMalformed",
            Self::PollingError => "pollingError",
            Self::EventsError => "eventsError",
            Self::EventsTimeout => "eventsTimeout",
            Self::EventsClosed => "eventsClosed",
            Self::SdkUnavailable => "sdkUnavailable",
            Self::SdkSlow => "sdkSlow",
            Self::SdkThrottled => "sdkThrottled",
            Self::LlmRateLimited => "llmRateLimited",
            Self::LlmError => "llmError",
            Self::LlmTimeout => "llmTimeout",
            Self::LlmLatencySpike => "llmLatencySpike",
            Self::LlmOutage => "llmOutage",
        }
    }

    /// The status it answers with when none is given, for the kinds that take one.
    fn default_status(self) -> Option<u16> {
        match self {
            Self::StreamRefused | Self::PollingError | Self::EventsError => Some(503),
            Self::LlmError => Some(500),
            _ => None,
        }
    }

    /// Which statuses it may answer with, and how to say so.
    fn allows_status(self, status: u16) -> Result<(), &'static str> {
        let ok = match self {
            // 401/403 stop an SDK for good, as LaunchDarkly's do for a revoked key.
            Self::StreamRefused | Self::PollingError => (400..=599).contains(&status),
            // An SDK drops its events for good on 401/403/404/413: 429 and 5xx only.
            Self::EventsError => status == 429 || (500..=599).contains(&status),
            Self::LlmError => (500..=599).contains(&status),
            _ => return Err("takes no status"),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Self::EventsError => "must be 429 or 5xx",
                Self::LlmError => "must be 5xx",
                _ => "must be 4xx or 5xx",
            })
        }
    }

    fn takes_retry_after(self) -> bool {
        matches!(self, Self::EventsError | Self::LlmRateLimited)
    }

    fn needs_latency(self) -> bool {
        matches!(self, Self::SdkSlow | Self::LlmLatencySpike)
    }

    fn needs_rate(self) -> bool {
        self == Self::SdkThrottled
    }
}

/// A fault as clients write it: flat, every field but `kind` optional, unknown fields refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Seconds, for `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `sdkThrottled`: the most bytes a second each response body gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    /// SDK kinds: the project of the environment (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// SDK kinds: the environment whose SDK endpoints misbehave (default `test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `llm*` kinds: the one model affected; every model when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Where a fault applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    Environment {
        project: String,
        environment: String,
    },
    Llm {
        model: Option<String>,
    },
}

/// A checked fault: the kind with every parameter it needs, and its scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    pub scope: Scope,
}

impl FaultSpec {
    /// The fault, or what is wrong with it (naming the field).
    pub fn check(&self) -> Result<Fault, String> {
        let kind = self.kind;
        let name = kind.name();
        let status = match (self.status, kind.default_status()) {
            (Some(status), Some(_)) => {
                kind.allows_status(status)
                    .map_err(|why| format!("status {status}: {name} {why}"))?;
                Some(status)
            }
            (Some(_), None) => return Err(format!("status: {name} takes no status")),
            (None, default) => default,
        };
        let retry_after = match self.retry_after {
            Some(_) if !kind.takes_retry_after() => {
                return Err(format!("retryAfter: {name} takes no retryAfter"))
            }
            Some(secs) if secs > MAX_RETRY_AFTER_SECS => {
                return Err(format!(
                    "retryAfter {secs}: at most {MAX_RETRY_AFTER_SECS} seconds"
                ))
            }
            Some(secs) => Some(secs),
            None if kind == FaultKind::LlmRateLimited => Some(RATE_LIMIT_RETRY_AFTER_SECS),
            None => None,
        };
        let latency_ms = match self.latency_ms {
            Some(_) if !kind.needs_latency() => {
                return Err(format!("latencyMs: {name} takes no latencyMs"))
            }
            Some(ms) if ms > MAX_LATENCY_MS => {
                return Err(format!("latencyMs {ms}: at most {MAX_LATENCY_MS}"))
            }
            Some(ms) => Some(ms),
            None if kind.needs_latency() => return Err(format!("latencyMs: {name} needs it")),
            None => None,
        };
        Ok(Fault {
            kind,
            status,
            retry_after,
            latency_ms,
            bytes_per_second: self.rate()?,
            scope: self.scope()?,
        })
    }

    fn rate(&self) -> Result<Option<u64>, String> {
        let name = self.kind.name();
        match self.bytes_per_second {
            Some(_) if !self.kind.needs_rate() => {
                Err(format!("bytesPerSecond: {name} takes no bytesPerSecond"))
            }
            Some(0) => Err("bytesPerSecond 0: at least 1".to_owned()),
            Some(rate) if rate > MAX_BYTES_PER_SECOND => Err(format!(
                "bytesPerSecond {rate}: at most {MAX_BYTES_PER_SECOND}"
            )),
            Some(rate) => Ok(Some(rate)),
            None if self.kind.needs_rate() => Err(format!("bytesPerSecond: {name} needs it")),
            None => Ok(None),
        }
    }

    fn scope(&self) -> Result<Scope, String> {
        let name = self.kind.name();
        if self.kind.is_llm() {
            if self.project.is_some() || self.environment.is_some() {
                return Err(format!(
                    "environment: {name} is the provider's, for every environment (use model to narrow it)"
                ));
            }
            if let Some(model) = self.model.as_ref().filter(|m| m.len() > MAX_MODEL_BYTES) {
                return Err(format!(
                    "model: {} bytes, at most {MAX_MODEL_BYTES}",
                    model.len()
                ));
            }
            return Ok(Scope::Llm {
                model: self.model.clone(),
            });
        }
        if self.model.is_some() {
            return Err(format!(
                "model: {name} is an SDK endpoint fault, not the provider's"
            ));
        }
        Ok(Scope::Environment {
            project: self.project.clone().unwrap_or_else(|| "default".to_owned()),
            environment: self
                .environment
                .clone()
                .unwrap_or_else(|| "test".to_owned()),
        })
    }
}

impl Fault {
    /// Whether it applies to environment `environment` of project `project`.
    pub fn in_environment(&self, project: &str, environment: &str) -> bool {
        matches!(&self.scope, Scope::Environment { project: p, environment: e }
            if p == project && e == environment)
    }

    /// Whether it applies to calls of `model` on the simulated provider.
    pub fn on_model(&self, model: &str) -> bool {
        matches!(&self.scope, Scope::Llm { model: m } if m.as_deref().is_none_or(|m| m == model))
    }

    /// The status it refuses with: its own, 429 for a rate limit, else 503.
    pub fn answer_status(&self) -> axum::http::StatusCode {
        let code = match self.kind {
            FaultKind::LlmRateLimited => 429,
            _ => self.status.unwrap_or(503),
        };
        axum::http::StatusCode::from_u16(code)
            .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE)
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(json: &str) -> Result<Fault, String> {
        serde_json::from_str::<FaultSpec>(json)
            .map_err(|e| e.to_string())?
            .check()
    }

    #[test]
    fn defaults_fill_status_scope_and_retry_after() {
        let f = spec(r#"{"kind": "eventsError"}"#).unwrap();
        assert_eq!(f.status, Some(503));
        assert!(f.in_environment("default", "test"));
        assert!(!f.in_environment("default", "production"));
        let f = spec(r#"{"kind": "llmRateLimited", "model": "gpt-4o"}"#).unwrap();
        assert_eq!(f.retry_after, Some(1));
        assert!(f.on_model("gpt-4o") && !f.on_model("gpt-4o-mini"));
        assert!(spec(r#"{"kind": "llmOutage"}"#).unwrap().on_model("any"));
    }

    #[test]
    fn bad_specs_name_their_field() {
        let long_model =
            json!({"kind": "llmOutage", "model": "m".repeat(MAX_MODEL_BYTES + 1)}).to_string();
        for (json, says) in [
            (
                r#"{"kind": "eventsError", "status": 401}"#,
                "status 401: eventsError must be 429 or 5xx",
            ),
            (
                r#"{"kind": "eventsError", "status": 413}"#,
                "must be 429 or 5xx",
            ),
            (
                r#"{"kind": "streamDropped", "status": 503}"#,
                "status: streamDropped takes no status",
            ),
            (r#"{"kind": "sdkSlow"}"#, "latencyMs: sdkSlow needs it"),
            (
                r#"{"kind": "sdkThrottled"}"#,
                "bytesPerSecond: sdkThrottled needs it",
            ),
            (
                r#"{"kind": "sdkThrottled", "bytesPerSecond": 0}"#,
                "bytesPerSecond 0: at least 1",
            ),
            (
                r#"{"kind": "sdkSlow", "latencyMs": 5, "bytesPerSecond": 10}"#,
                "bytesPerSecond: sdkSlow takes no bytesPerSecond",
            ),
            (
                r#"{"kind": "eventsClosed", "status": 503}"#,
                "status: eventsClosed takes no status",
            ),
            (
                r#"{"kind": "llmError", "environment": "test"}"#,
                "environment: llmError",
            ),
            (
                r#"{"kind": "pollingError", "model": "m"}"#,
                "model: pollingError",
            ),
            (
                r#"{"kind": "llmRateLimited", "retryAfter": 99999}"#,
                "retryAfter 99999",
            ),
            (
                r#"{"kind": "streamStalled", "retryAfter": 1}"#,
                "retryAfter: streamStalled",
            ),
            (r#"{"kind": "nope"}"#, "unknown variant `nope`"),
            (long_model.as_str(), "model: 1025 bytes, at most 1024"),
            (
                r#"{"kind": "llmOutage", "statuss": 1}"#,
                "unknown field `statuss`",
            ),
        ] {
            let error = spec(json).unwrap_err();
            assert!(error.contains(says), "{json}: {error}");
        }
    }
}
