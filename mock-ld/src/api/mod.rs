//! `/api/v2`: the part of LaunchDarkly's REST API that AI Config scripts use, as
//! `shared/spec/ld-rest-api.md` records it: projects and environments, AI Configs with their
//! variations and model configs, targeting changed by semantic patch, feature flags and
//! segments changed by semantic patch, JSON Patch or merge patch.
//!
//! Every change reaches the SDK streams of the environments it touches (a `patch` with a
//! higher version) before the response is sent. Every write goes through
//! [`Change::commit`](write::change::Change), the one place that knows the caller, the
//! action, the resource and the comment: it checks the caller's roles, and records the
//! change in the audit log and (with `--state`) the journal before the response.
//!
//! Layers, each importing only those below it (this file, the router, on top):
//! - [`resources`]: one module per resource (projects, environments, AI Configs with their
//!   variations and targeting, model configs, segments, feature flags and their status) and
//!   `ai_flag`, an AI Config as the flag SDKs evaluate.
//! - [`write`]: the write path: what a change is, the audit log (and `/auditlog`), durable
//!   state, the ledger, the registry (the API's state, one lock per project), the commit
//!   door, recovery and compaction.
//! - [`records`]: what the registry keeps of each resource, one module per resource, and
//!   each resource's answer as LaunchDarkly's generated clients type it.
//! - [`access`]: the access token, tokens and their roles (`--roles`), policy statements
//!   and resource specifiers.
//! - On the ground: [`json`], shared helpers; [`patch`], which of the three patch formats a
//!   body is, and JSON Patch / merge patch applied to a resource's JSON view with its
//!   read-only fields kept; and [`semantic_patch`], instruction parsing and application,
//!   atomic per request.

mod access;
mod json;
mod patch;
mod records;
mod resources;
pub mod semantic_patch;
mod write;

use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode};
use axum::{Json, Router};
use serde_json::{json, Value};

pub use access::roles::{Token, Tokens};
/// LaunchDarkly's rule for resource keys, and the variation key every AI Config reserves:
/// scenarios check theirs against the same facts before any request.
pub use json::check_key;
pub use resources::ai_flag::DISABLED_KEY;
pub use write::durable::{compact_when_due, write_snapshot};
pub use write::registry::Api;

use resources::{
    ai_configs, environments, flag_status, flags, model_configs, projects, segments, targeting,
    variations,
};

use crate::error::AppError;
use crate::model::Flag;
use crate::AppState;

/// Lists the AI Config flags among `flags`, seeded into `project`, as AI Configs (see
/// [`resources::seeded`]); returns how many it added.
pub fn adopt_seeded_ai_configs(api: &Api, project: &str, flags: &[Flag]) -> usize {
    let Ok(entry) = api.project(project) else {
        return 0;
    };
    let mut data = entry.lock();
    resources::seeded::adopt(&mut data, flags)
}

/// Every `/api/v2` route. The `LD-API-Version` header is accepted and never required.
pub fn routes() -> Router<AppState> {
    let v2 = Router::new()
        .merge(projects::routes())
        .merge(environments::routes())
        .merge(ai_configs::routes())
        .merge(variations::routes())
        .merge(model_configs::routes())
        .merge(targeting::routes())
        .merge(segments::routes())
        .merge(flags::routes())
        .merge(flag_status::routes())
        .merge(write::audit::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_method);
    Router::new().nest("/api/v2", v2)
}

async fn unknown_route(method: Method, OriginalUri(uri): OriginalUri) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        format!("mock-ld has no REST API route {method} {uri}"),
    )
}

/// Built here because [`AppError`] has no code for 405.
async fn unknown_method(
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> (StatusCode, Json<Value>) {
    let message = format!("{uri} does not take {method}");
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "code": "method_not_allowed", "message": message })),
    )
}
