//! An AI Config's record: its fields, its variations and what new environments serve.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::variation::{Variation, VariationRep};
use crate::api::json::{link, now_ms};
use crate::api::semantic_patch::targeting::Defaults;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Completion,
    Agent,
    Judge,
}

/// An AI Config and its variations.
pub struct AiConfig {
    pub key: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub mode: Mode,
    /// Bumped by every change to the config, its variations or its targeting; the targeting
    /// answer's `_version` too.
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Fields the mock does not interpret (`maintainerId`, `evaluationMetricKey`,
    /// `archived`, …), kept and returned as sent.
    pub extra: Map<String, Value>,
    /// The bucketing salt, the same in every environment.
    pub salt: String,
    /// `_id` of the implicit disabled variation at index 0. A config adopted from seed data
    /// whose flag has no disabled variation has none, so its flag keeps its indices.
    pub disabled_id: Option<String>,
    /// In creation order: `variations[i]` is flag variation `i + 1` (`i` without a disabled
    /// variation).
    pub variations: Vec<Variation>,
    /// What environments created later start serving.
    pub defaults: Defaults,
    /// When targeting last changed, by environment.
    pub targeting_modified: BTreeMap<String, u64>,
}

impl AiConfig {
    /// Records a change: a new version and modification time.
    pub fn touch(&mut self) {
        self.version += 1;
        self.updated_at = now_ms();
    }

    /// The position of a variation in the flag (the disabled variation, if any, is 0).
    pub fn flag_index(&self, key: &str) -> Option<i64> {
        let position = self.variations.iter().position(|v| v.key == key)?;
        Some(position as i64 + self.first_index())
    }

    /// The flag index of `variations[0]`: 1 after the disabled variation, else 0.
    pub fn first_index(&self) -> i64 {
        i64::from(self.disabled_id.is_some())
    }
}

/// An AI Config as the REST API answers it (`AIConfig`), each variation at its newest version.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AiConfigRep {
    /// Fields the mock does not interpret, as sent; none shares a name with those below.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    pub key: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub mode: Mode,
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    pub variations: Vec<VariationRep>,
    #[serde(rename = "_links")]
    pub links: Value,
}

impl AiConfigRep {
    /// `config`, listed at `collection_href`.
    pub fn new(config: &AiConfig, collection_href: &str) -> Self {
        let href = format!("{collection_href}/{}", config.key);
        let variations = config.variations.iter();
        AiConfigRep {
            extra: config.extra.clone(),
            key: config.key.clone(),
            name: config.name.clone(),
            description: config.description.clone(),
            tags: config.tags.clone(),
            mode: config.mode,
            version: config.version,
            created_at: config.created_at,
            updated_at: config.updated_at,
            variations: variations
                .map(|v| VariationRep::new(v, v.current(), &href))
                .collect(),
            links: json!({"parent": link(collection_href), "self": link(&href)}),
        }
    }
}
