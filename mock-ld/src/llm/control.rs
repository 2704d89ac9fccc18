//! `/admin/llm`: set model profiles and read what the simulated provider served.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;

use super::lateness::LatenessReport;
use super::profile::Profile;
use super::simulator::ModelStats;
use crate::datafile::tidy;
use crate::error::AppError;
use crate::AppState;

pub async fn list_models(State(state): State<AppState>) -> Json<BTreeMap<String, Profile>> {
    Json(state.llm.profiles())
}

/// Replaces the model's profile with the body; fields it leaves out take their defaults.
pub async fn put_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    body: Bytes,
) -> Result<Json<Profile>, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
        let (inner, field) = (e.inner(), e.path().to_string());
        let message = tidy(&inner.to_string(), &field);
        AppError::bad_request(format!(
            "line {} column {}: field `{field}`: {message}",
            inner.line(),
            inner.column(),
        ))
    })?;
    state.llm.set_profile(model, profile);
    Ok(Json(profile))
}

pub async fn stats(State(state): State<AppState>) -> Json<BTreeMap<String, ModelStats>> {
    Json(state.llm.stats())
}

pub async fn lateness(State(state): State<AppState>) -> Json<LatenessReport> {
    Json(state.llm.lateness().report())
}
