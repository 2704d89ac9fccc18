//! Setting a scenario up through LaunchDarkly's REST API v2, exactly as an admin script
//! would: model configs, AI Configs, variations, segments, then targeting by semantic patch.
//! The same calls work against mock-ld and against LaunchDarkly itself.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::ld_api::{ApiError, LdApi};
use crate::scenario::{
    AiConfigSpec, ModelSpec, Price, Scenario, SegmentSpec, VariationSpec, VariationUpdate,
};

const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

impl LdApi {
    /// Creates everything the scenario declares, in dependency order.
    pub async fn set_up(&self, scenario: &Scenario) -> Result<(), ApiError> {
        self.create_model_configs(scenario).await?;
        for segment in &scenario.segments {
            self.create_segment(&scenario.environment, segment).await?;
        }
        for config in &scenario.ai_configs {
            self.create_ai_config(config).await?;
            let instructions: Vec<toml::Table> = config
                .targeting
                .iter()
                .map(|i| i.get_ref().clone())
                .collect();
            if !instructions.is_empty() {
                self.patch_targeting(
                    &config.key,
                    &scenario.environment,
                    &instructions,
                    "aiconfig-harness scenario setup",
                )
                .await?;
            }
        }
        Ok(())
    }

    /// One model config per distinct provider and model, carrying the scenario's prices.
    async fn create_model_configs(&self, scenario: &Scenario) -> Result<(), ApiError> {
        let mut seen = std::collections::HashSet::new();
        let models = scenario
            .ai_configs
            .iter()
            .flat_map(|c| &c.variations)
            .map(|v| &v.model);
        for model in models {
            let key = model_config_key(model);
            if seen.insert(key.clone()) {
                let body = model_config_body(model, scenario.prices.get(&model.name));
                let path = format!("/api/v2/projects/{}/ai-configs/model-configs", self.project);
                match self.post(&path, body).await {
                    // Model configs are a shared catalogue: one made by an earlier run will do.
                    Err(e) if e.is(StatusCode::CONFLICT) => {
                        tracing::info!(model_config = %key, "model config exists; keeping it");
                    }
                    other => drop(other?),
                }
            }
        }
        Ok(())
    }

    async fn create_ai_config(&self, config: &AiConfigSpec) -> Result<(), ApiError> {
        let name = config.name.clone().unwrap_or_else(|| config.key.clone());
        let body = json!({"key": config.key, "name": name, "mode": config.mode.as_str()});
        self.post(
            &format!("/api/v2/projects/{}/ai-configs", self.project),
            body,
        )
        .await
        .map_err(|e| e.explain_conflict(&format!("AI Config `{}`", config.key)))?;
        for variation in &config.variations {
            let path = format!(
                "/api/v2/projects/{}/ai-configs/{}/variations",
                self.project, config.key
            );
            self.post(&path, variation_body(variation)).await?;
        }
        Ok(())
    }

    async fn create_segment(&self, env: &str, segment: &SegmentSpec) -> Result<(), ApiError> {
        let path = format!("/api/v2/segments/{}/{env}", self.project);
        let name = segment.name.clone().unwrap_or_else(|| segment.key.clone());
        self.post(&path, json!({"key": segment.key, "name": name}))
            .await
            .map_err(|e| e.explain_conflict(&format!("segment `{}`", segment.key)))?;
        let mut instructions: Vec<Value> = Vec::new();
        if !segment.included.is_empty() {
            instructions.push(json!({"kind": "addIncludedTargets", "contextKind": "user", "values": segment.included}));
        }
        if !segment.excluded.is_empty() {
            instructions.push(json!({"kind": "addExcludedTargets", "contextKind": "user", "values": segment.excluded}));
        }
        instructions.extend(
            segment
                .instructions
                .iter()
                .map(|t| serde_json::to_value(t).expect("TOML is JSON-compatible")),
        );
        if instructions.is_empty() {
            return Ok(());
        }
        let body = json!({"environmentKey": env, "instructions": instructions, "comment": "aiconfig-harness scenario setup"});
        self.call(
            Method::PATCH,
            &format!("{path}/{}", segment.key),
            Some((SEMANTIC_PATCH, body)),
        )
        .await
        .map(drop)
    }

    /// Applies targeting instructions whose variations are named by key.
    pub async fn patch_targeting(
        &self,
        config: &str,
        env: &str,
        instructions: &[toml::Table],
        comment: &str,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/api/v2/projects/{}/ai-configs/{config}/targeting",
            self.project
        );
        let targeting = self.call(Method::GET, &path, None).await?;
        let ids = variation_ids(&targeting);
        let instructions: Vec<Value> = instructions
            .iter()
            .map(|i| resolve_instruction(i, &ids))
            .collect();
        let body = json!({"environmentKey": env, "instructions": instructions, "comment": comment});
        self.call(Method::PATCH, &path, Some((SEMANTIC_PATCH, body)))
            .await
            .map(drop)
    }

    /// Publishes a new version of a variation (a prompt or model change).
    pub async fn update_variation(
        &self,
        config: &str,
        update: &VariationUpdate,
    ) -> Result<(), ApiError> {
        let mut body = Map::new();
        if let Some(messages) = &update.messages {
            body.insert("messages".into(), json!(messages));
        }
        if let Some(instructions) = &update.instructions {
            body.insert("instructions".into(), json!(instructions));
        }
        if let Some(model) = &update.model {
            body.insert("model".into(), model_body(model));
            body.insert("modelConfigKey".into(), json!(model_config_key(model)));
        }
        let path = format!(
            "/api/v2/projects/{}/ai-configs/{config}/variations/{}",
            self.project, update.key
        );
        self.call(
            Method::PATCH,
            &path,
            Some(("application/json", Value::Object(body))),
        )
        .await
        .map(drop)
    }
}

