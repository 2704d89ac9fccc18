//! `/admin`: the control API that tests and scripts use to change flags and segments and to
//! read back the events the SDKs sent. Flag and segment writes are durable with `--state`,
//! like REST API writes, but leave no audit entry. With `--admin-token`, every `/admin`
//! route (the simulated provider's `/admin/llm` too) needs that token (see [`guard`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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
            get(get_item::<Flag>)
                .put(put_item::<Flag>)
                .delete(delete_item::<Flag>),
        )
        .route(
            "/admin/environments/{env}/segments/{key}",
            get(get_item::<Segment>)
                .put(put_item::<Segment>)
                .delete(delete_item::<Segment>),
        )
        .route("/admin/events", get(list_events))
        .route("/admin/events/stats", get(event_stats))
        .route("/admin/reset", post(reset))
}

/// Lets a request to `/admin` through only with the admin token in `Authorization` (as is,
/// or after `Bearer `), when there is one: the control API can delete any flag or make the
/// simulated provider fail every call, and it bypasses the REST API's roles.
pub async fn guard(token: Option<Arc<str>>, request: Request, next: Next) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if !request.uri().path().starts_with("/admin") {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
    if given == Some(&*token) {
        return next.run(request).await;
    }
    AppError::new(
        StatusCode::UNAUTHORIZED,
        "the control API (/admin) needs the admin token (mock-ld --admin-token) in the Authorization header",
    )
    .into_response()
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
            json!({"project": e.project, "key": e.key, "sdkKey": e.sdk_key, "streams": e.stream_count(), "fdv2Streams": e.fdv2_stream_count()})
        })
        .collect();
    Json(json!({ "items": items, "totalCount": items.len() }))
}

/// What `/admin` can read, replace and delete in an environment: flags and segments.
trait Item: Serialize + DeserializeOwned + Send + 'static {
    /// The word for it in errors.
    const KIND: &'static str;
    fn key_mut(&mut self) -> &mut String;
    fn get(env: &Environment, key: &str) -> Option<Self>;
    fn upsert(env: &Environment, item: Self) -> Self;
    /// The deleted item's version, if there was one.
    fn delete(env: &Environment, key: &str) -> Option<u64>;
}

impl Item for Flag {
    const KIND: &'static str = "flag";
    fn key_mut(&mut self) -> &mut String {
        &mut self.key
    }
    fn get(env: &Environment, key: &str) -> Option<Self> {
        env.flag(key)
    }
    fn upsert(env: &Environment, item: Self) -> Self {
        env.upsert_flag(item)
    }
    fn delete(env: &Environment, key: &str) -> Option<u64> {
        env.delete_flag(key)
    }
}

impl Item for Segment {
    const KIND: &'static str = "segment";
    fn key_mut(&mut self) -> &mut String {
        &mut self.key
    }
    fn get(env: &Environment, key: &str) -> Option<Self> {
        env.segment(key)
    }
    fn upsert(env: &Environment, item: Self) -> Self {
        env.upsert_segment(item)
    }
    fn delete(env: &Environment, key: &str) -> Option<u64> {
        env.delete_segment(key)
    }
}

async fn get_item<T: Item>(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<T>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    T::get(&env, &key)
        .map(Json)
        .ok_or_else(|| AppError::not_found(T::KIND, &key))
}

async fn put_item<T: Item>(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
    body: Bytes,
) -> Result<Json<T>, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let item: T = parse_item(&body, &key)?;
    let stored = state
        .api
        .write_store(&q.project, || T::upsert(&env, item))?;
    Ok(Json(stored))
}

async fn delete_item<T: Item>(
    State(state): State<AppState>,
    Path((env, key)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Result<StatusCode, AppError> {
    let env = environment(&state, &q.project, &env)?;
    let deleted = state
        .api
        .write_store(&q.project, || T::delete(&env, &key))?;
    deleted
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| AppError::not_found(T::KIND, &key))
}

fn parse_item<T: Item>(body: &[u8], path_key: &str) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let mut item: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        AppError::bad_request(format!(
            "line {} column {}: field `{}`: {}",
            inner.line(),
            inner.column(),
            e.path(),
            inner
        ))
    })?;
    let key = item.key_mut();
    if !key.is_empty() && key != path_key {
        return Err(AppError::bad_request(format!(
            "the body's key {key:?} differs from the key {path_key:?} in the path"
        )));
    }
    path_key.clone_into(key);
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
    /// The counts, and with `--state` how much of what was received is durable.
    #[derive(Serialize)]
    struct WithJournal {
        #[serde(flatten)]
        stats: crate::events::log::StatsAnswer,
        #[serde(skip_serializing_if = "Option::is_none")]
        journal: Option<crate::events::journal::JournalStatus>,
    }
    Json(WithJournal {
        stats: state.events.stats_answer(&filter),
        journal: state
            .event_journal
            .as_ref()
            .map(|j| j.status(filter.project.as_deref(), filter.env.as_deref())),
    })
    .into_response()
}

async fn reset(State(state): State<AppState>) -> StatusCode {
    state.events.clear();
    if let Some(journal) = &state.event_journal {
        journal.clear();
    }
    state.llm.reset_stats();
    state.faults.reset();
    StatusCode::NO_CONTENT
}
