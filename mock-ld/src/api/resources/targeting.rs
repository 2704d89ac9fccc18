//! `/projects/{p}/ai-configs/{c}/targeting`: an AI Config's targeting in every environment
//! (GET) and semantic-patch changes to one environment's (PATCH, spec §5).
//!
//! An environment's targeting is the flag it serves; a PATCH applies its instructions to a
//! copy, pushes the result to that environment's streams, and only then answers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::ai_flag;
use crate::api::access::auth::Caller;
use crate::api::json::{now_ms, parse};
use crate::api::records::ai_config::AiConfig;
use crate::api::records::environment::EnvEntry;
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::targeting::{self as instructions, Draft, Instruction};
use crate::api::semantic_patch::{self, PatchBody, VariationRef};
use crate::api::write::change::{targeting_resource, Change, Outcome};
use crate::error::AppError;
use crate::model::Flag;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/projects/{project}/ai-configs/{config}/targeting",
        get(read).patch(update),
    )
}

/// The flag an environment serves for `config`, with derived ids on rules and clauses that
/// lack them (see [`semantic_patch::fill_ids`]).
fn current_flag(config: &AiConfig, refs: &[VariationRef], env: &EnvEntry) -> Flag {
    let mut flag = ai_flag::flag(config, refs, env.env.flag(&config.key));
    semantic_patch::fill_ids(&mut flag.rules);
    flag
}

/// Rules as the API shows them: flag rules with `_id`, and clauses with both `_id` and `id`.
pub fn rules_json(flag: &Flag) -> Value {
    let rules = flag.rules.iter().map(|rule| {
        let mut out = serde_json::to_value(rule).expect("rules serialize");
        out["_id"] = json!(rule.id);
        for clause in out["clauses"].as_array_mut().into_iter().flatten() {
            clause["id"] = clause["_id"].clone();
        }
        out
    });
    Value::Array(rules.collect())
}

fn env_targeting_json(flag: &Flag, env: &EnvEntry, modified: Option<u64>) -> Value {
    json!({
        "on": flag.on,
        "enabled": flag.on,
        "offVariation": flag.off_variation,
        "fallthrough": flag.fallthrough,
        "rules": rules_json(flag),
        "targets": flag.targets,
        "contextTargets": flag.context_targets,
        "trackEvents": flag.track_events,
        "trackEventsFallthrough": flag.track_events_fallthrough,
        "lastModified": modified.unwrap_or(0),
        "_environmentName": env.meta.name,
        "_version": flag.version,
    })
}

fn targeting_json(data: &ProjectData, config: &AiConfig) -> Value {
    let refs = ai_flag::variation_refs(config, &data.model_configs);
    let index = |id: &str| refs.iter().position(|v| v.id == id).unwrap_or(0);
    let variations: Vec<Value> = refs
        .iter()
        .map(|v| json!({"_id": v.id, "key": v.key, "name": v.name, "value": v.value}))
        .collect();
    let environments: Map<String, Value> = data
        .environments
        .iter()
        .map(|(key, env)| {
            let flag = current_flag(config, &refs, env);
            let modified = config.targeting_modified.get(key).copied();
            (key.clone(), env_targeting_json(&flag, env, modified))
        })
        .collect();
    json!({
        "key": config.key,
        "name": config.name,
        "tags": config.tags,
        "createdAt": config.created_at,
        "_version": config.version,
        "variations": variations,
        "defaults": {
            "onVariation": index(&config.defaults.on),
            "offVariation": index(&config.defaults.off),
        },
        "experiments": {"baselineIdx": 0, "items": []},
        "environments": environments,
    })
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(targeting_json(&data, data.ai_config(&key)?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let mut body: PatchBody = parse(&body)?;
    let raw = body.take_instructions()?;
    let env_key = body.environment_key.take().ok_or_else(|| {
        AppError::bad_request("`environmentKey` is required: targeting is per environment")
    })?;
    let steps = semantic_patch::parse::<Instruction>(&raw)?;
    let entry = state.api.project(&project)?;
    let mut guard = entry.lock();
    let data = &mut *guard;
    data.ai_config(&key)?;
    data.env(&env_key)?;
    let resource = targeting_resource(&project, &env_key, &key);
    let change =
        Change::new(&caller, "updateAIConfigTargeting", resource).with_comment(body.comment);
    let answer = change.commit(&state.api, data, |data| {
        let (before, after) = apply(data, &key, &env_key, steps)?;
        Ok(Outcome {
            before,
            after,
            response: targeting_json(data, data.ai_config(&key)?),
        })
    })?;
    Ok(Json(answer))
}

/// Applies the instructions to a copy of the environment's flag and, if it all succeeds,
/// serves the result there; returns the environment's targeting before and after.
fn apply(
    data: &mut ProjectData,
    key: &str,
    env_key: &str,
    steps: Vec<semantic_patch::Step<Instruction>>,
) -> Result<(Value, Value), AppError> {
    let env = data
        .environments
        .get(env_key)
        .ok_or_else(|| AppError::not_found("environment", env_key))?;
    let config = data
        .ai_configs
        .get_mut(key)
        .ok_or_else(|| AppError::not_found("AI Config", key))?;
    let refs = ai_flag::variation_refs(config, &data.model_configs);
    let current = current_flag(config, &refs, env);
    let modified = config.targeting_modified.get(env_key).copied();
    let before = env_targeting_json(&current, env, modified);
    let mut draft = Draft {
        flag: current.clone(),
        defaults: config.defaults.clone(),
        variations: &refs,
        settings: None,
    };
    semantic_patch::apply(steps, &mut draft, instructions::apply)?;
    if draft.flag == current && draft.defaults == config.defaults {
        return Ok((before.clone(), before));
    }
    let (served, modified) = if draft.flag == current {
        (current, modified)
    } else {
        let now = now_ms();
        config.targeting_modified.insert(env_key.to_owned(), now);
        (env.env.upsert_flag(draft.flag), Some(now))
    };
    config.defaults = draft.defaults;
    config.touch();
    Ok((before, env_targeting_json(&served, env, modified)))
}
