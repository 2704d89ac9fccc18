//! An AI Config as SDKs see it: a flag with the config's key whose variation 0 is the implicit
//! disabled variation and whose later variations, in creation order, are the JSON objects the
//! AI SDKs read (`shared/spec/ld-sdk-protocol.md` §7.1).
//!
//! The REST fields map onto that object as follows:
//! - `_ldMeta`: `enabled: true`, the variation's `key` and `version`, the config's `mode`.
//! - `model.name`: the variation's `model.modelName`, else the `id` of the model config that
//!   `modelConfigKey` names, else what follows the provider in `modelConfigKey` (LaunchDarkly's
//!   catalog keys read `OpenAI.gpt-4o`, so scripts name models the project never created).
//! - `model.parameters` and `model.custom`: the variation's own.
//! - `provider.name`: the variation's `model.provider` (a string or `{name}`) if it gives one,
//!   being the more specific choice; else the model config's `provider`; else the prefix of
//!   `modelConfigKey`.
//! - `messages` (completion and judge mode) or `instructions` (agent mode).
//! - `tools`: `{key: {name: key, customParameters?}}` from `tools` and `toolKeys`.
//! - `judgeConfiguration.judges[].key` from `judgeConfigKey`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::api::records::ai_config::{AiConfig, Mode};
use crate::api::records::model_config::ModelConfig;
use crate::api::records::variation::{Variation, VariationFields};
use crate::api::semantic_patch::VariationRef;
use crate::model::{Flag, VariationOrRollout};
use crate::store::Environment;

/// The key and name of the implicit variation 0.
pub const DISABLED_KEY: &str = "disabled";
pub const DISABLED_NAME: &str = "Disabled";

/// The config's variations in flag order, with the values SDKs receive.
pub fn variation_refs(
    config: &AiConfig,
    models: &BTreeMap<String, ModelConfig>,
) -> Vec<VariationRef> {
    let disabled = config.disabled_id.as_ref().map(|id| VariationRef {
        id: id.clone(),
        key: DISABLED_KEY.to_owned(),
        name: DISABLED_NAME.to_owned(),
        value: json!({"_ldMeta": {
            "enabled": false, "variationKey": DISABLED_KEY, "version": 1, "mode": config.mode
        }}),
    });
    let variations = config.variations.iter().map(|variation| VariationRef {
        id: variation.id.clone(),
        key: variation.key.clone(),
        name: variation.current().fields.name.clone(),
        value: variation_value(config.mode, variation, models, &config.extra),
    });
    disabled.into_iter().chain(variations).collect()
}

fn variation_value(
    mode: Mode,
    variation: &Variation,
    models: &BTreeMap<String, ModelConfig>,
    config_extra: &Map<String, Value>,
) -> Value {
    let current = variation.current();
    let fields = &current.fields;
    let catalog = fields
        .model_config_key
        .as_deref()
        .and_then(|k| models.get(k));
    let mut value = Map::new();
    value.insert(
        "_ldMeta".into(),
        json!({"enabled": true, "variationKey": variation.key, "version": current.version, "mode": mode}),
    );
    if let Some(model) = model(fields, catalog) {
        value.insert("model".into(), model);
    }
    if let Some(provider) = provider(fields, catalog) {
        value.insert("provider".into(), json!({ "name": provider }));
    }
    match (mode, &fields.instructions, &fields.messages) {
        (Mode::Agent, Some(instructions), _) => {
            value.insert("instructions".into(), json!(instructions));
        }
        (Mode::Completion | Mode::Judge, _, Some(messages)) => {
            value.insert("messages".into(), json!(messages));
        }
        _ => {}
    }
    if let Some(tools) = tools(fields) {
        value.insert("tools".into(), tools);
    }
    if let Some(judges) = judges(fields) {
        value.insert("judgeConfiguration".into(), judges);
    }
    if let (Mode::Judge, Some(metric)) = (mode, config_extra.get("evaluationMetricKey")) {
        value.insert("evaluationMetricKey".into(), metric.clone());
    }
    Value::Object(value)
}

