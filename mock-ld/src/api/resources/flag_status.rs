//! Flag status: `/flag-statuses/{p}/{env}` (every flag in one environment),
//! `/flag-statuses/{p}/{env}/{flag}` and `/flag-status/{p}/{flag}` (one flag in every
//! environment).
//!
//! LaunchDarkly derives a status from the evaluations its SDKs report; so does mock-ld, from
//! the summary and feature events its `/bulk` intake received (`events::log`). Its window is
//! LaunchDarkly's seven days:
//! - `new`: no SDK has reported evaluating the flag in that environment (mock-ld lives for
//!   a run, not for weeks, so a flag never evaluated is new whatever its age);
//! - `inactive`: last evaluated more than seven days ago (only a long-lived `--state`
//!   mock-ld sees this);
//! - `launched`: evaluated within the window while the environment serves one variation to
//!   everyone (targeting off, or on with no prerequisites, targets or rules and a fixed
//!   fallthrough);
//! - `active`: evaluated within the window, and serving more than one variation.
//!
//! `lastRequested` is when mock-ld received the newest event evaluating it. `default` (the
//! default value code passed) is left out: summary counters carry it but mock-ld does not
//! keep it.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::flags::{check_exists, flag_keys};
use crate::api::access::auth::Caller;
use crate::api::json::{link, now_ms};
use crate::api::records::project::ProjectData;
use crate::error::AppError;
use crate::model::Flag;
use crate::AppState;

/// LaunchDarkly's window for "recently evaluated".
const WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/flag-statuses/{project}/{env}", get(list))
        .route("/flag-statuses/{project}/{env}/{flag}", get(read))
        .route("/flag-status/{project}/{flag}", get(across))
}

/// A flag's status in one environment: its name and when it was last requested.
fn status(flag: Option<&Flag>, last_requested: Option<u64>, now: u64) -> Value {
    let name = match last_requested {
        None => "new",
        Some(at) if now.saturating_sub(at) > WINDOW_MS => "inactive",
        Some(_) if flag.is_some_and(serves_one_variation) => "launched",
        Some(_) => "active",
    };
    let mut out = json!({ "name": name });
    if let Some(at) = last_requested {
        let time = UNIX_EPOCH + Duration::from_millis(at);
        out["lastRequested"] = json!(humantime::format_rfc3339_millis(time).to_string());
    }
    out
}

fn serves_one_variation(flag: &Flag) -> bool {
    !flag.on
        || (flag.prerequisites.is_empty()
            && flag.targets.is_empty()
            && flag.context_targets.is_empty()
            && flag.rules.is_empty()
            && flag.fallthrough.rollout.is_none())
}

/// `FlagStatusRep`: the status with its links.
fn status_rep(project: &str, env: &str, key: &str, status: Value) -> Value {
    let mut out = status;
    out["_links"] = json!({
        "self": link(&format!("/api/v2/flag-statuses/{project}/{env}/{key}")),
        "parent": link(&format!("/api/v2/flags/{project}/{key}")),
    });
    out
}

fn env_status(
    state: &AppState,
    data: &ProjectData,
    env: &str,
    key: &str,
) -> Result<Value, AppError> {
    let entry = data.env(env)?;
    let seen = state.events.last_requested(&data.meta.key, env);
    Ok(status(
        entry.env.flag(key).as_ref(),
        seen.get(key).copied(),
        now_ms(),
    ))
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, env)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let store = &data.env(&env)?.env;
    let seen = state.events.last_requested(&project, &env);
    let now = now_ms();
    let items: Vec<Value> = flag_keys(&data)
        .into_iter()
        .map(|key| {
            let flag = store.flag(&key);
            let status = status(flag.as_ref(), seen.get(&key).copied(), now);
            status_rep(&project, &env, &key, status)
        })
        .collect();
    let href = format!("/api/v2/flag-statuses/{project}/{env}");
    Ok(Json(
        json!({ "_links": {"self": link(&href)}, "items": items }),
    ))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, env, key)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    check_exists(&data, &key)?;
    let status = env_status(&state, &data, &env, &key)?;
    Ok(Json(status_rep(&project, &env, &key, status)))
}

async fn across(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    check_exists(&data, &key)?;
    let mut environments = Map::new();
    for env in data.environments.keys() {
        environments.insert(env.clone(), env_status(&state, &data, env, &key)?);
    }
    let href = format!("/api/v2/flag-status/{project}/{key}");
    Ok(Json(json!({
        "key": key,
        "environments": environments,
        "_links": {"self": link(&href), "parent": link(&format!("/api/v2/flags/{project}/{key}"))},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VariationOrRollout;

    #[test]
    fn status_follows_evaluations_and_what_the_flag_serves() {
        let now = 10 * WINDOW_MS;
        let fixed = Flag {
            on: true,
            ..Flag::default()
        };
        assert_eq!(status(Some(&fixed), None, now)["name"], "new");
        assert_eq!(status(Some(&fixed), Some(now - 5), now)["name"], "launched");
        let split = Flag {
            on: true,
            fallthrough: VariationOrRollout {
                variation: None,
                rollout: serde_json::from_value(json!({"variations": []})).ok(),
            },
            ..Flag::default()
        };
        assert_eq!(status(Some(&split), Some(now - 5), now)["name"], "active");
        let old = status(Some(&split), Some(now - WINDOW_MS - 1), now);
        assert_eq!(old["name"], "inactive");
        assert_eq!(
            status(None, Some(1_000), now)["lastRequested"],
            "1970-01-01T00:00:01.000Z"
        );
    }
}
