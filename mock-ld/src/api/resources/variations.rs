//! `/projects/{p}/ai-configs/{c}/variations`: create, get (every version kept, newest
//! first), update (each update a new version) and delete. A variation keeps its `_id` across
//! versions, because targeting names variations by `_id`. It keeps its newest
//! `--max-variation-versions` versions ([`crate::bounds::Bounds::max_variation_versions`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::ai_flag::{self, DISABLED_KEY};
use crate::api::access::auth::Caller;
use crate::api::json::{check_key, comment_in, from_value, now_ms, parse, uuid};
use crate::api::records::ai_config::AiConfig;
use crate::api::records::variation::{Variation, VariationFields, VariationRep, VariationVersion};
use crate::api::write::change::{ai_config_resource, Change, Outcome};
use crate::error::AppError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{project}/ai-configs/{config}/variations",
            post(create_handler),
        )
        .route(
            "/projects/{project}/ai-configs/{config}/variations/{variation}",
            patch(update).get(read).delete(delete),
        )
}

/// A variation version as the API returns it.
pub fn variation_json(
    project: &str,
    config: &str,
    variation: &Variation,
    version: &VariationVersion,
) -> Value {
    let parent = format!("/api/v2/projects/{project}/ai-configs/{config}");
    let answer = VariationRep::new(variation, version, &parent);
    serde_json::to_value(answer).expect("variations serialize")
}

/// A version from the stored fields `raw`, once they pass the checks.
fn new_version(version: u64, mut raw: Map<String, Value>) -> Result<VariationVersion, AppError> {
    raw.retain(|k, _| {
        !k.starts_with('_') && !matches!(k.as_str(), "key" | "version" | "createdAt")
    });
    let comment = raw
        .remove("comment")
        .and_then(|c| c.as_str().map(str::to_owned));
    let fields: VariationFields = from_value(Value::Object(raw.clone()))?;
    if fields.name.trim().is_empty() {
        return Err(AppError::bad_request("a variation needs a non-empty name"));
    }
    Ok(VariationVersion {
        version,
        created_at: now_ms(),
        comment,
        raw,
        fields,
    })
}

/// A new variation of `config` from a POST body (or an AI Config's `defaultVariation`).
pub fn create(config: &AiConfig, body: Map<String, Value>) -> Result<Variation, AppError> {
    let key = match body.get("key") {
        Some(Value::String(key)) => key.clone(),
        _ => return Err(AppError::bad_request("a variation needs a string `key`")),
    };
    check_key("variation", &key)?;
    if key == DISABLED_KEY || config.flag_index(&key).is_some() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            format!("AI Config {:?} already has a variation {key:?}", config.key),
        ));
    }
    Ok(Variation {
        id: uuid(),
        key,
        versions: vec![new_version(1, body)?],
    })
}

async fn create_handler(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, config_key)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let comment = comment_in(&body);
    let body: Map<String, Value> = parse(&body)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &config_key);
    let change = Change::new(&caller, "createAIConfigVariation", resource).with_comment(comment);
    let answer = change.commit(&state.api, &mut *data, |data| {
        let config = data
            .ai_configs
            .get_mut(&config_key)
            .ok_or_else(|| AppError::not_found("AI Config", &config_key))?;
        let variation = create(config, body)?;
        let answer = variation_json(&project, &config_key, &variation, variation.current());
        config.variations.push(variation);
        config.touch();
        ai_flag::publish(
            config,
            &data.model_configs,
            data.environments.values().map(|e| &e.env),
        );
        Ok(Outcome::created(answer))
    })?;
    Ok((StatusCode::CREATED, Json(answer)))
}

fn find<'a>(config: &'a AiConfig, key: &str) -> Result<&'a Variation, AppError> {
    config
        .variations
        .iter()
        .find(|v| v.key == key)
        .ok_or_else(|| AppError::not_found("variation", key))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, config_key, key)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    let variation = find(data.ai_config(&config_key)?, &key)?;
    let items: Vec<Value> = variation
        .versions
        .iter()
        .rev()
        .map(|v| variation_json(&project, &config_key, variation, v))
        .collect();
    Ok(Json(json!({ "items": items, "totalCount": items.len() })))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, config_key, key)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let comment = comment_in(&body);
    let body: Map<String, Value> = parse(&body)?;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &config_key);
    let change = Change::new(&caller, "updateAIConfigVariation", resource).with_comment(comment);
    let max_versions = state.bounds.max_variation_versions;
    let answer = change.commit(&state.api, &mut *data, |data| {
        let config = data
            .ai_configs
            .get_mut(&config_key)
            .ok_or_else(|| AppError::not_found("AI Config", &config_key))?;
        let index = config
            .variations
            .iter()
            .position(|v| v.key == key)
            .ok_or_else(|| AppError::not_found("variation", &key))?;
        let variation = &mut config.variations[index];
        let before = variation_json(&project, &config_key, variation, variation.current());
        let mut raw = variation.current().raw.clone();
        raw.extend(body);
        let version = new_version(variation.current().version + 1, raw)?;
        variation.push_version(version, max_versions);
        let answer = variation_json(&project, &config_key, variation, variation.current());
        config.touch();
        ai_flag::publish(
            config,
            &data.model_configs,
            data.environments.values().map(|e| &e.env),
        );
        Ok(Outcome::changed(before, answer))
    })?;
    Ok(Json(answer))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, config_key, key)): Path<(String, String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = ai_config_resource(&project, &config_key);
    let change = Change::new(&caller, "deleteAIConfigVariation", resource);
    change.commit(&state.api, &mut *data, |data| {
        let config = data
            .ai_configs
            .get_mut(&config_key)
            .ok_or_else(|| AppError::not_found("AI Config", &config_key))?;
        let index = config
            .flag_index(&key)
            .ok_or_else(|| AppError::not_found("variation", &key))?;
        if let Some(env) = data.environments.values().find(|e| {
            e.env
                .flag(&config_key)
                .is_some_and(|f| ai_flag::serves(&f, index))
        }) {
            return Err(AppError::bad_request(format!(
                "variation {key:?} is still served by targeting in environment {:?}; \
                 point that targeting elsewhere first",
                env.meta.key
            )));
        }
        let position = (index - config.first_index()) as usize;
        let fallback = config.disabled_id.clone().or_else(|| {
            let other = config.variations.iter().find(|v| v.key != key);
            other.map(|v| v.id.clone())
        });
        let Some(fallback) = fallback else {
            return Err(AppError::bad_request(format!(
                "variation {key:?} is the last of AI Config {config_key:?}, which has no \
                 disabled variation to serve instead (it came from seed data)"
            )));
        };
        let removed = config.variations.remove(position);
        for default in [&mut config.defaults.on, &mut config.defaults.off] {
            if *default == removed.id {
                default.clone_from(&fallback);
            }
        }
        config.touch();
        let envs = data.environments.values().map(|e| &e.env);
        ai_flag::publish_without(config, &data.model_configs, envs, index);
        Ok(Outcome::deleted(variation_json(
            &project,
            &config_key,
            &removed,
            removed.current(),
        )))
    })
}
