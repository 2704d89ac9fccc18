//! AI Configs that arrive as seed data (`--data`, the SDK file-data-source format). A flag
//! whose every variation is an object with `_ldMeta` is an AI Config flag (spec §7.1), so the
//! REST API lists it as an AI Config with its variations, read back from the values SDKs
//! receive ([`ai_flag::rest_fields`]).
//!
//! The flag is left as seeded: same indices, salt and targeting, so what SDKs evaluate does
//! not change. A variation 0 with `_ldMeta.enabled: false` becomes the config's disabled
//! variation; a flag without one gets a config without one. A REST change to the config
//! later re-renders its variations from their REST fields, as for any other config.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ai_flag;
use super::variations;
use crate::api::json::{now_ms, uuid};
use crate::api::records::ai_config::{AiConfig, Mode};
use crate::api::records::model_config::ModelConfig;
use crate::api::records::project::ProjectData;
use crate::api::semantic_patch::targeting::Defaults;
use crate::error::AppError;
use crate::model::Flag;

/// Adds each AI Config flag of `flags` that the project does not know yet; returns how
/// many were added. A flag that looks like one but cannot be read back is left a plain
/// flag, with a warning naming why.
///
/// Seeds go on top of recovered state, so they win: a config already known (from `--state`)
/// is kept only while it serves exactly the seeded values, else it is replaced by the seed's
/// (or dropped, if the seed is no AI Config), and a flag's kept REST fields whose variations
/// differ from the seed's are dropped. Otherwise the registry would disagree with what SDKs
/// are served, and its next change would put the old values back.
pub fn adopt(data: &mut ProjectData, flags: &[Flag]) -> usize {
    let mut adopted = 0;
    for flag in flags {
        forget_stale_flag_fields(data, flag);
        if let Some(known) = data.ai_configs.get(&flag.key) {
            if served_unchanged(known, &data.model_configs, flag).is_ok() {
                continue;
            }
            tracing::warn!(flag = %flag.key, "seed data replaces the AI Config kept in --state");
            data.ai_configs.remove(&flag.key);
        }
        if !is_ai_config(flag) {
            continue;
        }
        match config_of(flag) {
            Ok(config) => {
                data.ai_configs.insert(flag.key.clone(), config);
                adopted += 1;
            }
            Err(e) => tracing::warn!(flag = %flag.key, error = %e.message,
                "seeded flag looks like an AI Config but stays a plain flag"),
        }
    }
    adopted
}

fn forget_stale_flag_fields(data: &mut ProjectData, flag: &Flag) {
    if data
        .flags
        .get(&flag.key)
        .is_some_and(|meta| meta.values() != flag.variations)
    {
        tracing::warn!(flag = %flag.key, "seed data replaces the flag's REST fields kept in --state");
        data.flags.remove(&flag.key);
    }
}

/// Every variation an object with an `_ldMeta` object.
fn is_ai_config(flag: &Flag) -> bool {
    !flag.variations.is_empty()
        && flag
            .variations
            .iter()
            .all(|v| v.get("_ldMeta").is_some_and(Value::is_object))
}

fn meta(value: &Value) -> &Map<String, Value> {
    value["_ldMeta"]
        .as_object()
        .expect("checked by is_ai_config")
}

fn config_of(flag: &Flag) -> Result<AiConfig, AppError> {
    let disabled = meta(&flag.variations[0]).get("enabled") == Some(&Value::Bool(false));
    let served = &flag.variations[usize::from(disabled)..];
    if served.is_empty() {
        return Err(AppError::bad_request(
            "an AI Config needs a variation besides the disabled one",
        ));
    }
    if served
        .iter()
        .any(|v| meta(v).get("enabled") == Some(&Value::Bool(false)))
    {
        return Err(AppError::bad_request(
            "a disabled variation other than variation 0 has no REST form",
        ));
    }
    let mode_of = |v: &Value| {
        let mode = meta(v).get("mode")?;
        serde_json::from_value::<Mode>(mode.clone()).ok()
    };
    let now = now_ms();
    let mut config = AiConfig {
        key: flag.key.clone(),
        name: flag.key.clone(),
        description: String::new(),
        tags: Vec::new(),
        mode: served.first().and_then(mode_of).unwrap_or_default(),
        version: 1,
        created_at: now,
        updated_at: now,
        extra: judge_metric(served),
        salt: flag.salt.clone(),
        disabled_id: disabled.then(uuid),
        variations: Vec::new(),
        defaults: Defaults {
            on: String::new(),
            off: String::new(),
        },
        targeting_modified: BTreeMap::new(),
    };
    for (i, value) in served.iter().enumerate() {
        let key = match meta(value).get("variationKey") {
            Some(Value::String(key)) => key.clone(),
            _ => format!("variation-{}", i + usize::from(disabled)),
        };
        let body = value.as_object().expect("checked by is_ai_config");
        let mut variation = variations::create(&config, ai_flag::rest_fields(&key, body))?;
        if let Some(version) = meta(value).get("version").and_then(Value::as_u64) {
            variation.versions[0].version = version;
        }
        config.variations.push(variation);
    }
    config.defaults = defaults(&config, flag);
    served_unchanged(&config, &BTreeMap::new(), flag)?;
    Ok(config)
}

