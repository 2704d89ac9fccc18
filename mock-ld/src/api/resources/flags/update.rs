//! PATCH of a flag in LaunchDarkly's three formats: a semantic patch through the shared
//! instruction engine, or a JSON Patch / merge patch applied to the flag's JSON view and read
//! back. Either way the result is checked, the role check names what changed, and one
//! commit serves every changed environment.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::view::{flag_json, FULL};
use super::{check_meta, env_flag, meta_of, other_flags, refs};
use crate::api::access::auth::Caller;
use crate::api::json::{now_ms, uuid};
use crate::api::patch::{self, Format};
use crate::api::records::environment::EnvEntry;
use crate::api::records::flag::{FlagDefaults, FlagMeta, FlagVariation};
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::flag::{Settings, VariationDraft};
use crate::api::semantic_patch::targeting::{self as instructions, Defaults, Draft, Instruction};
use crate::api::semantic_patch::{self, PatchBody, VariationRef};
use crate::api::write::change::{flag_resource, needed_actions, Change, Outcome};
use crate::error::AppError;
use crate::model::{
    ClientSideAvailability, Flag, FlagRule, Prerequisite, Target, VariationOrRollout,
};
use crate::AppState;

/// What a patch produced: the flag's REST fields, the environments whose flag changed,
/// and what the role check needs.
struct Patched {
    meta: FlagMeta,
    flags: Vec<(String, Flag)>,
    actions: Vec<&'static str>,
    /// The one environment changed, or `*`.
    env: String,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let request = patch::read(content_type, &body)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let meta = meta_of(&data, &key)?;
    let before = flag_json(&project, &key, &meta, &data, &FULL);
    let patched = match request.format {
        Format::Semantic(body) => semantically_patched(&data, &project, &key, &meta, body)?,
        format => json_patched(&data, &project, &key, &meta, &before, format)?,
    };
    let change = Change {
        caller: &caller,
        actions: needed_actions(patched.actions.clone(), "updateName"),
        resource: flag_resource(&project, &patched.env, &key),
        comment: request.comment,
    };
    let answer = change.commit(&state.api, &mut *data, |data| {
        let Patched {
            mut meta, flags, ..
        } = patched;
        let changed = meta != meta_of(data, &key)? || !flags.is_empty();
        if changed {
            meta.version += 1;
        }
        let now = now_ms();
        for (env_key, mut flag) in flags {
            // The draft carries the variations it started from; the patch may have changed them.
            with_meta(&mut flag, &meta);
            data.env(&env_key)?.env.upsert_flag(flag);
            meta.last_modified.insert(env_key, now);
        }
        // Variations and availability reach every environment's flag, and nothing else does:
        // an environment the patch did not target keeps its targeting and its version.
        for env in data.environments.values() {
            if let Some(mut stored) = env.env.flag(&key) {
                if with_meta(&mut stored, &meta) {
                    env.env.upsert_flag(stored);
                }
            }
        }
        data.flags.insert(key.clone(), meta.clone());
        let after = flag_json(&project, &key, &meta, data, &FULL);
        Ok(Outcome::changed(before, after))
    })?;
    Ok(Json(answer))
}

/// Gives `flag` the variations and client-side availability of `meta`; whether they changed.
fn with_meta(flag: &mut Flag, meta: &FlagMeta) -> bool {
    let values = meta.values();
    let changed =
        flag.variations != values || flag.client_side_availability != meta.client_side_availability;
    flag.variations = values;
    flag.client_side_availability = meta.client_side_availability.clone();
    changed
}

