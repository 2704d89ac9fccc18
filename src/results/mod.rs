//! Everything a run produces, as written to `results.json`: measurements, counts, cost,
//! check outcomes, the baseline comparison, the run's status and its verdict. One model:
//! `runner` fills it, `cost`, `checks` and `compare` compute parts of it, and `report`,
//! the terminal summary and the exit code only read it. `docs/results.schema.json` is
//! generated from these types (`cargo test --test schema`, `UPDATE_SCHEMA=1` to rewrite).
//!
//! Modules: [`latency`] (percentiles with their n, and the HDR histogram), [`checks`]
//! (outcomes), [`cost`], [`faults`] (the fault timeline as run), [`comparison`] (against a baseline), [`harness`] (the load
//! generator's own health), [`simulated`] (the simulated LLM provider's profiles and
//! lateness), [`verdict`].

pub mod checks;
pub mod comparison;
pub mod cost;
pub mod faults;
pub mod harness;
pub mod latency;
pub mod restarts;
pub mod sdk_start;
pub mod simulated;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use checks::CheckOutcome;
use comparison::Comparison;
use cost::CostReport;
use harness::HarnessHealth;
pub use latency::LatencySummary;
use latency::{empty_histogram, HistogramError};
use simulated::SimulatedInfo;
use verdict::{RunStatus, Verdict};

/// Bumped whenever a field changes meaning or disappears; a file of another version is
/// refused with both versions named. 3: one verdict, the run's status (was `partial`), the
/// baseline comparison, checks as a list (were `{schemaVersion, passed, outcomes}`),
/// `prices` only under `cost`. 4: `harness` (lag, CPU, pressure, overload; `cpuSeconds`
/// moved there from `load`), inconclusive baseline rows.
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunResults {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    /// Whether the run completed; an incomplete run has everything measured up to its end.
    pub status: RunStatus,
    pub duration_ms: f64,
    pub load: LoadInfo,
    /// The load generator's own lag, CPU and the machine's pressure, and whether it was
    /// overloaded (then latency checks and comparisons are inconclusive).
    pub harness: HarnessHealth,
    /// Whole requests: `corrected` from the scheduled start (coordinated omission),
    /// `raw` from the actual start.
    pub requests_corrected: LatencySummary,
    pub requests_raw: LatencySummary,
    pub configs: BTreeMap<String, ConfigResults>,
    pub context_kinds: BTreeMap<String, u64>,
    pub timeline: Vec<SecondResults>,
    /// The simulated LLM provider, when mock-ld's simulator answered the LLM calls; `None`
    /// for a real provider (`[llm] url`) or a target without mock-ld's control API.
    #[serde(default)]
    pub simulated: Option<SimulatedInfo>,
    pub events: Option<EventResults>,
    pub actions: Vec<ActionResults>,
    /// The scenario's `[[faults]]` as they ran, in the file's order; empty without any.
    #[serde(default)]
    pub faults: Vec<faults::FaultWindow>,
    /// The scenario's `[[restarts]]` of the embedded mock-ld as they ran; empty without any.
    #[serde(default)]
    pub restarts: Vec<restarts::RestartWindow>,
    /// Events payloads mock-ld refused in the scenario's environment during the run, and
    /// how many the SDKs sent again and mock-ld took; `None` without `[[faults]]` or without
    /// mock-ld's control API where the events go.
    #[serde(default)]
    pub refused_events: Option<mock_ld::faults::registry::RefusedEvents>,
    /// With `refused_events`: the tracker events accounted for as received, refused and not
    /// sent again, or never received.
    #[serde(default)]
    pub event_accounting: Option<faults::EventAccounting>,
    /// How the SDK clients initialized before the load; `None` when none started (setup
    /// failed) or for results written before it was measured.
    #[serde(default)]
    pub sdk_start: Option<sdk_start::SdkStart>,
    /// What the LLM calls cost, per model, config, variation and context kind.
    pub cost: CostReport,
    /// Every check's outcome.
    pub checks: Vec<CheckOutcome>,
    /// The comparison with `--baseline`, when one was given.
    pub baseline: Option<Comparison>,
    /// The run's result, from `checks`, `baseline` and `status`: what every output shows.
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub population: u64,
    /// Values the command line set in place of the scenario file's, by field path
    /// (`load.rate`, `population.count`, `seed`, ...).
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadInfo {
    pub model: String,
    pub sdk_clients: usize,
    pub requests: u64,
    pub failed_requests: u64,
    /// Open model: the scheduled rate; `achieved_rate` is what was started.
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
    /// The SDK that ran the load. Absent from results written before it was recorded,
    /// which all ran the Rust SDK.
    #[serde(default)]
    pub sdk: SdkInfo,
}

/// The SDK that ran the load, as it named itself.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkInfo {
    /// `rust`, `python` or `node`.
    pub name: String,
    /// The server SDK's version (`launchdarkly-server-sdk`, `@launchdarkly/node-server-sdk`).
    pub version: String,
    /// The AI SDK's version (for Rust: the harness's own AI layer).
    pub ai_sdk_version: String,
    /// The language runtime (`CPython 3.11.7`, `Node v20.20.2`), or `in-process`.
    pub runtime: String,
    /// Worker processes (Python, Node) or SDK clients (Rust).
    pub workers: usize,
}

