//! The instructions only feature flags take (spec §8): on/off, prerequisites and the flag's
//! settings (name, description, tags, temporary, variations). The rest of the flag vocabulary is the
//! AI Config targeting vocabulary, applied by [`super::targeting`] to the same draft.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::segment::{add_tags, update_name, Keys, Name};
use super::serve::{VariationChoice, VariationRef};
use crate::model::{Flag, Prerequisite};

/// A feature flag's settings, which a flag patch may change besides one environment's
/// targeting.
pub struct Settings<'a> {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub temporary: bool,
    /// The flag's variations, which `addVariation` and `updateVariation` change.
    pub variations: Vec<VariationDraft>,
    /// The variations of every other flag of the project, by key, for prerequisites.
    pub flags: &'a BTreeMap<String, Vec<VariationRef>>,
}

/// One variation of the flag, as a patch may change it.
#[derive(Clone, Debug, PartialEq)]
pub struct VariationDraft {
    pub id: String,
    pub value: Value,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// `addVariation` and `updateVariation` (which names the variation by `variationId`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationInput {
    variation_id: Option<String>,
    value: Option<Value>,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrerequisiteInput {
    key: String,
    #[serde(flatten)]
    variation: VariationChoice,
}

#[derive(Debug, Deserialize)]
pub struct PrerequisiteKey {
    key: String,
}

#[derive(Debug, Deserialize)]
pub struct ReplacePrerequisites {
    prerequisites: Vec<PrerequisiteInput>,
}

/// An instruction only feature flags take.
#[derive(Debug)]
pub enum FlagOnly {
    TurnOn(bool),
    AddPrerequisite(PrerequisiteInput),
    UpdatePrerequisite(PrerequisiteInput),
    RemovePrerequisite(PrerequisiteKey),
    ReplacePrerequisites(ReplacePrerequisites),
    UpdateName(Name),
    UpdateDescription(Name),
    AddTags(Keys),
    RemoveTags(Keys),
    Temporary(bool),
    AddVariation(VariationInput),
    UpdateVariation(VariationInput),
}

impl FlagOnly {
    /// The role-policy action (LaunchDarkly's flag actions).
    pub fn action(&self) -> &'static str {
        match self {
            FlagOnly::TurnOn(_) => "updateOn",
            FlagOnly::AddPrerequisite(_)
            | FlagOnly::UpdatePrerequisite(_)
            | FlagOnly::RemovePrerequisite(_)
            | FlagOnly::ReplacePrerequisites(_) => "updatePrerequisites",
            FlagOnly::UpdateName(_) => "updateName",
            FlagOnly::UpdateDescription(_) => "updateDescription",
            FlagOnly::AddTags(_) | FlagOnly::RemoveTags(_) => "updateTags",
            FlagOnly::Temporary(_) => "updateTemporary",
            FlagOnly::AddVariation(_) | FlagOnly::UpdateVariation(_) => "updateFlagVariations",
        }
    }

    /// Whether it changes one environment's targeting (and so needs `environmentKey`).
    pub fn in_environment(&self) -> bool {
        matches!(
            self,
            FlagOnly::TurnOn(_)
                | FlagOnly::AddPrerequisite(_)
                | FlagOnly::UpdatePrerequisite(_)
                | FlagOnly::RemovePrerequisite(_)
                | FlagOnly::ReplacePrerequisites(_)
        )
    }
}

