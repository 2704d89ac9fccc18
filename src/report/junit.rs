//! `junit.xml`: one test case per check outcome, so CI systems that read JUnit (GitLab, Jenkins,
//! Buildkite, test-reporter actions) list each check with its figures.

use super::input::checks::Status;
use super::input::Results;

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

/// Failed checks are failures; inconclusive ones are skipped, with the reason.
pub fn render(r: &Results) -> String {
    let outcomes = &r.checks.outcomes;
    let count = |status: Status| outcomes.iter().filter(|o| o.status == status).count();
    let (tests, failures, skipped) = (
        outcomes.len(),
        count(Status::Fail),
        count(Status::Inconclusive),
    );
    let (suite, time) = (esc(&r.scenario.name), r.duration_ms / 1000.0);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"aiconfig-harness\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n"
    );
    for o in outcomes {
        let (name, kind, summary) = (esc(&o.name), esc(&o.kind), esc(&o.summary));
        let body = match o.status {
            Status::Pass => format!("<system-out>{summary}</system-out>"),
            Status::Fail => {
                format!("<failure message=\"{summary}\" type=\"{kind}\">{summary}</failure>")
            }
            Status::Inconclusive => format!("<skipped message=\"{summary}\"/>"),
        };
        out += &format!("    <testcase classname=\"{suite}.{kind}\" name=\"{name}\" time=\"0\">\n      {body}\n    </testcase>\n");
    }
    out + "  </testsuite>\n</testsuites>\n"
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