impl SdkInfo {
    /// `python SDK 9.18.4 with AI SDK 1.2.0 (CPython 3.11.7, 2 workers)`; empty when
    /// unknown.
    pub fn describe(&self) -> String {
        if self.name.is_empty() {
            return String::new();
        }
        let units = if self.runtime == "in-process" {
            "SDK client"
        } else {
            "worker"
        };
        let plural = if self.workers == 1 { "" } else { "s" };
        format!(
            "{} SDK {} with AI SDK {} ({}, {} {units}{plural})",
            self.name, self.version, self.ai_sdk_version, self.runtime, self.workers
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResults {
    pub variations: BTreeMap<String, VariationResults>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariationResults {
    pub evaluations: u64,
    /// LLM calls made: each step's first call, its retries and its fallback call
    /// (`on_error`); without `on_error`, one per evaluation of an enabled config.
    pub ai_calls: u64,
    /// Of `aiCalls`, those that succeeded and those that failed: the provider's side, so
    /// `errors / aiCalls` is the `error_rate` a threshold judges, per LLM call.
    pub successes: u64,
    pub errors: u64,
    /// LLM calls to the step's model after its first (`on_error.retries`).
    #[serde(default)]
    pub retries: u64,
    /// Calls to `on_error.fallback_model`.
    #[serde(default)]
    pub fallbacks: u64,
    /// Of `fallbacks`, those that succeeded.
    #[serde(default)]
    pub fallback_successes: u64,
    /// Steps whose last LLM call, after retries and fallback, failed: what users got
    /// (over [`VariationResults::llm_steps`], the `failed_step_rate` a threshold judges).
    /// Without `on_error` it equals `errors`.
    #[serde(default)]
    pub failed_steps: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub feedback_positive: u64,
    pub feedback_negative: u64,
    pub latency: VariationLatency,
    /// LLM calls measured shorter than their simulator's plan, left out of `llmExcess`.
    #[serde(default)]
    pub llm_ahead_of_plan: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariationLatency {
    pub evaluation: LatencySummary,
    pub ai_layer: LatencySummary,
    pub llm: LatencySummary,
    /// The LLM latency the simulator drew, scaled back to real time (its planned wait over
    /// the time scale), for the calls whose answer told its plan: synthetic, not measured.
    /// Empty for a real provider and at time scale 0.
    #[serde(default)]
    pub llm_planned_real_time: LatencySummary,
    /// Measured minus planned LLM latency, both as scheduled (after the time scale, not
    /// scaled back): what the harness, the network and the simulator's lateness added.
    #[serde(default)]
    pub llm_excess: LatencySummary,
    pub time_to_first_token: LatencySummary,
    pub end_to_end: LatencySummary,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecondResults {
    pub second: usize,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// AI Config steps of this second's requests, and of them those served the fallback
    /// (the "(default)" variation: the SDK could not evaluate).
    #[serde(default)]
    pub evaluations: u64,
    #[serde(default)]
    pub fallback_served: u64,
}

/// What the SDKs sent versus what mock-ld received.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResults {
    /// Tracker events the AI layer handed to the SDKs, by key.
    pub tracked: BTreeMap<String, u64>,
    /// Custom events mock-ld received, by key.
    pub received: BTreeMap<String, u64>,
    /// Per AI Config key, evaluations made versus summary counts received.
    pub evaluations: BTreeMap<String, (u64, u64)>,
    pub payloads: u64,
    pub duplicate_payloads: u64,
    pub rejected_payloads: u64,
    /// One sample per flush the harness asked of every SDK client at once: every
    /// `[load.events] flush_interval` during the load (one flush outstanding at a time),
    /// from the flush until mock-ld had received as many custom events as had been handed
    /// to the SDKs before it, and the final flush after the load, until every tracked event
    /// had arrived.
    pub flush_latency: LatencySummary,
    /// Flushes whose events had not all arrived when the wait gave up (after 20 s, or 3 s
    /// without a new event): not in `flush_latency`. What such a flush still missed is
    /// taken as lost and not waited for again, so a later flush is timed to the events
    /// handed over before it less those; events that were only late can then end a later
    /// sample before its own events arrived.
    #[serde(default)]
    pub flushes_unconfirmed: u64,
    /// Whether every event arrived before the wait gave up.
    pub complete: bool,
    /// Custom events and summary counts mock-ld received but counted without their key,
    /// its maps being full (`--max-stat-keys`): a key's shortfall may be among them.
    #[serde(default)]
    pub uncounted_by_key: u64,
    /// Events mock-ld received, by kind (`custom`, `feature`, `index`, `summary`, ...).
    #[serde(default)]
    pub received_by_kind: BTreeMap<String, u64>,
    /// Per event kind, from each event's creation to mock-ld's receipt of it; kinds no
    /// SDK sends share `(other)`.
    #[serde(default)]
    pub delivery: BTreeMap<String, DeliveryResults>,
}

/// One event kind's delivery latency, as mock-ld measured it: its receipt of the request
/// minus the event's `creationDate` (a summary's `endDate`: its newest evaluation). The
/// dates are milliseconds, so are the figures.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResults {
    pub latency: LatencySummary,
    /// Events without a usable date: not in `latency`.
    pub undated: u64,
    /// Events dated after their receipt (the SDK's clock ahead of mock-ld's): not in
    /// `latency`.
    pub future: u64,
    /// Events dated more than an hour before their receipt: not in `latency`.
    pub too_old: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionResults {
    pub at_ms: f64,
    /// `flag` (a change to an AI Config) or `llm` (a change to the simulated LLM).
    #[serde(default = "flag_kind")]
    pub kind: String,
    /// The AI Config changed; empty for an `llm` action.
    pub config: String,
    pub description: String,
    /// The REST call that made the change.
    pub apply_ms: f64,
    /// From the REST call's start until each SDK client served the new flag version.
    pub propagation: LatencySummary,
    /// Clients that never saw the change before the wait gave up.
    pub clients_missed: usize,
    /// An `llm` action: when the model's profile was put back, in ms into the run.
    #[serde(default)]
    pub restored_at_ms: Option<f64>,
    pub error: Option<String>,
}

fn flag_kind() -> String {
    "flag".into()
}

impl ActionResults {
    /// The change was applied and reached every SDK client: what the timed-changes check
    /// requires of each action, and what every report marks.
    pub fn landed(&self) -> bool {
        self.error.is_none() && self.clients_missed == 0
    }

    /// What was changed, for tables: the AI Config, or the simulated LLM.
    pub fn target(&self) -> &str {
        if self.kind == "llm" {
            "(simulated LLM)"
        } else {
            &self.config
        }
    }

    /// The change as described, with the error that stopped it.
    pub fn change(&self) -> String {
        match &self.error {
            Some(e) => format!("{}: {e}", self.description),
            None => self.description.clone(),
        }
    }
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

/// The steps that called the LLM: each made one first call, and the rest of `ai_calls`
/// were its retries and its fallback call.
pub fn llm_steps(ai_calls: u64, retries: u64, fallbacks: u64) -> u64 {
    ai_calls.saturating_sub(retries + fallbacks)
}

impl VariationResults {
    /// The steps that called the LLM ([`llm_steps`]).
    pub fn llm_steps(&self) -> u64 {
        llm_steps(self.ai_calls, self.retries, self.fallbacks)
    }
}

impl VariationLatency {
    pub fn of(&self, stage: Stage) -> &LatencySummary {
        match stage {
            Stage::Evaluation => &self.evaluation,
            Stage::AiLayer => &self.ai_layer,
            Stage::Llm => &self.llm,
            Stage::TimeToFirstToken => &self.time_to_first_token,
            Stage::EndToEnd => &self.end_to_end,
        }
    }
}

impl EventResults {
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

impl RunResults {
    /// Every variation, as (config, variation key, variation).
    pub fn variations(&self) -> impl Iterator<Item = (&str, &str, &VariationResults)> {
        self.configs.iter().flat_map(|(c, config)| {
            config
                .variations
                .iter()
                .map(move |(k, v)| (c.as_str(), k.as_str(), v))
        })
    }

    /// One stage's latency over every variation (their histograms merged).
    pub fn overall(&self, stage: Stage) -> Result<Histogram<u64>, HistogramError> {
        let mut merged = empty_histogram();
        for (_, _, v) in self.variations() {
            merged
                .add(v.latency.of(stage).histogram()?)
                .map_err(|e| HistogramError(e.to_string()))?;
        }
        Ok(merged)
    }

    /// Sets (or replaces) the baseline comparison, and with it the verdict.
    pub fn set_baseline(&mut self, comparison: Option<Comparison>) {
        self.baseline = comparison;
        self.decide();
    }

    /// Computes the verdict from the checks, the baseline comparison and the status: the
    /// only place a run's result is decided.
    pub fn decide(&mut self) {
        self.verdict = Verdict::of(
            &self.checks,
            self.baseline.as_ref(),
            &self.status,
            self.harness.overload_note(),
        );
    }
}

/// Why a results file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a results file of schema version {SCHEMA_VERSION}: {source} (write one with `aiconfig-harness run --out DIR`)"
    )]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: schema version {found}, this build reads {SCHEMA_VERSION}; rerun the scenario with this build")]
    Version { path: String, found: u64 },
}

/// Reads a `results.json`; a file of another schema version is refused with both versions
/// named, before its fields are read.
pub fn load(path: &Path) -> Result<RunResults, ResultsError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: name.clone(),
        source,
    })?;
    let parse = |source| ResultsError::Parse {
        path: name.clone(),
        source,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(parse)?;
    match value
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64)
    {
        Some(found) if found != u64::from(SCHEMA_VERSION) => {
            return Err(ResultsError::Version { path: name, found })
        }
        _ => {}
    }
    serde_json::from_value(value).map_err(parse)
}

/// The JSON Schema of `results.json`, as committed in `docs/results.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RunResults);
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_another_schema_version_is_refused_naming_both_versions() {
        let dir = std::env::temp_dir().join(format!("results-version-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        std::fs::write(&path, r#"{"schemaVersion": 2, "partial": false}"#).unwrap();
        let message = load(&path).unwrap_err().to_string();
        assert!(
            message.contains("schema version 2, this build reads 4"),
            "{message}"
        );
        std::fs::write(&path, r#"{"schemaVersion": 4}"#).unwrap();
        let message = load(&path).unwrap_err().to_string();
        assert!(message.contains("not a results file"), "{message}");
        std::fs::remove_dir_all(dir).ok();
    }
}
