//! Who is calling: the access token in `Authorization`, raw as LaunchDarkly documents it or
//! after `Bearer `, and what its roles let it do.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::policy::Verdict;
use super::roles::Token;
use crate::error::AppError;
use crate::AppState;

/// The holder of a valid access token. Any valid token may read.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: Arc<Token>,
}

impl Caller {
    /// 403 unless the token's policy allows every one of `actions` on `resource`.
    pub fn authorize(&self, actions: &[&str], resource: &str) -> Result<(), AppError> {
        for action in actions {
            let why = match self.token.policy.check(action, resource) {
                Verdict::Allowed => continue,
                Verdict::Denied => "a deny statement of its role matches",
                Verdict::NotAllowed => "no statement of its role allows it",
            };
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} may not {action} on {resource}: {why}",
                    self.token.name
                ),
            ));
        }
        Ok(())
    }
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
