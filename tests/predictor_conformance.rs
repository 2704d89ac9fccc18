//! The rollout predictor (`checks::predict`) against LaunchDarkly's own server-side
//! evaluation data (`../shared/conformance/sdk-test-harness`, see `tests/conformance.rs`):
//! for every evaluation it covers, the predicted variation index, reason kind and rule index
//! must be the expected ones. Skips with a message where `../shared` is absent.
//!
//! Not covered, and counted as skipped: flags with prerequisites (AI Configs have none), the
//! SDK's type checks of a call (`WRONG_TYPE`), which are not a matter of targeting, and
//! evaluations of a flag that does not exist.
//!
//! `cargo test --test predictor_conformance -- --nocapture` prints the summary.

#[allow(
    dead_code,
    reason = "shared with tests/conformance.rs, which uses all of it"
)]
mod conformance {
    pub mod expand;
    pub mod suite;
}

use std::collections::HashMap;
use std::path::Path;

use aiconfig_harness::checks::predict::{
    Context, Flag, Malformed, Prediction, Predictor, Reason, Segment,
};
use serde_json::Value;

use conformance::expand;
use conformance::suite::{Evaluation, Suite};

const DATA_DIR: &str = "../shared/conformance/sdk-test-harness";

enum Outcome {
    Passed,
    Skipped(&'static str),
    Failed(String),
}

#[test]
fn predictor_agrees_with_the_sdk_test_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA_DIR);
    if !dir.is_dir() {
        println!("skipping predictor conformance: {DATA_DIR} not found");
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    for file in &files {
        for instance in expand::load(file).unwrap_or_else(|e| panic!("bad test data: {e}")) {
            let suite: Suite = serde_json::from_value(instance.doc).unwrap_or_else(|e| {
                panic!(
                    "bad test data: {} [{}]: {e}",
                    instance.file, instance.params
                )
            });
            for eval in &suite.evaluations {
                let label = format!(
                    "{} [{}] {} / {}",
                    instance.file,
                    instance.params,
                    suite.name,
                    eval.display_name()
                );
                outcomes.push((label, check(&suite, eval)));
            }
        }
    }
    report(&outcomes);
}

fn check(suite: &Suite, eval: &Evaluation) -> Outcome {
    let expected_error = eval.expect.reason.get("errorKind").and_then(Value::as_str);
    if expected_error == Some("WRONG_TYPE") {
        return Outcome::Skipped("the SDK's type check");
    }
    let Some(flag_json) = suite.sdk_data.flags.get(&eval.flag_key) else {
        return match expected_error {
            Some("FLAG_NOT_FOUND") => Outcome::Skipped("no flag: nothing to predict"),
            _ => Outcome::Failed(format!(
                "no flag {}, expected {}",
                eval.flag_key, eval.expect.reason
            )),
        };
    };
    let mut flag: Flag = match serde_json::from_value(flag_json.clone()) {
        Ok(flag) => flag,
        Err(e) => return Outcome::Failed(format!("the predictor's model rejects the flag: {e}")),
    };
    flag.key.clone_from(&eval.flag_key);
    let segments: HashMap<String, Segment> = suite
        .sdk_data
        .segments
        .iter()
        .map(|(key, json)| {
            let mut segment: Segment = serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("segment {key}: {e}"));
            segment.key.clone_from(key);
            (key.clone(), segment)
        })
        .collect();
    let Ok(predictor) = Predictor::new(&flag, &segments) else {
        return Outcome::Skipped("prerequisites");
    };
    let context = Context::from_json(eval.context_json().expect("every evaluation has a context"))
        .unwrap_or_else(|e| panic!("context of {}: {e}", eval.display_name()));
    compare(&predictor.predict(&context), eval)
}

/// Variation index, reason kind, rule index and error kind must all be as expected.
fn compare(actual: &Result<Prediction, Malformed>, eval: &Evaluation) -> Outcome {
    let expect = &eval.expect;
    let (index, kind, rule) = match actual {
        Ok(p) => (
            p.variation.map(|i| i as i64),
            reason_kind(p.reason),
            rule_index(p.reason),
        ),
        Err(_) => (None, "ERROR", None),
    };
    let expected_kind = expect.reason["kind"].as_str().unwrap_or_default();
    let expected_rule = expect.reason["ruleIndex"].as_u64().map(|i| i as usize);
    let error_ok = kind != "ERROR" || expect.reason["errorKind"] == "MALFORMED_FLAG";
    if index == expect.variation_index && kind == expected_kind && rule == expected_rule && error_ok
    {
        Outcome::Passed
    } else {
        Outcome::Failed(format!(
            "expected variation {:?} reason {}; predicted {actual:?}",
            expect.variation_index, expect.reason
        ))
    }
}

fn reason_kind(reason: Reason) -> &'static str {
    match reason {
        Reason::Off => "OFF",
        Reason::TargetMatch => "TARGET_MATCH",
        Reason::RuleMatch(_) => "RULE_MATCH",
        Reason::Fallthrough => "FALLTHROUGH",
    }
}

fn rule_index(reason: Reason) -> Option<usize> {
    match reason {
        Reason::RuleMatch(i) => Some(i),
        _ => None,
    }
}

fn report(outcomes: &[(String, Outcome)]) {
    let passed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Passed))
        .count();
    let mut skipped: HashMap<&str, usize> = HashMap::new();
    for (_, o) in outcomes {
        if let Outcome::Skipped(why) = o {
            *skipped.entry(why).or_default() += 1;
        }
    }
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(label, o)| {
            if let Outcome::Failed(d) = o {
                Some(format!("FAILED {label}\n    {d}"))
            } else {
                None
            }
        })
        .collect();
    println!(
        "predictor conformance: {} evaluations, {passed} passed, {} failed, skipped: {skipped:?}",
        outcomes.len(),
        failures.len()
    );
    assert!(passed > 0, "no evaluation was checked");
    assert!(
        failures.is_empty(),
        "{} evaluations disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
