//! `/flags/{p}`: LaunchDarkly's feature-flag API (list, create, get, update in the three
//! patch formats, delete) over the flags SDKs evaluate.
//!
//! A flag is project-level; its targeting in an environment *is* the store's flag there, as
//! for AI Configs. The registry keeps only what the API alone knows ([`FlagMeta`]); a flag
//! seeded with `--data` or PUT through `/admin` has none until its first API change and is
//! shown with defaults (name = key, variation `_id`s derived from project, key and index).
//!
//! AI Configs are flags to SDKs but are not listed here, and `GET /flags/{p}/{aiConfigKey}`
//! is a 404 that points at the AI Config API: LaunchDarkly's flag list leaves AI Config
//! flags out too, and the two APIs must not both change one flag.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::targeting::rules_json;
use crate::api::access::auth::Caller;
use crate::api::json::{
    check_key, collection, comment_in, link, now_ms, parse, query, stable_salt, uuid, ListQuery,
};
use crate::api::patch::{self, Format};
use crate::api::records::environment::EnvEntry;
use crate::api::records::flag::{FlagDefaults, FlagMeta, FlagVariation};
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::flag::Settings;
use crate::api::semantic_patch::targeting::{self as instructions, Defaults, Draft, Instruction};
use crate::api::semantic_patch::{self, PatchBody, VariationRef};
use crate::api::write::change::{flag_resource, Change, Outcome};
use crate::error::AppError;
use crate::model::{
    ClientSideAvailability, Flag, FlagRule, Prerequisite, Target, VariationOrRollout,
};
use crate::store::Environment;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/flags/{project}", get(list).post(create))
        .route(
            "/flags/{project}/{flag}",
            get(read).patch(update).delete(delete),
        )
}

/// The keys of the project's ordinary flags: those the API created and those any
/// environment serves, less AI Configs.
pub fn flag_keys(data: &ProjectData) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = data.flags.keys().cloned().collect();
    for env in data.environments.values() {
        keys.extend(env.env.flags().into_iter().map(|f| f.key));
    }
    keys.retain(|k| !data.ai_configs.contains_key(k));
    keys
}

/// The flag's REST fields: kept, or derived from the first environment that serves it.
pub fn meta_of(data: &ProjectData, key: &str) -> Result<FlagMeta, AppError> {
    if data.ai_configs.contains_key(key) {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            format!(
                "{key:?} is an AI Config: use /api/v2/projects/{}/ai-configs/{key}",
                data.meta.key
            ),
        ));
    }
    if let Some(meta) = data.flags.get(key) {
        return Ok(meta.clone());
    }
    data.environments
        .values()
        .find_map(|env| env.env.flag(key))
        .map(|flag| seeded(&data.meta.key, &flag))
        .ok_or_else(|| AppError::not_found("feature flag", key))
}

/// REST fields for a flag the API did not create.
fn seeded(project: &str, flag: &Flag) -> FlagMeta {
    let variations = flag
        .variations
        .iter()
        .enumerate()
        .map(|(i, value)| FlagVariation {
            id: variation_id(project, &flag.key, i),
            value: value.clone(),
            name: None,
            description: None,
        })
        .collect();
    FlagMeta {
        name: flag.key.clone(),
        description: String::new(),
        tags: Vec::new(),
        temporary: false,
        creation_date: 0,
        version: 1,
        variations,
        defaults: FlagDefaults {
            on_variation: flag.fallthrough.variation.unwrap_or(0),
            off_variation: flag.off_variation.unwrap_or(0),
        },
        client_side_availability: flag.client_side_availability.clone(),
        maintainer_id: None,
        custom_properties: Map::new(),
        archived: false,
        deprecated: false,
        last_modified: BTreeMap::new(),
    }
}

