//! What the checks found: every outcome is named, has a status and one line of figures,
//! and the figures themselves under `details`, whose shape depends on `kind`:
//!
//! ```json
//! {"name": "…", "status": "pass" | "fail" | "inconclusive", "summary": "…",
//!  "kind": "rollout_exact" | "rollout_srm" | "events_complete" | "threshold" | "actions_applied"
//!          | "stall" | "sdk_parity",
//!  "details": {…}}
//! ```
//!
//! `checks` computes them; the verdict, the reports and JUnit only read them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The run cannot tell: too small a sample, nothing to measure, or no way to measure it
    /// against this target. Never shown as passed.
    Inconclusive,
}

impl Status {
    /// For the terminal: `PASS`, `FAIL`, `INCONCLUSIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// For tables: `pass`, `FAIL`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Inconclusive => "inconclusive",
        }
    }

    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Fail => "❌",
            Status::Inconclusive => "⚠️",
        }
    }

    /// Fail if any fails, else pass if any passes, else inconclusive.
    pub fn combine(statuses: impl IntoIterator<Item = Status>) -> Status {
        let statuses: Vec<Status> = statuses.into_iter().collect();
        if statuses.contains(&Status::Fail) {
            Status::Fail
        } else if statuses.contains(&Status::Pass) {
            Status::Pass
        } else {
            Status::Inconclusive
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub name: String,
    pub status: Status,
    /// The verdict's figures in one line.
    pub summary: String,
    #[serde(flatten)]
    pub details: Details,
}

impl CheckOutcome {
    /// The `kind` written to results.json, e.g. `rollout_srm`.
    pub fn kind(&self) -> &'static str {
        match self.details {
            Details::RolloutExact(_) => "rollout_exact",
            Details::RolloutSrm(_) => "rollout_srm",
            Details::EventsComplete(_) => "events_complete",
            Details::Threshold(_) => "threshold",
            Details::ActionsApplied(_) => "actions_applied",
            Details::Stall(_) => "stall",
            Details::SdkParity(_) => "sdk_parity",
        }
    }

    /// Whether the harness adds this check by itself, rather than the scenario asking for it.
    pub fn is_built_in(&self) -> bool {
        matches!(
            self.details,
            Details::ActionsApplied(_) | Details::Stall(_) | Details::SdkParity(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", content = "details", rename_all = "snake_case")]
pub enum Details {
    RolloutExact(ExactDetails),
    RolloutSrm(SrmDetails),
    EventsComplete(EventDetails),
    Threshold(ThresholdDetails),
    ActionsApplied(ActionDetails),
    Stall(StallDetails),
    SdkParity(ParityDetails),
}

/// One context served something else than predicted.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// Its index in the population (request `i` uses context `i % count`).
    pub context_index: u64,
    /// The key, or `kind=key,…` for a multi-kind context.
    pub context: String,
    pub context_kind: String,
    /// The predicted variation key, or `(default)`.
    pub expected: String,
    /// Why the predictor chose it: `target`, `rule N`, `fallthrough`, `off`, or the error.
    pub expected_reason: String,
    pub served: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExactDetails {
    pub config: String,
    /// The targeting's `_version` in the environment, as read back before the load.
    pub targeting_version: Option<u64>,
    pub contexts_checked: u64,
    pub agreed: u64,
    pub mismatch_count: u64,
    /// The first mismatches (`checks::exact::MAX_LISTED` at most); `mismatchCount` has them all.
    pub mismatches: Vec<Mismatch>,
    /// Only evaluations that finished before this time into the run (the first action)
    /// were compared.
    pub before_ms: Option<f64>,
    /// Why the check could not be made, when it could not.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Arm {
    pub variation: String,
    /// The configured share, 0 to 1.
    pub weight: f64,
    pub expected: f64,
    pub observed: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplitTest {
    /// `rule N` (with its description, if any) or `fallthrough`.
    pub rollout: String,
    pub rule_index: Option<usize>,
    pub context_kind: String,
    pub arms: Vec<Arm>,
    /// Contexts of this rollout served a variation outside it (the exact check lists them).
    pub outside: u64,
    pub contexts: u64,
    pub chi_square: Option<f64>,
    pub degrees_of_freedom: Option<usize>,
    pub p_value: Option<f64>,
    /// Absolute change of the largest arm's share detectable at 80 % power.
    pub min_detectable_effect: Option<f64>,
    pub status: Status,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrmDetails {
    pub config: String,
    pub min_p_value: f64,
    /// Always `predicted`: the rollout each context fell into is the predictor's.
    pub attribution: String,
    pub method: String,
    pub tests: Vec<SplitTest>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyCount {
    pub key: String,
    pub tracked: u64,
    pub received: u64,
    /// Tracked but never received.
    pub lost: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationCount {
    pub config: String,
    pub evaluations: u64,
    /// Evaluations in the summary counters mock-ld received.
    pub counted: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    /// LLM calls made, and those whose success or error event mock-ld received.
    pub ai_calls: u64,
    pub ai_calls_tracked: u64,
    pub by_key: Vec<KeyCount>,
    pub evaluations: Vec<EvaluationCount>,
    pub lost_events: u64,
    pub payloads: u64,
    /// Retried payloads mock-ld recognised by payload id and counted once.
    pub duplicate_payloads: u64,
    pub rejected_payloads: u64,
    /// Events and summary counts mock-ld counted without their key (`--max-stat-keys`).
    #[serde(default)]
    pub uncounted_by_key: u64,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionDetails {
    pub actions: usize,
    /// Actions whose REST call failed.
    pub failed: usize,
    /// SDK clients that never saw a change, over all actions.
    pub clients_missed: usize,
    /// The slowest propagation to any client, in milliseconds.
    pub max_propagation_ms: f64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdDetails {
    pub metric: String,
    pub config: Option<String>,
    pub variation: Option<String>,
    /// The limit when it is a maximum; `None` when it is a minimum.
    pub max: Option<f64>,
    /// The limit when it is a minimum.
    #[serde(default)]
    pub min: Option<f64>,
    /// The whole run's value, or the worst window's.
    pub value: Option<f64>,
    /// `ms`, `ratio`, `usd`, `per_s`, `tokens` or `events`.
    pub unit: String,
    /// Latencies recorded, AI calls, or evaluations (requests overall) behind the value
    /// (the worst window's, when windowed).
    pub samples: u64,
    /// With `window`: its length in seconds.
    #[serde(default)]
    pub window_seconds: Option<u64>,
    /// Where the worst window starts, in seconds into the load.
    #[serde(default)]
    pub window_start_second: Option<usize>,
    /// With `window`: the windows that had `min_samples` samples and were judged.
    #[serde(default)]
    pub windows_judged: Option<usize>,
    #[serde(default)]
    pub min_samples: Option<u64>,
    pub note: Option<String>,
}

/// The built-in stall check: the longest run of seconds with requests in flight and none
/// completed, against the longest planned request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StallDetails {
    /// The longest run of seconds with requests in flight and none completed.
    pub longest_seconds: u64,
    /// Its first second, counted from the start of the load.
    pub from_second: Option<usize>,
    pub limit_ms: f64,
    /// How the limit was set.
    pub rule: String,
}

/// The built-in `sdk_parity` check of a Python or Node run: the sample's contexts run again
/// through one worker and through the Rust SDK, after the load; their tracker events and
/// served variations compared context by context, and the served ones with the predictor.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParityDetails {
    /// The worker SDK compared with the Rust SDK: `python` or `node`.
    pub sdk: String,
    /// Requests 0..sample (`[load] parity_sample`, at most the population).
    pub sample: u64,
    /// Distinct context keys of the sample.
    pub contexts: u64,
    /// Tracker (custom) events compared, `$ld:ai:sdk:info` left out, per side.
    pub worker_events: u64,
    pub rust_events: u64,
    /// Per context and AI Config, the served variation compared between the two SDKs.
    pub assignments_compared: u64,
    /// Of those, compared with the predictor too (AI Configs whose targeting was read).
    pub predicted: u64,
    /// Every difference found; `differences` lists the first of them.
    pub difference_count: u64,
    pub differences: Vec<ParityDifference>,
    /// Why the check could not be made, when it could not; or what was left out of it (a
    /// team handler's own tracking).
    pub note: Option<String>,
}

/// One way the worker's SDK and the Rust SDK (or the predictor) disagreed on a context.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParityDifference {
    /// The context's key, `kind:key` (a multi-context's joined by `|`).
    pub context: String,
    /// The event key (`$ld:ai:tokens:output`), or `served <config>` for an assignment.
    pub event: String,
    /// The field that differs (`metricValue`, `data.variationKey`, …), or `count` when one
    /// side sent an event the other did not.
    pub field: String,
    pub rust: String,
    pub worker: String,
    /// For an assignment: what the predictor computes from the targeting, when it was read.
    pub predicted: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_combine_worst_first() {
        assert_eq!(
            Status::combine([Status::Pass, Status::Inconclusive]),
            Status::Pass
        );
        assert_eq!(Status::combine([Status::Pass, Status::Fail]), Status::Fail);
        assert_eq!(
            Status::combine([Status::Inconclusive]),
            Status::Inconclusive
        );
        assert_eq!(Status::combine([]), Status::Inconclusive);
    }
}
