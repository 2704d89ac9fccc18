//! The verdict of a run: computed once, here, from every check, every compared baseline
//! metric and the run's status, and stored in the results. The exit code, the terminal,
//! `report.html`, `summary.md`, `junit.xml` and the job summary render it; none of them
//! decides anything.
//!
//! Precedence: a run that did not complete is `incomplete` whatever its checks said; then
//! any failed check or regressed metric makes it `failed`; then any inconclusive check makes
//! it `inconclusive`; a run with nothing that could fail is `unchecked`; else `passed`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::checks::{CheckOutcome, Status};
use super::comparison::{self, Comparison};

/// Every check passed and no baseline metric regressed.
pub const EXIT_PASSED: u8 = 0;
/// A check failed or a baseline metric regressed.
pub const EXIT_FAILED: u8 = 1;
/// Usage or input error: nothing was run, or nothing could be read.
pub const EXIT_INPUT_ERROR: u8 = 2;
/// Nothing failed, but at least one check could not tell.
pub const EXIT_INCONCLUSIVE: u8 = 3;
/// The run did not complete (interrupted, aborted by a threshold, or its setup failed),
/// whatever its checks said.
pub const EXIT_INCOMPLETE: u8 = 4;

/// The exit codes, for `--help` and README.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 every check passed; 1 a check failed or a baseline metric regressed; 2 usage or input error; 3 nothing failed but a check was inconclusive; 4 the run did not complete (interrupted, aborted by a threshold, setup failed), whatever its checks said. `report` and `compare` exit as the run would have.";

/// How far the run got.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RunStatus {
    Complete,
    /// Stopped by Ctrl-C: everything measured up to then.
    Interrupted,
    /// Stopped by a threshold with `abort_on_fail`.
    Aborted {
        threshold: String,
    },
    /// A worker process of the Python or Node SDK crashed, stopped answering or broke the
    /// protocol: the load was stopped, and what the other workers measured is partial.
    WorkerFailed {
        message: String,
    },
    /// The scenario could not be set up or the SDKs not started; nothing was measured.
    SetupFailed {
        message: String,
    },
}

impl RunStatus {
    pub fn is_complete(&self) -> bool {
        *self == RunStatus::Complete
    }

    /// Why the run did not complete, in a few words; `None` when it did.
    pub fn incomplete_reason(&self) -> Option<String> {
        match self {
            RunStatus::Complete => None,
            RunStatus::Interrupted => Some("interrupted (Ctrl-C): partial results".into()),
            RunStatus::Aborted { threshold } => Some(format!(
                "aborted by threshold {threshold:?}: partial results"
            )),
            RunStatus::WorkerFailed { message } => {
                Some(format!("aborted, a worker failed: {message}"))
            }
            RunStatus::SetupFailed { message } => Some(format!("setup failed: {message}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Passed,
    Failed,
    Inconclusive,
    /// No check and no baseline: this run cannot fail.
    Unchecked,
    Incomplete,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed | Outcome::Unchecked => EXIT_PASSED,
            Outcome::Failed => EXIT_FAILED,
            Outcome::Inconclusive => EXIT_INCONCLUSIVE,
            Outcome::Incomplete => EXIT_INCOMPLETE,
        }
    }

    pub fn mark(self) -> &'static str {
        match self {
            Outcome::Passed => "✅",
            Outcome::Failed => "❌",
            Outcome::Inconclusive | Outcome::Unchecked | Outcome::Incomplete => "⚠️",
        }
    }

    /// For the terminal: `PASSED`, `FAILED`, ...
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Unchecked => "NO CHECKS",
            Outcome::Incomplete => "INCOMPLETE",
        }
    }
}

/// What every output shows as the run's result.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub outcome: Outcome,
    pub exit_code: u8,
    /// One line, the same in every output, e.g. `2 of 5 checks failed; 1 of 40 baseline
    /// metrics regressed`.
    pub headline: String,
    pub checks: Tally,
    /// Compared baseline metrics (those on both sides); `None` without a baseline.
    pub baseline: Option<Tally>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub inconclusive: usize,
}

