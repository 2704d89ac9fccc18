//! An independent predictor of which variation LaunchDarkly serves a context: the harness's
//! own implementation of server-side evaluation (`shared/spec/ld-sdk-protocol.md` §5), so that
//! what the SDK served can be checked against what the targeting, as read back from the REST
//! API, says it must serve. It shares no code with the SDK.
//!
//! Covered: flag on/off and the off variation, individual targets (`targets`,
//! `contextTargets`), rules of clauses with every operator, `segmentMatch` (included,
//! excluded, per-kind targets, segment rules with weights, nested segments), rollouts and
//! experiments with `bucketBy`, `contextKind` and `seed`, and the fallthrough. Prerequisites
//! are not: a flag with any is refused (AI Configs have none).
//!
//! Modules: [`context`] (context JSON), [`reference`] (attribute references), [`model`]
//! (flag and segment JSON), [`operators`], [`bucket`].

pub mod bucket;
pub mod context;
pub mod model;
pub mod operators;
pub mod reference;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use bucket::{bucket, Prefix};
pub use context::Context;
use model::{Clause, Rollout, Target, VariationOrRollout};
pub use model::{Flag, Segment};
use operators::Regexes;

/// Why a variation is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Off,
    TargetMatch,
    /// The index of the first rule whose clauses all match.
    RuleMatch(usize),
    Fallthrough,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// `None` only when the flag is off without an off variation (the default is served).
    pub variation: Option<usize>,
    pub reason: Reason,
    /// The variation came from a percentage rollout.
    pub rolled_out: bool,
}

/// The evaluation cannot give a variation: LaunchDarkly reports `MALFORMED_FLAG` and the
/// SDK serves the application's default.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("malformed flag: {0}")]
pub struct Malformed(pub String);

/// One flag and the segments it may reference, ready to evaluate many contexts.
pub struct Predictor<'a> {
    flag: &'a Flag,
    segments: &'a HashMap<String, Segment>,
    regexes: Regexes,
}

impl<'a> Predictor<'a> {
    /// `Err` when the flag uses what the predictor does not model (prerequisites).
    pub fn new(flag: &'a Flag, segments: &'a HashMap<String, Segment>) -> Result<Self, String> {
        if flag.prerequisites > 0 {
            return Err(format!(
                "flag {} has prerequisites, which the predictor does not model",
                flag.key
            ));
        }
        Ok(Predictor {
            flag,
            segments,
            regexes: Regexes::default(),
        })
    }

    /// Evaluation order: off, targets, rules in order, fallthrough.
    pub fn predict(&self, context: &Context) -> Result<Prediction, Malformed> {
        let flag = self.flag;
        if !flag.on {
            return match flag.off_variation {
                None => Ok(Prediction {
                    variation: None,
                    reason: Reason::Off,
                    rolled_out: false,
                }),
                Some(index) => self.served(index, Reason::Off, false),
            };
        }
        if let Some(index) = self.target_match(context) {
            return self.served(index, Reason::TargetMatch, false);
        }
        for (i, rule) in flag.rules.iter().enumerate() {
            if self.all_match(&rule.clauses, context, &mut HashSet::new())? {
                return self.resolve(&rule.serve, context, Reason::RuleMatch(i));
            }
        }
        self.resolve(&flag.fallthrough, context, Reason::Fallthrough)
    }

    fn served(
        &self,
        index: i64,
        reason: Reason,
        rolled_out: bool,
    ) -> Result<Prediction, Malformed> {
        match usize::try_from(index) {
            Ok(i) if i < self.flag.variations => Ok(Prediction {
                variation: Some(i),
                reason,
                rolled_out,
            }),
            _ => Err(Malformed(format!("variation index {index} out of range"))),
        }
    }

