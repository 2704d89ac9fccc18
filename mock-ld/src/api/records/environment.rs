//! An environment's record: its REST fields beside the store environment SDKs connect to.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::json::{link, object_id, uuid};
use crate::store::Environment;

/// An environment's REST fields; the POST body is the same shape without the ids.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvMeta {
    /// The client-side ID.
    #[serde(rename = "_id", skip_deserializing)]
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(skip_deserializing)]
    pub mobile_key: String,
    #[serde(default = "default_color")]
    pub color: String,
    #[serde(default)]
    pub default_ttl: i64,
    #[serde(default)]
    pub secure_mode: bool,
    #[serde(default)]
    pub default_track_events: bool,
    #[serde(default)]
    pub require_comments: bool,
    #[serde(default)]
    pub confirm_changes: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub critical: bool,
}

fn default_color() -> String {
    "7B42BC".to_owned()
}

impl EnvMeta {
    pub fn new(key: &str, name: &str) -> Self {
        EnvMeta {
            id: object_id(),
            key: key.to_owned(),
            name: name.to_owned(),
            mobile_key: format!("mob-{}", uuid()),
            color: default_color(),
            default_ttl: 0,
            secure_mode: false,
            default_track_events: false,
            require_comments: false,
            confirm_changes: false,
            tags: Vec::new(),
            critical: false,
        }
    }
}

/// An environment: its REST fields and the store environment SDKs connect to.
pub struct EnvEntry {
    pub meta: EnvMeta,
    pub env: Arc<Environment>,
}

/// An environment as the REST API answers it (`Environment`): its fields and its SDK key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvRep {
    #[serde(flatten)]
    pub meta: EnvMeta,
    /// The SDK key, which SDK streams accept at once.
    pub api_key: String,
    #[serde(rename = "_links")]
    pub links: Value,
}

impl EnvRep {
    pub fn new(project: &str, entry: &EnvEntry) -> Self {
        let href = format!("/api/v2/projects/{project}/environments/{}", entry.meta.key);
        EnvRep {
            meta: entry.meta.clone(),
            api_key: entry.env.sdk_key.clone(),
            links: json!({ "self": link(&href) }),
        }
    }
}