/// A variation `_id` in LaunchDarkly's UUID shape, the same on every run.
fn variation_id(project: &str, key: &str, index: usize) -> String {
    let hex = stable_salt(&[project, key, &index.to_string()]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The variations as instructions name them: by `_id` or index.
fn refs(meta: &FlagMeta) -> Vec<VariationRef> {
    meta.variations
        .iter()
        .map(|v| VariationRef {
            id: v.id.clone(),
            key: v.name.clone().unwrap_or_else(|| v.value.to_string()),
            name: v.name.clone().unwrap_or_default(),
            value: v.value.clone(),
        })
        .collect()
}

/// The flag `env` serves (off, with the defaults, where it serves none yet), with the
/// flag's variations and salt, and ids on its rules.
fn env_flag(project: &str, key: &str, meta: &FlagMeta, env: &EnvEntry) -> Flag {
    served(project, key, meta, env.env.flag(key))
}

/// `current` (what an environment serves) with the flag's variations; off with the
/// defaults where it is `None`.
fn served(project: &str, key: &str, meta: &FlagMeta, current: Option<Flag>) -> Flag {
    let mut flag = current.unwrap_or_else(|| Flag {
        on: false,
        fallthrough: VariationOrRollout {
            variation: Some(meta.defaults.on_variation),
            rollout: None,
        },
        off_variation: Some(meta.defaults.off_variation),
        salt: stable_salt(&[project, key]),
        ..Flag::default()
    });
    flag.key = key.to_owned();
    flag.variations = meta.values();
    flag.client_side_availability = meta.client_side_availability.clone();
    semantic_patch::fill_ids(&mut flag.rules);
    flag
}

/// Serves every flag of the project in a new environment, off with its defaults, as
/// LaunchDarkly creates a new environment's flag configurations.
pub fn publish_all(data: &ProjectData, env: &Environment) {
    for key in flag_keys(data) {
        if let Ok(meta) = meta_of(data, &key) {
            env.upsert_flag(served(&data.meta.key, &key, &meta, None));
        }
    }
}

/// Which environments and how much of each a flag's JSON shows.
struct Shown<'a> {
    envs: Option<&'a [String]>,
    summary: bool,
}

const FULL: Shown<'static> = Shown {
    envs: None,
    summary: false,
};

fn flag_json(
    project: &str,
    key: &str,
    meta: &FlagMeta,
    data: &ProjectData,
    shown: &Shown,
) -> Value {
    let environments: Map<String, Value> = data
        .environments
        .iter()
        .filter(|(k, _)| shown.envs.is_none_or(|envs| envs.contains(k)))
        .map(|(env_key, env)| {
            let flag = env_flag(project, key, meta, env);
            let modified = meta.last_modified.get(env_key).copied();
            (
                env_key.clone(),
                env_json(project, &flag, env, modified, shown.summary),
            )
        })
        .collect();
    let href = format!("/api/v2/flags/{project}/{key}");
    let mut out = json!({
        "key": key,
        "name": meta.name,
        "kind": meta.kind(),
        "description": meta.description,
        "_version": meta.version,
        "creationDate": meta.creation_date,
        "includeInSnippet": meta.client_side_availability.using_environment_id,
        "clientSideAvailability": meta.client_side_availability,
        "variations": meta.variations,
        "temporary": meta.temporary,
        "tags": meta.tags,
        "_links": {"self": link(&href), "parent": link(&format!("/api/v2/flags/{project}"))},
        "experiments": {"baselineIdx": 0, "items": []},
        "customProperties": meta.custom_properties,
        "archived": meta.archived,
        "deprecated": meta.deprecated,
        "defaults": meta.defaults,
        "environments": environments,
    });
    if let Some(maintainer) = &meta.maintainer_id {
        out["maintainerId"] = json!(maintainer);
    }
    out
}

