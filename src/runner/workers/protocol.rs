//! The messages of the coordinator–worker protocol (`docs/worker-protocol.md`), typed once:
//! what the harness sends a worker and what it reads back, one JSON object per line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version `hello` carries; a worker that speaks another answers `error`.
pub const PROTOCOL_VERSION: u32 = 2;

/// Coordinator → worker.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ToWorker<'a> {
    Hello(Box<Hello>),
    Go,
    Batch { requests: &'a [WorkItem] },
    End,
    Stop,
    Flush,
    Close,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub protocol: u32,
    pub worker: usize,
    pub workers: usize,
    pub sdk: SdkSettings,
    pub llm: LlmSettings,
    pub steps: Vec<StepSpec>,
    pub load: LoadSettings,
    pub handler: Option<String>,
}

/// The SDK client's configuration, the same as the Rust path's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkSettings {
    pub sdk_key: String,
    pub base_uri: String,
    pub stream_uri: String,
    pub events_uri: String,
    pub send_events: bool,
    pub event_capacity: usize,
    pub flush_interval_ms: u64,
    pub init_timeout_ms: u64,
    /// A start-up fault is planned: past `initTimeoutMs` the worker goes on uninitialized
    /// (its SDK serves the fallback) instead of failing, and says so in `ready`.
    pub serve_uninitialized: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LlmSettings {
    pub base_url: String,
    pub stream: bool,
    pub api_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSpec {
    pub config: String,
    pub mode: &'static str,
    pub variables: Value,
    pub prompt: String,
    pub call_llm: bool,
    pub on_error: OnErrorSpec,
}

/// A step's `on_error` (`scenario::OnError`), with what the workers need to draw the
/// same waits and seeds as `runner::retry`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnErrorSpec {
    pub retries: u32,
    pub backoff_ms: u64,
    pub max_retry_after_ms: u64,
    /// The most any one wait may be (`bounds::MAX_RETRY_WAIT`).
    pub max_wait_ms: u64,
    pub fallback_model: Option<String>,
    /// The run's seed, a u64 as a string: the jitter is drawn from it and the step's seed.
    pub run_seed: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum LoadSettings {
    Closed {
        concurrency: usize,
    },
    Open {
        #[serde(rename = "maxInFlight")]
        max_in_flight: usize,
    },
}

/// One request of a `batch`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_micros: Option<u64>,
    pub context: Value,
    pub kind: String,
    pub cost_by: Vec<(String, String)>,
    pub steps: Vec<WorkStep>,
}

#[derive(Debug, Serialize)]
pub struct WorkStep {
    /// A u64, sent as a string (JSON numbers past 2^53 lose digits in JavaScript).
    pub seed: String,
    pub feedback: Option<&'static str>,
}

/// Worker → coordinator.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FromWorker {
    Ready(Ready),
    Error {
        message: String,
    },
    Pull {
        max: u64,
    },
    Progress(Box<ProgressMessage>),
    Result(Box<WorkerResult>),
    Flushed {
        #[serde(rename = "handedEvents")]
        handed_events: u64,
    },
}

/// Which SDK a worker runs, as it says itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    pub sdk: String,
    pub sdk_version: String,
    pub ai_sdk_version: String,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub pid: u32,
    /// How long its SDK client took to initialize, or the wait when it timed out.
    #[serde(default)]
    pub init_ms: Option<f64>,
    /// Its SDK client did not initialize within `initTimeoutMs` (only with
    /// `serveUninitialized`).
    #[serde(default)]
    pub init_timed_out: bool,
}

/// An encoded HDR histogram (V2 deflate, base64), or none.
pub type Hdr = Option<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressMessage {
    pub completed: u64,
    pub failed: u64,
    #[serde(default)]
    pub seconds: Vec<SecondDelta>,
    /// `[index, step, variationKey, evaluatedMicros]`.
    #[serde(default)]
    pub served: Vec<(u64, usize, String, u64)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondDelta {
    pub second: usize,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub latency: Hdr,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub llm: Hdr,
    #[serde(default)]
    pub llm_errors: u64,
    /// Steps evaluated, and of them those served the fallback ("(default)").
    #[serde(default)]
    pub evaluations: u64,
    #[serde(default)]
    pub fallback_served: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerResult {
    pub requests: u64,
    pub failed_requests: u64,
    #[serde(default)]
    pub requests_corrected: Hdr,
    #[serde(default)]
    pub requests_raw: Hdr,
    #[serde(default)]
    pub schedule_lag: Hdr,
    #[serde(default)]
    pub context_kinds: BTreeMap<String, u64>,
    #[serde(default)]
    pub tracked_events: BTreeMap<String, u64>,
    #[serde(default)]
    pub variations: BTreeMap<String, BTreeMap<String, VariationResult>>,
    #[serde(default)]
    pub attribute_usage: BTreeMap<String, BTreeMap<String, BTreeMap<String, Tokens>>>,
    #[serde(default)]
    pub handed_events: u64,
    /// The worker's event-loop lag probe (every 10 ms, corrected as jHiccup does).
    #[serde(default)]
    pub lag_probe: Hdr,
    /// The worker process's CPU time over the load, user and system.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// A client that timed out at start-up: when it initialized, in ms after `go`.
    #[serde(default)]
    pub initialized_later_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationResult {
    #[serde(default)]
    pub evaluations: u64,
    #[serde(default)]
    pub ai_calls: u64,
    #[serde(default)]
    pub successes: u64,
    #[serde(default)]
    pub errors: u64,
    /// `on_error`'s figures, as [`crate::metrics::VariationMetrics`] defines them.
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub fallbacks: u64,
    #[serde(default)]
    pub fallback_successes: u64,
    #[serde(default)]
    pub failed_steps: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub feedback_positive: u64,
    #[serde(default)]
    pub feedback_negative: u64,
    #[serde(default)]
    pub evaluation: Hdr,
    #[serde(default)]
    pub ai_layer: Hdr,
    #[serde(default)]
    pub llm: Hdr,
    #[serde(default)]
    pub llm_planned_real_time: Hdr,
    #[serde(default)]
    pub llm_excess: Hdr,
    #[serde(default)]
    pub llm_ahead_of_plan: u64,
    #[serde(default)]
    pub time_to_first_token: Hdr,
    #[serde(default)]
    pub end_to_end: Hdr,
    #[serde(default)]
    pub usage: BTreeMap<String, BTreeMap<String, Tokens>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    #[serde(default)]
    pub calls: u64,
    #[serde(default)]
    pub input: u64,
    #[serde(default)]
    pub cached_input: u64,
    #[serde(default)]
    pub output: u64,
}
