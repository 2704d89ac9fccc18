//! The instructions of a segment (spec §6), one function per kind, applied to a draft of the
//! segment SDKs evaluate and of its REST name and tags.

use serde::Deserialize;

use super::clauses::{new_clauses, ClauseInput};
use super::rules::{self, ClauseRefs, ClauseUpdate, ClauseValues, RuleClauses, RuleDescription};
use super::rules::{RuleOrder, RuleRef};
use super::serve::TOTAL_WEIGHT;
use super::targets::MAX_KEYS;
use crate::model::{Segment, SegmentRule, SegmentTarget};

/// What a segment patch changes.
#[derive(Debug)]
pub struct Draft {
    pub segment: Segment,
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Instruction {
    AddIncludedTargets(ContextKeys),
    RemoveIncludedTargets(ContextKeys),
    AddExcludedTargets(ContextKeys),
    RemoveExcludedTargets(ContextKeys),
    AddIncludedUsers(Keys),
    RemoveIncludedUsers(Keys),
    AddExcludedUsers(Keys),
    RemoveExcludedUsers(Keys),
    AddRule(AddRule),
    RemoveRule(RuleRef),
    ReorderRules(RuleOrder),
    AddClauses(RuleClauses),
    RemoveClauses(ClauseRefs),
    UpdateClause(ClauseUpdate),
    AddValuesToClause(ClauseValues),
    RemoveValuesFromClause(ClauseValues),
    UpdateRuleDescription(RuleDescription),
    UpdateRuleRolloutAndContextKind(RuleRollout),
    AddTags(Keys),
    RemoveTags(Keys),
    UpdateName(Name),
}

impl Instruction {
    /// The role-policy action this instruction needs (LaunchDarkly's segment actions).
    pub fn action(&self) -> &'static str {
        use Instruction::*;
        match self {
            AddIncludedTargets(_)
            | RemoveIncludedTargets(_)
            | AddIncludedUsers(_)
            | RemoveIncludedUsers(_) => "updateIncluded",
            AddExcludedTargets(_)
            | RemoveExcludedTargets(_)
            | AddExcludedUsers(_)
            | RemoveExcludedUsers(_) => "updateExcluded",
            AddTags(_) | RemoveTags(_) => "updateTags",
            UpdateName(_) => "updateName",
            _ => "updateRules",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextKeys {
    context_kind: String,
    values: Vec<String>,
}

/// Keys of the `user` kind, or tags.
#[derive(Debug, Deserialize)]
pub struct Keys {
    pub(super) values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddRule {
    clauses: Vec<ClauseInput>,
    description: Option<String>,
    before_rule_id: Option<String>,
    #[serde(alias = "rolloutWeight")]
    weight: Option<i64>,
    #[serde(alias = "rolloutContextKind")]
    context_kind: Option<String>,
    #[serde(alias = "rolloutBucketBy")]
    bucket_by: Option<String>,
}

/// `updateRuleRolloutAndContextKind`, under the spec's names or LaunchDarkly's `rollout…` ones.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRollout {
    rule_id: String,
    #[serde(alias = "rolloutWeight")]
    weight: Option<i64>,
    #[serde(alias = "rolloutContextKind")]
    context_kind: Option<String>,
    #[serde(alias = "rolloutBucketBy")]
    bucket_by: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Name {
    pub(super) value: String,
}

#[derive(Clone, Copy)]
enum Side {
    Included,
    Excluded,
}

impl Side {
    fn other(self) -> Self {
        match self {
            Side::Included => Side::Excluded,
            Side::Excluded => Side::Included,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Included => "included",
            Side::Excluded => "excluded",
        }
    }
}

/// Applies one instruction to the draft.
pub fn apply(draft: &mut Draft, instruction: Instruction) -> Result<(), String> {
    use Instruction::*;
    let segment = &mut draft.segment;
    match instruction {
        AddIncludedTargets(k) => add_keys(segment, Side::Included, &k.context_kind, k.values),
        RemoveIncludedTargets(k) => {
            remove_keys(segment, Side::Included, &k.context_kind, &k.values)
        }
        AddExcludedTargets(k) => add_keys(segment, Side::Excluded, &k.context_kind, k.values),
        RemoveExcludedTargets(k) => {
            remove_keys(segment, Side::Excluded, &k.context_kind, &k.values)
        }
        AddIncludedUsers(k) => add_keys(segment, Side::Included, "user", k.values),
        RemoveIncludedUsers(k) => remove_keys(segment, Side::Included, "user", &k.values),
        AddExcludedUsers(k) => add_keys(segment, Side::Excluded, "user", k.values),
        RemoveExcludedUsers(k) => remove_keys(segment, Side::Excluded, "user", &k.values),
        AddRule(add) => add_rule(segment, add),
        RemoveRule(rule) => {
            rules::remove(&mut segment.rules, &rule.rule_id);
            Ok(())
        }
        ReorderRules(order) => rules::reorder(&mut segment.rules, &order.rule_ids),
        AddClauses(edit) => rules::add_clauses(&mut segment.rules, edit),
        RemoveClauses(edit) => rules::remove_clauses(&mut segment.rules, edit),
        UpdateClause(edit) => rules::update_clause(&mut segment.rules, edit),
        AddValuesToClause(edit) => rules::add_values(&mut segment.rules, edit),
        RemoveValuesFromClause(edit) => rules::remove_values(&mut segment.rules, edit),
        UpdateRuleDescription(edit) => rules::update_description(&mut segment.rules, edit),
        UpdateRuleRolloutAndContextKind(edit) => update_rule_rollout(segment, edit),
        AddTags(tags) => {
            add_tags(&mut draft.tags, tags.values);
            Ok(())
        }
        RemoveTags(tags) => {
            draft.tags.retain(|t| !tags.values.contains(t));
            Ok(())
        }
        UpdateName(name) => update_name(&mut draft.name, name.value),
    }
}

/// The keys of `kind` on one side: `user` keys live in `included`/`excluded`, other kinds in
/// `includedContexts`/`excludedContexts`.
fn keys_mut<'a>(segment: &'a mut Segment, side: Side, kind: &str) -> &'a mut Vec<String> {
    let (users, contexts) = match side {
        Side::Included => (&mut segment.included, &mut segment.included_contexts),
        Side::Excluded => (&mut segment.excluded, &mut segment.excluded_contexts),
    };
    if kind == "user" {
        return users;
    }
    let index = match contexts.iter().position(|t| t.context_kind == kind) {
        Some(index) => index,
        None => {
            contexts.push(SegmentTarget {
                context_kind: kind.to_owned(),
                values: Vec::new(),
            });
            contexts.len() - 1
        }
    };
    &mut contexts[index].values
}

fn prune_empty(segment: &mut Segment) {
    segment.included_contexts.retain(|t| !t.values.is_empty());
    segment.excluded_contexts.retain(|t| !t.values.is_empty());
}

/// Adds keys to one side; a key already on the other side is an error, since it would be
/// both in and out of the segment.
fn add_keys(
    segment: &mut Segment,
    side: Side,
    kind: &str,
    keys: Vec<String>,
) -> Result<(), String> {
    if kind.is_empty() {
        return Err("contextKind must not be empty".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "{} keys in one instruction; the limit is {MAX_KEYS}",
            keys.len()
        ));
    }
    let opposite = keys_mut(segment, side.other(), kind).clone();
    prune_empty(segment);
    if let Some(key) = keys.iter().find(|k| opposite.contains(k)) {
        return Err(format!(
            "{kind} {key:?} is {}; remove it there before adding it to {}",
            side.other().name(),
            side.name()
        ));
    }
    let list = keys_mut(segment, side, kind);
    for key in keys {
        if !list.contains(&key) {
            list.push(key);
        }
    }
    // Adding no keys of a new kind must not leave its empty list behind.
    prune_empty(segment);
    Ok(())
}

fn remove_keys(
    segment: &mut Segment,
    side: Side,
    kind: &str,
    keys: &[String],
) -> Result<(), String> {
    keys_mut(segment, side, kind).retain(|k| !keys.contains(k));
    prune_empty(segment);
    Ok(())
}

fn check_weight(weight: Option<i64>) -> Result<Option<i64>, String> {
    match weight {
        Some(w) if !(0..=TOTAL_WEIGHT).contains(&w) => {
            Err(format!("weight {w} is outside 0..=100000"))
        }
        _ => Ok(weight),
    }
}

fn add_rule(segment: &mut Segment, add: AddRule) -> Result<(), String> {
    let rule = SegmentRule {
        id: Some(uuid::Uuid::new_v4().to_string()),
        clauses: new_clauses(add.clauses)?,
        weight: check_weight(add.weight)?,
        bucket_by: add.bucket_by.filter(|b| !b.is_empty()),
        rollout_context_kind: add.context_kind.filter(|k| !k.is_empty()),
        description: add.description,
    };
    rules::insert(&mut segment.rules, rule, add.before_rule_id.as_deref())
}

fn update_rule_rollout(segment: &mut Segment, edit: RuleRollout) -> Result<(), String> {
    let rule = rules::find(&mut segment.rules, &edit.rule_id)?;
    rule.weight = check_weight(edit.weight)?;
    rule.rollout_context_kind = edit.context_kind.filter(|k| !k.is_empty());
    if edit.bucket_by.is_some() {
        rule.bucket_by = edit.bucket_by.filter(|b| !b.is_empty());
    }
    Ok(())
}

pub(super) fn add_tags(tags: &mut Vec<String>, values: Vec<String>) {
    for tag in values {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
}

pub(super) fn update_name(name: &mut String, value: String) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("the name must not be empty".into());
    }
    *name = value;
    Ok(())
}
