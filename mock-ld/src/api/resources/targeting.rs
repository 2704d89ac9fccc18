//! `/projects/{p}/ai-configs/{c}/targeting`: an AI Config's targeting in every environment
//! (GET) and semantic-patch changes to one environment's (PATCH, spec §5).
//!
//! An environment's targeting is the flag it serves; a PATCH applies its instructions to a
//! copy, pushes the result to that environment's streams, and only then answers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::ai_flag;
use crate::api::access::auth::Caller;
use crate::api::json::{now_ms, parse};
use crate::api::records::ai_config::AiConfig;
use crate::api::records::environment::EnvEntry;
use crate::api::records::project::ProjectData;
use crate::api::records::targeting::{
    EnvTargeting, Experiments, TargetingDefaults, TargetingRep, TargetingVariation,
};
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

/// One environment's targeting; until it first changes, it dates from the config's creation.
fn env_targeting(flag: &Flag, env: &EnvEntry, config: &AiConfig) -> EnvTargeting {
    let modified = config.targeting_modified.get(&env.meta.key).copied();
    EnvTargeting::new(flag, &env.meta.name, modified.unwrap_or(config.created_at))
}

fn env_targeting_json(flag: &Flag, env: &EnvEntry, config: &AiConfig) -> Value {
    serde_json::to_value(env_targeting(flag, env, config)).expect("targeting serializes")
}

fn targeting(data: &ProjectData, config: &AiConfig) -> TargetingRep {
    let refs = ai_flag::variation_refs(config, &data.model_configs);
    let index = |id: &str| refs.iter().position(|v| v.id == id).unwrap_or(0);
    let description = |id: &str| {
        let variation = config.variations.iter().find(|v| v.id == id);
        variation.and_then(|v| v.current().fields.description.clone())
    };
    let variations = refs
        .iter()
        .map(|v| TargetingVariation {
            id: v.id.clone(),
            key: v.key.clone(),
            name: v.name.clone(),
            description: description(&v.id).unwrap_or_default(),
            value: v.value.clone(),
        })
        .collect();
    let environments = data
        .environments
        .iter()
        .map(|(key, env)| {
            let flag = current_flag(config, &refs, env);
            (key.clone(), env_targeting(&flag, env, config))
        })
        .collect();
    TargetingRep {
        key: config.key.clone(),
        name: config.name.clone(),
        tags: config.tags.clone(),
        created_at: config.created_at,
        version: config.version,
        variations,
        defaults: TargetingDefaults {
            on_variation: index(&config.defaults.on),
            off_variation: index(&config.defaults.off),
        },
        experiments: Experiments::default(),
        environments,
    }
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<Json<TargetingRep>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(targeting(&data, data.ai_config(&key)?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<TargetingRep>, AppError> {
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
            response: targeting(data, data.ai_config(&key)?),
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
    let before = env_targeting_json(&current, env, config);
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
    let served = if draft.flag == current {
        current
    } else {
        config
            .targeting_modified
            .insert(env_key.to_owned(), now_ms());
        env.env.upsert_flag(draft.flag)
    };
    config.defaults = draft.defaults;
    config.touch();
    Ok((before, env_targeting_json(&served, env, config)))
}
