//! `/admin`: the control API that tests and scripts use to change flags and segments and to
//! read back the events the SDKs sent. Flag and segment writes are durable with `--state`,
//! like REST API writes, but take no token and leave no audit entry.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::error::AppError;
use crate::events::log::Filter;
use crate::model::{Flag, Segment};
use crate::store::Environment;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/environments", get(list_environments))
        .route(
            "/admin/environments/{env}/flags/{key}",
            get(get_flag).put(put_flag).delete(delete_flag),
        )
        .route(
            "/admin/environments/{env}/segments/{key}",
            get(get_segment).put(put_segment).delete(delete_segment),
        )
        .route("/admin/events", get(list_events))
        .route("/admin/events/stats", get(event_stats))
        .route("/admin/reset", post(reset))
}

/// `?project=` selects another project than `default`.
#[derive(Deserialize)]
struct ProjectQuery {
    #[serde(default = "default_project")]
    project: String,
}

fn default_project() -> String {
    "default".to_owned()
}

fn environment(state: &AppState, project: &str, env: &str) -> Result<Arc<Environment>, AppError> {
    state.store.environment(project, env).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            format!("no environment {env:?} in project {project:?}"),
        )
    })
}

async fn list_environments(State(state): State<AppState>) -> Json<serde_json::Value> {
    let items: Vec<_> = state
        .store
        .environments()
        .iter()
        .map(|e| {
            json!({"project": e.project, "key": e.key, "sdkKey": e.sdk_key, "streams": e.stream_count()})
        })
        .collect();
    Json(json!({ "items": items, "totalCount": items.len() }))
}

async fn get_flag(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<Flag>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    env.flag(&key)
        .map(Json)
        .ok_or_else(|| AppError::not_found("flag", &key))
}

async fn put_flag(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
    body: Bytes,
) -> Result<Json<Flag>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let mut flag: Flag = parse_item(&body, &key, |f: &Flag| &f.key)?;
    flag.key = key;
    let stored = state
        .api
        .write_store(&q.project, || env.upsert_flag(flag))?;
    Ok(Json(stored))
}

async fn delete_flag(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<StatusCode, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let deleted = state
        .api
        .write_store(&q.project, || env.delete_flag(&key))?;
    deleted
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| AppError::not_found("flag", &key))
}

async fn get_segment(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<Segment>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    env.segment(&key)
        .map(Json)
        .ok_or_else(|| AppError::not_found("segment", &key))
}

async fn put_segment(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
    body: Bytes,
) -> Result<Json<Segment>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let mut segment: Segment = parse_item(&body, &key, |s: &Segment| &s.key)?;
    segment.key = key;
    let stored = state
        .api
        .write_store(&q.project, || env.upsert_segment(segment))?;
    Ok(Json(stored))
}

async fn delete_segment(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<StatusCode, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let deleted = state
        .api
        .write_store(&q.project, || env.delete_segment(&key))?;
    deleted
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| AppError::not_found("segment", &key))
}

/// Parses a flag or segment body, naming the field and position of any error. A key in the
/// body must agree with the key in the path.
fn parse_item<T: DeserializeOwned>(
    body: &[u8],
    path_key: &str,
    key_of: impl Fn(&T) -> &String,
) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let item: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        AppError::bad_request(format!(
            "line {} column {}: field `{}`: {}",
            inner.line(),
            inner.column(),
            e.path(),
            inner
        ))
    })?;
    let body_key = key_of(&item);
    if !body_key.is_empty() && body_key != path_key {
        return Err(AppError::bad_request(format!(
            "the body's key {body_key:?} differs from the key {path_key:?} in the path"
        )));
    }
    Ok(item)
}

async fn list_events(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Result<Response, AppError> {
    let body = state.events.query_json(&filter)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn event_stats(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    Json(state.events.stats(&filter)).into_response()
}

async fn reset(State(state): State<AppState>) -> StatusCode {
    state.events.clear();
    state.llm.reset_stats();
    StatusCode::NO_CONTENT
}
