//! A variation's record: every version of it, each with the fields as sent and as checked;
//! and a version as the REST API answers it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::json::link;

/// One variation key and every version of it.
pub struct Variation {
    pub id: String,
    pub key: String,
    /// Oldest first; never empty.
    pub versions: Vec<VariationVersion>,
}

impl Variation {
    pub fn current(&self) -> &VariationVersion {
        self.versions.last().expect("a variation has a version")
    }

    /// Adds `version` as the newest and drops the oldest past `max` (never the newest).
    pub fn push_version(&mut self, version: VariationVersion, max: usize) {
        self.versions.push(version);
        let excess = self.versions.len().saturating_sub(max.max(1));
        self.versions.drain(..excess);
    }
}

/// A variation version as the REST API answers it (`AIConfigVariation`): the fields as the
/// client sent them, beside those the API owns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationRep {
    /// The client's fields as stored (`name`, `description`, `modelConfigKey`, …) but the
    /// two below, which every answer carries.
    #[serde(flatten)]
    pub sent: Map<String, Value>,
    /// Required by LaunchDarkly's OpenAPI document: `{}` when none was set.
    pub model: Value,
    /// Required by the TypeScript client's models: `[]` when none were set (agent mode).
    pub messages: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The same in every version: targeting names variations by `_id`.
    #[serde(rename = "_id")]
    pub id: String,
    pub key: String,
    pub version: u64,
    pub created_at: u64,
    #[serde(rename = "_links")]
    pub links: Value,
}

impl VariationRep {
    /// `version` of `variation`, whose AI Config answers at `config_href`.
    pub fn new(variation: &Variation, version: &VariationVersion, config_href: &str) -> Self {
        let mut sent = version.raw.clone();
        let model = sent.remove("model").unwrap_or_else(|| json!({}));
        let messages = sent.remove("messages").unwrap_or_else(|| json!([]));
        VariationRep {
            sent,
            model,
            messages,
            comment: version.comment.clone(),
            id: variation.id.clone(),
            key: variation.key.clone(),
            version: version.version,
            created_at: version.created_at,
            links: json!({ "parent": link(config_href) }),
        }
    }
}

pub struct VariationVersion {
    pub version: u64,
    pub created_at: u64,
    pub comment: Option<String>,
    /// The fields as the client sent them (merged over earlier versions), returned as stored.
    pub raw: Map<String, Value>,
    /// The fields the SDK view reads, checked when the version was made.
    pub fields: VariationFields,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationFields {
    pub name: String,
    pub description: Option<String>,
    pub instructions: Option<String>,
    pub messages: Option<Vec<Message>>,
    pub model: Option<Map<String, Value>>,
    pub model_config_key: Option<String>,
    pub tools: Option<Vec<ToolRef>>,
    pub tool_keys: Option<Vec<String>>,
    pub judge_configuration: Option<JudgeConfiguration>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Developer,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRef {
    pub key: String,
    pub custom_parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct JudgeConfiguration {
    pub judges: Option<Vec<JudgeRef>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeRef {
    pub judge_config_key: String,
    pub sampling_rate: f64,
}
