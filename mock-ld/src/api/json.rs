//! What the API modules share: request bodies, query strings, collections, links, ids, keys
//! and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::error::AppError;

/// Parses a JSON body, naming the field of any error. The content type is not checked:
/// clients send `application/json` with or without `domain-model=launchdarkly.semanticpatch`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "the request body is empty; expected JSON",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        AppError::bad_request(if path == "." {
            format!("invalid request body: {}", e.inner())
        } else {
            format!("invalid request body: field `{path}`: {}", e.inner())
        })
    })
}

/// The `comment` a write's body carries, for the audit log; `None` for a body without one
/// (or one that does not parse, which [`parse`] then reports).
pub fn comment_in(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Commented {
        comment: Option<String>,
    }
    serde_json::from_slice::<Commented>(body).ok()?.comment
}

/// Like [`parse`], for a value already read as JSON. An error at the top (a missing field,
/// which names itself) has no field path to name.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        AppError::bad_request(if path == "." {
            format!("invalid request body: {}", e.inner())
        } else {
            format!("invalid request body: field `{path}`: {}", e.inner())
        })
    })
}

/// A query string, with a `{code, message}` body when it does not parse.
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| AppError::bad_request(e.body_text()))
}

/// The query of collection GETs. `filter` and `sort` are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: usize,
    pub expand: Option<String>,
}

impl ListQuery {
    pub fn expands(&self, what: &str) -> bool {
        self.expand
            .as_deref()
            .is_some_and(|e| e.split(',').any(|part| part.trim() == what))
    }
}

/// `{"href", "type"}`, LaunchDarkly's link object.
pub fn link(href: &str) -> Value {
    json!({ "href": href, "type": "application/json" })
}

/// `{items, totalCount, _links}` for one page of `items`. Without `limit`, the page is every
/// item: scripts that never page then see everything, and scripts that page still work.
pub fn collection(items: Vec<Value>, href: &str, page: &ListQuery) -> Value {
    let total = items.len();
    let offset = page.offset.min(total);
    let limit = page.limit.unwrap_or(total.max(1));
    let page_href = |offset: usize| format!("{href}?limit={limit}&offset={offset}");
    let mut links = json!({ "self": link(href) });
    if page.limit.is_some() && limit > 0 {
        links["self"] = link(&page_href(offset));
        links["first"] = link(&page_href(0));
        links["last"] = link(&page_href(total.saturating_sub(1) / limit * limit));
        if offset + limit < total {
            links["next"] = link(&page_href(offset + limit));
        }
        if offset > 0 {
            links["prev"] = link(&page_href(offset.saturating_sub(limit)));
        }
    }
    let items: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({ "items": items, "totalCount": total, "_links": links })
}

/// Milliseconds since the epoch, LaunchDarkly's timestamp.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A 24-hex id, the shape of LaunchDarkly's `_id` for projects and environments.
pub fn object_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..24].to_owned()
}

/// A bucketing salt derived from what the item is (`project`, `env`, `key`), where
/// LaunchDarkly draws a random one: the same script then splits the same contexts the same
/// way on every run, so a rollout check is reproducible.
pub fn stable_salt(parts: &[&str]) -> String {
    let digest = Sha1::digest(parts.join("/").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Keys are path segments and resource-specifier parts, so they stay to `[A-Za-z0-9._-]`
/// and start with a letter or digit, as LaunchDarkly's do: a key `..` or `.` could be
/// created but never read back, since HTTP clients resolve it out of the URL.
pub fn check_key(what: &str, key: &str) -> Result<(), AppError> {
    let valid = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_request(format!(
            "invalid {what} key {key:?}: start with a letter or digit, then use letters, \
             digits, '.', '_' and '-'"
        )))
    }
}