    /// `contextTargets` when there are any, else `targets`. A user-kind entry of
    /// `contextTargets` without values stands for the `targets` of the same variation.
    fn target_match(&self, context: &Context) -> Option<i64> {
        let flag = self.flag;
        if flag.context_targets.is_empty() {
            return flag
                .targets
                .iter()
                .find(|t| targets(t, context))
                .map(|t| t.variation);
        }
        flag.context_targets.iter().find_map(|ct| {
            if ct.kind() == "user" && ct.values.is_empty() {
                flag.targets
                    .iter()
                    .find(|t| t.variation == ct.variation && targets(t, context))
                    .map(|t| t.variation)
            } else {
                targets(ct, context).then_some(ct.variation)
            }
        })
    }

    fn resolve(
        &self,
        serve: &VariationOrRollout,
        context: &Context,
        reason: Reason,
    ) -> Result<Prediction, Malformed> {
        match (serve.variation, &serve.rollout) {
            (Some(index), _) => self.served(index, reason, false),
            (None, Some(rollout)) => {
                let index = self.roll_out(rollout, context)?;
                self.served(index, reason, true)
            }
            (None, None) => Err(Malformed("neither a variation nor a rollout".into())),
        }
    }

    /// The first variation whose running weight exceeds the bucket, else the last.
    fn roll_out(&self, rollout: &Rollout, context: &Context) -> Result<i64, Malformed> {
        let prefix = match rollout.seed {
            Some(seed) => Prefix::Seed(seed),
            None => Prefix::KeyAndSalt(&self.flag.key, &self.flag.salt),
        };
        let (bucket, _) = bucket(
            context,
            &rollout.bucket_by(),
            rollout.bucket_kind(),
            &prefix,
        )
        .map_err(Malformed)?;
        let mut sum = 0.0_f32;
        for weighted in &rollout.variations {
            sum += weighted.weight as f32 / 100_000.0;
            if bucket < sum {
                return Ok(weighted.variation);
            }
        }
        rollout
            .variations
            .last()
            .map(|w| w.variation)
            .ok_or_else(|| Malformed("a rollout without variations".into()))
    }

