//! The instructions of an AI Config's targeting in one environment (spec §5.2 and §5.3), one
//! function per kind, applied to a draft of the flag that environment serves.

use serde::Deserialize;
use serde_json::Value;

use super::clauses::{new_clauses, ClauseInput};
use super::flag::{
    self, FlagOnly, PrerequisiteInput, PrerequisiteKey, ReplacePrerequisites, VariationInput,
};
use super::rules::{self, ClauseRefs, ClauseUpdate, ClauseValues, RuleClauses, RuleDescription};
use super::rules::{RuleOrder, RuleRef};
use super::segment::{Keys, Name};
use super::serve::{check_index, index_of, ServeInput, VariationChoice, VariationRef};
use super::targets;
use crate::model::{Flag, FlagRule};

/// The variations a new environment starts with, by `_id`: what it serves when targeting is on
/// and matches nothing, and when targeting is off.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub on: String,
    pub off: String,
}

/// What a targeting patch changes: one environment's flag and the config's (or flag's)
/// defaults; for a feature flag, its settings too.
pub struct Draft<'a> {
    pub flag: Flag,
    pub defaults: Defaults,
    /// The config's variations in flag order.
    pub variations: &'a [VariationRef],
    /// `Some` for a feature flag, whose patch may also take the flag-only instructions.
    pub settings: Option<flag::Settings<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Instruction {
    AddRule(AddRule),
    RemoveRule(RuleRef),
    ReplaceRules(ReplaceRules),
    ReorderRules(RuleOrder),
    UpdateRuleVariationOrRollout(RuleServe),
    UpdateRuleDescription(RuleDescription),
    UpdateRuleTrackEvents(RuleTrackEvents),
    AddClauses(RuleClauses),
    RemoveClauses(ClauseRefs),
    UpdateClause(ClauseUpdate),
    AddValuesToClause(ClauseValues),
    RemoveValuesFromClause(ClauseValues),
    // The `*UserTargets` forms are the flag vocabulary's older names for the `user` kind.
    #[serde(alias = "addUserTargets")]
    AddTargets(TargetKeys),
    #[serde(alias = "removeUserTargets")]
    RemoveTargets(TargetKeys),
    #[serde(alias = "replaceUserTargets")]
    ReplaceTargets(ReplaceTargets),
    ClearTargets(VariationChoice),
    UpdateFallthroughVariationOrRollout(ServeInput),
    UpdateOffVariation(VariationChoice),
    UpdateDefaultVariation(DefaultVariation),
    UpdateTrackEvents(TrackEvents),
    UpdateTrackEventsFallthrough(TrackEvents),
    TurnTargetingOn,
    TurnTargetingOff,
    // Feature flags only (see `super::flag`).
    TurnFlagOn,
    TurnFlagOff,
    AddPrerequisite(PrerequisiteInput),
    UpdatePrerequisite(PrerequisiteInput),
    RemovePrerequisite(PrerequisiteKey),
    ReplacePrerequisites(ReplacePrerequisites),
    UpdateName(Name),
    UpdateDescription(Name),
    AddTags(Keys),
    RemoveTags(Keys),
    MakeFlagTemporary,
    MakeFlagPermanent,
    AddVariation(VariationInput),
    UpdateVariation(VariationInput),
}

/// An instruction, told apart: flag-only, or one AI Config targeting takes too. Lives for
/// one match, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Split {
    FlagOnly(FlagOnly),
    Other(Instruction),
}

impl Instruction {
    /// The flag-only instruction this is, or itself back.
    fn flag_only(self) -> Split {
        use Instruction::*;
        Split::FlagOnly(match self {
            TurnFlagOn => FlagOnly::TurnOn(true),
            TurnFlagOff => FlagOnly::TurnOn(false),
            AddPrerequisite(input) => FlagOnly::AddPrerequisite(input),
            UpdatePrerequisite(input) => FlagOnly::UpdatePrerequisite(input),
            RemovePrerequisite(key) => FlagOnly::RemovePrerequisite(key),
            ReplacePrerequisites(replace) => FlagOnly::ReplacePrerequisites(replace),
            UpdateName(name) => FlagOnly::UpdateName(name),
            UpdateDescription(text) => FlagOnly::UpdateDescription(text),
            AddTags(tags) => FlagOnly::AddTags(tags),
            RemoveTags(tags) => FlagOnly::RemoveTags(tags),
            MakeFlagTemporary => FlagOnly::Temporary(true),
            MakeFlagPermanent => FlagOnly::Temporary(false),
            AddVariation(input) => FlagOnly::AddVariation(input),
            UpdateVariation(input) => FlagOnly::UpdateVariation(input),
            other => return Split::Other(other),
        })
    }