fn semantically_patched(
    data: &ProjectData,
    project: &str,
    key: &str,
    meta: &FlagMeta,
    mut body: PatchBody,
) -> Result<Patched, AppError> {
    let steps = semantic_patch::parse::<Instruction>(&body.take_instructions()?)?;
    let env_key = body.environment_key.take();
    let needs_env = steps.iter().any(|s| s.instruction().in_environment());
    // Instructions that change only one environment are checked against it, so that a
    // role scoped to that environment may send them, no-ops included.
    let only_env = steps.iter().all(|s| s.instruction().in_environment());
    let env = match (&env_key, needs_env) {
        (Some(env_key), _) => Some(data.env(env_key)?),
        (None, true) => return Err(AppError::bad_request(
            "`environmentKey` is required: these instructions change one environment's targeting",
        )),
        (None, false) => None,
    };
    let actions = steps
        .iter()
        .map(|s| s.instruction().flag_action())
        .collect();
    let refs = refs(meta);
    let others = other_flags(data, key)?;
    let current = env.map(|env| env_flag(project, key, meta, env));
    let id_at = |i: i64| {
        refs.get(i as usize)
            .map(|v| v.id.clone())
            .unwrap_or_default()
    };
    let mut draft = Draft {
        flag: current.clone().unwrap_or_default(),
        defaults: Defaults {
            on: id_at(meta.defaults.on_variation),
            off: id_at(meta.defaults.off_variation),
        },
        variations: &refs,
        settings: Some(Settings {
            name: meta.name.clone(),
            description: meta.description.clone(),
            tags: meta.tags.clone(),
            temporary: meta.temporary,
            variations: meta
                .variations
                .iter()
                .map(|v| VariationDraft {
                    id: v.id.clone(),
                    value: v.value.clone(),
                    name: v.name.clone(),
                    description: v.description.clone(),
                })
                .collect(),
            flags: &others,
        }),
    };
    semantic_patch::apply(steps, &mut draft, instructions::apply)?;
    let settings = draft.settings.take().expect("a flag draft has settings");
    let index_of = |id: &str| refs.iter().position(|v| v.id == id).unwrap_or(0) as i64;
    let next = FlagMeta {
        name: settings.name,
        description: settings.description,
        tags: settings.tags,
        temporary: settings.temporary,
        variations: settings
            .variations
            .into_iter()
            .map(|v| FlagVariation {
                id: v.id,
                value: v.value,
                name: v.name,
                description: v.description,
            })
            .collect(),
        defaults: FlagDefaults {
            on_variation: index_of(&draft.defaults.on),
            off_variation: index_of(&draft.defaults.off),
        },
        ..meta.clone()
    };
    check_meta(&next)?;
    let env_entry = env;
    let env = match (&env_key, only_env) {
        (Some(env_key), true) => env_key.clone(),
        _ => "*".to_owned(),
    };
    let flags = match (env_key, current) {
        (Some(env_key), Some(current)) if current != draft.flag => vec![(env_key, draft.flag)],
        _ => Vec::new(),
    };
    // The instructions check each prerequisite on its own; a cycle needs the environment.
    if let (Some(entry), [(env_key, flag)]) = (env_entry, flags.as_slice()) {
        if flag.prerequisites != prerequisites_in(entry, key) {
            check_prerequisites(flag, &others, |k| prerequisites_in(entry, k))
                .map_err(|e| AppError::bad_request(format!("/environments/{env_key}/{e}")))?;
        }
    }
    Ok(Patched {
        meta: next,
        flags,
        actions,
        env,
    })
}

/// A flag as a JSON Patch or merge patch leaves it: the fields a patch may change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagEdit {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    temporary: bool,
    variations: Vec<VariationEdit>,
    defaults: FlagDefaults,
    client_side_availability: ClientSideAvailability,
    #[serde(default)]
    maintainer_id: Option<String>,
    #[serde(default)]
    custom_properties: Map<String, Value>,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    environments: BTreeMap<String, EnvEdit>,
}

