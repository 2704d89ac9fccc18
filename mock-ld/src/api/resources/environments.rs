//! `/projects/{p}/environments`: list, create, get and delete. A new environment gets an SDK
//! key (`sdk-<uuid>`) that SDK streams can use at once, and serves every AI Config of its
//! project.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::{ai_flag, flags};
use crate::api::access::auth::Caller;
use crate::api::json::{
    check_key, collection, comment_in, object_id, parse, query, uuid, ListQuery,
};
use crate::api::records::environment::EnvMeta;
use crate::api::records::environment::{EnvEntry, EnvRep};
use crate::api::records::project::ProjectData;
use crate::api::write::change::{env_resource, Change, Outcome};
use crate::error::AppError;
use crate::store::{Environment, Store};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/environments", get(list).post(create))
        .route(
            "/projects/{project}/environments/{env}",
            get(read).delete(delete),
        )
}

/// An environment as the API returns it, with its SDK key as `apiKey`.
pub fn env_json(project: &str, entry: &EnvEntry) -> Value {
    serde_json::to_value(EnvRep::new(project, entry)).expect("environments serialize")
}

/// Adds an environment to a project, in the API and in the store, serving every AI Config
/// of the project from the start.
pub fn add<'a>(
    data: &'a mut ProjectData,
    store: &Store,
    mut meta: EnvMeta,
) -> Result<&'a EnvEntry, AppError> {
    let key = meta.key.clone();
    let conflict = || {
        AppError::new(
            StatusCode::CONFLICT,
            format!(
                "project {:?} already has an environment {key:?}",
                data.meta.key
            ),
        )
    };
    if data.environments.contains_key(&key) {
        return Err(conflict());
    }
    let env = Arc::new(Environment::new(
        &data.meta.key,
        &key,
        &format!("sdk-{}", uuid()),
    ));
    if !store.add_environment(env.clone()) {
        return Err(conflict());
    }
    for config in data.ai_configs.values() {
        ai_flag::publish(config, &data.model_configs, [&env]);
    }
    flags::publish_all(data, &env);
    // A POST body carries neither id.
    meta.id = object_id();
    meta.mobile_key = format!("mob-{}", uuid());
    Ok(data
        .environments
        .entry(key)
        .or_insert(EnvEntry { meta, env }))
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
        .environments
        .values()
        .map(|e| env_json(&project, e))
        .collect();
    let href = format!("/api/v2/projects/{project}/environments");
    Ok(Json(collection(items, &href, &page)))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, env)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(env_json(&project, data.env(&env)?)))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let meta: EnvMeta = parse(&body)?;
    check_key("environment", &meta.key)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = env_resource(&project, &meta.key);
    let change =
        Change::new(&caller, "createEnvironment", resource).with_comment(comment_in(&body));
    let answer = change.commit(&state.api, &mut *data, |data| {
        let added = add(data, state.api.store(), meta)?;
        let answer = env_json(&project, added);
        Ok(Outcome::created(answer))
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, env)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let change = Change::new(&caller, "deleteEnvironment", env_resource(&project, &env));
    change.commit(&state.api, &mut *data, |data| {
        let removed = data
            .environments
            .remove(&env)
            .ok_or_else(|| AppError::not_found("environment", &env))?;
        state.api.store().remove_environment(&project, &env);
        data.segments
            .retain(|(segment_env, _), _| *segment_env != env);
        for config in data.ai_configs.values_mut() {
            config.targeting_modified.remove(&env);
        }
        Ok(Outcome::deleted(env_json(&project, &removed)))
    })
}