    /// The role-policy action this needs on a feature flag (LaunchDarkly's flag actions).
    pub fn flag_action(&self) -> &'static str {
        use Instruction::*;
        match self {
            AddTargets(_) | RemoveTargets(_) | ReplaceTargets(_) | ClearTargets(_) => {
                "updateTargets"
            }
            UpdateFallthroughVariationOrRollout(_) => "updateFallthrough",
            UpdateOffVariation(_) => "updateOffVariation",
            UpdateDefaultVariation(_) => "updateFlagDefaultVariations",
            UpdateTrackEvents(_) | UpdateTrackEventsFallthrough(_) => "updateTrackEvents",
            TurnTargetingOn | TurnTargetingOff | TurnFlagOn | TurnFlagOff => "updateOn",
            AddPrerequisite(_)
            | UpdatePrerequisite(_)
            | RemovePrerequisite(_)
            | ReplacePrerequisites(_) => "updatePrerequisites",
            UpdateName(_) => "updateName",
            UpdateDescription(_) => "updateDescription",
            AddTags(_) | RemoveTags(_) => "updateTags",
            MakeFlagTemporary | MakeFlagPermanent => "updateTemporary",
            AddVariation(_) | UpdateVariation(_) => "updateFlagVariations",
            _ => "updateRules",
        }
    }

    /// Whether it changes one environment's targeting, and so needs `environmentKey`.
    pub fn in_environment(&self) -> bool {
        use Instruction::*;
        !matches!(
            self,
            UpdateName(_)
                | UpdateDescription(_)
                | AddTags(_)
                | RemoveTags(_)
                | MakeFlagTemporary
                | MakeFlagPermanent
                | UpdateDefaultVariation(_)
                | AddVariation(_)
                | UpdateVariation(_)
        )
    }
}

/// A rule as `addRule` and `replaceRules` take it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInput {
    clauses: Vec<ClauseInput>,
    description: Option<String>,
    #[serde(default)]
    track_events: bool,
    #[serde(flatten)]
    serve: ServeInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddRule {
    before_rule_id: Option<String>,
    #[serde(flatten)]
    rule: RuleInput,
}