fn env_json(
    project: &str,
    flag: &Flag,
    env: &EnvEntry,
    modified: Option<u64>,
    summary: bool,
) -> Value {
    let mut out = json!({
        "on": flag.on,
        "archived": false,
        "salt": flag.salt,
        "sel": stable_salt(&[&flag.salt, &flag.version.to_string()]),
        "lastModified": modified.unwrap_or(0),
        "version": flag.version,
        "fallthrough": flag.fallthrough,
        "offVariation": flag.off_variation,
        "_site": {"href": format!("/{project}/{}/features/{}", env.meta.key, flag.key), "type": "text/html"},
        "_environmentName": env.meta.name,
        "trackEvents": flag.track_events,
        "trackEventsFallthrough": flag.track_events_fallthrough,
        "_summary": {"variations": {}, "prerequisites": flag.prerequisites.len()},
    });
    if !summary {
        out["targets"] = json!(flag.targets);
        out["contextTargets"] = json!(flag.context_targets);
        out["rules"] = rules_json(flag);
        out["prerequisites"] = json!(flag.prerequisites);
    }
    out
}

/// The list's query: LaunchDarkly's paging, `env` (repeatable), `summary`, `tag` and
/// `filter` (`query:TEXT`, `tags:A+B`; other filters are accepted and ignored).
#[derive(Deserialize)]
struct FlagsQuery {
    #[serde(flatten)]
    page: ListQuery,
    env: Option<String>,
    summary: Option<String>,
    tag: Option<String>,
    filter: Option<String>,
}

impl FlagsQuery {
    fn keeps(&self, key: &str, meta: &FlagMeta) -> bool {
        let has_tag = |tag: &str| meta.tags.iter().any(|t| t == tag);
        if self.tag.as_deref().is_some_and(|t| !has_tag(t)) {
            return false;
        }
        for part in self.filter.iter().flat_map(|f| f.split(',')) {
            match part.split_once(':') {
                Some(("query", text)) => {
                    let text = text.to_lowercase();
                    if !key.to_lowercase().contains(&text)
                        && !meta.name.to_lowercase().contains(&text)
                    {
                        return false;
                    }
                }
                Some(("tags", tags)) if !tags.split(['+', ' ']).all(has_tag) => return false,
                _ => {}
            }
        }
        true
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path(project): Path<String>,
    flags_query: Result<Query<FlagsQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let q = query(flags_query)?;
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let envs: Option<Vec<String>> = q
        .env
        .as_ref()
        .map(|e| e.split(',').map(str::to_owned).collect());
    let summary = !matches!(q.summary.as_deref(), Some("0" | "false"));
    let shown = Shown {
        envs: envs.as_deref(),
        summary,
    };
    let mut items = Vec::new();
    for key in flag_keys(&data) {
        let meta = meta_of(&data, &key)?;
        if q.keeps(&key, &meta) {
            items.push(flag_json(&project, &key, &meta, &data, &shown));
        }
    }
    Ok(Json(collection(
        items,
        &format!("/api/v2/flags/{project}"),
        &q.page,
    )))
}

#[derive(Deserialize)]
struct EnvQuery {
    env: Option<String>,
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
    env_query: Result<Query<EnvQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let q = query(env_query)?;
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let meta = meta_of(&data, &key)?;
    let envs: Option<Vec<String>> = q.env.map(|e| e.split(',').map(str::to_owned).collect());
    let shown = Shown {
        envs: envs.as_deref(),
        summary: false,
    };
    Ok(Json(flag_json(&project, &key, &meta, &data, &shown)))
}

/// `FeatureFlagBody`, as the generated clients send it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagPost {
    name: String,
    key: String,
    #[serde(default)]
    description: String,
    variations: Option<Vec<VariationPost>>,
    temporary: Option<bool>,
    #[serde(default)]
    tags: Vec<String>,
    client_side_availability: Option<ClientSideAvailability>,
    include_in_snippet: Option<bool>,
    defaults: Option<FlagDefaults>,
    #[serde(default)]
    custom_properties: Map<String, Value>,
    maintainer_id: Option<String>,
    #[serde(default)]
    initial_prerequisites: Vec<PrerequisitePost>,
    #[serde(default)]
    is_flag_on: bool,
}

