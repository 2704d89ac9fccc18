//! A flag as the API shows it: `FeatureFlag`, with each environment's `FeatureFlagConfig`.

use serde_json::{json, Map, Value};

use super::env_flag;
use crate::api::json::{link, stable_salt};
use crate::api::records::environment::EnvEntry;
use crate::api::records::flag::FlagMeta;
use crate::api::records::project::ProjectData;
use crate::model::Flag;

/// Which environments and how much of each a flag's JSON shows.
pub struct Shown<'a> {
    pub envs: Option<&'a [String]>,
    pub summary: bool,
}

pub const FULL: Shown<'static> = Shown {
    envs: None,
    summary: false,
};

pub fn flag_json(
    project: &str,
    key: &str,
    meta: &FlagMeta,
    data: &ProjectData,
    shown: &Shown,
) -> Value {
    let environments: Map<String, Value> = data
        .environments
        .iter()
        .filter(|(k, _)| shown.envs.is_none_or(|envs| envs.contains(k)))
        .map(|(env_key, env)| {
            let flag = env_flag(project, key, meta, env);
            let modified = meta.last_modified.get(env_key).copied();
            (
                env_key.clone(),
                env_json(project, &flag, env, modified, shown.summary),
            )
        })
        .collect();
    let href = format!("/api/v2/flags/{project}/{key}");
    let mut out = json!({
        "key": key,
        "name": meta.name,
        "kind": meta.kind(),
        "description": meta.description,
        "_version": meta.version,
        "creationDate": meta.creation_date,
        "includeInSnippet": meta.client_side_availability.using_environment_id,
        "clientSideAvailability": meta.client_side_availability,
        "variations": meta.variations,
        "temporary": meta.temporary,
        "tags": meta.tags,
        "_links": {"self": link(&href), "parent": link(&format!("/api/v2/flags/{project}"))},
        "experiments": {"baselineIdx": 0, "items": []},
        "customProperties": meta.custom_properties,
        "archived": meta.archived,
        "deprecated": meta.deprecated,
        "defaults": meta.defaults,
        "environments": environments,
    });
    if let Some(maintainer) = &meta.maintainer_id {
        out["maintainerId"] = json!(maintainer);
    }
    out
}

fn env_json(
    project: &str,
    flag: &Flag,
    env: &EnvEntry,
    modified: Option<u64>,
    summary: bool,
) -> Value {
    let mut out = json!({
        "on": flag.on,
        "archived": false,
        "salt": flag.salt,
        "sel": stable_salt(&[&flag.salt, &flag.version.to_string()]),
        "lastModified": modified.unwrap_or(0),
        "version": flag.version,
        "fallthrough": flag.fallthrough,
        "offVariation": flag.off_variation,
        "_site": {"href": format!("/{project}/{}/features/{}", env.meta.key, flag.key), "type": "text/html"},
        "_environmentName": env.meta.name,
        "trackEvents": flag.track_events,
        "trackEventsFallthrough": flag.track_events_fallthrough,
        "_summary": {"variations": {}, "prerequisites": flag.prerequisites.len()},
    });
    if !summary {
        out["targets"] = json!(flag.targets);
        out["contextTargets"] = json!(flag.context_targets);
        out["rules"] = rules_json(flag);
        out["prerequisites"] = json!(flag.prerequisites);
    }
    out
}

/// Rules as the flag API shows them: flag rules with `_id`, and clauses with both `_id` and
/// `id`. Kept in the stored form (not `records::targeting::RuleRep`, which adds defaults such
/// as a rollout's `contextKind`), because JSON Patch and merge patch edit this view and read it
/// back: a default added here would read back as a change.
fn rules_json(flag: &Flag) -> Value {
    let rules = flag.rules.iter().map(|rule| {
        let mut out = serde_json::to_value(rule).expect("rules serialize");
        out["_id"] = json!(rule.id);
        for clause in out["clauses"].as_array_mut().into_iter().flatten() {
            clause["id"] = clause["_id"].clone();
        }
        out
    });
    Value::Array(rules.collect())
}