/// The REST fields of a variation whose SDK value is `value`: the inverse of
/// [`variation_value`] for a variation without a model config, so that seed data read back
/// this way is served unchanged (`model.name` becomes `model.modelName`, `provider.name`
/// `model.provider`, the `tools` map `tools`, judges' `key` `judgeConfigKey`). Fields
/// `variation_value` does not write are not kept.
pub fn rest_fields(key: &str, value: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("key".into(), json!(key));
    fields.insert("name".into(), json!(key));
    let mut model = Map::new();
    if let Some(Value::Object(sdk_model)) = value.get("model") {
        for (from, to) in [
            ("name", "modelName"),
            ("parameters", "parameters"),
            ("custom", "custom"),
        ] {
            if let Some(v) = sdk_model.get(from) {
                model.insert(to.into(), v.clone());
            }
        }
    }
    if let Some(name) = value.get("provider").and_then(|p| p.get("name")) {
        model.insert("provider".into(), name.clone());
    }
    if !model.is_empty() {
        fields.insert("model".into(), Value::Object(model));
    }
    for copied in ["messages", "instructions"] {
        if let Some(v) = value.get(copied) {
            fields.insert(copied.into(), v.clone());
        }
    }
    if let Some(Value::Object(tools)) = value.get("tools") {
        let tools: Vec<Value> = tools
            .iter()
            .map(|(key, tool)| {
                let mut entry = json!({ "key": key });
                if let Some(custom) = tool.get("customParameters") {
                    entry["customParameters"] = custom.clone();
                }
                entry
            })
            .collect();
        fields.insert("tools".into(), json!(tools));
    }
    if let Some(Value::Array(judges)) = value
        .get("judgeConfiguration")
        .and_then(|j| j.get("judges"))
    {
        let judges: Vec<Value> = judges
            .iter()
            .map(|j| json!({ "judgeConfigKey": j.get("key"), "samplingRate": j.get("samplingRate") }))
            .collect();
        fields.insert("judgeConfiguration".into(), json!({ "judges": judges }));
    }
    fields
}

