//! `/projects/{p}/ai-configs/model-configs`: the models variations may name by
//! `modelConfigKey`, with their token costs. The list is a bare array, as in LaunchDarkly.
//! `/projects/{p}/ai-model-configs` answers too: scripts post there (spec §4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::ai_flag;
use crate::api::access::auth::Caller;
use crate::api::json::{check_key, comment_in, parse};
use crate::api::records::model_config::ModelConfig;
use crate::api::records::project::ProjectData;
use crate::api::write::change::{model_config_resource, Change, Outcome};
use crate::error::AppError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{project}/ai-configs/model-configs",
            get(list).post(create),
        )
        .route(
            "/projects/{project}/ai-model-configs",
            get(list).post(create),
        )
        .route(
            "/projects/{project}/ai-configs/model-configs/{model}",
            get(read).delete(delete),
        )
}

/// Serves every AI Config again: model configs feed `model.name` and `provider.name`.
fn republish(data: &ProjectData) {
    for config in data.ai_configs.values() {
        ai_flag::publish(config, &data.model_configs, data.stores());
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<ModelConfig>>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    Ok(Json(data.model_configs.values().cloned().collect()))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<Json<ModelConfig>, AppError> {
    let entry = state.api.project(&project)?;
    let data = entry.lock();
    data.model_configs
        .get(&key)
        .cloned()
        .map(Json)
        .ok_or_else(|| AppError::not_found("model config", &key))
}

/// Answers 200, not 201, as LaunchDarkly documents.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Json<ModelConfig>, AppError> {
    let mut model: ModelConfig = parse(&body)?;
    check_key("model config", &model.key)?;
    model.version = 1;
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = model_config_resource(&project, &model.key);
    let change = Change::new(&caller, "createAIModelConfig", resource);
    let change = change.with_comment(comment_in(&body));
    let answer = change.commit(&state.api, &mut *data, |data| {
        if data.model_configs.contains_key(&model.key) {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!("a model config with key {:?} already exists", model.key),
            ));
        }
        data.model_configs.insert(model.key.clone(), model.clone());
        republish(data);
        let after = serde_json::to_value(&model)?;
        Ok(Outcome {
            before: Value::Null,
            after,
            response: model,
        })
    })?;
    Ok(Json(answer))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let entry = state.api.project(&project)?;
    let mut data = entry.lock();
    let resource = model_config_resource(&project, &key);
    Change::new(&caller, "deleteAIModelConfig", resource).commit(&state.api, &mut *data, |data| {
        let removed = data
            .model_configs
            .remove(&key)
            .ok_or_else(|| AppError::not_found("model config", &key))?;
        republish(data);
        Ok(Outcome::deleted(serde_json::to_value(&removed)?))
    })
}