#[derive(Deserialize)]
struct VariationPost {
    value: Value,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrerequisitePost {
    key: String,
    variation_id: String,
}

/// The new flag's REST fields, checked.
fn new_meta(project: &str, post: &mut FlagPost) -> Result<FlagMeta, AppError> {
    let variations = post.variations.take().unwrap_or_else(|| {
        [true, false]
            .map(|value| VariationPost {
                value: json!(value),
                name: None,
                description: None,
            })
            .into()
    });
    let variations: Vec<FlagVariation> = variations
        .into_iter()
        .enumerate()
        .map(|(i, v)| FlagVariation {
            id: variation_id(project, &post.key, i),
            value: v.value,
            name: v.name,
            description: v.description,
        })
        .collect();
    let meta = FlagMeta {
        name: post.name.clone(),
        description: std::mem::take(&mut post.description),
        tags: std::mem::take(&mut post.tags),
        temporary: post.temporary.unwrap_or(true),
        creation_date: now_ms(),
        version: 1,
        defaults: post.defaults.unwrap_or(FlagDefaults {
            on_variation: 0,
            off_variation: variations.len().saturating_sub(1) as i64,
        }),
        variations,
        client_side_availability: post.client_side_availability.clone().unwrap_or(
            ClientSideAvailability {
                using_mobile_key: false,
                using_environment_id: post.include_in_snippet.unwrap_or(false),
            },
        ),
        maintainer_id: post.maintainer_id.clone(),
        custom_properties: std::mem::take(&mut post.custom_properties),
        archived: false,
        deprecated: false,
        last_modified: BTreeMap::new(),
    };
    check_meta(&meta)?;
    Ok(meta)
}

/// What every flag must be: a name, two or more distinct variations, defaults in range.
fn check_meta(meta: &FlagMeta) -> Result<(), AppError> {
    if meta.name.trim().is_empty() {
        return Err(AppError::bad_request("`name` must not be empty"));
    }
    if meta.variations.len() < 2 {
        return Err(AppError::bad_request(
            "`variations`: a flag needs at least two variations",
        ));
    }
    for (i, v) in meta.variations.iter().enumerate() {
        if meta.variations[..i].iter().any(|w| w.value == v.value) {
            return Err(AppError::bad_request(format!(
                "`variations[{i}]`: the value {} is already variation {}",
                v.value,
                meta.variations[..i]
                    .iter()
                    .position(|w| w.value == v.value)
                    .unwrap_or(0)
            )));
        }
    }
    let n = meta.variations.len() as i64;
    for (field, index) in [
        ("defaults.onVariation", meta.defaults.on_variation),
        ("defaults.offVariation", meta.defaults.off_variation),
    ] {
        if !(0..n).contains(&index) {
            return Err(AppError::bad_request(format!(
                "`{field}`: variation index {index} is out of range (the flag has {n})"
            )));
        }
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let mut post: FlagPost = parse(&body)?;
    check_key("flag", &post.key)?;
    let mut meta = new_meta(&project, &mut post)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = flag_resource(&project, "*", &post.key);
    let comment = comment_in(&body);
    let change = Change::new(&caller, "createFlag", resource).with_comment(comment);
    let answer = change.commit(&state.api, &mut *data, |data| {
        if data.ai_configs.contains_key(&post.key) || flag_keys(data).contains(&post.key) {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!("project {project:?} already has a flag {:?}", post.key),
            ));
        }
        let others = other_flags(data, &post.key)?;
        let prerequisites = post
            .initial_prerequisites
            .iter()
            .map(|p| {
                let refs = others.get(&p.key).ok_or_else(|| {
                    AppError::bad_request(format!("`initialPrerequisites`: no flag {:?}", p.key))
                })?;
                let index = refs
                    .iter()
                    .position(|v| v.id == p.variation_id)
                    .ok_or_else(|| {
                        AppError::bad_request(format!(
                            "`initialPrerequisites`: flag {:?} has no variation {:?}",
                            p.key, p.variation_id
                        ))
                    })?;
                Ok(Prerequisite {
                    key: p.key.clone(),
                    variation: index as i64,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        for (env_key, env) in &data.environments {
            let mut flag = env_flag(&project, &post.key, &meta, env);
            flag.on = post.is_flag_on;
            flag.prerequisites.clone_from(&prerequisites);
            env.env.upsert_flag(flag);
            meta.last_modified
                .insert(env_key.clone(), meta.creation_date);
        }
        data.flags.insert(post.key.clone(), meta.clone());
        let answer = flag_json(&project, &post.key, &meta, data, &FULL);
        Ok(Outcome {
            before: Value::Null,
            after: answer.clone(),
            response: answer,
        })
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = flag_resource(&project, "*", &key);
    Change::new(&caller, "deleteFlag", resource).commit(&state.api, &mut *data, |data| {
        let meta = meta_of(data, &key)?;
        let before = flag_json(&project, &key, &meta, data, &FULL);
        for env in data.environments.values() {
            env.env.delete_flag(&key);
        }
        data.flags.remove(&key);
        Ok(Outcome {
            before,
            after: Value::Null,
            response: StatusCode::NO_CONTENT,
        })
    })
}

/// Every other ordinary flag's variations, by key, for prerequisites.
fn other_flags(
    data: &ProjectData,
    key: &str,
) -> Result<BTreeMap<String, Vec<VariationRef>>, AppError> {
    flag_keys(data)
        .into_iter()
        .filter(|k| k != key)
        .map(|k| Ok((k.clone(), refs(&meta_of(data, &k)?))))
        .collect()
}

/// What a patch produced: the flag's REST fields, the environments whose flag changed,
/// and what the role check needs.
struct Patched {
    meta: FlagMeta,
    flags: Vec<(String, Flag)>,
    actions: Vec<&'static str>,
    /// The one environment changed, or `*`.
    env: String,
}

async fn update(
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
    let mut actions = patched.actions.clone();
    actions.sort_unstable();
    actions.dedup();
    if actions.is_empty() {
        actions.push("updateName");
    }
    let change = Change {
        caller: &caller,
        actions,
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
        for (env_key, flag) in flags {
            data.env(&env_key)?.env.upsert_flag(flag);
            meta.last_modified.insert(env_key, now);
        }
        // Variations and availability reach every environment's flag.
        for env in data.environments.values() {
            let next = env_flag(&project, &key, &meta, env);
            if env.env.flag(&key).is_some_and(|f| f != next) {
                env.env.upsert_flag(next);
            }
        }
        data.flags.insert(key.clone(), meta.clone());
        let after = flag_json(&project, &key, &meta, data, &FULL);
        Ok(Outcome {
            before,
            after: after.clone(),
            response: after,
        })
    })?;
    Ok(Json(answer))
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
        defaults: FlagDefaults {
            on_variation: index_of(&draft.defaults.on),
            off_variation: index_of(&draft.defaults.off),
        },
        ..meta.clone()
    };
    let flags = match (env_key, current) {
        (Some(env_key), Some(current)) if current != draft.flag => vec![(env_key, draft.flag)],
        _ => Vec::new(),
    };
    let env = flags.first().map_or("*".to_owned(), |(k, _)| k.clone());
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
    let variations = edit
        .variations
        .into_iter()
        .map(|v| FlagVariation {
            id: v.id.unwrap_or_else(uuid),
            value: v.value,
            name: v.name,
            description: v.description,
        })
        .collect();
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
        check_indices(&flag, next.variations.len())
            .map_err(|e| AppError::bad_request(format!("/environments/{env_key}/{e}")))?;
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

/// Every variation index in the flag's targeting is one of its `n` variations; the error
/// is the field, under the environment.
fn check_indices(flag: &Flag, n: usize) -> Result<(), String> {
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
