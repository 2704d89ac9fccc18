//! The instruction engine: every kind, the forms clients send, and every refusal.

use serde_json::{json, Value};

use super::segment;
use super::targeting::{self, Defaults, Draft};
use super::{apply, parse, InstructionError, VariationRef};
use crate::model::{Flag, Segment, VariationOrRollout};

pub(super) fn refs() -> Vec<VariationRef> {
    ["disabled", "basic", "premium"]
        .iter()
        .map(|key| VariationRef {
            id: format!("id-{key}"),
            key: (*key).to_owned(),
            name: key.to_uppercase(),
            value: json!({ "_ldMeta": { "variationKey": key } }),
        })
        .collect()
}

pub(super) fn flag() -> Flag {
    Flag {
        key: "chat".into(),
        on: true,
        variations: refs().into_iter().map(|v| v.value).collect(),
        off_variation: Some(0),
        ..Flag::default()
    }
}

/// Applies `instructions` to a draft of `flag`; returns the draft's flag and defaults.
pub(super) fn patch(
    flag: &Flag,
    instructions: Value,
) -> Result<(Flag, Defaults), InstructionError> {
    let refs = refs();
    let raw = instructions.as_array().unwrap().clone();
    let steps = parse::<targeting::Instruction>(&raw)?;
    let mut draft = Draft {
        flag: flag.clone(),
        defaults: Defaults {
            on: "id-disabled".into(),
            off: "id-disabled".into(),
        },
        variations: &refs,
        settings: None,
    };
    apply(steps, &mut draft, targeting::apply)?;
    Ok((draft.flag, draft.defaults))
}

fn patched(instructions: Value) -> Flag {
    patch(&flag(), instructions).unwrap().0
}

/// The message of the refusal of `instructions`, checking it names index and kind.
fn refusal(flag: &Flag, instructions: Value, index: usize, kind: &str) -> String {
    let error = patch(flag, instructions).unwrap_err();
    assert_eq!((error.index, error.kind.as_str()), (index, kind), "{error}");
    error.message
}

fn premium_rule() -> Value {
    json!({"kind": "addRule", "description": "premium",
           "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]}],
           "variationId": "id-premium"})
}

fn fixed(index: i64) -> VariationOrRollout {
    VariationOrRollout {
        variation: Some(index),
        rollout: None,
    }
}

#[test]
fn add_rule_serves_a_variation_id_under_fresh_ids() {
    let flag = patched(json!([premium_rule()]));
    let rule = &flag.rules[0];
    assert_eq!(rule.variation, Some(2));
    assert_eq!(rule.description.as_deref(), Some("premium"));
    assert_eq!(rule.id.len(), 36, "a UUID");
    assert!(rule.clauses[0].id.is_some());
    assert_eq!(rule.clauses[0].context_kind.as_deref(), Some("user"));
}