/// Applies a flag-only instruction to the environment's flag and the flag's settings.
pub fn apply(
    flag: &mut Flag,
    settings: &mut Settings<'_>,
    instruction: FlagOnly,
) -> Result<(), String> {
    match instruction {
        FlagOnly::TurnOn(on) => flag.on = on,
        FlagOnly::AddPrerequisite(input) => {
            if flag.prerequisites.iter().any(|p| p.key == input.key) {
                return Err(format!(
                    "{:?} is already a prerequisite; use updatePrerequisite",
                    input.key
                ));
            }
            let prerequisite = prerequisite(flag, settings, input)?;
            flag.prerequisites.push(prerequisite);
        }
        FlagOnly::UpdatePrerequisite(input) => {
            let prerequisite = prerequisite(flag, settings, input)?;
            let existing = flag
                .prerequisites
                .iter_mut()
                .find(|p| p.key == prerequisite.key)
                .ok_or_else(|| format!("{:?} is not a prerequisite", prerequisite.key))?;
            *existing = prerequisite;
        }
        FlagOnly::RemovePrerequisite(key) => flag.prerequisites.retain(|p| p.key != key.key),
        FlagOnly::ReplacePrerequisites(replace) => {
            let mut prerequisites: Vec<Prerequisite> = Vec::new();
            for (i, input) in replace.prerequisites.into_iter().enumerate() {
                let next = prerequisite(flag, settings, input)
                    .map_err(|e| format!("prerequisites[{i}]: {e}"))?;
                if prerequisites.iter().any(|p| p.key == next.key) {
                    return Err(format!(
                        "prerequisites[{i}]: {:?} is listed twice",
                        next.key
                    ));
                }
                prerequisites.push(next);
            }
            flag.prerequisites = prerequisites;
        }
        FlagOnly::UpdateName(name) => update_name(&mut settings.name, name.value)?,
        FlagOnly::UpdateDescription(text) => settings.description = text.value,
        FlagOnly::AddTags(tags) => add_tags(&mut settings.tags, tags.values),
        FlagOnly::RemoveTags(tags) => settings.tags.retain(|t| !tags.values.contains(t)),
        FlagOnly::Temporary(temporary) => settings.temporary = temporary,
        FlagOnly::AddVariation(input) => add_variation(&mut settings.variations, input)?,
        FlagOnly::UpdateVariation(input) => update_variation(&mut settings.variations, input)?,
    }
    Ok(())
}

fn add_variation(
    variations: &mut Vec<VariationDraft>,
    input: VariationInput,
) -> Result<(), String> {
    let value = input.value.ok_or("`value` is required")?;
    check_unique(variations, &value, None)?;
    variations.push(VariationDraft {
        id: uuid::Uuid::new_v4().to_string(),
        value,
        name: input.name,
        description: input.description,
    });
    Ok(())
}

fn update_variation(
    variations: &mut [VariationDraft],
    input: VariationInput,
) -> Result<(), String> {
    let id = input.variation_id.ok_or("`variationId` is required")?;
    let index = variations
        .iter()
        .position(|v| v.id == id)
        .ok_or_else(|| format!("unknown variationId {id:?}"))?;
    if let Some(value) = input.value {
        check_unique(variations, &value, Some(index))?;
        variations[index].value = value;
    }
    let variation = &mut variations[index];
    if input.name.is_some() {
        variation.name = input.name;
    }
    if input.description.is_some() {
        variation.description = input.description;
    }
    Ok(())
}

/// SDKs tell variations apart by value, so no two may share one.
fn check_unique(
    variations: &[VariationDraft],
    value: &Value,
    except: Option<usize>,
) -> Result<(), String> {
    match variations
        .iter()
        .enumerate()
        .find(|(i, v)| Some(*i) != except && v.value == *value)
    {
        Some((i, _)) => Err(format!("variation {i} already has the value {value}")),
        None => Ok(()),
    }
}

/// A prerequisite on another flag of the project, its variation named by that flag's
/// variation `_id` (or index).
fn prerequisite(
    flag: &Flag,
    settings: &Settings<'_>,
    input: PrerequisiteInput,
) -> Result<Prerequisite, String> {
    if input.key == flag.key {
        return Err("a flag cannot be its own prerequisite".into());
    }
    let variations = settings
        .flags
        .get(&input.key)
        .ok_or_else(|| format!("the project has no flag {:?}", input.key))?;
    let variation = input
        .variation
        .index(variations)
        .map_err(|e| format!("prerequisite {:?}: {e}", input.key))?;
    Ok(Prerequisite {
        key: input.key,
        variation,
    })
}
