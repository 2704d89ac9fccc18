//! `/projects/{p}/ai-configs`: AI Configs in completion, agent and judge mode. Each is served
//! to the SDKs of every environment of its project as a flag (see [`super::ai_flag`]); a
//! new config serves its disabled variation until targeting says otherwise.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ai_flag;
use super::variations;
use crate::api::access::auth::Caller;
use crate::api::json::ListQuery;
use crate::api::json::{
    check_key, collection, comment_in, from_value, now_ms, parse, query, stable_salt, uuid,
};
use crate::api::records::ai_config::{AiConfig, AiConfigRep, Mode};
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::targeting::Defaults;
use crate::api::write::change::{ai_config_resource, Change, Outcome};
use crate::error::AppError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/ai-configs", get(list).post(create))
        .route(
            "/projects/{project}/ai-configs/{config}",
            get(read).patch(update).delete(delete),
        )
}

/// Fields of a POST body; anything else is kept in `extra`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigPost {
    key: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    mode: Mode,
    default_variation: Option<Map<String, Value>>,
}

/// Fields of a PATCH body; the given ones replace the stored values.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigPatch {
    name: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    mode: Option<Mode>,
}

const FIELDS: &[&str] = &[
    "comment",
    "key",
    "name",
    "description",
    "tags",
    "mode",
    "defaultVariation",
    "version",
    "createdAt",
    "updatedAt",
    "variations",
];

/// The fields of `body` the mock does not interpret; read-only (`_…`) fields are dropped.
fn extra_fields(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, _)| !k.starts_with('_') && !FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn config_json(project: &str, config: &AiConfig) -> Value {
    let href = format!("/api/v2/projects/{project}/ai-configs");
    serde_json::to_value(AiConfigRep::new(config, &href)).expect("AI Configs serialize")
}

fn new_config(project: &str, post: ConfigPost, extra: Map<String, Value>) -> AiConfig {
    let now = now_ms();
    let salt = stable_salt(&[project, &post.key]);
    let disabled_id = uuid();
    AiConfig {
        key: post.key,
        name: post.name,
        description: post.description,
        tags: post.tags,
        mode: post.mode,
        version: 1,
        created_at: now,
        updated_at: now,
        extra,
        salt,
        defaults: Defaults {
            on: disabled_id.clone(),
            off: disabled_id.clone(),
        },
        disabled_id: Some(disabled_id),
        variations: Vec::new(),
        targeting_modified: BTreeMap::new(),
    }
}

/// AI Configs share the flag key space: a key some environment already serves as a flag
/// (seed data, the admin API) is taken.
fn check_free(data: &ProjectData, key: &str) -> Result<(), AppError> {
    let taken = data.ai_configs.contains_key(key);
    let flag_env = data
        .environments
        .values()
        .find(|e| e.env.flag(key).is_some());
    match (taken, flag_env) {
        (true, _) => Err(AppError::new(
            StatusCode::CONFLICT,
            format!("an AI Config with key {key:?} already exists"),
        )),
        (false, Some(env)) => Err(AppError::new(
            StatusCode::CONFLICT,
            format!(
                "environment {:?} already serves a flag with key {key:?} (seed data or the admin API)",
                env.meta.key
            ),
        )),
        (false, None) => Ok(()),
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path(project): Path<String>,
    page: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let page = query(page)?;
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let items = data
        .ai_configs
        .values()
        .map(|c| config_json(&project, c))
        .collect();
    let href = format!("/api/v2/projects/{project}/ai-configs");
    Ok(Json(collection(items, &href, &page)))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(config_json(&project, data.ai_config(&key)?)))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let comment = comment_in(&body);
    let body: Map<String, Value> = parse(&body)?;
    let mut post: ConfigPost = from_value(Value::Object(body.clone()))?;
    check_key("AI Config", &post.key)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &post.key);
    let change = Change::new(&caller, "createAIConfig", resource).with_comment(comment);
    let answer = change.commit(&state.api, &mut *data, |data| {
        check_free(data, &post.key)?;
        let default_variation = post.default_variation.take();
        let mut config = new_config(&project, post, extra_fields(&body));
        if let Some(input) = default_variation {
            let variation = variations::create(&config, input)?;
            config.variations.push(variation);
        }
        ai_flag::publish(&config, &data.model_configs, data.stores());
        let answer = config_json(&project, &config);
        data.ai_configs.insert(config.key.clone(), config);
        Ok(Outcome::created(answer))
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let comment = comment_in(&body);
    let body: Map<String, Value> = parse(&body)?;
    let patch: ConfigPatch = from_value(Value::Object(body.clone()))?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &key);
    let change = Change::new(&caller, "updateAIConfig", resource).with_comment(comment);
    let answer = change.commit(&state.api, &mut *data, |data| {
        let config = data
            .ai_configs
            .get_mut(&key)
            .ok_or_else(|| AppError::not_found("AI Config", &key))?;
        let before = config_json(&project, config);
        apply_patch(config, patch, &body);
        ai_flag::publish(
            config,
            &data.model_configs,
            data.environments.values().map(|e| &e.env),
        );
        let answer = config_json(&project, config);
        Ok(Outcome::changed(before, answer))
    })?;
    Ok(Json(answer))
}

fn apply_patch(config: &mut AiConfig, patch: ConfigPatch, body: &Map<String, Value>) {
    if let Some(name) = patch.name {
        config.name = name;
    }
    if let Some(description) = patch.description {
        config.description = description;
    }
    if let Some(tags) = patch.tags {
        config.tags = tags;
    }
    if let Some(mode) = patch.mode {
        config.mode = mode;
    }
    for (field, value) in extra_fields(body) {
        if value.is_null() {
            config.extra.remove(&field);
        } else {
            config.extra.insert(field, value);
        }
    }
    config.touch();
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &key);
    Change::new(&caller, "deleteAIConfig", resource).commit(&state.api, &mut *data, |data| {
        let config = data
            .ai_configs
            .remove(&key)
            .ok_or_else(|| AppError::not_found("AI Config", &key))?;
        for env in data.stores() {
            env.delete_flag(&key);
        }
        Ok(Outcome::deleted(config_json(&project, &config)))
    })
}