#[test]
fn add_rule_takes_every_serve_form() {
    let flag = patched(json!([
        {"kind": "addRule", "clauses": [], "variation": 1},
        {"kind": "addRule", "clauses": [], "rolloutWeights": {"id-premium": 40000, "id-basic": 60000},
         "rolloutContextKind": "organization", "rolloutBucketBy": "plan"},
        {"kind": "addRule", "clauses": [], "percentageRolloutConfig":
            {"contextKind": "user", "bucketBy": "key", "variations": [{"variation": 2, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
        {"kind": "addRule", "clauses": [], "trackEvents": true,
         "rollout": {"variations": [{"variation": 0, "weight": 100000}]}},
    ]));
    assert_eq!(flag.rules[0].variation, Some(1));
    let weighted = flag.rules[1].rollout.as_ref().unwrap();
    let pairs: Vec<(i64, i64)> = weighted
        .variations
        .iter()
        .map(|w| (w.variation, w.weight))
        .collect();
    assert_eq!(pairs, [(1, 60000), (2, 40000)], "in variation order");
    assert_eq!(weighted.context_kind.as_deref(), Some("organization"));
    assert_eq!(weighted.bucket_by.as_deref(), Some("plan"));
    let percentage = flag.rules[2].rollout.as_ref().unwrap();
    assert_eq!(percentage.variations[0].variation, 1);
    assert_eq!(percentage.bucket_by.as_deref(), Some("key"));
    assert!(flag.rules[3].track_events);
    assert_eq!(
        flag.rules[3]
            .rollout
            .as_ref()
            .unwrap()
            .context_kind
            .as_deref(),
        Some("user")
    );
}

#[test]
fn add_rule_before_another_and_remove_rule() {
    let base = patched(json!([premium_rule()]));
    let first = base.rules[0].id.clone();
    let flag = patch(
        &base,
        json!([{"kind": "addRule", "clauses": [], "variation": 1, "beforeRuleId": first}]),
    )
    .unwrap()
    .0;
    assert_eq!(flag.rules[1].id, first);
    let message = refusal(
        &base,
        json!([{"kind": "addRule", "clauses": [], "variation": 1, "beforeRuleId": "nope"}]),
        0,
        "addRule",
    );
    assert!(
        message.contains("unknown beforeRuleId \"nope\""),
        "{message}"
    );

    let removed = patch(&flag, json!([{"kind": "removeRule", "ruleId": first}, {"kind": "removeRule", "ruleId": "absent"}])).unwrap().0;
    assert_eq!(removed.rules.len(), 1, "removing an absent rule is a no-op");
}

#[test]
fn replace_rules_replaces_all_and_empty_clears() {
    let base = patched(json!([premium_rule(), premium_rule()]));
    let flag = patch(&base, json!([{"kind": "replaceRules", "rules": [
        {"clauses": [{"attribute": "country", "op": "in", "values": ["FR"]}], "variationId": "id-basic", "description": "fr"}
    ]}])).unwrap().0;
    assert_eq!(flag.rules.len(), 1);
    assert_eq!(flag.rules[0].description.as_deref(), Some("fr"));
    assert!(patch(&base, json!([{"kind": "replaceRules", "rules": []}]))
        .unwrap()
        .0
        .rules
        .is_empty());
    let message = refusal(
        &base,
        json!([{"kind": "replaceRules", "rules": [{"clauses": []}]}]),
        0,
        "replaceRules",
    );
    assert!(
        message.starts_with("rules[0]: say what to serve"),
        "{message}"
    );
}

#[test]
fn reorder_rules_must_name_every_rule_once() {
    let base = patched(json!([premium_rule(), {"kind": "addRule", "clauses": [], "variation": 1}]));
    let (a, b) = (base.rules[0].id.clone(), base.rules[1].id.clone());
    let flag = patch(&base, json!([{"kind": "reorderRules", "ruleIds": [b, a]}]))
        .unwrap()
        .0;
    assert_eq!(flag.rules[0].id, b);
    let message = refusal(
        &base,
        json!([{"kind": "reorderRules", "ruleIds": [a]}]),
        0,
        "reorderRules",
    );
    assert!(
        message.contains("must name every rule exactly once"),
        "{message}"
    );
}

#[test]
fn rule_updates_serve_description_and_track_events() {
    let base = patched(json!([premium_rule()]));
    let id = base.rules[0].id.clone();
    let flag = patch(&base, json!([
        {"kind": "updateRuleVariationOrRollout", "ruleId": id, "rolloutWeights": {"id-basic": 100000}},
        {"kind": "updateRuleDescription", "ruleId": id, "description": "all basic"},
        {"kind": "updateRuleTrackEvents", "ruleId": id, "trackEvents": true},
    ])).unwrap().0;
    let rule = &flag.rules[0];
    assert_eq!(rule.variation, None);
    assert_eq!(rule.rollout.as_ref().unwrap().variations[0].variation, 1);
    assert_eq!(rule.description.as_deref(), Some("all basic"));
    assert!(rule.track_events);
    let message = refusal(
        &base,
        json!([{"kind": "updateRuleTrackEvents", "ruleId": "x", "trackEvents": true}]),
        0,
        "updateRuleTrackEvents",
    );
    assert!(
        message.starts_with("unknown ruleId \"x\"; the rules are"),
        "{message}"
    );
}

#[test]
fn clause_edits_keep_ids_and_refuse_unknown_clauses() {
    let base = patched(json!([premium_rule()]));
    let rule = base.rules[0].id.clone();
    let clause = base.rules[0].clauses[0].id.clone().unwrap();
    let flag = patch(&base, json!([
        {"kind": "addValuesToClause", "ruleId": rule, "clauseId": clause, "values": ["enterprise", "premium"]},
        {"kind": "removeValuesFromClause", "ruleId": rule, "clauseId": clause, "values": ["premium"]},
        {"kind": "addClauses", "ruleId": rule, "clauses": [{"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["big"]}]},
    ])).unwrap().0;
    let clauses = &flag.rules[0].clauses;
    assert_eq!(clauses[0].values, [json!("enterprise")]);
    assert_eq!(clauses[1].context_kind.as_deref(), Some("organization"));

    let added = clauses[1].id.clone().unwrap();
    let flag = patch(&flag, json!([
        {"kind": "updateClause", "ruleId": rule, "clauseId": clause, "clause": {"attribute": "country", "op": "in", "values": ["DE"]}},
        {"kind": "removeClauses", "ruleId": rule, "clauseIds": [added]},
    ])).unwrap().0;
    let clauses = &flag.rules[0].clauses;
    assert_eq!(clauses.len(), 1);
    assert_eq!(
        (clauses[0].attribute.as_str(), clauses[0].id.as_ref()),
        ("country", Some(&clause))
    );

    let message = refusal(
        &flag,
        json!([{"kind": "removeClauses", "ruleId": rule, "clauseIds": ["nope"]}]),
        0,
        "removeClauses",
    );
    assert!(
        message.contains("has no clause with clauseId \"nope\""),
        "{message}"
    );
}

#[test]
fn clauses_are_checked_and_segment_match_is_normalized() {
    let flag = patched(json!([{"kind": "addRule", "variation": 1,
        "clauses": [{"op": "segmentMatch", "values": ["beta"]}, {"attribute": "segmentMatch", "contextKind": "", "op": "segmentMatch", "values": ["vip"]}]}]));
    for clause in &flag.rules[0].clauses {
        assert_eq!(
            (clause.attribute.as_str(), clause.context_kind.as_ref()),
            ("segmentMatch", None)
        );
    }
    let message = refusal(
        &flag,
        json!([{"kind": "addRule", "variation": 1, "clauses": [{"attribute": "tier", "op": "In", "values": ["x"]}]}]),
        0,
        "addRule",
    );
    assert!(
        message.starts_with("clauses[0]: unknown op \"In\""),
        "{message}"
    );
    let message = refusal(
        &flag,
        json!([{"kind": "addRule", "variation": 1, "clauses": [{"op": "in", "values": ["x"]}]}]),
        0,
        "addRule",
    );
    assert!(message.contains("needs an attribute"), "{message}");
    let message = refusal(
        &flag,
        json!([{"kind": "addRule", "variation": 1, "clauses": [{"op": "segmentMatch", "values": [3]}]}]),
        0,
        "addRule",
    );
    assert!(message.contains("segment keys"), "{message}");
}

#[test]
fn values_added_to_a_segment_match_clause_are_segment_keys() {
    let flag = patched(json!([{"kind": "addRule", "variation": 1,
        "clauses": [{"op": "segmentMatch", "values": ["beta"]}]}]));
    let rule = &flag.rules[0];
    let message = refusal(
        &flag,
        json!([{"kind": "addValuesToClause", "ruleId": rule.id,
                "clauseId": rule.clauses[0].id, "values": ["vip", null]}]),
        0,
        "addValuesToClause",
    );
    assert!(message.contains("segment keys"), "{message}");
}

#[test]
fn user_targets_get_context_target_placeholders() {
    let flag = patched(json!([
        {"kind": "addTargets", "values": ["qa-1", "qa-2"], "variationId": "id-premium"},
        {"kind": "addTargets", "values": ["acme"], "contextKind": "organization", "variation": 1},
        {"kind": "addTargets", "values": ["qa-1"], "variationId": "id-premium"},
    ]));
    assert_eq!(flag.targets.len(), 1);
    assert_eq!(
        flag.targets[0].values,
        ["qa-1", "qa-2"],
        "re-adding is a no-op"
    );
    let kinds: Vec<(Option<&str>, usize, i64)> = flag
        .context_targets
        .iter()
        .map(|t| (t.context_kind.as_deref(), t.values.len(), t.variation))
        .collect();
    assert_eq!(kinds, [(Some("user"), 0, 2), (Some("organization"), 1, 1)]);

    let message = refusal(
        &flag,
        json!([{"kind": "addTargets", "values": ["qa-2"], "variationId": "id-basic"}]),
        0,
        "addTargets",
    );
    assert_eq!(
        message,
        "user \"qa-2\" is already targeted to variation premium; remove it there first"
    );
}

#[test]
fn targets_are_removed_replaced_and_cleared() {
    let base = patched(json!([
        {"kind": "addTargets", "values": ["a", "b"], "variationId": "id-premium"},
        {"kind": "addTargets", "values": ["acme"], "contextKind": "organization", "variationId": "id-premium"},
    ]));
    let flag = patch(
        &base,
        json!([{"kind": "removeTargets", "values": ["a", "zzz"], "variationId": "id-premium"}]),
    )
    .unwrap()
    .0;
    assert_eq!(flag.targets[0].values, ["b"]);
    let flag = patch(
        &base,
        json!([{"kind": "clearTargets", "variationId": "id-premium"}]),
    )
    .unwrap()
    .0;
    assert!(flag.targets.is_empty() && flag.context_targets.is_empty());
    let flag = patch(&base, json!([{"kind": "replaceTargets", "targets": [{"variationId": "id-basic", "values": ["c"]}]}])).unwrap().0;
    assert_eq!((flag.targets.len(), flag.targets[0].variation), (1, 1));
    assert_eq!(
        flag.context_targets.len(),
        1,
        "only the user placeholder is left"
    );
    let flag = patch(&base, json!([{"kind": "replaceTargets", "targets": []}]))
        .unwrap()
        .0;
    assert!(flag.targets.is_empty() && flag.context_targets.is_empty());
    let message = refusal(
        &base,
        json!([{"kind": "replaceTargets", "targets": [
        {"variationId": "id-basic", "values": ["c"]}, {"variationId": "id-premium", "values": ["c"]}]}]),
        0,
        "replaceTargets",
    );
    assert!(
        message.starts_with("targets[1]: user \"c\" is already targeted"),
        "{message}"
    );
}

#[test]
fn fallthrough_off_variation_defaults_and_track_events() {
    let (flag, defaults) = patch(&flag(), json!([
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {"id-basic": 50000, "id-premium": 50000}},
        {"kind": "updateOffVariation", "variationId": "id-basic"},
        {"kind": "updateDefaultVariation", "OnVariationValue": "premium", "offVariationValue": {"_ldMeta": {"variationKey": "basic"}}},
        {"kind": "updateTrackEvents", "trackEvents": true},
        {"kind": "updateTrackEventsFallthrough", "trackEvents": true},
    ])).unwrap();
    assert_eq!(
        flag.fallthrough.rollout.as_ref().unwrap().variations.len(),
        2
    );
    assert_eq!(flag.off_variation, Some(1));
    assert_eq!(
        defaults,
        Defaults {
            on: "id-premium".into(),
            off: "id-basic".into()
        }
    );
    assert!(flag.track_events && flag.track_events_fallthrough);

    let flag = patched(
        json!([{"kind": "updateFallthroughVariationOrRollout", "variationId": "id-basic"}]),
    );
    assert_eq!(flag.fallthrough, fixed(1));
    let message = refusal(
        &flag,
        json!([{"kind": "updateDefaultVariation"}]),
        0,
        "updateDefaultVariation",
    );
    assert!(message.contains("onVariationValue"), "{message}");
}

#[test]
fn serve_forms_are_checked() {
    let flag = flag();
    let cases = [
        (json!({"variationId": "nope"}), "unknown variationId \"nope\"; the variations are 0: disabled (id-disabled), 1: basic (id-basic), 2: premium (id-premium)"),
        (json!({"variation": 3}), "variation index 3 is out of range"),
        (json!({"rolloutWeights": {"id-basic": 60000, "id-premium": 30000}}), "rolloutWeights sum to 90000, not 100000"),
        (json!({"rolloutWeights": {"id-basic": 160000, "id-premium": -60000}}), "is outside 0..=100000"),
        (json!({"rolloutWeights": {}}), "rolloutWeights is empty"),
        (json!({"percentageRolloutConfig": {"variations": [{"variation": 1, "weight": 50000}, {"variation": 1, "weight": 50000}]}}), "names variation 1 twice"),
        (json!({"variationId": "id-basic", "variation": 1}), "give one way to serve, not variationId and variation"),
        (json!({"guardedRolloutConfig": {}}), "mock-ld does not run"),
        (json!({}), "say what to serve"),
    ];
    for (serve, expected) in cases {
        let mut instruction = json!({"kind": "updateFallthroughVariationOrRollout"});
        instruction
            .as_object_mut()
            .unwrap()
            .extend(serve.as_object().unwrap().clone());
        let message = refusal(
            &flag,
            json!([instruction]),
            0,
            "updateFallthroughVariationOrRollout",
        );
        assert!(
            message.contains(expected),
            "{message} should contain {expected}"
        );
    }
}

#[test]
fn refusals_name_the_instruction_and_parse_errors_come_first() {
    let flag = flag();
    let error = patch(&flag, json!([premium_rule(), {"kind": "addRule", "clauses": [], "rolloutWeights": {"id-basic": 90000}}])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "instructions[1] (addRule): rolloutWeights sum to 90000, not 100000"
    );

    let message = refusal(
        &flag,
        json!([premium_rule(), {"kind": "frobnicate"}]),
        1,
        "frobnicate",
    );
    assert!(
        message.starts_with("unknown instruction kind `frobnicate`"),
        "{message}"
    );
    // The flag vocabulary parses, and AI Config targeting refuses its flag-only part.
    let message = refusal(
        &flag,
        json!([premium_rule(), {"kind": "turnFlagOn"}]),
        1,
        "turnFlagOn",
    );
    assert_eq!(
        message,
        "only feature flags take this instruction, AI Configs do not"
    );
    let message = refusal(
        &flag,
        json!([{"kind": "turnTargetingOff"}]),
        0,
        "turnTargetingOff",
    );
    assert!(message.contains("always on"), "{message}");
    let message = refusal(&flag, json!([{"values": ["a"]}]), 0, "no kind");
    assert!(message.contains("kind"), "{message}");
    let message = refusal(
        &flag,
        json!([{"kind": "addTargets", "variationId": "id-basic"}]),
        0,
        "addTargets",
    );
    assert!(message.contains("missing field `values`"), "{message}");
    let message = refusal(
        &flag,
        json!([{"kind": "addTargets", "values": ["a"]}]),
        0,
        "addTargets",
    );
    assert_eq!(message, "variationId is required");
    let message = refusal(&flag, json!([]), 0, "none");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn a_failed_patch_leaves_the_flag_untouched() {
    let base = patched(json!([premium_rule()]));
    // The first instruction applies to the draft; the second fails; the caller drops the draft.
    let result = patch(
        &base,
        json!([{"kind": "replaceRules", "rules": []}, {"kind": "updateOffVariation", "variationId": "x"}]),
    );
    assert_eq!(result.unwrap_err().index, 1);
    assert_eq!(base.rules.len(), 1);
}

#[test]
fn rules_without_ids_get_ids_derived_from_their_position() {
    let mut flag: Flag = serde_json::from_value(json!({"rules": [
        {"clauses": [{"attribute": "a", "op": "in", "values": [1]}], "variation": 0}
    ]}))
    .unwrap();
    super::fill_ids(&mut flag.rules);
    assert_eq!(flag.rules[0].id, "rule-0");
    assert_eq!(
        flag.rules[0].clauses[0].id.as_deref(),
        Some("rule-0-clause-0")
    );
}

pub(super) fn segment_patch(
    segment: &Segment,
    instructions: Value,
) -> Result<segment::Draft, InstructionError> {
    let raw = instructions.as_array().unwrap().clone();
    let steps = parse::<segment::Instruction>(&raw)?;
    let mut draft = segment::Draft {
        segment: segment.clone(),
        name: "Beta".into(),
        tags: vec!["a".into()],
    };
    apply(steps, &mut draft, segment::apply)?;
    Ok(draft)
}

#[test]
fn segment_targets_go_to_their_kind_and_never_both_sides() {
    let draft = segment_patch(
        &Segment::default(),
        json!([
            {"kind": "addIncludedUsers", "values": ["u1", "u2"]},
            {"kind": "addIncludedTargets", "contextKind": "organization", "values": ["acme"]},
            {"kind": "addExcludedTargets", "contextKind": "user", "values": ["u3"]},
            {"kind": "removeIncludedUsers", "values": ["u2", "absent"]},
        ]),
    )
    .unwrap();
    let segment = draft.segment;
    assert_eq!(segment.included, ["u1"]);
    assert_eq!(segment.excluded, ["u3"]);
    assert_eq!(segment.included_contexts[0].context_kind, "organization");
    let error = segment_patch(
        &segment,
        json!([{"kind": "addExcludedUsers", "values": ["u1"]}]),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "instructions[0] (addExcludedUsers): user \"u1\" is included; remove it there before adding it to excluded");
    let cleared = segment_patch(
        &segment,
        json!([
            {"kind": "removeIncludedTargets", "contextKind": "organization", "values": ["acme"]},
            {"kind": "removeExcludedTargets", "contextKind": "user", "values": ["u3"]},
            {"kind": "removeExcludedUsers", "values": ["u9"]},
            {"kind": "addExcludedUsers", "values": ["u8"]},
        ]),
    )
    .unwrap()
    .segment;
    assert!(cleared.included_contexts.is_empty());
    assert_eq!(cleared.excluded, ["u8"]);
}

#[test]
fn adding_no_keys_of_a_new_kind_leaves_no_empty_list() {
    let draft = segment_patch(
        &Segment::default(),
        json!([{"kind": "addIncludedTargets", "contextKind": "organization", "values": []}]),
    )
    .unwrap();
    assert!(
        draft.segment.included_contexts.is_empty(),
        "{:?}",
        draft.segment
    );
}

#[test]
fn segment_rules_clauses_rollouts_tags_and_name() {
    let draft = segment_patch(&Segment::default(), json!([
        {"kind": "addRule", "description": "fr", "clauses": [{"attribute": "country", "op": "in", "values": ["FR"]}]},
        {"kind": "addRule", "clauses": [{"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["pro"]}], "rolloutWeight": 25000, "rolloutContextKind": "organization"},
        {"kind": "addTags", "values": ["b", "a"]},
        {"kind": "removeTags", "values": ["a"]},
        {"kind": "updateName", "value": "Beta testers"},
    ])).unwrap();
    assert_eq!(draft.tags, ["b"]);
    assert_eq!(draft.name, "Beta testers");
    let rules = &draft.segment.rules;
    assert_eq!(rules[0].description.as_deref(), Some("fr"));
    assert_eq!(
        (rules[1].weight, rules[1].rollout_context_kind.as_deref()),
        (Some(25000), Some("organization"))
    );

    let (first, second) = (rules[0].id.clone().unwrap(), rules[1].id.clone().unwrap());
    let clause = rules[0].clauses[0].id.clone().unwrap();
    let edited = segment_patch(&draft.segment, json!([
        {"kind": "updateRuleRolloutAndContextKind", "ruleId": second, "weight": 50000, "contextKind": "user"},
        {"kind": "addValuesToClause", "ruleId": first, "clauseId": clause, "values": ["DE"]},
        {"kind": "updateRuleDescription", "ruleId": first, "description": "fr+de"},
        {"kind": "reorderRules", "ruleIds": [second, first]},
        {"kind": "removeRule", "ruleId": second},
    ])).unwrap().segment;
    assert_eq!(edited.rules.len(), 1);
    assert_eq!(
        edited.rules[0].clauses[0].values,
        [json!("FR"), json!("DE")]
    );
    assert_eq!(edited.rules[0].description.as_deref(), Some("fr+de"));

    let clauses = segment_patch(&draft.segment, json!([
        {"kind": "addClauses", "ruleId": first, "clauses": [{"attribute": "lang", "op": "in", "values": ["fr", "de"]}]},
        {"kind": "updateClause", "ruleId": first, "clauseId": clause, "clause": {"attribute": "country", "op": "in", "values": ["BE"]}},
    ])).unwrap().segment;
    let rule = &clauses.rules[0];
    let added = rule.clauses[1].id.clone().unwrap();
    assert_eq!(rule.clauses[0].values, [json!("BE")]);
    let trimmed = segment_patch(&clauses, json!([
        {"kind": "removeValuesFromClause", "ruleId": first, "clauseId": added, "values": ["de"]},
        {"kind": "removeClauses", "ruleId": first, "clauseIds": [clause]},
    ])).unwrap().segment;
    assert_eq!(trimmed.rules[0].clauses.len(), 1);
    assert_eq!(trimmed.rules[0].clauses[0].values, [json!("fr")]);

    let error = segment_patch(
        &draft.segment,
        json!([{"kind": "updateRuleRolloutAndContextKind", "ruleId": second, "weight": 100001}]),
    )
    .unwrap_err();
    assert!(error.message.contains("outside 0..=100000"), "{error}");
    let error = segment_patch(
        &draft.segment,
        json!([{"kind": "updateName", "value": " "}]),
    )
    .unwrap_err();
    assert!(error.message.contains("must not be empty"), "{error}");
}

#[test]
fn segment_instructions_name_their_role_action() {
    let raw = [
        json!({"kind": "addIncludedUsers", "values": []}),
        json!({"kind": "removeExcludedTargets", "contextKind": "org", "values": []}),
        json!({"kind": "addRule", "clauses": []}),
        json!({"kind": "addTags", "values": []}),
        json!({"kind": "updateName", "value": "x"}),
    ];
    let steps = parse::<segment::Instruction>(&raw).unwrap();
    let actions: Vec<&str> = steps.iter().map(|s| s.instruction().action()).collect();
    assert_eq!(
        actions,
        [
            "updateIncluded",
            "updateExcluded",
            "updateRules",
            "updateTags",
            "updateName"
        ]
    );
}

/// Applies `instructions` to a feature flag's draft (settings included), with `gate` as
/// another flag of the project; returns the flag and the settings' name and tags.
fn flag_patch(instructions: Value) -> Result<(Flag, String, Vec<String>), InstructionError> {
    let refs = refs();
    let gate = vec![
        VariationRef {
            id: "gate-on".into(),
            key: "true".into(),
            name: String::new(),
            value: json!(true),
        },
        VariationRef {
            id: "gate-off".into(),
            key: "false".into(),
            name: String::new(),
            value: json!(false),
        },
    ];
    let flags = std::collections::BTreeMap::from([("gate".to_owned(), gate)]);
    let steps = parse::<targeting::Instruction>(instructions.as_array().unwrap())?;
    let mut draft = Draft {
        flag: Flag {
            on: false,
            ..flag()
        },
        defaults: Defaults {
            on: "id-basic".into(),
            off: "id-disabled".into(),
        },
        variations: &refs,
        settings: Some(super::flag::Settings {
            name: "Chat".into(),
            description: String::new(),
            tags: vec!["a".into()],
            temporary: true,
            variations: Vec::new(),
            flags: &flags,
        }),
    };
    apply(steps, &mut draft, targeting::apply)?;
    let settings = draft.settings.unwrap();
    Ok((draft.flag, settings.name, settings.tags))
}

#[test]
fn feature_flags_take_the_flag_only_instructions() {
    let (flag, name, tags) = flag_patch(json!([
        {"kind": "turnFlagOn"},
        {"kind": "addPrerequisite", "key": "gate", "variationId": "gate-on"},
        {"kind": "updatePrerequisite", "key": "gate", "variationId": "gate-off"},
        {"kind": "updateName", "value": "Chat 2"},
        {"kind": "addTags", "values": ["b", "a"]},
        {"kind": "addUserTargets", "values": ["u1"], "variationId": "id-basic"},
    ]))
    .unwrap();
    assert!(flag.on);
    assert_eq!(
        (flag.targets[0].values.clone(), flag.targets[0].variation),
        (vec!["u1".to_owned()], 1)
    );
    assert_eq!(
        flag.prerequisites,
        vec![crate::model::Prerequisite {
            key: "gate".into(),
            variation: 1
        }]
    );
    assert_eq!(
        (name.as_str(), tags),
        ("Chat 2", vec!["a".into(), "b".into()])
    );

    let (flag, _, _) = flag_patch(json!([
        {"kind": "replacePrerequisites", "prerequisites": [{"key": "gate", "variationId": "gate-on"}]},
        {"kind": "removePrerequisite", "key": "gate"},
        {"kind": "turnFlagOff"},
    ]))
    .unwrap();
    assert!(!flag.on && flag.prerequisites.is_empty());

    for (instruction, message) in [
        (
            json!({"kind": "addPrerequisite", "key": "nope", "variationId": "x"}),
            "the project has no flag \"nope\"",
        ),
        (
            json!({"kind": "addPrerequisite", "key": "chat", "variationId": "x"}),
            "a flag cannot be its own prerequisite",
        ),
        (
            json!({"kind": "updatePrerequisite", "key": "gate", "variationId": "gate-on"}),
            "\"gate\" is not a prerequisite",
        ),
        (
            json!({"kind": "turnTargetingOn"}),
            "feature flags take turnFlagOn and turnFlagOff",
        ),
        (
            json!({"kind": "updateVariation", "variationId": "nope", "value": 3}),
            "unknown variationId \"nope\"",
        ),
    ] {
        let error = flag_patch(json!([instruction])).unwrap_err();
        assert_eq!(error.message, message);
    }
    let twice = flag_patch(json!([
        {"kind": "addVariation", "value": 1},
        {"kind": "addVariation", "value": 1},
    ]))
    .unwrap_err();
    assert_eq!(
        (twice.index, twice.message.as_str()),
        (1, "variation 0 already has the value 1")
    );
}
