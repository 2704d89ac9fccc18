//! `junit.xml`: one test case per check outcome, so CI systems that read JUnit (GitLab, Jenkins,
//! Buildkite, test-reporter actions) list each check with its figures.

use crate::results::checks::{CheckOutcome, Status};
use crate::results::comparison::{self, Row};
use crate::results::verdict::{Outcome, NO_CHECKS};
use crate::results::RunResults;

/// Text made safe for XML content and attribute values, without the control characters
/// XML 1.0 forbids.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// One test case per check and one per compared baseline metric. Failed checks and
/// regressions are failures (a regression's message has the measured value, the baseline and
/// the tolerance); inconclusive checks are skipped with the reason. An incomplete or
/// unchecked run gets a test case of its own that says so: failed when the run did not
/// complete, skipped when nothing could fail, so no JUnit reader shows either as green.
pub fn render(r: &RunResults) -> String {
    let suite = esc(&r.scenario.name);
    let mut cases: Vec<Case> = r.checks.iter().map(|o| check_case(&suite, o)).collect();
    if let Some(c) = &r.baseline {
        cases.extend(
            c.rows
                .iter()
                .filter_map(|row| baseline_case(&suite, &c.baseline, row)),
        );
    }
    if let Some(case) = run_case(&suite, r) {
        cases.insert(0, case);
    }
    let tests = cases.len();
    let failures = cases.iter().filter(|c| c.kind == CaseKind::Failure).count();
    let skipped = cases.iter().filter(|c| c.kind == CaseKind::Skipped).count();
    let time = r.duration_ms / 1000.0;
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"aiconfig-harness\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n    <properties>\n      <property name=\"verdict\" value=\"{}\"/>\n      <property name=\"exitCode\" value=\"{}\"/>\n      <property name=\"sdk\" value=\"{}\"/>\n    </properties>\n",
        esc(&r.verdict.headline),
        r.verdict.exit_code,
        esc(&r.load.sdk.describe())
    );
    for case in cases {
        out += &case.xml;
    }
    out + "  </testsuite>\n</testsuites>\n"
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CaseKind {
    Pass,
    Failure,
    Skipped,
}

struct Case {
    kind: CaseKind,
    xml: String,
}

fn case(classname: &str, name: &str, kind: CaseKind, message: &str, type_: &str) -> Case {
    let (name, message) = (esc(name), esc(message));
    let body = match kind {
        CaseKind::Pass => format!("<system-out>{message}</system-out>"),
        CaseKind::Failure => format!(
            "<failure message=\"{message}\" type=\"{}\">{message}</failure>",
            esc(type_)
        ),
        CaseKind::Skipped => format!("<skipped message=\"{message}\"/>"),
    };
    Case {
        kind,
        xml: format!("    <testcase classname=\"{classname}\" name=\"{name}\" time=\"0\">\n      {body}\n    </testcase>\n"),
    }
}

fn check_case(suite: &str, o: &CheckOutcome) -> Case {
    let kind = match o.status {
        Status::Pass => CaseKind::Pass,
        Status::Fail => CaseKind::Failure,
        Status::Inconclusive => CaseKind::Skipped,
    };
    case(
        &format!("{suite}.{}", o.kind()),
        &o.name,
        kind,
        &o.summary,
        o.kind(),
    )
}

/// Metrics on one side only were not compared: no test case, as the verdict does not count
/// them either.
fn baseline_case(suite: &str, baseline: &str, row: &Row) -> Option<Case> {
    let kind = match row.status {
        comparison::Status::Regressed => CaseKind::Failure,
        comparison::Status::Ok | comparison::Status::Improved => CaseKind::Pass,
        comparison::Status::Inconclusive => CaseKind::Skipped,
        comparison::Status::Missing | comparison::Status::New => return None,
    };
    let name = format!("{} against baseline {baseline}", row.metric);
    let classname = format!("{suite}.baseline");
    Some(case(&classname, &name, kind, &row.summary(), "regression"))
}

fn run_case(suite: &str, r: &RunResults) -> Option<Case> {
    let classname = format!("{suite}.run");
    match r.verdict.outcome {
        Outcome::Incomplete => Some(case(
            &classname,
            "run completed",
            CaseKind::Failure,
            &r.verdict.headline,
            "incomplete",
        )),
        Outcome::Unchecked => Some(case(
            &classname,
            "checks",
            CaseKind::Skipped,
            NO_CHECKS,
            "unchecked",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_control_characters() {
        assert_eq!(
            esc("a<b & \"c\" 'd'\u{1}>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
    }
}
