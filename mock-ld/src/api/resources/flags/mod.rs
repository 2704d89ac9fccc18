//! `/flags/{p}`: LaunchDarkly's feature-flag API (list, create, get, update in the three
//! patch formats, delete) over the flags SDKs evaluate.
//!
//! A flag is project-level; its targeting in an environment *is* the store's flag there, as
//! for AI Configs. The registry keeps only what the API alone knows ([`FlagMeta`]); a flag
//! seeded with `--data` or PUT through `/admin` has none until its first API change and is
//! shown with defaults (name = key, variation `_id`s derived from project, key and index).
//!
//! AI Configs are flags to SDKs. They are left out of the flag list (which holds the flags
//! this API manages), but `GET /flags/{p}/{aiConfigKey}` shows the config's flag, read-only,
//! since scripts read a flag's salt there; a write to one is a 400 that points at the AI
//! Config API, so that the two APIs never both change one flag.
//!
//! Here: the routes, reading, creating and deleting; [`view`]: the flag's JSON; [`update`]:
//! PATCH in the three formats.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

mod update;
mod view;

use super::ai_flag;

use crate::api::access::auth::Caller;
use crate::api::json::{
    check_key, collection, comment_in, now_ms, parse, query, stable_salt, ListQuery,
};
use crate::api::records::environment::EnvEntry;
use crate::api::records::flag::{FlagDefaults, FlagMeta, FlagVariation};
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::{self, VariationRef};
use crate::api::write::change::{flag_resource, Change, Outcome};
use crate::error::AppError;
use crate::model::{ClientSideAvailability, Flag, Prerequisite, VariationOrRollout};
use crate::store::Environment;
use crate::AppState;
use view::{flag_json, Shown, FULL};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/flags/{project}", get(list).post(create))
        .route(
            "/flags/{project}/{flag}",
            get(read).patch(update::update).delete(delete),
        )
}

/// 404 unless the project has a flag `key`, ordinary or an AI Config's.
pub fn check_exists(data: &ProjectData, key: &str) -> Result<(), AppError> {
    if data.ai_configs.contains_key(key) || flag_keys(data).contains(key) {
        Ok(())
    } else {
        Err(AppError::not_found("feature flag", key))
    }
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
        return Err(AppError::bad_request(format!(
            "{key:?} is an AI Config: change it through /api/v2/projects/{}/ai-configs/{key}",
            data.meta.key
        )));
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

/// An AI Config as the flag API shows it (read-only): its variations in flag order, the
/// disabled one first, and its defaults.
fn ai_config_meta(data: &ProjectData, key: &str) -> Option<FlagMeta> {
    let config = data.ai_configs.get(key)?;
    let refs = ai_flag::variation_refs(config, &data.model_configs);
    let index = |id: &str| refs.iter().position(|v| v.id == id).unwrap_or(0) as i64;
    Some(FlagMeta {
        name: config.name.clone(),
        description: config.description.clone(),
        tags: config.tags.clone(),
        temporary: false,
        creation_date: config.created_at,
        version: config.version,
        variations: refs
            .iter()
            .map(|v| FlagVariation {
                id: v.id.clone(),
                value: v.value.clone(),
                name: Some(v.name.clone()),
                description: None,
            })
            .collect(),
        defaults: FlagDefaults {
            on_variation: index(&config.defaults.on),
            off_variation: index(&config.defaults.off),
        },
        client_side_availability: ClientSideAvailability::default(),
        maintainer_id: None,
        custom_properties: Map::new(),
        archived: false,
        deprecated: false,
        last_modified: config.targeting_modified.clone(),
    })
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
pub(super) fn refs(meta: &FlagMeta) -> Vec<VariationRef> {
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
pub(super) fn env_flag(project: &str, key: &str, meta: &FlagMeta, env: &EnvEntry) -> Flag {
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

/// The list's query: LaunchDarkly's paging, `env` (repeatable), `summary`, `tag` and
/// `filter` (`query:TEXT`, `tags:A+B`; other filters are accepted and ignored). The paging
/// is its own extractor: serde's `flatten` hands a query's numbers over as strings, and
/// every `limit` was refused.
#[derive(Deserialize)]
struct FlagsQuery {
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
    page: Result<Query<ListQuery>, QueryRejection>,
    flags_query: Result<Query<FlagsQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let page = query(page)?;
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
        &page,
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
    let meta = match ai_config_meta(&data, &key) {
        Some(meta) => meta,
        None => meta_of(&data, &key)?,
    };
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
pub(super) fn check_meta(meta: &FlagMeta) -> Result<(), AppError> {
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
        Ok(Outcome::created(answer))
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
        Ok(Outcome::deleted(before))
    })
}

/// Every other ordinary flag's variations, by key, for prerequisites.
pub(super) fn other_flags(
    data: &ProjectData,
    key: &str,
) -> Result<BTreeMap<String, Vec<VariationRef>>, AppError> {
    flag_keys(data)
        .into_iter()
        .filter(|k| k != key)
        .map(|k| Ok((k.clone(), refs(&meta_of(data, &k)?))))
        .collect()
}
