//! `/segments/{p}/{env}`: list, create, get, delete, and changes by semantic patch, JSON
//! Patch or merge patch (spec §6).
//! A segment is the store's segment, which SDKs evaluate; its name, description and tags
//! live here. Every change is pushed to the environment's streams as a `patch`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::access::auth::Caller;
use crate::api::json::{
    check_key, collection, comment_in, link, now_ms, parse, query, stable_salt, ListQuery,
};
use crate::api::patch::{self, Format};
use crate::api::records::environment::EnvEntry;
use crate::api::records::project::ProjectData;
use crate::api::records::segment::{SegmentMeta, SegmentRep};
use crate::api::semantic_patch::segment::{self as instructions, Draft, Instruction};
use crate::api::semantic_patch::{self, PatchBody};
use crate::api::write::change::{needed_actions, segment_resource, Change, Outcome};
use crate::api::write::registry::Api;
use crate::error::AppError;
use crate::model::{Segment, SegmentRule, SegmentTarget};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/segments/{project}/{env}", get(list).post(create))
        .route(
            "/segments/{project}/{env}/{segment}",
            get(read).patch(update).delete(delete),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentPost {
    key: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    unbounded: bool,
    unbounded_context_kind: Option<String>,
}

/// The segment's REST fields; one the API did not create dates from when the API started.
fn meta(api: &Api, data: &ProjectData, env: &str, key: &str) -> SegmentMeta {
    data.segments
        .get(&(env.to_owned(), key.to_owned()))
        .cloned()
        .unwrap_or_else(|| SegmentMeta::unknown(key, api.started_at()))
}

fn segment_json(project: &str, env: &str, segment: &Segment, meta: &SegmentMeta) -> Value {
    let mut segment = segment.clone();
    semantic_patch::fill_ids(&mut segment.rules);
    let href = format!("/api/v2/segments/{project}/{env}/{}", segment.key);
    let answer = SegmentRep::new(&segment, meta, json!({"self": link(&href)}));
    serde_json::to_value(answer).expect("segments serialize")
}

fn find_segment(env: &EnvEntry, key: &str) -> Result<Segment, AppError> {
    env.env
        .segment(key)
        .ok_or_else(|| AppError::not_found("segment", key))
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, env)): Path<(String, String)>,
    page: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let page = query(page)?;
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let items = data
        .env(&env)?
        .env
        .segments()
        .iter()
        .map(|s| segment_json(&project, &env, s, &meta(&state.api, &data, &env, &s.key)))
        .collect();
    let href = format!("/api/v2/segments/{project}/{env}");
    Ok(Json(collection(items, &href, &page)))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, env, key)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let segment = find_segment(data.env(&env)?, &key)?;
    Ok(Json(segment_json(
        &project,
        &env,
        &segment,
        &meta(&state.api, &data, &env, &key),
    )))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, env)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let post: SegmentPost = parse(&body)?;
    check_key("segment", &post.key)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = segment_resource(&project, &env, &post.key);
    let change = Change::new(&caller, "createSegment", resource).with_comment(comment_in(&body));
    let answer = change.commit(&state.api, &mut *data, |data| {
        let store = &data.env(&env)?.env;
        if store.segment(&post.key).is_some() {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!("environment {env:?} already has a segment {:?}", post.key),
            ));
        }
        let segment = store.upsert_segment(Segment {
            key: post.key.clone(),
            salt: stable_salt(&[&project, &env, &post.key]),
            unbounded: post.unbounded,
            unbounded_context_kind: post.unbounded_context_kind,
            ..Segment::default()
        });
        let now = now_ms();
        let meta = SegmentMeta {
            name: post.name,
            description: post.description,
            tags: post.tags,
            creation_date: now,
            last_modified: now,
        };
        let answer = segment_json(&project, &env, &segment, &meta);
        data.segments.insert((env.clone(), post.key), meta);
        Ok(Outcome::created(answer))
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, env, key)): Path<(String, String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = segment_resource(&project, &env, &key);
    Change::new(&caller, "deleteSegment", resource).commit(&state.api, &mut *data, |data| {
        let store = &data.env(&env)?.env;
        let segment = find_segment(data.env(&env)?, &key)?;
        let before = segment_json(
            &project,
            &env,
            &segment,
            &meta(&state.api, data, &env, &key),
        );
        store.delete_segment(&key);
        data.segments.remove(&(env.clone(), key.clone()));
        Ok(Outcome::deleted(before))
    })
}

/// A segment as a JSON Patch or merge patch leaves it: the fields a patch may change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentEdit {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    included: Vec<String>,
    #[serde(default)]
    excluded: Vec<String>,
    #[serde(default)]
    included_contexts: Vec<SegmentTarget>,
    #[serde(default)]
    excluded_contexts: Vec<SegmentTarget>,
    #[serde(default)]
    rules: Vec<SegmentRule>,
}