#[derive(Debug, Deserialize)]
pub struct ReplaceRules {
    rules: Vec<RuleInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleServe {
    rule_id: String,
    #[serde(flatten)]
    serve: ServeInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTrackEvents {
    rule_id: String,
    track_events: bool,
}

/// `addTargets` / `removeTargets`, and each entry of `replaceTargets`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetKeys {
    values: Vec<String>,
    context_kind: Option<String>,
    #[serde(flatten)]
    variation: VariationChoice,
}

#[derive(Debug, Deserialize)]
pub struct ReplaceTargets {
    targets: Vec<TargetKeys>,
}

/// `updateDefaultVariation`; OA's example capitalises the field names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultVariation {
    #[serde(alias = "OnVariationValue")]
    on_variation_value: Option<Value>,
    #[serde(alias = "OffVariationValue")]
    off_variation_value: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackEvents {
    track_events: bool,
}

/// Applies one instruction to the draft.
pub fn apply(draft: &mut Draft<'_>, instruction: Instruction) -> Result<(), String> {
    let instruction = match (instruction.flag_only(), draft.settings.as_mut()) {
        (Split::FlagOnly(only), Some(settings)) => {
            return flag::apply(&mut draft.flag, settings, only)
        }
        (Split::FlagOnly(_), None) => {
            return Err("only feature flags take this instruction, AI Configs do not".into())
        }
        (Split::Other(instruction), _) => instruction,
    };
    let variations = draft.variations;
    let flag = &mut draft.flag;
    match instruction {
        Instruction::AddRule(add) => add_rule(flag, add, variations),
        Instruction::RemoveRule(rule) => {
            rules::remove(&mut flag.rules, &rule.rule_id);
            Ok(())
        }
        Instruction::ReplaceRules(replace) => replace_rules(flag, replace, variations),
        Instruction::ReorderRules(order) => rules::reorder(&mut flag.rules, &order.rule_ids),
        Instruction::UpdateRuleVariationOrRollout(edit) => {
            update_rule_serve(flag, edit, variations)
        }
        Instruction::UpdateRuleDescription(edit) => {
            rules::update_description(&mut flag.rules, edit)
        }
        Instruction::UpdateRuleTrackEvents(edit) => update_rule_track_events(flag, edit),
        Instruction::AddClauses(edit) => rules::add_clauses(&mut flag.rules, edit),
        Instruction::RemoveClauses(edit) => rules::remove_clauses(&mut flag.rules, edit),
        Instruction::UpdateClause(edit) => rules::update_clause(&mut flag.rules, edit),
        Instruction::AddValuesToClause(edit) => rules::add_values(&mut flag.rules, edit),
        Instruction::RemoveValuesFromClause(edit) => rules::remove_values(&mut flag.rules, edit),
        Instruction::AddTargets(keys) => add_targets(flag, keys, variations),
        Instruction::RemoveTargets(keys) => remove_targets(flag, keys, variations),
        Instruction::ReplaceTargets(replace) => replace_targets(flag, replace, variations),
        Instruction::ClearTargets(choice) => {
            targets::clear(flag, choice.index(variations)?);
            Ok(())
        }
        Instruction::UpdateFallthroughVariationOrRollout(serve) => {
            flag.fallthrough = serve.require(variations)?;
            Ok(())
        }
        Instruction::UpdateOffVariation(choice) => {
            flag.off_variation = Some(choice.index(variations)?);
            Ok(())
        }
        Instruction::UpdateDefaultVariation(defaults) => {
            update_defaults(&mut draft.defaults, defaults, variations)
        }
        Instruction::UpdateTrackEvents(track) => {
            flag.track_events = track.track_events;
            Ok(())
        }
        Instruction::UpdateTrackEventsFallthrough(track) => {
            flag.track_events_fallthrough = track.track_events;
            Ok(())
        }
        Instruction::TurnTargetingOn | Instruction::TurnTargetingOff
            if draft.settings.is_some() =>
        {
            Err("feature flags take turnFlagOn and turnFlagOff".into())
        }
        Instruction::TurnTargetingOn | Instruction::TurnTargetingOff => Err(
            "AI Config targeting is always on (LaunchDarkly refuses this instruction too); to \
             serve a config, point the fallthrough at a variation with \
             updateFallthroughVariationOrRollout, and at the disabled variation to stop"
                .into(),
        ),
        // Taken by `flag::apply` above.
        _ => Err("only feature flags take this instruction".into()),
    }
}

fn new_rule(input: RuleInput, variations: &[VariationRef]) -> Result<FlagRule, String> {
    let clauses = new_clauses(input.clauses)?;
    let serve = input.serve.require(variations)?;
    Ok(FlagRule {
        id: uuid::Uuid::new_v4().to_string(),
        variation: serve.variation,
        rollout: serve.rollout,
        clauses,
        track_events: input.track_events,
        description: input.description,
    })
}

fn add_rule(flag: &mut Flag, add: AddRule, variations: &[VariationRef]) -> Result<(), String> {
    let rule = new_rule(add.rule, variations)?;
    rules::insert(&mut flag.rules, rule, add.before_rule_id.as_deref())
}

fn replace_rules(
    flag: &mut Flag,
    replace: ReplaceRules,
    variations: &[VariationRef],
) -> Result<(), String> {
    flag.rules = replace
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, input)| new_rule(input, variations).map_err(|e| format!("rules[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn update_rule_serve(
    flag: &mut Flag,
    edit: RuleServe,
    variations: &[VariationRef],
) -> Result<(), String> {
    let rule = rules::find(&mut flag.rules, &edit.rule_id)?;
    let serve = edit.serve.require(variations)?;
    rule.variation = serve.variation;
    rule.rollout = serve.rollout;
    Ok(())
}

fn update_rule_track_events(flag: &mut Flag, edit: RuleTrackEvents) -> Result<(), String> {
    rules::find(&mut flag.rules, &edit.rule_id)?.track_events = edit.track_events;
    Ok(())
}

fn kind_of(keys: &TargetKeys) -> String {
    keys.context_kind
        .clone()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "user".to_owned())
}

fn add_targets(
    flag: &mut Flag,
    keys: TargetKeys,
    variations: &[VariationRef],
) -> Result<(), String> {
    let kind = kind_of(&keys);
    let variation = keys.variation.index(variations)?;
    targets::add(flag, &kind, variation, keys.values, variations)
}

fn remove_targets(
    flag: &mut Flag,
    keys: TargetKeys,
    variations: &[VariationRef],
) -> Result<(), String> {
    let kind = kind_of(&keys);
    let variation = keys.variation.index(variations)?;
    targets::remove(flag, &kind, variation, &keys.values);
    Ok(())
}

fn replace_targets(
    flag: &mut Flag,
    replace: ReplaceTargets,
    variations: &[VariationRef],
) -> Result<(), String> {
    targets::clear_all(flag);
    for (i, keys) in replace.targets.into_iter().enumerate() {
        add_targets(flag, keys, variations).map_err(|e| format!("targets[{i}]: {e}"))?;
    }
    Ok(())
}

fn update_defaults(
    defaults: &mut Defaults,
    update: DefaultVariation,
    variations: &[VariationRef],
) -> Result<(), String> {
    if update.on_variation_value.is_none() && update.off_variation_value.is_none() {
        return Err("give onVariationValue, offVariationValue or both".into());
    }
    if let Some(value) = update.on_variation_value {
        defaults.on = variation_by_value(&value, variations)?;
    }
    if let Some(value) = update.off_variation_value {
        defaults.off = variation_by_value(&value, variations)?;
    }
    Ok(())
}

/// The `_id` of the variation `value` names: an `_id` or key, an index, or the value itself.
fn variation_by_value(value: &Value, variations: &[VariationRef]) -> Result<String, String> {
    let index = match value {
        Value::String(s) => variations
            .iter()
            .position(|v| v.id == *s || v.key == *s)
            .map(|i| i as i64)
            .map_or_else(|| index_of(variations, s), Ok)?,
        Value::Number(n) => check_index(variations, n.as_i64().unwrap_or(-1))?,
        _ => variations
            .iter()
            .position(|v| v.value == *value)
            .map(|i| i as i64)
            .ok_or_else(|| "no variation has that value".to_owned())?,
    };
    Ok(variations[index as usize].id.clone())
}
