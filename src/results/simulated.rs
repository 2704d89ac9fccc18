//! What the simulated LLM provider was, when mock-ld's simulator answered the run's LLM
//! calls: the time scale, each model's profile, and the simulator's own lateness. Reports
//! label every LLM, time-to-first-token and end-to-end figure with it, since those latencies
//! are drawn, not measured from a model.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::LatencySummary;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedInfo {
    /// The scenario's `[llm] time_scale`, set on every model's profile; unset, each profile
    /// keeps its own (`profiles.*.timeScale`).
    pub time_scale: Option<f64>,
    /// The profile that answered each model the scenario names, as mock-ld held it once
    /// the run had set it up (an `llm` action changes it for a while; see `actions`).
    pub profiles: BTreeMap<String, SimulatedProfile>,
    /// How late the simulator sent, against its plan, over the load.
    pub lateness: SimulatorLateness,
}

/// A model's behaviour in mock-ld's simulator (log-normal distributions, before the time
/// scale).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedProfile {
    /// The model has no profile of its own and mock-ld's `default` answered for it.
    pub default: bool,
    pub latency_ms: LogNormal,
    pub ttft_ms: LogNormal,
    pub output_tokens: LogNormal,
    pub error_rate: f64,
    pub error_status: u16,
    /// Multiplies every wait: a drawn 1,000 ms waits 1,000 × `timeScale` ms.
    pub time_scale: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LogNormal {
    pub median: f64,
    pub p99: f64,
}

/// Per answer, the time the simulator handed it to its HTTP server minus the time it
/// planned (from the request's arrival): the delay of a busy process, which the measured
/// LLM latency includes. Streams count their first content chunk and `[DONE]`; a whole or
/// error answer counts its body in both.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatorLateness {
    pub first_token: LatencySummary,
    pub last_chunk: LatencySummary,
}