/// What no patch may change in a segment's view (besides `_` fields).
const READ_ONLY: &[&str] = &[
    "/key",
    "/creationDate",
    "/lastModifiedDate",
    "/version",
    "/deleted",
    "/generation",
    "/salt",
    "/unbounded",
    "/unboundedContextKind",
];

/// The segment and REST fields a patch produced, and the actions it needs.
struct Patched {
    segment: Segment,
    name: String,
    description: String,
    tags: Vec<String>,
    actions: Vec<&'static str>,
}

/// Applies a JSON Patch or merge patch to the segment's view and reads the result back.
fn json_patched(
    view: &Value,
    format: Format,
    current: &Segment,
    meta: &SegmentMeta,
) -> Result<Patched, AppError> {
    let edit: SegmentEdit = patch::read_back(patch::apply(view, format, READ_ONLY)?)?;
    let mut segment = Segment {
        included: edit.included,
        excluded: edit.excluded,
        included_contexts: edit.included_contexts,
        excluded_contexts: edit.excluded_contexts,
        rules: edit.rules,
        ..current.clone()
    };
    semantic_patch::fill_ids(&mut segment.rules);
    if segment.rules != current.rules {
        check_rules(&segment.rules).map_err(|e| AppError::bad_request(format!("/{e}")))?;
    }
    let description = edit.description.unwrap_or_default();
    let changed = [
        (segment.included != current.included, "updateIncluded"),
        (segment.excluded != current.excluded, "updateExcluded"),
        (
            segment.included_contexts != current.included_contexts,
            "updateIncluded",
        ),
        (
            segment.excluded_contexts != current.excluded_contexts,
            "updateExcluded",
        ),
        (segment.rules != current.rules, "updateRules"),
        (edit.tags != meta.tags, "updateTags"),
        (edit.name != meta.name, "updateName"),
        (description != meta.description, "updateDescription"),
    ];
    Ok(Patched {
        segment,
        name: edit.name,
        description,
        tags: edit.tags,
        actions: changed.iter().filter(|c| c.0).map(|c| c.1).collect(),
    })
}

/// Applies a semantic patch to a copy of the segment.
fn semantically_patched(
    body: PatchBody,
    env: &str,
    current: &Segment,
    meta: &SegmentMeta,
) -> Result<Patched, AppError> {
    let mut body = body;
    if let Some(named) = body.environment_key.as_deref().filter(|k| *k != env) {
        return Err(AppError::bad_request(format!(
            "environmentKey {named:?} differs from the environment {env:?} in the path"
        )));
    }
    let steps = semantic_patch::parse::<Instruction>(&body.take_instructions()?)?;
    let actions = steps.iter().map(|s| s.instruction().action()).collect();
    let mut draft = Draft {
        segment: current.clone(),
        name: meta.name.clone(),
        tags: meta.tags.clone(),
    };
    semantic_patch::apply(steps, &mut draft, instructions::apply)?;
    Ok(Patched {
        segment: draft.segment,
        name: draft.name,
        description: meta.description.clone(),
        tags: draft.tags,
        actions,
    })
}

/// A PATCH in any of LaunchDarkly's three formats (see [`patch`]). The patch is applied
/// first, under the project's lock, so that the role check can name what it changes.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, env, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let request = patch::read(content_type, &body)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let segment = find_segment(data.env(&env)?, &key)?;
    let before_meta = meta(&state.api, &data, &env, &key);
    let before = segment_json(&project, &env, &segment, &before_meta);
    let mut current = segment.clone();
    semantic_patch::fill_ids(&mut current.rules);
    let patched = match request.format {
        Format::Semantic(body) => semantically_patched(body, &env, &current, &before_meta)?,
        format => json_patched(&before, format, &current, &before_meta)?,
    };
    let change = Change {
        caller: &caller,
        actions: needed_actions(patched.actions.clone(), "updateRules"),
        resource: segment_resource(&project, &env, &key),
        comment: request.comment,
    };
    let answer = change.commit(&state.api, &mut *data, |data| {
        let served = if patched.segment == current {
            segment
        } else {
            data.env(&env)?.env.upsert_segment(patched.segment)
        };
        let meta = SegmentMeta {
            name: patched.name,
            description: patched.description,
            tags: patched.tags,
            last_modified: now_ms(),
            ..before_meta
        };
        let after = segment_json(&project, &env, &served, &meta);
        data.segments.insert((env.clone(), key.clone()), meta);
        Ok(Outcome::changed(before, after))
    })?;
    Ok(Json(answer))
}

/// Rules sent whole: known clause ops, and each rule's `weight` (the share of contexts it
/// includes) from 0 to 100000.
fn check_rules(rules: &[SegmentRule]) -> Result<(), String> {
    semantic_patch::check_ops(rules.iter().map(|r| r.clauses.as_slice()))?;
    match rules.iter().enumerate().find_map(|(i, r)| {
        r.weight
            .filter(|w| !(0..=100_000).contains(w))
            .map(|w| (i, w))
    }) {
        Some((i, w)) => Err(format!("rules/{i}/weight: {w} is not from 0 to 100000")),
        None => Ok(()),
    }
}