#[derive(Deserialize)]
struct VariationEdit {
    #[serde(rename = "_id")]
    id: Option<String>,
    value: Value,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvEdit {
    on: bool,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    context_targets: Vec<Target>,
    #[serde(default)]
    rules: Vec<FlagRule>,
    fallthrough: VariationOrRollout,
    off_variation: Option<i64>,
    #[serde(default)]
    prerequisites: Vec<Prerequisite>,
    #[serde(default)]
    track_events: bool,
    #[serde(default)]
    track_events_fallthrough: bool,
}

/// What no JSON Patch or merge patch may change in a flag's view (besides `_` fields).
const READ_ONLY: &[&str] = &[
    "/key",
    "/kind",
    "/creationDate",
    "/experiments",
    "/environments/*/version",
    "/environments/*/salt",
    "/environments/*/sel",
    "/environments/*/lastModified",
    "/environments/*/archived",
];

fn json_patched(
    data: &ProjectData,
    project: &str,
    key: &str,
    meta: &FlagMeta,
    before: &Value,
    format: Format,
) -> Result<Patched, AppError> {
    let edit: FlagEdit = patch::read_back(patch::apply(before, format, READ_ONLY)?)?;
    let variations: Vec<FlagVariation> = edit
        .variations
        .into_iter()
        .map(|v| FlagVariation {
            id: v.id.unwrap_or_else(uuid),
            value: v.value,
            name: v.name,
            description: v.description,
        })
        .collect();
    keeps_variation_order(&meta.variations, &variations)?;
    let next = FlagMeta {
        name: edit.name,
        description: edit.description.unwrap_or_default(),
        tags: edit.tags,
        temporary: edit.temporary,
        variations,
        defaults: edit.defaults,
        client_side_availability: edit.client_side_availability,
        maintainer_id: edit.maintainer_id,
        custom_properties: edit.custom_properties,
        archived: edit.archived,
        deprecated: edit.deprecated,
        ..meta.clone()
    };
    check_meta(&next)?;
    let mut actions = meta_actions(meta, &next);
    let mut flags = Vec::new();
    let mut envs: BTreeSet<&String> = edit.environments.keys().collect();
    // Every other flag's variations, read only when a patch changes prerequisites: reading
    // them is linear in the project's flags.
    let mut others = None;
    for (env_key, env) in &data.environments {
        let edited = edit.environments.get(env_key).ok_or_else(|| {
            AppError::bad_request(format!("/environments/{env_key} may not be removed"))
        })?;
        envs.remove(env_key);
        let current = env_flag(project, key, &next, env);
        let mut flag = Flag {
            on: edited.on,
            targets: edited.targets.clone(),
            context_targets: edited.context_targets.clone(),
            rules: edited.rules.clone(),
            fallthrough: edited.fallthrough.clone(),
            off_variation: edited.off_variation,
            prerequisites: edited.prerequisites.clone(),
            track_events: edited.track_events,
            track_events_fallthrough: edited.track_events_fallthrough,
            ..current.clone()
        };
        semantic_patch::fill_ids(&mut flag.rules);
        // Seed data may hold targeting the API would refuse; it stays patchable until the
        // patch touches that environment.
        let located = |e: String| AppError::bad_request(format!("/environments/{env_key}/{e}"));
        check_servable(&flag, next.variations.len(), flag != current).map_err(located)?;
        if flag.prerequisites != current.prerequisites {
            let others = match &mut others {
                Some(others) => others,
                none => none.insert(other_flags(data, key)?),
            };
            check_prerequisites(&flag, others, |k| prerequisites_in(env, k)).map_err(located)?;
        }
        if flag != current {
            actions.extend(targeting_actions(&current, &flag));
            flags.push((env_key.clone(), flag));
        }
    }
    if let Some(unknown) = envs.first() {
        return Err(AppError::bad_request(format!(
            "/environments/{unknown}: the project has no such environment"
        )));
    }
    let env = match flags.as_slice() {
        [(only, _)] if meta_actions(meta, &next).is_empty() => only.clone(),
        _ => "*".to_owned(),
    };
    Ok(Patched {
        meta: next,
        flags,
        actions,
        env,
    })
}

/// Every environment's targeting names variations by index, so a JSON Patch or merge patch
/// may change a variation's value, name and description and append variations, but not
/// remove or reorder them: that would silently re-point what every environment serves.
fn keeps_variation_order(
    before: &[FlagVariation],
    after: &[FlagVariation],
) -> Result<(), AppError> {
    let kept = before.iter().zip(after).all(|(old, new)| old.id == new.id);
    if kept && after.len() >= before.len() {
        return Ok(());
    }
    Err(AppError::bad_request(
        "/variations: a JSON Patch or merge patch may change variations (keeping each `_id` at \
         its index) and append new ones, but not remove or reorder them, since targeting names \
         variations by index (mock-ld does not remove a flag's variations)",
    ))
}

fn meta_actions(before: &FlagMeta, after: &FlagMeta) -> Vec<&'static str> {
    let changed = [
        (before.name != after.name, "updateName"),
        (before.description != after.description, "updateDescription"),
        (before.tags != after.tags, "updateTags"),
        (before.temporary != after.temporary, "updateTemporary"),
        (
            before.variations != after.variations,
            "updateFlagVariations",
        ),
        (
            before.defaults != after.defaults,
            "updateFlagDefaultVariations",
        ),
        (
            before.client_side_availability != after.client_side_availability,
            "updateClientSideFlagAvailability",
        ),
        (
            before.maintainer_id != after.maintainer_id,
            "updateMaintainer",
        ),
        (
            before.custom_properties != after.custom_properties,
            "updateFlagCustomProperties",
        ),
        (before.deprecated != after.deprecated, "updateDeprecated"),
        (before.archived != after.archived, "updateDeprecated"),
    ];
    changed.iter().filter(|c| c.0).map(|c| c.1).collect()
}

