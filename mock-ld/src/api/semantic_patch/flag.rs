//! The instructions only feature flags take (spec §8): on/off, prerequisites and the flag's
//! settings (name, description, tags, temporary). The rest of the flag vocabulary is the
//! AI Config targeting vocabulary, applied by [`super::targeting`] to the same draft.

use std::collections::BTreeMap;

use serde::Deserialize;

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
    /// The variations of every other flag of the project, by key, for prerequisites.
    pub flags: &'a BTreeMap<String, Vec<VariationRef>>,
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
    }
    Ok(())
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
