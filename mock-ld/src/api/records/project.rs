//! A project's record: its own REST fields, and everything the API knows about it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ai_config::AiConfig;
use super::environment::EnvEntry;
use super::flag::FlagMeta;
use super::model_config::ModelConfig;
use super::segment::SegmentMeta;
use crate::api::json::{link, object_id};
use crate::error::AppError;
use crate::model::ClientSideAvailability;
use crate::store::Environment;

/// A project's own REST fields.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectMeta {
    pub key: String,
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub include_in_snippet_by_default: bool,
    pub default_client_side_availability: ClientSideAvailability,
}

impl ProjectMeta {
    pub fn new(key: &str, name: &str) -> Self {
        ProjectMeta {
            key: key.to_owned(),
            id: object_id(),
            name: name.to_owned(),
            tags: Vec::new(),
            include_in_snippet_by_default: false,
            default_client_side_availability: ClientSideAvailability::default(),
        }
    }
}

/// A project as the REST API answers it (`Project`; `ProjectRep` with its environments).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRep {
    #[serde(rename = "_id")]
    pub id: String,
    pub key: String,
    pub name: String,
    pub tags: Vec<String>,
    pub include_in_snippet_by_default: bool,
    pub default_client_side_availability: ClientSideAvailability,
    /// Absent, an array (the POST answer) or a collection (`expand=environments`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments: Option<Value>,
    #[serde(rename = "_links")]
    pub links: Value,
}

impl ProjectRep {
    pub fn new(meta: &ProjectMeta, environments: Option<Value>) -> Self {
        let href = format!("/api/v2/projects/{}", meta.key);
        let environments_href = format!("{href}/environments");
        ProjectRep {
            id: meta.id.clone(),
            key: meta.key.clone(),
            name: meta.name.clone(),
            tags: meta.tags.clone(),
            include_in_snippet_by_default: meta.include_in_snippet_by_default,
            default_client_side_availability: meta.default_client_side_availability.clone(),
            environments,
            links: json!({"self": link(&href), "environments": link(&environments_href)}),
        }
    }
}

/// Everything the API knows about one project.
pub struct ProjectData {
    pub meta: ProjectMeta,
    pub environments: BTreeMap<String, EnvEntry>,
    pub ai_configs: BTreeMap<String, AiConfig>,
    pub model_configs: BTreeMap<String, ModelConfig>,
    /// REST-only fields of segments, by environment and key. A segment without an entry
    /// (seed data, the admin API) gets defaults.
    pub segments: BTreeMap<(String, String), SegmentMeta>,
    /// REST-only fields of ordinary feature flags, by key. A flag without an entry (seed
    /// data, the admin API) gets them derived from the store's flag.
    pub flags: BTreeMap<String, FlagMeta>,
}

impl ProjectData {
    pub fn new(meta: ProjectMeta) -> Self {
        ProjectData {
            meta,
            environments: BTreeMap::new(),
            ai_configs: BTreeMap::new(),
            model_configs: BTreeMap::new(),
            segments: BTreeMap::new(),
            flags: BTreeMap::new(),
        }
    }

    pub fn env(&self, key: &str) -> Result<&EnvEntry, AppError> {
        self.environments
            .get(key)
            .ok_or_else(|| AppError::not_found("environment", key))
    }

    pub fn ai_config(&self, key: &str) -> Result<&AiConfig, AppError> {
        self.ai_configs
            .get(key)
            .ok_or_else(|| AppError::not_found("AI Config", key))
    }

    /// The store environments SDKs of this project connect to.
    pub fn stores(&self) -> impl Iterator<Item = &Arc<Environment>> {
        self.environments.values().map(|e| &e.env)
    }
}