impl Tally {
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.inconclusive
    }
}

/// The warning a run without checks carries in every output.
pub const NO_CHECKS: &str = "no checks: this run cannot fail";

impl Verdict {
    /// `overload` is why the load generator was overloaded, if it was: the checks and
    /// rows it made inconclusive are already so; the headline says why.
    pub fn of(
        checks: &[CheckOutcome],
        comparison: Option<&Comparison>,
        status: &RunStatus,
        overload: Option<String>,
    ) -> Verdict {
        let tally = tally_checks(checks);
        let baseline = comparison.map(tally_baseline);
        let failed = tally.failed + baseline.map_or(0, |b| b.failed);
        let asked_for = checks.iter().filter(|c| !c.is_built_in()).count();
        let outcome = if !status.is_complete() {
            Outcome::Incomplete
        } else if failed > 0 {
            Outcome::Failed
        } else if tally.inconclusive + baseline.map_or(0, |b| b.inconclusive) > 0 {
            Outcome::Inconclusive
        } else if asked_for == 0 && baseline.is_none() {
            Outcome::Unchecked
        } else {
            Outcome::Passed
        };
        Verdict {
            outcome,
            exit_code: outcome.exit_code(),
            headline: headline(outcome, &tally, baseline.as_ref(), status, overload),
            checks: tally,
            baseline,
        }
    }
}

fn tally_checks(checks: &[CheckOutcome]) -> Tally {
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    Tally {
        passed: count(Status::Pass),
        failed: count(Status::Fail),
        inconclusive: count(Status::Inconclusive),
    }
}

/// Metrics on one side only were not compared, so they are not counted.
fn tally_baseline(c: &Comparison) -> Tally {
    let mut tally = Tally::default();
    for row in &c.rows {
        match row.status {
            comparison::Status::Regressed => tally.failed += 1,
            comparison::Status::Ok | comparison::Status::Improved => tally.passed += 1,
            comparison::Status::Inconclusive => tally.inconclusive += 1,
            comparison::Status::Missing | comparison::Status::New => {}
        }
    }
    tally
}

fn headline(
    outcome: Outcome,
    checks: &Tally,
    baseline: Option<&Tally>,
    status: &RunStatus,
    overload: Option<String>,
) -> String {
    // The outcome's word (`INCOMPLETE`, `FAILED`, ...) is each output's to show beside it.
    let mut parts: Vec<String> = status.incomplete_reason().into_iter().collect();
    parts.extend(overload);
    if outcome == Outcome::Unchecked {
        parts.push(NO_CHECKS.to_owned());
    } else if checks.total() > 0 {
        parts.push(tally_line(checks, "checks"));
    }
    if let Some(b) = baseline {
        parts.push(baseline_line(b));
    }
    parts.join("; ")
}

/// `3 of 4 checks passed, 1 inconclusive` or `1 of 4 checks failed`: a run is never
/// called passed while something is inconclusive.
fn tally_line(t: &Tally, what: &str) -> String {
    let total = t.total();
    let mut line = if t.failed > 0 {
        format!("{} of {total} {what} failed", t.failed)
    } else {
        format!("{} of {total} {what} passed", t.passed)
    };
    if t.inconclusive > 0 {
        line += &format!(", {} inconclusive", t.inconclusive);
    }
    line
}

