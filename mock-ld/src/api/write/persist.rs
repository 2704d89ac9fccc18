//! A project as durable state keeps it: everything the registry and the store know about it
//! (ids, keys, AI Configs with every variation version, model configs, segment names, flag
//! names and variation ids, and each environment's flags and segments with their versions
//! and tombstones), and back.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::json::from_value;
use crate::api::records::ai_config::{AiConfig, Mode};
use crate::api::records::environment::EnvEntry;
use crate::api::records::environment::EnvMeta;
use crate::api::records::flag::FlagMeta;
use crate::api::records::model_config::ModelConfig;
use crate::api::records::project::ProjectData;
use crate::api::records::project::ProjectMeta;
use crate::api::records::segment::SegmentMeta;
use crate::api::records::variation::{Variation, VariationVersion};
use crate::api::semantic_patch::targeting::Defaults;
use crate::store::{self, Environment, Items, Store};

/// One project, complete.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectState {
    meta: ProjectMeta,
    /// In the store's order, which start-up lines and `/admin/environments` follow.
    environments: Vec<EnvState>,
    ai_configs: Vec<AiConfigState>,
    model_configs: Vec<ModelConfigState>,
    segments: Vec<SegmentState>,
    /// Absent from journals written before flags had REST fields.
    #[serde(default)]
    flags: BTreeMap<String, FlagMeta>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvState {
    /// Its `_id` and `mobileKey` are kept beside it: `EnvMeta` reads neither, being also the
    /// POST body, where clients must not choose them.
    meta: EnvMeta,
    id: String,
    mobile_key: String,
    sdk_key: String,
    items: Items,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AiConfigState {
    key: String,
    name: String,
    description: String,
    tags: Vec<String>,
    mode: Mode,
    version: u64,
    created_at: u64,
    updated_at: u64,
    extra: Map<String, Value>,
    salt: String,
    /// `None` for a config adopted from seed data without a disabled variation; a journal
    /// written before that existed holds a string, read as `Some`.
    disabled_id: Option<String>,
    variations: Vec<VariationState>,
    default_on: String,
    default_off: String,
    targeting_modified: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariationState {
    id: String,
    key: String,
    versions: Vec<VersionState>,
}

/// A variation version as sent; the checked fields are derived from `raw` again on restore.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionState {
    version: u64,
    created_at: u64,
    comment: Option<String>,
    raw: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct ModelConfigState {
    /// `ModelConfig` does not read its `version` (a POST body must not set it).
    config: ModelConfig,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct SegmentState {
    env: String,
    key: String,
    meta: SegmentMeta,
}

impl ProjectState {
    pub fn key(&self) -> &str {
        &self.meta.key
    }

    /// The project as it stands; `store` gives the order of its environments.
    pub fn capture(data: &ProjectData, store: &Store) -> Self {
        let order: Vec<String> = store
            .environments()
            .into_iter()
            .filter(|e| e.project == data.meta.key)
            .map(|e| e.key.clone())
            .collect();
        let mut environments: Vec<&EnvEntry> = data.environments.values().collect();
        environments.sort_by_key(|e| order.iter().position(|k| *k == e.meta.key));
        ProjectState {
            meta: data.meta.clone(),
            environments: environments.into_iter().map(capture_env).collect(),
            ai_configs: data.ai_configs.values().map(capture_config).collect(),
            model_configs: data
                .model_configs
                .values()
                .map(|config| ModelConfigState {
                    config: config.clone(),
                    version: config.version,
                })
                .collect(),
            segments: data
                .segments
                .iter()
                .map(|((env, key), meta)| SegmentState {
                    env: env.clone(),
                    key: key.clone(),
                    meta: meta.clone(),
                })
                .collect(),
            flags: data.flags.clone(),
        }
    }

    /// The project again, for the registry and the store. The default project's `test`
    /// environment takes `test_sdk_key`, since `--sdk-key` names that environment's key.
    pub fn restore(self, test_sdk_key: &str) -> Result<(ProjectData, store::Project), String> {
        let project = self.meta.key.clone();
        let mut data = ProjectData::new(self.meta);
        let mut environments = Vec::new();
        for state in self.environments {
            let mut meta = state.meta;
            let sdk_key = if project == "default" && meta.key == "test" {
                test_sdk_key
            } else {
                &state.sdk_key
            };
            let env = Environment::with_items(&project, &meta.key, sdk_key, state.items);
            let env = Arc::new(env);
            (meta.id, meta.mobile_key) = (state.id, state.mobile_key);
            environments.push(env.clone());
            data.environments
                .insert(meta.key.clone(), EnvEntry { meta, env });
        }
        for state in self.ai_configs {
            let config = restore_config(state).map_err(|e| format!("project {project:?}: {e}"))?;
            data.ai_configs.insert(config.key.clone(), config);
        }
        for mut state in self.model_configs {
            state.config.version = state.version;
            data.model_configs
                .insert(state.config.key.clone(), state.config);
        }
        for state in self.segments {
            data.segments.insert((state.env, state.key), state.meta);
        }
        data.flags = self.flags;
        let name = data.meta.name.clone();
        let store_project = store::Project {
            key: project,
            name,
            environments,
        };
        Ok((data, store_project))
    }
}

fn capture_env(entry: &EnvEntry) -> EnvState {
    EnvState {
        meta: entry.meta.clone(),
        id: entry.meta.id.clone(),
        mobile_key: entry.meta.mobile_key.clone(),
        sdk_key: entry.env.sdk_key.clone(),
        items: entry.env.items(),
    }
}

fn capture_config(config: &AiConfig) -> AiConfigState {
    let variations = config
        .variations
        .iter()
        .map(|variation| VariationState {
            id: variation.id.clone(),
            key: variation.key.clone(),
            versions: variation
                .versions
                .iter()
                .map(|v| VersionState {
                    version: v.version,
                    created_at: v.created_at,
                    comment: v.comment.clone(),
                    raw: v.raw.clone(),
                })
                .collect(),
        })
        .collect();
    AiConfigState {
        key: config.key.clone(),
        name: config.name.clone(),
        description: config.description.clone(),
        tags: config.tags.clone(),
        mode: config.mode,
        version: config.version,
        created_at: config.created_at,
        updated_at: config.updated_at,
        extra: config.extra.clone(),
        salt: config.salt.clone(),
        disabled_id: config.disabled_id.clone(),
        variations,
        default_on: config.defaults.on.clone(),
        default_off: config.defaults.off.clone(),
        targeting_modified: config.targeting_modified.clone(),
    }
}

fn restore_config(state: AiConfigState) -> Result<AiConfig, String> {
    let mut variations = Vec::new();
    for variation in state.variations {
        let mut versions = Vec::new();
        for v in variation.versions {
            let fields = from_value(Value::Object(v.raw.clone())).map_err(|e| {
                format!(
                    "AI Config {:?} variation {:?} version {}: {}",
                    state.key, variation.key, v.version, e.message
                )
            })?;
            versions.push(VariationVersion {
                version: v.version,
                created_at: v.created_at,
                comment: v.comment,
                raw: v.raw,
                fields,
            });
        }
        if versions.is_empty() {
            return Err(format!(
                "AI Config {:?} variation {:?} has no version",
                state.key, variation.key
            ));
        }
        variations.push(Variation {
            id: variation.id,
            key: variation.key,
            versions,
        });
    }
    Ok(AiConfig {
        key: state.key,
        name: state.name,
        description: state.description,
        tags: state.tags,
        mode: state.mode,
        version: state.version,
        created_at: state.created_at,
        updated_at: state.updated_at,
        extra: state.extra,
        salt: state.salt,
        disabled_id: state.disabled_id,
        variations,
        defaults: Defaults {
            on: state.default_on,
            off: state.default_off,
        },
        targeting_modified: state.targeting_modified,
    })
}
