//! `checks` of results.json read back: every check's outcome, and the details the reports
//! draw (split tests, exact agreement, thresholds). Other kinds' details stay as JSON.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    pub passed: bool,
    pub outcomes: Vec<Outcome>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The run could not tell; reported, never a failure.
    Inconclusive,
}

impl Status {
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
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub name: String,
    pub status: Status,
    /// The verdict's figures in one line.
    pub summary: String,
    /// `rollout_exact`, `rollout_srm`, `events_complete`, `threshold`, `actions_applied`.
    pub kind: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

impl Outcome {
    /// The details, when they are of this kind and shape.
    pub fn details_of<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Option<T> {
        (self.kind == kind)
            .then(|| serde_json::from_value(self.details.clone()).ok())
            .flatten()
    }
}

/// `rollout_srm`: chi-square tests of the served split against the configured weights.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SrmDetails {
    pub config: String,
    pub min_p_value: f64,
    pub tests: Vec<SplitTest>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitTest {
    /// `rule N` (with its description) or `fallthrough`.
    pub rollout: String,
    pub context_kind: String,
    pub arms: Vec<Arm>,
    pub contexts: u64,
    pub chi_square: Option<f64>,
    pub degrees_of_freedom: Option<usize>,
    pub p_value: Option<f64>,
    /// Absolute change of the largest arm's share detectable at 80 % power.
    pub min_detectable_effect: Option<f64>,
    pub status: Status,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arm {
    pub variation: String,
    /// The configured share, 0 to 1.
    pub weight: f64,
    pub expected: f64,
    pub observed: u64,
}

/// `rollout_exact`: the predicted variation of every context against the served one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactDetails {
    pub config: String,
    pub contexts_checked: u64,
    pub agreed: u64,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub context: String,
    pub context_kind: String,
    pub expected: String,
    pub expected_reason: String,
    pub served: String,
}
