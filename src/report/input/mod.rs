//! `results.json` as reports and baselines read it back.
//!
//! This is a reader of the file, not the runner's own types: `report` and `compare` take
//! files written by other runs and other versions, so unknown fields are ignored and fields
//! that later versions add are optional here.
//!
//! Modules: [`checks`] (the checks' outcomes), [`cost`] (the cost breakdown).

pub mod checks;
pub mod cost;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Why a results or baseline file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a results file: {source} (write one with `aiconfig-harness run --out DIR`)"
    )]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: schema version {found}, this build reads {expected}; rerun the scenario with this build")]
    Version {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("a latency histogram (`hdr`) is not HdrHistogram V2-deflate base64: {0}")]
    Histogram(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    #[serde(default)]
    pub partial: bool,
    pub duration_ms: f64,
    pub load: Load,
    pub requests_corrected: Summary,
    pub requests_raw: Summary,
    pub configs: BTreeMap<String, Config>,
    #[serde(default)]
    pub context_kinds: BTreeMap<String, u64>,
    #[serde(default)]
    pub timeline: Vec<Second>,
    pub events: Option<Events>,
    #[serde(default)]
    pub actions: Vec<Action>,
    pub cost: cost::Cost,
    pub checks: checks::Checks,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub population: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    pub model: String,
    pub sdk_clients: usize,
    pub requests: u64,
    pub failed_requests: u64,
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub variations: BTreeMap<String, Variation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variation {
    pub evaluations: u64,
    pub ai_calls: u64,
    pub successes: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency: VariationLatency,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationLatency {
    pub evaluation: Summary,
    pub ai_layer: Summary,
    pub llm: Summary,
    pub time_to_first_token: Summary,
    pub end_to_end: Summary,
}

/// The stages of one AI call that have a latency histogram per variation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Evaluation,
    AiLayer,
    Llm,
    TimeToFirstToken,
    EndToEnd,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Evaluation,
        Stage::AiLayer,
        Stage::Llm,
        Stage::TimeToFirstToken,
        Stage::EndToEnd,
    ];

    /// The metric name in baselines and `--tolerance`.
    pub fn key(self) -> &'static str {
        match self {
            Stage::Evaluation => "evaluation",
            Stage::AiLayer => "ai_layer",
            Stage::Llm => "llm",
            Stage::TimeToFirstToken => "ttft",
            Stage::EndToEnd => "end_to_end",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::Evaluation => "SDK evaluation",
            Stage::AiLayer => "AI Config layer",
            Stage::Llm => "LLM call",
            Stage::TimeToFirstToken => "time to first token",
            Stage::EndToEnd => "end to end",
        }
    }
}

impl VariationLatency {
    pub fn of(&self, stage: Stage) -> &Summary {
        match stage {
            Stage::Evaluation => &self.evaluation,
            Stage::AiLayer => &self.ai_layer,
            Stage::Llm => &self.llm,
            Stage::TimeToFirstToken => &self.time_to_first_token,
            Stage::EndToEnd => &self.end_to_end,
        }
    }
}

/// A latency histogram's summary in milliseconds, with the histogram itself: the same
/// type the runner writes.
pub use crate::metrics::LatencySummary as Summary;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Second {
    pub second: usize,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Events {
    pub tracked: BTreeMap<String, u64>,
    pub received: BTreeMap<String, u64>,
    /// Per AI Config: evaluations made, summary counts received.
    pub evaluations: BTreeMap<String, (u64, u64)>,
    pub payloads: u64,
    pub duplicate_payloads: u64,
    pub rejected_payloads: u64,
    pub flush_latency: Summary,
    pub complete: bool,
}

impl Events {
    /// Tracker events sent, and how many of them mock-ld received.
    pub fn tracker_totals(&self) -> (u64, u64) {
        let sent = self.tracked.values().sum();
        let received = self
            .tracked
            .iter()
            .map(|(k, &n)| self.received.get(k).copied().unwrap_or(0).min(n))
            .sum();
        (sent, received)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub at_ms: f64,
    pub config: String,
    pub description: String,
    pub apply_ms: f64,
    pub propagation: Summary,
    pub clients_missed: usize,
    pub error: Option<String>,
}

/// The schema version this build writes (and so reads).
pub const SCHEMA_VERSION: u32 = crate::runner::results::SCHEMA_VERSION;

pub fn load(path: &Path) -> Result<Results, InputError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: name.clone(),
        source,
    })?;
    let results: Results = serde_json::from_str(&text).map_err(|source| InputError::Parse {
        path: name.clone(),
        source,
    })?;
    if results.schema_version != SCHEMA_VERSION {
        return Err(InputError::Version {
            path: name,
            found: results.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(results)
}

/// A finished run's results, read the way a file of them is, so that the reports of `run`
/// and of `report results.json` are the same.
pub fn from_run(
    results: &crate::runner::results::RunResults,
) -> Result<Results, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(results)?)
}

impl Results {
    /// Every variation, as (config, variation key, variation).
    pub fn variations(&self) -> impl Iterator<Item = (&str, &str, &Variation)> {
        self.configs.iter().flat_map(|(c, config)| {
            config
                .variations
                .iter()
                .map(move |(k, v)| (c.as_str(), k.as_str(), v))
        })
    }

    /// One stage's latency over every variation (their histograms merged).
    pub fn overall(&self, stage: Stage) -> Result<Histogram<u64>, InputError> {
        let mut merged = empty_histogram();
        for (_, _, v) in self.variations() {
            merged
                .add(v.latency.of(stage).histogram()?)
                .map_err(|e| InputError::Histogram(e.to_string()))?;
        }
        Ok(merged)
    }
}

/// An empty histogram with the bounds the runner records with.
pub use crate::metrics::empty_histogram;

impl Summary {
    pub fn histogram(&self) -> Result<Histogram<u64>, InputError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.hdr)
            .map_err(|e| InputError::Histogram(e.to_string()))?;
        Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| InputError::Histogram(format!("{e:?}")))
    }

    /// The summary of a histogram of microseconds, as the runner writes it.
    pub fn of(h: &Histogram<u64>) -> Summary {
        crate::metrics::summarize(h)
    }
}