fn baseline_line(b: &Tally) -> String {
    let mut line = if b.failed > 0 {
        format!("{} of {} baseline metrics regressed", b.failed, b.total())
    } else {
        format!(
            "{} of {} baseline metrics within tolerance",
            b.passed,
            b.total()
        )
    };
    if b.inconclusive > 0 {
        line += &format!(", {} inconclusive", b.inconclusive);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::checks::{ActionDetails, Details};

    fn check(status: Status) -> CheckOutcome {
        CheckOutcome {
            name: "c".into(),
            status,
            summary: String::new(),
            details: Details::Threshold(Default::default()),
        }
    }

    fn built_in(status: Status) -> CheckOutcome {
        CheckOutcome {
            details: Details::ActionsApplied(ActionDetails::default()),
            ..check(status)
        }
    }

    fn regressed_comparison() -> Comparison {
        let row = |status| comparison::Row {
            metric: "llm".into(),
            kind: comparison::RowKind::Unmatched,
            status,
        };
        Comparison {
            baseline: "b".into(),
            overload: None,
            rows: vec![
                row(comparison::Status::Ok),
                row(comparison::Status::Regressed),
                row(comparison::Status::Missing),
            ],
        }
    }

    #[test]
    fn each_outcome_has_its_exit_code_and_headline() {
        let complete = RunStatus::Complete;
        let v = Verdict::of(&[check(Status::Pass)], None, &complete, None);
        assert_eq!((v.outcome, v.exit_code), (Outcome::Passed, 0));
        assert_eq!(v.headline, "1 of 1 checks passed");

        let v = Verdict::of(
            &[check(Status::Pass), check(Status::Fail)],
            None,
            &complete,
            None,
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, 1));
        assert_eq!(v.headline, "1 of 2 checks failed");

        let v = Verdict::of(
            &[check(Status::Pass), check(Status::Inconclusive)],
            None,
            &complete,
            None,
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Inconclusive, 3));
        assert_eq!(v.headline, "1 of 2 checks passed, 1 inconclusive");

        let v = Verdict::of(&[], None, &complete, None);
        assert_eq!((v.outcome, v.exit_code), (Outcome::Unchecked, 0));
        assert_eq!(v.headline, NO_CHECKS);
    }

    #[test]
    fn a_regression_alone_fails_and_one_sided_metrics_are_not_counted() {
        let c = regressed_comparison();
        let v = Verdict::of(&[check(Status::Pass)], Some(&c), &RunStatus::Complete, None);
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, 1));
        assert_eq!(
            v.headline,
            "1 of 1 checks passed; 1 of 2 baseline metrics regressed"
        );
        // A baseline is something that can fail: with it, a run without checks is checked.
        let v = Verdict::of(&[], Some(&c), &RunStatus::Complete, None);
        assert_eq!(v.outcome, Outcome::Failed);
    }

    #[test]
    fn an_incomplete_run_is_incomplete_whatever_its_checks_said() {
        for status in [
            RunStatus::Interrupted,
            RunStatus::Aborted {
                threshold: "llm.p99".into(),
            },
            RunStatus::SetupFailed {
                message: "401".into(),
            },
        ] {
            for checks in [vec![check(Status::Pass)], vec![check(Status::Fail)], vec![]] {
                let v = Verdict::of(&checks, None, &status, None);
                assert_eq!((v.outcome, v.exit_code), (Outcome::Incomplete, 4));
                let reason = status.incomplete_reason().unwrap();
                assert!(v.headline.starts_with(&reason), "{}", v.headline);
            }
        }
    }

    #[test]
    fn inconclusive_baseline_rows_make_the_run_inconclusive_and_the_headline_says_why() {
        let mut c = regressed_comparison();
        c.rows[1].status = comparison::Status::Inconclusive;
        let overload = "the load generator was overloaded (lag probe p99 34.2 ms > 20 ms)";
        let v = Verdict::of(
            &[check(Status::Pass)],
            Some(&c),
            &RunStatus::Complete,
            Some(overload.into()),
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Inconclusive, 3));
        assert_eq!(
            v.headline,
            format!("{overload}; 1 of 1 checks passed; 1 of 2 baseline metrics within tolerance, 1 inconclusive")
        );
    }

    #[test]
    fn built_in_checks_alone_leave_a_run_unchecked_but_still_fail_it() {
        let v = Verdict::of(&[built_in(Status::Pass)], None, &RunStatus::Complete, None);
        assert_eq!(v.outcome, Outcome::Unchecked);
        let v = Verdict::of(&[built_in(Status::Fail)], None, &RunStatus::Complete, None);
        assert_eq!(v.outcome, Outcome::Failed);
    }
}