/// A judge's `evaluationMetricKey`, which the served value carries from the config.
fn judge_metric(served: &[Value]) -> Map<String, Value> {
    let metric = served.iter().find_map(|v| v.get("evaluationMetricKey"));
    metric
        .map(|m| Map::from_iter([("evaluationMetricKey".to_owned(), m.clone())]))
        .unwrap_or_default()
}

/// The config's variations, as a REST change would re-render them, are the seeded values:
/// otherwise the first change to it through the API would change what SDKs are served (a
/// field the REST form has no place for, a missing `mode` or `version`, mixed modes).
fn served_unchanged(
    config: &AiConfig,
    models: &BTreeMap<String, ModelConfig>,
    flag: &Flag,
) -> Result<(), AppError> {
    let refs = ai_flag::variation_refs(config, models);
    match refs
        .iter()
        .zip(&flag.variations)
        .position(|(r, seeded)| r.value != *seeded)
    {
        None if refs.len() == flag.variations.len() => Ok(()),
        at => Err(AppError::bad_request(format!(
            "variation {} would not be served as seeded after a change through the REST API",
            at.unwrap_or(refs.len())
        ))),
    }
}

/// What other environments start serving: the seeded flag's fallthrough and off
/// variations where they are single variations, else the disabled (or first) variation.
fn defaults(config: &AiConfig, flag: &Flag) -> Defaults {
    let first = config
        .disabled_id
        .clone()
        .unwrap_or_else(|| config.variations[0].id.clone());
    let id_at = |index: Option<i64>| {
        let position = index? - config.first_index();
        let variation = config.variations.get(usize::try_from(position).ok()?)?;
        Some(variation.id.clone())
    };
    Defaults {
        on: id_at(flag.fallthrough.variation).unwrap_or_else(|| first.clone()),
        off: id_at(flag.off_variation).unwrap_or(first),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::records::project::ProjectMeta;

    fn seeded(variations: Vec<Value>) -> Flag {
        Flag {
            key: "assistant".into(),
            salt: "seeded-salt".into(),
            variations,
            off_variation: Some(0),
            ..Flag::default()
        }
    }

    fn completion(key: &str, model: &str) -> Value {
        json!({
            "_ldMeta": {"enabled": true, "variationKey": key, "version": 3, "mode": "completion"},
            "model": {"name": model, "parameters": {"temperature": 0.2}},
            "provider": {"name": "openai"},
            "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}],
        })
    }

    #[test]
    fn seeded_variations_are_served_unchanged_by_the_adopted_config() {
        let flag = seeded(vec![
            completion("standard", "gpt-4o-mini"),
            completion("premium", "gpt-4o"),
        ]);
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        assert_eq!(adopt(&mut data, std::slice::from_ref(&flag)), 1);
        let config = data.ai_config("assistant").unwrap();
        assert_eq!(config.disabled_id, None);
        assert_eq!(config.salt, "seeded-salt");
        assert_eq!(config.flag_index("premium"), Some(1));
        assert_eq!(config.variations[1].current().version, 3);
        let refs = ai_flag::variation_refs(config, &BTreeMap::new());
        let values: Vec<&Value> = refs.iter().map(|r| &r.value).collect();
        assert_eq!(values, flag.variations.iter().collect::<Vec<_>>());
        assert_eq!(config.defaults.off, config.variations[0].id);
    }

    #[test]
    fn a_disabled_variation_0_becomes_the_configs_disabled_variation() {
        let disabled = json!({"_ldMeta": {
            "enabled": false, "variationKey": "disabled", "version": 1, "mode": "agent"
        }});
        let agent = json!({
            "_ldMeta": {"enabled": true, "variationKey": "agent-a", "version": 1, "mode": "agent"},
            "model": {"name": "gpt-4o", "parameters": {}},
            "instructions": "Plan, then act.",
            "tools": {"search": {"name": "search", "customParameters": {"depth": 2}}},
        });
        let flag = seeded(vec![disabled, agent.clone()]);
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        adopt(&mut data, &[flag]);
        let config = data.ai_config("assistant").unwrap();
        assert!(config.disabled_id.is_some());
        assert_eq!(config.mode, Mode::Agent);
        assert_eq!(config.flag_index("agent-a"), Some(1));
        let refs = ai_flag::variation_refs(config, &BTreeMap::new());
        assert_eq!(refs[1].value, agent);
        assert_eq!(config.defaults.off, *config.disabled_id.as_ref().unwrap());
    }

    #[test]
    fn the_demo_data_ai_config_is_adopted() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/demo-data.yaml");
        let (flags, _) = crate::datafile::load(&path).unwrap().into_items();
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        assert_eq!(adopt(&mut data, &flags), 1);
        let config = data.ai_config("support-assistant").unwrap();
        assert!(config.disabled_id.is_some());
        let keys: Vec<&str> = config.variations.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["small", "premium-a", "premium-b"]);
    }

    #[test]
    fn a_seed_the_rest_form_cannot_hold_stays_a_plain_flag() {
        let mut no_mode = completion("a", "m");
        no_mode["_ldMeta"].as_object_mut().unwrap().remove("mode");
        let mut unknown_field = completion("b", "m");
        unknown_field["outputFormat"] = json!("json");
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        assert_eq!(adopt(&mut data, &[seeded(vec![no_mode])]), 0);
        assert_eq!(adopt(&mut data, &[seeded(vec![unknown_field])]), 0);
        assert!(data.ai_configs.is_empty());
    }

    #[test]
    fn a_judges_metric_key_is_kept() {
        let mut judge = completion("strict", "gpt-4o");
        judge["_ldMeta"]["mode"] = json!("judge");
        judge["evaluationMetricKey"] = json!("$ld:ai:judge:relevance");
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        assert_eq!(adopt(&mut data, &[seeded(vec![judge])]), 1);
        assert_eq!(data.ai_config("assistant").unwrap().mode, Mode::Judge);
    }

    #[test]
    fn odd_ld_meta_is_left_a_plain_flag_without_panicking() {
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        let only_disabled = Flag {
            key: "only-disabled".into(),
            ..seeded(vec![json!({"_ldMeta": {"enabled": false}})])
        };
        let bare = seeded(vec![
            json!({"_ldMeta": {}}),
            json!({"_ldMeta": {"mode": 5}}),
        ]);
        assert_eq!(adopt(&mut data, &[only_disabled, bare]), 0);
        assert!(data.ai_configs.is_empty());
    }

    #[test]
    fn plain_flags_and_known_configs_are_left_alone() {
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        let plain = Flag {
            key: "banner".into(),
            variations: vec![json!(true), json!(false)],
            ..Flag::default()
        };
        let enabled_later = seeded(vec![
            completion("a", "m"),
            json!({"_ldMeta": {"enabled": false}}),
        ]);
        assert_eq!(adopt(&mut data, &[plain, enabled_later]), 0);
        assert!(data.ai_configs.is_empty());
        let flag = seeded(vec![completion("a", "m")]);
        assert_eq!(adopt(&mut data, std::slice::from_ref(&flag)), 1);
        let id = data.ai_config("assistant").unwrap().variations[0]
            .id
            .clone();
        assert_eq!(
            adopt(&mut data, std::slice::from_ref(&flag)),
            0,
            "adopted once"
        );
        assert_eq!(data.ai_config("assistant").unwrap().variations[0].id, id);
    }

    #[test]
    fn a_changed_seed_replaces_what_state_kept() {
        let mut data = ProjectData::new(ProjectMeta::new("default", "Default"));
        adopt(&mut data, &[seeded(vec![completion("a", "gpt-4o")])]);
        let edited = seeded(vec![
            completion("a", "gpt-4o-mini"),
            completion("b", "gpt-4o"),
        ]);
        assert_eq!(adopt(&mut data, std::slice::from_ref(&edited)), 1);
        let refs = ai_flag::variation_refs(data.ai_config("assistant").unwrap(), &BTreeMap::new());
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].value, edited.variations[0]);
        let plain = Flag {
            key: "assistant".into(),
            variations: vec![json!(true), json!(false)],
            ..Flag::default()
        };
        assert_eq!(adopt(&mut data, &[plain]), 0);
        assert!(data.ai_configs.is_empty(), "no longer an AI Config");
    }
}