fn targeting_actions(before: &Flag, after: &Flag) -> Vec<&'static str> {
    let changed = [
        (before.on != after.on, "updateOn"),
        (
            before.targets != after.targets || before.context_targets != after.context_targets,
            "updateTargets",
        ),
        (before.rules != after.rules, "updateRules"),
        (before.fallthrough != after.fallthrough, "updateFallthrough"),
        (
            before.off_variation != after.off_variation,
            "updateOffVariation",
        ),
        (
            before.prerequisites != after.prerequisites,
            "updatePrerequisites",
        ),
        (
            before.track_events != after.track_events
                || before.track_events_fallthrough != after.track_events_fallthrough,
            "updateTrackEvents",
        ),
    ];
    changed.iter().filter(|c| c.0).map(|c| c.1).collect()
}

/// The flag's targeting is one the SDKs can evaluate (they call anything else a malformed
/// flag and serve the default): every variation index is one of its `n` variations, every
/// fallthrough or rule serves a variation or a rollout, every rollout's weights are
/// non-negative and sum to 100000 (LaunchDarkly refuses other sums), and the flag is not
/// its own prerequisite. Only the indices are checked when the environment's targeting is
/// not `changed` (the variations may have been). The error is the field, under the
/// environment.
fn check_servable(flag: &Flag, n: usize, changed: bool) -> Result<(), String> {
    let own = flag.prerequisites.iter().position(|p| p.key == flag.key);
    if let Some(i) = own.filter(|_| changed) {
        return Err(format!(
            "prerequisites/{i}/key: a flag cannot be its own prerequisite"
        ));
    }
    if changed {
        semantic_patch::check_ops(flag.rules.iter().map(|r| r.clauses.as_slice()))?;
    }
    check_indices(flag, n, changed)
}