fn model_config_key(model: &ModelSpec) -> String {
    format!("{}.{}", model.provider, model.name)
}

fn model_config_body(model: &ModelSpec, price: Option<&Price>) -> Value {
    let mut body = json!({"key": model_config_key(model), "id": model.name, "name": model.name, "provider": model.provider});
    if let Some(price) = price {
        // LaunchDarkly prices model configs in USD per token; scenarios per million.
        body["costPerInputToken"] = json!(price.input / 1e6);
        body["costPerOutputToken"] = json!(price.output / 1e6);
    }
    body
}

fn model_body(model: &ModelSpec) -> Value {
    json!({"modelName": model.name, "parameters": model.parameters, "custom": model.custom})
}

fn variation_body(v: &VariationSpec) -> Value {
    let mut body = json!({
        "key": v.key,
        "name": v.name.clone().unwrap_or_else(|| v.key.clone()),
        "model": model_body(&v.model),
        "modelConfigKey": model_config_key(&v.model),
    });
    if !v.messages.is_empty() {
        body["messages"] = json!(v.messages);
    }
    if let Some(instructions) = &v.instructions {
        body["instructions"] = json!(instructions);
    }
    if !v.tools.is_empty() {
        // The AI SDKs read tools from `model.parameters.tools` when the variation has no
        // top-level tool map, so they travel inside the model parameters.
        let tools: Vec<Value> = v.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters})).collect();
        body["model"]["parameters"]["tools"] = json!(tools);
    }
    body
}

/// Variation key → `_id`, from a targeting answer (`variations[{_id, key, name}]`).
fn variation_ids(targeting: &Value) -> HashMap<String, String> {
    let variations = targeting["variations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    variations
        .iter()
        .filter_map(|v| {
            let id = v["_id"].as_str()?;
            let key = v["key"]
                .as_str()
                .or_else(|| v["value"]["_ldMeta"]["variationKey"].as_str())?;
            Some((key.to_owned(), id.to_owned()))
        })
        .collect()
}

/// Turns a scenario instruction into a REST one: `variation = KEY` becomes `variationId`,
/// `rollout = {KEY = percent}` becomes `rolloutWeights` in thousandths of a percent.
/// Everything else passes through.
fn resolve_instruction(instruction: &toml::Table, ids: &HashMap<String, String>) -> Value {
    let mut out = Map::new();
    let id = |key: &str| ids.get(key).cloned().unwrap_or_else(|| key.to_owned());
    for (name, value) in instruction {
        match (name.as_str(), value) {
            ("variation", toml::Value::String(key)) => {
                out.insert("variationId".into(), json!(id(key)));
            }
            ("rollout", toml::Value::Table(weights)) => {
                let weights: Map<String, Value> = weights
                    .iter()
                    .map(|(key, pct)| {
                        let pct = pct
                            .as_float()
                            .or_else(|| pct.as_integer().map(|i| i as f64))
                            .unwrap_or(0.0);
                        (id(key), json!((pct * 1000.0).round() as i64))
                    })
                    .collect();
                out.insert("rolloutWeights".into(), Value::Object(weights));
            }
            _ => {
                out.insert(
                    name.clone(),
                    serde_json::to_value(value).expect("TOML is JSON-compatible"),
                );
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_variations_by_id_and_weights_in_thousandths() {
        let ids: HashMap<String, String> = [
            ("large".to_owned(), "id-l".to_owned()),
            ("small".to_owned(), "id-s".to_owned()),
        ]
        .into();
        let instruction: toml::Table = toml::from_str(
            "kind = \"addRule\"\nclauses = [{ contextKind = \"user\", attribute = \"tier\", op = \"in\", values = [\"premium\"] }]\nrollout = { large = 60, small = 40 }\nrolloutContextKind = \"user\"\n",
        )
        .unwrap();
        let out = resolve_instruction(&instruction, &ids);
        assert_eq!(out["rolloutWeights"], json!({"id-l": 60000, "id-s": 40000}));
        assert_eq!(out["clauses"][0]["values"], json!(["premium"]));
        assert_eq!(out["rolloutContextKind"], "user");
        let target: toml::Table =
            toml::from_str("kind = \"addTargets\"\nvariation = \"large\"\nvalues = [\"qa\"]\n")
                .unwrap();
        assert_eq!(resolve_instruction(&target, &ids)["variationId"], "id-l");
    }

    #[test]
    fn variation_bodies_carry_model_config_and_tools() {
        let v: VariationSpec = toml::from_str(
            "key = \"a\"\nmodel = { name = \"gpt-4o\", parameters = { temperature = 0.2 } }\ninstructions = \"Do it\"\n[[tools]]\nname = \"search\"\n",
        )
        .unwrap();
        let body = variation_body(&v);
        assert_eq!(body["modelConfigKey"], "openai.gpt-4o");
        assert_eq!(body["model"]["modelName"], "gpt-4o");
        assert_eq!(body["model"]["parameters"]["temperature"], 0.2);
        assert_eq!(body["model"]["parameters"]["tools"][0]["name"], "search");
        assert_eq!(body["instructions"], "Do it");
        assert!(body.get("messages").is_none());
    }
}
