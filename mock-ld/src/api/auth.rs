//! Who is calling: the access token in `Authorization`, raw as LaunchDarkly documents it or
//! after `Bearer `.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::error::AppError;
use crate::AppState;

/// The holder of a valid access token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// How the token is named in logs (and, later, the audit log).
    pub name: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(unauthorized(
                "no Authorization header: send `Authorization: <access token>`",
            ));
        };
        let raw = header.to_str().unwrap_or_default().trim();
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        state
            .api
            .caller(token)
            .ok_or_else(|| unauthorized("invalid access token"))
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, message)
}