fn check_indices(flag: &Flag, n: usize, changed: bool) -> Result<(), String> {
    let n = n as i64;
    let bad = |field: String, index: i64| {
        Err(format!(
            "{field}: variation index {index} is out of range (the flag has {n})"
        ))
    };
    let serve = |field: String, serve: (&Option<i64>, Option<&crate::model::Rollout>)| {
        if let Some(i) = serve.0.filter(|i| !(0..n).contains(i)) {
            return bad(format!("{field}/variation"), i);
        }
        match serve {
            _ if !changed => {}
            (None, None) => {
                return Err(format!("{field}: serves neither a variation nor a rollout"))
            }
            (_, Some(rollout)) => check_weights(&field, rollout)?,
            _ => {}
        }
        for (w, weighted) in serve.1.iter().flat_map(|r| r.variations.iter().enumerate()) {
            if !(0..n).contains(&weighted.variation) {
                return bad(
                    format!("{field}/rollout/variations/{w}/variation"),
                    weighted.variation,
                );
            }
        }
        Ok(())
    };
    for (name, targets) in [
        ("targets", &flag.targets),
        ("contextTargets", &flag.context_targets),
    ] {
        if let Some((i, t)) = targets
            .iter()
            .enumerate()
            .find(|(_, t)| !(0..n).contains(&t.variation))
        {
            return bad(format!("{name}/{i}/variation"), t.variation);
        }
    }
    for (i, rule) in flag.rules.iter().enumerate() {
        serve(
            format!("rules/{i}"),
            (&rule.variation, rule.rollout.as_ref()),
        )?;
    }
    serve(
        "fallthrough".into(),
        (
            &flag.fallthrough.variation,
            flag.fallthrough.rollout.as_ref(),
        ),
    )?;
    if let Some(i) = flag.off_variation.filter(|i| !(0..n).contains(i)) {
        return bad("offVariation".into(), i);
    }
    Ok(())
}

/// A rollout's weights are each non-negative and sum to 100000 (100 %).
fn check_weights(field: &str, rollout: &crate::model::Rollout) -> Result<(), String> {
    if let Some((w, weighted)) = rollout
        .variations
        .iter()
        .enumerate()
        .find(|(_, v)| v.weight < 0)
    {
        return Err(format!(
            "{field}/rollout/variations/{w}/weight: {} is negative",
            weighted.weight
        ));
    }
    let sum: i64 = rollout.variations.iter().map(|v| v.weight).sum();
    if sum != 100_000 {
        return Err(format!("{field}/rollout: weights sum to {sum}, not 100000"));
    }
    Ok(())
}

/// Each prerequisite (the flag itself refused before) is a flag of the project, served as
/// one of its variations, and does not require this flag back through its own
/// prerequisites in `prerequisites_of`'s environment: the SDKs call a cycle a malformed
/// flag. As semantic patches check, and the cycle too.
fn check_prerequisites(
    flag: &Flag,
    others: &BTreeMap<String, Vec<VariationRef>>,
    prerequisites_of: impl Fn(&str) -> Vec<Prerequisite>,
) -> Result<(), String> {
    for (i, prerequisite) in flag.prerequisites.iter().enumerate() {
        let key = &prerequisite.key;
        let n = others
            .get(key)
            .ok_or_else(|| format!("prerequisites/{i}/key: the project has no flag {key:?}"))?
            .len() as i64;
        if !(0..n).contains(&prerequisite.variation) {
            return Err(format!(
                "prerequisites/{i}/variation: variation index {} is out of range (flag \
                 {key:?} has {n})",
                prerequisite.variation
            ));
        }
        let mut seen = BTreeSet::new();
        let mut next = vec![key.clone()];
        while let Some(k) = next.pop() {
            if k == flag.key {
                return Err(format!(
                    "prerequisites/{i}/key: {key:?} requires this flag through its \
                     prerequisites; a prerequisite cycle"
                ));
            }
            if seen.insert(k.clone()) {
                next.extend(prerequisites_of(&k).into_iter().map(|p| p.key));
            }
        }
    }
    Ok(())
}

/// The prerequisites of flag `key` in `entry`'s environment (none where it is not served).
fn prerequisites_in(entry: &EnvEntry, key: &str) -> Vec<Prerequisite> {
    entry
        .env
        .flag(key)
        .map(|f| f.prerequisites)
        .unwrap_or_default()
}