    /// Clauses are ANDed. `visiting` holds the segments being evaluated, to catch cycles.
    fn all_match(
        &self,
        clauses: &[Clause],
        context: &Context,
        visiting: &mut HashSet<String>,
    ) -> Result<bool, Malformed> {
        for clause in clauses {
            if !self.clause_matches(clause, context, visiting)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn clause_matches(
        &self,
        clause: &Clause,
        context: &Context,
        visiting: &mut HashSet<String>,
    ) -> Result<bool, Malformed> {
        if clause.op == "segmentMatch" {
            return self.segment_clause(clause, context, visiting);
        }
        let reference = clause.reference();
        if let Some(error) = reference.error() {
            return Err(Malformed(error.to_owned()));
        }
        let test = |value: &Value| {
            clause
                .values
                .iter()
                .any(|v| operators::matches(&clause.op, value, v, &self.regexes))
        };
        if reference.is_kind() {
            let any = context
                .parts()
                .iter()
                .any(|p| test(&Value::from(p.kind.as_str())));
            return Ok(any != clause.negate);
        }
        // A missing kind or attribute fails the clause whether or not it is negated.
        let Some(value) = context
            .part(clause.kind())
            .and_then(|p| p.value(&reference))
        else {
            return Ok(false);
        };
        let any = match value {
            Value::Null => return Ok(false),
            Value::Array(items) => items.iter().any(test),
            single => test(single),
        };
        Ok(any != clause.negate)
    }

    fn segment_clause(
        &self,
        clause: &Clause,
        context: &Context,
        visiting: &mut HashSet<String>,
    ) -> Result<bool, Malformed> {
        for key in clause.values.iter().filter_map(Value::as_str) {
            if let Some(segment) = self.segments.get(key) {
                if self.in_segment(segment, context, visiting)? {
                    return Ok(!clause.negate);
                }
            }
        }
        Ok(clause.negate)
    }

    /// Included, then excluded, then the segment's rules.
    fn in_segment(
        &self,
        segment: &Segment,
        context: &Context,
        visiting: &mut HashSet<String>,
    ) -> Result<bool, Malformed> {
        if !visiting.insert(segment.key.clone()) {
            return Err(Malformed(format!(
                "segment {} references itself",
                segment.key
            )));
        }
        let listed = |keys: &[String], by_kind: &[model::SegmentTarget]| {
            by_kind.iter().any(|t| {
                context
                    .part(&t.context_kind)
                    .is_some_and(|p| t.values.contains(&p.key))
            }) || context.part("user").is_some_and(|p| keys.contains(&p.key))
        };
        let contained = if listed(&segment.included, &segment.included_contexts) {
            true
        } else if listed(&segment.excluded, &segment.excluded_contexts) {
            false
        } else {
            self.segment_rules(segment, context, visiting)?
        };
        visiting.remove(&segment.key);
        Ok(contained)
    }

    fn segment_rules(
        &self,
        segment: &Segment,
        context: &Context,
        visiting: &mut HashSet<String>,
    ) -> Result<bool, Malformed> {
        for rule in &segment.rules {
            if !self.all_match(&rule.clauses, context, visiting)? {
                continue;
            }
            let Some(weight) = rule.weight.filter(|w| *w >= 0.0) else {
                return Ok(true);
            };
            let prefix = Prefix::KeyAndSalt(&segment.key, &segment.salt);
            let (bucket, _) = bucket(context, &rule.bucket_by(), rule.bucket_kind(), &prefix)
                .map_err(Malformed)?;
            if bucket < weight as f32 / 100_000.0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn targets(target: &Target, context: &Context) -> bool {
    context
        .part(target.kind())
        .is_some_and(|p| target.values.contains(&p.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(json: Value) -> Flag {
        serde_json::from_value(json).unwrap()
    }

    fn user(key: &str, tier: &str) -> Context {
        Context::from_json(&json!({"kind": "user", "key": key, "tier": tier})).unwrap()
    }

    #[test]
    fn targets_then_rules_then_fallthrough() {
        let f = flag(json!({
            "key": "f", "on": true, "salt": "s", "variations": [0, 1, 2, 3],
            "targets": [{"values": ["qa"], "variation": 3}],
            "rules": [{"clauses": [{"attribute": "segmentMatch", "op": "segmentMatch", "values": ["beta"]}], "variation": 2},
                      {"clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]}],
                       "rollout": {"variations": [{"variation": 1, "weight": 60000}, {"variation": 2, "weight": 40000}], "contextKind": "user", "bucketBy": "key"}}],
            "fallthrough": {"variation": 0}, "offVariation": 0
        }));
        let segments = HashMap::from([(
            "beta".to_owned(),
            serde_json::from_value(json!({"key": "beta", "included": ["b1"]})).unwrap(),
        )]);
        let p = Predictor::new(&f, &segments).unwrap();
        assert_eq!(
            p.predict(&user("qa", "premium")).unwrap().reason,
            Reason::TargetMatch
        );
        assert_eq!(
            p.predict(&user("b1", "free")).unwrap(),
            Prediction {
                variation: Some(2),
                reason: Reason::RuleMatch(0),
                rolled_out: false
            }
        );
        assert_eq!(
            p.predict(&user("x", "free")).unwrap().reason,
            Reason::Fallthrough
        );
        let rolled = (0..2000)
            .map(|i| p.predict(&user(&format!("u{i}"), "premium")).unwrap())
            .filter(|p| p.variation == Some(1))
            .count();
        assert!((1100..1300).contains(&rolled), "{rolled}");
    }

    #[test]
    fn malformed_data_is_reported() {
        let segments = HashMap::new();
        let f = flag(
            json!({"key": "f", "on": true, "variations": [0], "fallthrough": {"variation": 1}}),
        );
        assert!(Predictor::new(&f, &segments)
            .unwrap()
            .predict(&user("a", "x"))
            .is_err());
        let f = flag(json!({"key": "f", "on": false, "variations": [0]}));
        assert_eq!(
            Predictor::new(&f, &segments)
                .unwrap()
                .predict(&user("a", "x"))
                .unwrap()
                .variation,
            None
        );
        let f = flag(
            json!({"key": "f", "on": true, "variations": [0], "prerequisites": [{"key": "g", "variation": 0}]}),
        );
        assert!(Predictor::new(&f, &segments).is_err());
    }
}
