//! Segments: the model, the generators and the properties.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use super::rules::{rule_edit, RuleEdit, RuleModel};
use super::{check_refusal, clause, instruction_shaped, kinds, mutate, mutation, stable_id};
use crate::api::semantic_patch::fill_ids;
use crate::api::semantic_patch::segment::{Draft, Instruction};
use crate::api::semantic_patch::serve::TOTAL_WEIGHT;
use crate::api::semantic_patch::tests::segment_patch;
use crate::model::{Segment, SegmentTarget};
use crate::properties::{config, json_value, short_string};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Included,
    Excluded,
}

/// Keys to add to or remove from one side: of the `user` kind through `…Users`, or of a
/// kind through `…Targets`.
#[derive(Clone, Debug)]
struct Keys {
    add: bool,
    side: Side,
    kind: Option<&'static str>,
    keys: Vec<String>,
}

fn keys() -> impl Strategy<Value = Keys> {
    let side = prop_oneof![Just(Side::Included), Just(Side::Excluded)];
    let kind = prop::option::of(prop::sample::select(vec!["user", "organization", "device"]));
    (
        any::<bool>(),
        side,
        kind,
        prop::collection::vec(short_string(), 0..4),
    )
        .prop_map(|(add, side, kind, keys)| Keys {
            add,
            side,
            kind,
            keys,
        })
}

/// A rollout weight, context kind and attribute to bucket by.
type Rollout = (Option<i64>, Option<&'static str>, Option<&'static str>);

fn rollout() -> impl Strategy<Value = Rollout> {
    (
        prop::option::of(0..=TOTAL_WEIGHT),
        prop::option::of(prop::sample::select(vec!["", "user", "organization"])),
        prop::option::of(prop::sample::select(vec!["", "key", "plan"])),
    )
}

#[derive(Clone, Debug)]
enum Edit {
    Keys(Keys),
    AddRule(Vec<Value>, Rollout, Option<Index>),
    Rule(RuleEdit),
    Rollout(Index, Rollout),
    Tags(bool, Vec<String>),
    Name(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => keys().prop_map(Edit::Keys),
        1 => (prop::collection::vec(clause(), 0..3), rollout(), prop::option::of(any::<Index>()))
            .prop_map(|(c, r, before)| Edit::AddRule(c, r, before)),
        2 => rule_edit().prop_map(Edit::Rule),
        1 => (any::<Index>(), rollout()).prop_map(|(r, rollout)| Edit::Rollout(r, rollout)),
        1 => (any::<bool>(), prop::collection::vec(short_string(), 0..3))
            .prop_map(|(add, tags)| Edit::Tags(add, tags)),
        1 => "\\PC{0,6}\\S\\PC{0,6}".prop_map(Edit::Name),
    ]
}

/// What the instructions so far said the segment, its name and tags are.
#[derive(Debug)]
struct Model {
    /// Each rule's weight.
    rules: RuleModel<Option<i64>>,
    /// (kind, key) → the side it is on.
    members: BTreeMap<(String, String), Side>,
    name: String,
    tags: Vec<String>,
}