fn model(fields: &VariationFields, catalog: Option<&ModelConfig>) -> Option<Value> {
    let spec = fields.model.as_ref();
    let name = spec
        .and_then(|m| m.get("modelName"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| catalog.map(|c| c.id.clone()))
        .or_else(|| key_part(fields, 1))?;
    let parameters = spec.and_then(|m| m.get("parameters")).cloned();
    let mut model = json!({ "name": name, "parameters": parameters.unwrap_or_else(|| json!({})) });
    if let Some(custom) = spec.and_then(|m| m.get("custom")) {
        model["custom"] = custom.clone();
    }
    Some(model)
}

fn provider(fields: &VariationFields, catalog: Option<&ModelConfig>) -> Option<String> {
    let own = fields.model.as_ref().and_then(|m| m.get("provider"));
    let own = match own {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Object(p)) => p.get("name").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    own.or_else(|| catalog.and_then(|c| c.provider.clone()))
        .or_else(|| key_part(fields, 0))
}

/// Part `index` of `modelConfigKey` split at its first dot: 0 the provider, 1 the model.
fn key_part(fields: &VariationFields, index: usize) -> Option<String> {
    let (provider, model) = fields.model_config_key.as_deref()?.split_once('.')?;
    Some([provider, model][index].to_owned())
}

fn tools(fields: &VariationFields) -> Option<Value> {
    let mut tools = Map::new();
    for tool in fields.tools.iter().flatten() {
        let mut entry = json!({ "name": tool.key });
        if let Some(custom) = &tool.custom_parameters {
            entry["customParameters"] = custom.clone();
        }
        tools.insert(tool.key.clone(), entry);
    }
    for key in fields.tool_keys.iter().flatten() {
        tools
            .entry(key.clone())
            .or_insert_with(|| json!({ "name": key }));
    }
    (!tools.is_empty()).then_some(Value::Object(tools))
}

fn judges(fields: &VariationFields) -> Option<Value> {
    let judges = fields.judge_configuration.as_ref()?.judges.as_ref()?;
    let judges: Vec<Value> = judges
        .iter()
        .map(|j| json!({ "key": j.judge_config_key, "samplingRate": j.sampling_rate }))
        .collect();
    (!judges.is_empty()).then(|| json!({ "judges": judges }))
}

/// The flag `config` is served as in one environment: that environment's targeting
/// (`current`) with the config's variations, or, in an environment that has none yet,
/// targeting on with the config's defaults as fallthrough and off variation.
pub fn flag(config: &AiConfig, refs: &[VariationRef], current: Option<Flag>) -> Flag {
    let index = |id: &str| refs.iter().position(|v| v.id == id).unwrap_or(0) as i64;
    let mut flag = current.unwrap_or_else(|| Flag {
        on: true,
        fallthrough: VariationOrRollout {
            variation: Some(index(&config.defaults.on)),
            rollout: None,
        },
        off_variation: Some(index(&config.defaults.off)),
        ..Flag::default()
    });
    flag.key.clone_from(&config.key);
    flag.salt.clone_from(&config.salt);
    flag.variations = refs.iter().map(|v| v.value.clone()).collect();
    flag
}

/// Serves `config` in each of `envs`, pushing a `patch` wherever its flag changed.
pub fn publish<'a>(
    config: &AiConfig,
    models: &BTreeMap<String, ModelConfig>,
    envs: impl IntoIterator<Item = &'a Arc<Environment>>,
) {
    republish(config, models, envs, |_| {});
}

/// Like [`publish`], after the variation at `removed` was deleted: later indices move down.
pub fn publish_without<'a>(
    config: &AiConfig,
    models: &BTreeMap<String, ModelConfig>,
    envs: impl IntoIterator<Item = &'a Arc<Environment>>,
    removed: i64,
) {
    republish(config, models, envs, |flag| {
        for index in indices_mut(flag) {
            if *index > removed {
                *index -= 1;
            }
        }
    });
}

fn republish<'a>(
    config: &AiConfig,
    models: &BTreeMap<String, ModelConfig>,
    envs: impl IntoIterator<Item = &'a Arc<Environment>>,
    adjust: impl Fn(&mut Flag),
) {
    let refs = variation_refs(config, models);
    for env in envs {
        let current = env.flag(&config.key);
        let targeting = current.clone().map(|mut flag| {
            adjust(&mut flag);
            flag
        });
        let next = flag(config, &refs, targeting);
        if current.as_ref() != Some(&next) {
            env.upsert_flag(next);
        }
    }
}

/// Whether targeting anywhere in `flag` serves the variation at `index`.
pub fn serves(flag: &Flag, index: i64) -> bool {
    indices_mut(&mut flag.clone())
        .into_iter()
        .any(|i| *i == index)
}

/// Every variation index in a flag's targeting.
fn indices_mut(flag: &mut Flag) -> Vec<&mut i64> {
    let mut indices: Vec<&mut i64> = flag
        .targets
        .iter_mut()
        .chain(flag.context_targets.iter_mut())
        .map(|t| &mut t.variation)
        .collect();
    for rule in &mut flag.rules {
        indices.extend(rule.variation.as_mut());
        for weighted in rule.rollout.iter_mut().flat_map(|r| &mut r.variations) {
            indices.push(&mut weighted.variation);
        }
    }
    indices.extend(flag.fallthrough.variation.as_mut());
    for weighted in flag
        .fallthrough
        .rollout
        .iter_mut()
        .flat_map(|r| &mut r.variations)
    {
        indices.push(&mut weighted.variation);
    }
    indices.extend(flag.off_variation.as_mut());
    indices
}
