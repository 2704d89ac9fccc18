//! A client of LaunchDarkly's REST API v2 for one project: what the runner sets scenarios up
//! with (`runner::setup`) and what the rollout checks read targeting back with
//! (`checks::targeting`). The same calls work against mock-ld and LaunchDarkly itself.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A REST call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: {detail}")]
pub struct ApiError {
    pub method: Method,
    pub path: String,
    /// The answer's status, when there was an answer.
    pub status: Option<StatusCode>,
    pub detail: String,
}

impl ApiError {
    pub fn is(&self, status: StatusCode) -> bool {
        self.status == Some(status)
    }

    /// A 409 on creation: the resource is left from an earlier run against the same
    /// target. Say how to get past it rather than delete anything on the user's behalf.
    pub fn explain_conflict(mut self, what: &str) -> Self {
        if self.is(StatusCode::CONFLICT) {
            self.detail += &format!(
                " ({what} exists already, probably from an earlier run: run against a fresh mock-ld or another `project`, or delete it first)"
            );
        }
        self
    }
}

/// A client of the REST API of one project.
pub struct LdApi {
    http: reqwest::Client,
    base: String,
    token: String,
    pub project: String,
}

impl LdApi {
    pub fn new(http: reqwest::Client, base: &str, token: &str, project: &str) -> Self {
        LdApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            project: project.to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Value)>,
    ) -> Result<Value, ApiError> {
        let error = |status: Option<StatusCode>, detail: String| ApiError {
            method: method.clone(),
            path: path.to_owned(),
            status,
            detail,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Authorization", &self.token);
        if let Some((content_type, body)) = body {
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| error(None, e.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| error(Some(status), e.to_string()))?;
        if !status.is_success() {
            return Err(error(Some(status), format!("{status}: {text}")));
        }
        if status == StatusCode::NO_CONTENT || text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| error(Some(status), format!("unreadable answer: {e}")))
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        self.call(Method::POST, path, Some(("application/json", body)))
            .await
    }

    /// GETs `path` (e.g. `/api/v2/segments/…`); `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.call(Method::GET, path, None).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
