//! Rollout split, exact: for every context the SDK evaluated, the variation the predictor
//! computes from the targeting read back from the REST API must be the one the SDK served.
//! Agreement must be 100 %; every mismatch is listed (up to [`MAX_LISTED`]) with the context.

use std::collections::BTreeMap;

use super::predict::{Context, Malformed, Prediction, Predictor, Reason};
use super::targeting::Targeting;
use crate::results::checks::{CheckOutcome, Details, ExactDetails, Mismatch, Status};
use crate::scenario::population::Generator;
use crate::served::{DEFAULT, UNKNOWN, UNSEEN};

/// Mismatches listed in full; a systematic error makes thousands, and the count says how
/// many there were.
pub const MAX_LISTED: usize = 10_000;

/// Served variations of the contexts the predictor places in one rollout.
pub type RolloutCounts = BTreeMap<(Reason, String), BTreeMap<u16, u64>>;

/// The predictor against what was served, context by context.
#[derive(Debug, Default)]
pub struct Comparison {
    pub checked: u64,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    /// By (rule or fallthrough, context kind), the served codes (index + 1, or
    /// [`DEFAULT`]/[`UNKNOWN`]) and how many contexts got each.
    pub rollouts: RolloutCounts,
}

/// Compares every context of `served` that was evaluated; `served` holds the runner's
/// per-context codes.
pub fn compare(
    targeting: &Targeting,
    served: &[u16],
    population: &Generator,
) -> Result<Comparison, String> {
    let predictor = Predictor::new(&targeting.flag, &targeting.segments)?;
    let mut out = Comparison::default();
    for (index, &code) in served.iter().enumerate().filter(|(_, c)| **c != UNSEEN) {
        let json =
            serde_json::to_value(population.context(index as u64)?).map_err(|e| e.to_string())?;
        let context = Context::from_json(&json).map_err(|e| format!("context {index}: {e}"))?;
        let prediction = predictor.predict(&context);
        out.checked += 1;
        if let Some(p) = prediction.as_ref().ok().filter(|p| p.rolled_out) {
            *out.rollouts
                .entry((p.reason, context.kind_label()))
                .or_default()
                .entry(code)
                .or_default() += 1;
        }
        if expected_code(&prediction) == code {
            continue;
        }
        out.mismatch_count += 1;
        if out.mismatches.len() < MAX_LISTED {
            out.mismatches.push(mismatch(
                index as u64,
                &context,
                &prediction,
                code,
                &targeting.variation_keys,
            ));
        }
    }
    Ok(out)
}

/// What the runner records for a prediction: index + 1, or [`DEFAULT`] when the SDK must
/// serve the application's default (off without an off variation, or a malformed flag).
fn expected_code(prediction: &Result<Prediction, Malformed>) -> u16 {
    match prediction {
        Ok(Prediction {
            variation: Some(i), ..
        }) => *i as u16 + 1,
        _ => DEFAULT,
    }
}

fn mismatch(
    index: u64,
    context: &Context,
    prediction: &Result<Prediction, Malformed>,
    served: u16,
    keys: &[String],
) -> Mismatch {
    let expected_reason = match prediction {
        Ok(p) => reason_label(p.reason),
        Err(e) => e.to_string(),
    };
    Mismatch {
        context_index: index,
        context: context.describe(),
        context_kind: context.kind_label(),
        expected: code_label(expected_code(prediction), keys),
        expected_reason,
        served: code_label(served, keys),
    }
}

pub fn reason_label(reason: Reason) -> String {
    match reason {
        Reason::Off => "off".into(),
        Reason::TargetMatch => "target".into(),
        Reason::RuleMatch(i) => format!("rule {i}"),
        Reason::Fallthrough => "fallthrough".into(),
    }
}

/// A served code as a variation key.
pub fn code_label(code: u16, keys: &[String]) -> String {
    match code {
        DEFAULT => "(default)".into(),
        UNKNOWN => "(a variation the targeting does not have)".into(),
        UNSEEN => "(not evaluated)".into(),
        n => keys
            .get(usize::from(n) - 1)
            .cloned()
            .unwrap_or_else(|| format!("#{}", n - 1)),
    }
}

/// The outcome for one AI Config; `comparison` is `Err` with the reason it could not be made.
pub fn outcome(
    name: String,
    config: &str,
    targeting: Option<&Targeting>,
    comparison: Result<&Comparison, &str>,
    before_ms: Option<f64>,
) -> CheckOutcome {
    let mut details = ExactDetails {
        config: config.to_owned(),
        targeting_version: targeting.and_then(|t| t.version),
        contexts_checked: 0,
        agreed: 0,
        mismatch_count: 0,
        mismatches: Vec::new(),
        before_ms,
        note: None,
    };
    let (status, summary) = match comparison {
        Err(why) => {
            details.note = Some(why.to_owned());
            (Status::Inconclusive, format!("not checked: {why}"))
        }
        Ok(c) => {
            details.contexts_checked = c.checked;
            details.agreed = c.checked - c.mismatch_count;
            details.mismatch_count = c.mismatch_count;
            details.mismatches = c.mismatches.clone();
            summary(c, before_ms)
        }
    };
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::RolloutExact(details),
    }
}

fn summary(c: &Comparison, before_ms: Option<f64>) -> (Status, String) {
    let window = before_ms.map_or(String::new(), |ms| {
        format!(
            " (evaluations before the first action at {:.1} s)",
            ms / 1000.0
        )
    });
    if c.checked == 0 {
        return (
            Status::Inconclusive,
            format!("no context was evaluated{window}"),
        );
    }
    let agreed = c.checked - c.mismatch_count;
    let share = agreed as f64 / c.checked as f64 * 100.0;
    let mut line = format!(
        "{agreed} of {} contexts served the predicted variation ({share:.2} %){window}",
        c.checked
    );
    if let Some(first) = c.mismatches.first() {
        line += &format!(
            "; {} mismatches, e.g. {} ({}): expected {} by {}, served {}",
            c.mismatch_count,
            first.context,
            first.context_kind,
            first.expected,
            first.expected_reason,
            first.served
        );
    }
    let status = if c.mismatch_count == 0 {
        Status::Pass
    } else {
        Status::Fail
    };
    (status, line)
}