/// A segment with two rules whose ids the model knows.
fn start() -> Segment {
    let mut segment: Segment = serde_json::from_value(json!({"rules": [
        {"clauses": [{"contextKind": "user", "attribute": "country", "op": "in", "values": ["FR"]}]},
        {"clauses": [{"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["pro"]}],
         "weight": 25000},
    ]}))
    .unwrap();
    fill_ids(&mut segment.rules);
    segment
}

impl Model {
    fn new(segment: &mut Segment) -> Self {
        Model {
            rules: RuleModel::of(&mut segment.rules, |rule| rule.weight),
            members: BTreeMap::new(),
            // As `segment_patch` starts its draft.
            name: "Beta".into(),
            tags: vec!["a".into()],
        }
    }

    fn realize(&mut self, edit: Edit) -> Option<Value> {
        Some(match edit {
            Edit::Keys(keys) => self.keys(keys),
            Edit::AddRule(clauses, (weight, kind, bucket_by), before) => {
                let mut instruction = json!({"kind": "addRule", "clauses": clauses,
                    "rolloutWeight": weight, "rolloutContextKind": kind, "rolloutBucketBy": bucket_by});
                if let Some(id) = self.rules.add(before.as_ref(), weight) {
                    instruction["beforeRuleId"] = id.into();
                }
                instruction
            }
            Edit::Rule(edit) => self.rules.realize(edit)?,
            Edit::Rollout(r, (weight, kind, bucket_by)) => {
                let position = self.rules.pick(&r)?;
                self.rules.rules[position].data = weight;
                json!({"kind": "updateRuleRolloutAndContextKind", "ruleId": self.rules.id(position),
                       "weight": weight, "contextKind": kind, "bucketBy": bucket_by})
            }
            Edit::Tags(add, tags) => {
                if add {
                    for tag in &tags {
                        if !self.tags.contains(tag) {
                            self.tags.push(tag.clone());
                        }
                    }
                    json!({"kind": "addTags", "values": tags})
                } else {
                    self.tags.retain(|t| !tags.contains(t));
                    json!({"kind": "removeTags", "values": tags})
                }
            }
            Edit::Name(name) => {
                self.name.clone_from(&name);
                json!({"kind": "updateName", "value": name})
            }
        })
    }

    /// Adds the keys that are not on the other side (which would be refused), or removes.
    fn keys(&mut self, mut keys: Keys) -> Value {
        let kind = keys.kind.unwrap_or("user");
        if keys.add {
            keys.keys.retain(|key| {
                let entry = (kind.to_owned(), key.clone());
                match self.members.get(&entry) {
                    Some(side) => *side == keys.side,
                    None => {
                        self.members.insert(entry, keys.side);
                        true
                    }
                }
            });
        } else {
            for key in &keys.keys {
                let entry = (kind.to_owned(), key.clone());
                if self.members.get(&entry) == Some(&keys.side) {
                    self.members.remove(&entry);
                }
            }
        }
        let verb = if keys.add { "add" } else { "remove" };
        let side = match keys.side {
            Side::Included => "Included",
            Side::Excluded => "Excluded",
        };
        match keys.kind {
            None => json!({"kind": format!("{verb}{side}Users"), "values": keys.keys}),
            Some(kind) => json!({"kind": format!("{verb}{side}Targets"), "contextKind": kind,
                                 "values": keys.keys}),
        }
    }

    /// The patched segment: rules and members SDKs can read, and what the model says.
    fn check(&self, draft: &mut Draft) -> Result<(), TestCaseError> {
        let segment = &mut draft.segment;
        self.rules.check(&mut segment.rules, |rule, weight| {
            prop_assert_eq!(rule.weight, *weight);
            Ok(())
        })?;
        let mut members = BTreeMap::new();
        for (side, users, contexts) in [
            (
                Side::Included,
                &segment.included,
                &segment.included_contexts,
            ),
            (
                Side::Excluded,
                &segment.excluded,
                &segment.excluded_contexts,
            ),
        ] {
            read_side(side, users, contexts, &mut members)?;
        }
        prop_assert_eq!(&members, &self.members);
        prop_assert_eq!(&draft.name, &self.name);
        prop_assert_eq!(&draft.tags, &self.tags);
        Ok(())
    }
}

/// One side's keys into `members`, checking LaunchDarkly's shape: `user` keys in
/// `included`/`excluded`, other kinds once each in `…Contexts` with at least one key, no key
/// twice, and none on both sides.
fn read_side(
    side: Side,
    users: &[String],
    contexts: &[SegmentTarget],
    members: &mut BTreeMap<(String, String), Side>,
) -> Result<(), TestCaseError> {
    let kinds: BTreeSet<&str> = contexts.iter().map(|t| t.context_kind.as_str()).collect();
    prop_assert_eq!(kinds.len(), contexts.len(), "a kind listed twice");
    prop_assert!(
        !kinds.contains("user"),
        "user keys belong in included/excluded"
    );
    let lists = contexts
        .iter()
        .map(|t| (t.context_kind.as_str(), &t.values[..]))
        .chain(std::iter::once(("user", users)));
    for (kind, keys) in lists {
        prop_assert!(kind == "user" || !keys.is_empty(), "an empty {} list", kind);
        for key in keys {
            let before = members.insert((kind.to_owned(), key.clone()), side);
            prop_assert!(before.is_none(), "{} {:?} listed twice", kind, key);
        }
    }
    Ok(())
}

fn valid_patch() -> impl Strategy<Value = (Vec<Value>, Model)> {
    prop::collection::vec(edit(), 1..12).prop_map(|edits| {
        let mut model = Model::new(&mut start());
        let mut instructions: Vec<Value> =
            edits.into_iter().filter_map(|e| model.realize(e)).collect();
        if instructions.is_empty() {
            instructions.push(model.realize(Edit::Tags(true, Vec::new())).unwrap());
        }
        (instructions, model)
    })
}

fn invalid_instruction() -> impl Strategy<Value = Value> {
    let not_a_weight = prop_oneof![i64::MIN..0, TOTAL_WEIGHT + 1..=i64::MAX];
    prop_oneof![
        "[a-z]{0,8}".prop_map(|k| json!({"kind": format!("addIncluded{k}s")})),
        json_value(0).prop_map(|kind| json!({"kind": kind, "values": ["a"]})),
        "[ \t\n]{0,3}".prop_map(|name| json!({"kind": "updateName", "value": name})),
        not_a_weight.prop_map(|w| json!({"kind": "addRule", "clauses": [], "weight": w})),
        Just(json!({"kind": "addIncludedTargets", "contextKind": "", "values": ["a"]})),
        Just(json!({"kind": "removeRule"})),
        Just(json!({"kind": "updateRuleDescription", "ruleId": "no-such-rule", "description": ""})),
        Just(
            json!({"kind": "addRule", "clauses": [{"attribute": "a", "op": "equals", "values": []}]})
        ),
    ]
}

fn stable(draft: &Draft) -> (Segment, String, Vec<String>) {
    let mut segment = draft.segment.clone();
    for rule in &mut segment.rules {
        rule.id = rule.id.as_deref().map(stable_id);
        for clause in &mut rule.clauses {
            clause.id = clause.id.as_deref().map(stable_id);
        }
    }
    (segment, draft.name.clone(), draft.tags.clone())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_valid_segment_patch_applies_as_the_model_says((instructions, model) in valid_patch()) {
        let mut draft = segment_patch(&start(), json!(instructions))
            .map_err(|e| TestCaseError::fail(format!("{e} in {instructions:#?}")))?;
        model.check(&mut draft)?;
    }

    #[test]
    fn applying_a_segment_patch_is_deterministic((instructions, _) in valid_patch()) {
        let a = segment_patch(&start(), json!(instructions)).unwrap();
        let b = segment_patch(&start(), json!(instructions)).unwrap();
        prop_assert_eq!(stable(&a), stable(&b));
    }

    #[test]
    fn an_invalid_segment_instruction_is_refused_by_index(
        (mut instructions, _) in valid_patch(),
        bad in invalid_instruction(),
        at in any::<Index>(),
    ) {
        let at = at.index(instructions.len() + 1);
        instructions.insert(at, bad);
        let error = segment_patch(&start(), json!(instructions)).unwrap_err();
        prop_assert_eq!(error.index, at, "{}", error);
        check_refusal(&instructions, &error)?;
    }

    #[test]
    fn a_mutated_segment_patch_is_applied_or_refused_by_index(
        (mut instructions, _) in valid_patch(),
        mutations in prop::collection::vec(mutation(plausible()), 1..3),
    ) {
        for m in &mutations {
            mutate(&mut instructions, m);
        }
        if let Err(error) = segment_patch(&start(), json!(instructions)) {
            check_refusal(&instructions, &error)?;
        }
    }

    #[test]
    fn segment_instruction_shaped_json_is_applied_or_refused_by_index(
        instructions in prop::collection::vec(
            instruction_shaped(kinds::<Instruction>(), plausible()),
            0..6,
        ),
    ) {
        if let Err(error) = segment_patch(&start(), json!(instructions)) {
            check_refusal(&instructions, &error)?;
        }
    }
}

fn plausible() -> Vec<Value> {
    vec![
        json!("rule-1"),
        json!("rule-1-clause-0"),
        json!("organization"),
        json!(["rule-1", "rule-0"]),
        json!([{"attribute": "tier", "op": "in", "values": ["x"]}]),
        json!(["u1", "u2"]),
        json!(50000),
        json!("Beta testers"),
    ]
}
