//! Polling endpoints: `/sdk/latest-all` and the single-collection and single-item variants
//! that older SDKs and Relay use. Answers carry an `ETag`; a matching `If-None-Match` gets 304.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::admit;
use crate::error::AppError;
use crate::faults::Endpoint;
use crate::AppState;

pub async fn latest_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let snapshot = env.snapshot();
    Ok(json_with_etag(
        &headers,
        &snapshot.etag,
        snapshot.all_json.clone(),
    ))
}

pub async fn latest_flags(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let flags: serde_json::Map<_, _> = env
        .flags()
        .into_iter()
        .map(|f| {
            (
                f.key.clone(),
                serde_json::to_value(f).expect("flags serialize"),
            )
        })
        .collect();
    Ok(json_with_etag(
        &headers,
        &env.snapshot().etag,
        serde_json::to_vec(&flags)?.into(),
    ))
}

pub async fn latest_segments(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let segments: serde_json::Map<_, _> = env
        .segments()
        .into_iter()
        .map(|s| {
            (
                s.key.clone(),
                serde_json::to_value(s).expect("segments serialize"),
            )
        })
        .collect();
    Ok(json_with_etag(
        &headers,
        &env.snapshot().etag,
        serde_json::to_vec(&segments)?.into(),
    ))
}

pub async fn latest_flag(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let flag = env
        .flag(&key)
        .ok_or_else(|| AppError::not_found("flag", &key))?;
    Ok(axum::Json(flag).into_response())
}

pub async fn latest_segment(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let env = admit(&state, &headers, Endpoint::Polling).await?;
    let segment = env
        .segment(&key)
        .ok_or_else(|| AppError::not_found("segment", &key))?;
    Ok(axum::Json(segment).into_response())
}

/// 304 when the request's `If-None-Match` names `etag`.
pub fn not_modified(request: &HeaderMap, etag: &str) -> Option<Response> {
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let etag_value = HeaderValue::from_str(etag).expect("etags are ASCII");
    matches.then(|| (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response())
}

/// `body` as JSON with `etag`, or 304 when the request already has it.
pub fn json_with_etag(request: &HeaderMap, etag: &str, body: Bytes) -> Response {
    if let Some(unchanged) = not_modified(request, etag) {
        return unchanged;
    }
    let etag_value = HeaderValue::from_str(etag).expect("etags are ASCII");
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
        ],
        body,
    )
        .into_response()
}
