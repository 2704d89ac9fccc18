//! What the checks found, as written to `results.json` under `checks` (the input of reports,
//! JUnit and CI gates). Every outcome is named, has a status and one line of figures, and
//! the figures themselves under `details`, whose shape depends on `kind`:
//!
//! ```json
//! {"schemaVersion": 1, "passed": false, "outcomes": [
//!   {"name": "…", "status": "pass" | "fail" | "inconclusive", "summary": "…",
//!    "kind": "rollout_exact" | "rollout_srm" | "events_complete" | "threshold" | "actions_applied" | "stall",
//!    "details": {…}}]}
//! ```
//!
//! Field names are camelCase; a field is only ever added within a schema version.

use serde::Serialize;

/// Bumped whenever a field of these types changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    pub schema_version: u32,
    /// No outcome failed (inconclusive ones do not fail a run).
    pub passed: bool,
    pub outcomes: Vec<CheckOutcome>,
}

impl Checks {
    pub fn new(outcomes: Vec<CheckOutcome>) -> Self {
        let passed = outcomes.iter().all(|o| o.status != Status::Fail);
        Checks {
            schema_version: SCHEMA_VERSION,
            passed,
            outcomes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The run cannot tell: too small a sample, nothing to measure, or no way to measure it
    /// against this target. Reported, but does not fail the run.
    Inconclusive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Inconclusive => "INCONCLUSIVE",
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

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub name: String,
    pub status: Status,
    /// The verdict's figures in one line.
    pub summary: String,
    #[serde(flatten)]
    pub details: Details,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", content = "details", rename_all = "snake_case")]
pub enum Details {
    RolloutExact(super::exact::ExactDetails),
    RolloutSrm(super::srm::SrmDetails),
    EventsComplete(super::events::EventDetails),
    Threshold(super::threshold::ThresholdDetails),
    ActionsApplied(super::actions::ActionDetails),
    Stall(super::stall::StallDetails),
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
