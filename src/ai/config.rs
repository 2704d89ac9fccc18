//! The AI Config types, field for field those of Python's AI SDK 1.2.0 (`ldai/models.py`),
//! and the JSON a default turns into when it is passed to the evaluation.
//!
//! Evaluated configs share what does not depend on the call (model, provider, tools) with
//! the cached variation through `Arc`s, so handing one out costs a few reference counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

/// `model` of a variation. `parameters`, `custom` and `region` are passed through as the
/// variation has them, as Python does.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub name: String,
    pub parameters: Option<Value>,
    pub custom: Option<Value>,
    pub region: Option<Value>,
}

impl ModelConfig {
    pub fn new(name: impl Into<String>) -> Self {
        ModelConfig {
            name: name.into(),
            parameters: None,
            custom: None,
            region: None,
        }
    }

    /// Python's `ModelConfig.to_dict()`: every field, `null` when unset.
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "parameters": self.parameters, "custom": self.custom, "region": self.region})
    }
}

/// `provider` of a variation.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
}

impl ProviderConfig {
    pub fn to_json(&self) -> Value {
        json!({"name": self.name})
    }
}

/// One prompt message, its content already interpolated.
#[derive(Clone, Debug, PartialEq)]
pub struct LdMessage {
    pub role: Arc<str>,
    pub content: Arc<str>,
}

impl LdMessage {
    pub fn new(role: &str, content: &str) -> Self {
        LdMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"role": &*self.role, "content": &*self.content})
    }
}

/// One entry of a variation's root-level `tools` map (or of the `model.parameters.tools`
/// list Python falls back to). Optional fields are passed through as the variation has them.
#[derive(Clone, Debug, PartialEq)]
pub struct LdTool {
    pub name: String,
    pub description: Option<Value>,
    pub tool_type: Option<Value>,
    pub parameters: Option<Value>,
    pub custom_parameters: Option<Value>,
}

impl LdTool {
    /// Python's `LDTool.to_dict()`: the name and whichever optional fields are set.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.name.clone().into());
        let optional = [
            ("description", &self.description),
            ("type", &self.tool_type),
            ("parameters", &self.parameters),
            ("customParameters", &self.custom_parameters),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                out.insert(field.into(), value.clone());
            }
        }
        Value::Object(out)
    }
}

/// Tools by name. Python keeps the variation's order; serde_json objects are sorted, so
/// these are too.
pub type Tools = BTreeMap<String, LdTool>;

/// The judges attached to a config (`judgeConfiguration.judges`).
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeConfiguration {
    pub judges: Vec<JudgeRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JudgeRef {
    pub key: String,
    pub sampling_rate: f64,
}

impl JudgeConfiguration {
    pub fn to_json(&self) -> Value {
        let judges: Vec<Value> = self
            .judges
            .iter()
            .map(|j| json!({"key": j.key, "samplingRate": j.sampling_rate}))
            .collect();
        json!({ "judges": judges })
    }
}

/// What `completion_config` serves when the flag cannot be evaluated. `Default` is Python's
/// `AICompletionConfigDefault.disabled()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AiCompletionConfigDefault {
    pub enabled: bool,
    pub model: Option<ModelConfig>,
    pub provider: Option<ProviderConfig>,
    pub messages: Option<Vec<LdMessage>>,
    pub judge_configuration: Option<JudgeConfiguration>,
    pub tools: Option<Tools>,
}

impl AiCompletionConfigDefault {
    /// Python's `to_dict()`, the default value of the flag evaluation:
    /// `{_ldMeta:{enabled}, model, provider, messages}` (`null` when unset or empty), plus
    /// `judgeConfiguration` and `tools` when set.
    pub fn to_json(&self) -> Value {
        let messages = self
            .messages
            .as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| m.iter().map(LdMessage::to_json).collect::<Vec<_>>());
        let mut out = base_json(self.enabled, &self.model, &self.provider);
        out.insert("messages".into(), json!(messages));
        extras_json(&mut out, &self.judge_configuration, &self.tools);
        Value::Object(out)
    }
}

/// What `agent_config` serves when the flag cannot be evaluated, and where a served agent
/// variation without `model`, `provider` or `instructions` takes them from. `Default` is
/// Python's `AIAgentConfigDefault.disabled()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AiAgentConfigDefault {
    pub enabled: bool,
    pub model: Option<ModelConfig>,
    pub provider: Option<ProviderConfig>,
    pub instructions: Option<String>,
    pub judge_configuration: Option<JudgeConfiguration>,
    pub tools: Option<Tools>,
}

impl AiAgentConfigDefault {
    /// Python's `to_dict()`: `{_ldMeta:{enabled}, model, provider}`, plus `instructions`,
    /// `judgeConfiguration` and `tools` when set. Unlike completions, no `messages` key.
    pub fn to_json(&self) -> Value {
        let mut out = base_json(self.enabled, &self.model, &self.provider);
        if let Some(instructions) = &self.instructions {
            out.insert("instructions".into(), instructions.clone().into());
        }
        extras_json(&mut out, &self.judge_configuration, &self.tools);
        Value::Object(out)
    }
}

fn base_json(
    enabled: bool,
    model: &Option<ModelConfig>,
    provider: &Option<ProviderConfig>,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("_ldMeta".into(), json!({ "enabled": enabled }));
    out.insert(
        "model".into(),
        json!(model.as_ref().map(ModelConfig::to_json)),
    );
    let provider = provider.as_ref().map(ProviderConfig::to_json);
    out.insert("provider".into(), json!(provider));
    out
}

fn extras_json(
    out: &mut Map<String, Value>,
    judges: &Option<JudgeConfiguration>,
    tools: &Option<Tools>,
) {
    if let Some(judges) = judges {
        out.insert("judgeConfiguration".into(), judges.to_json());
    }
    if let Some(tools) = tools {
        let tools: Map<String, Value> = tools
            .iter()
            .map(|(k, t)| (k.clone(), t.to_json()))
            .collect();
        out.insert("tools".into(), Value::Object(tools));
    }
}

/// An evaluated completion config (Python's `AICompletionConfig`).
#[derive(Clone, Debug)]
pub struct AiCompletionConfig {
    pub key: Arc<str>,
    pub enabled: bool,
    pub model: Option<Arc<ModelConfig>>,
    pub provider: Option<Arc<ProviderConfig>>,
    /// The messages with their contents interpolated.
    pub messages: Option<Arc<[LdMessage]>>,
    pub tools: Option<Arc<Tools>>,
    pub judge_configuration: Option<Arc<JudgeConfiguration>>,
}

/// An evaluated agent config (Python's `AIAgentConfig`).
#[derive(Clone, Debug)]
pub struct AiAgentConfig {
    pub key: Arc<str>,
    pub enabled: bool,
    pub model: Option<Arc<ModelConfig>>,
    pub provider: Option<Arc<ProviderConfig>>,
    /// The variation's instructions interpolated, or else the default's as they are.
    pub instructions: Option<Arc<str>>,
    pub tools: Option<Arc<Tools>>,
    /// Python gives agents an empty judge list where completions get `None`; both are
    /// `None` here.
    pub judge_configuration: Option<Arc<JudgeConfiguration>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag defaults Python 1.2.0 passes to `variation()` (`default.to_dict()`).
    #[test]
    fn defaults_convert_like_python() {
        assert_eq!(
            AiCompletionConfigDefault::default().to_json(),
            json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null, "messages": null})
        );
        assert_eq!(
            AiAgentConfigDefault::default().to_json(),
            json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null})
        );
        let full = AiCompletionConfigDefault {
            enabled: true,
            model: Some(ModelConfig::new("gpt-4o")),
            provider: Some(ProviderConfig {
                name: "openai".into(),
            }),
            messages: Some(vec![LdMessage::new("system", "Hi {{ldctx.key}}")]),
            judge_configuration: Some(JudgeConfiguration {
                judges: vec![JudgeRef {
                    key: "j".into(),
                    sampling_rate: 0.5,
                }],
            }),
            tools: None,
        };
        assert_eq!(
            full.to_json(),
            json!({
                "_ldMeta": {"enabled": true},
                "model": {"name": "gpt-4o", "parameters": null, "custom": null, "region": null},
                "provider": {"name": "openai"},
                "messages": [{"role": "system", "content": "Hi {{ldctx.key}}"}],
                "judgeConfiguration": {"judges": [{"key": "j", "samplingRate": 0.5}]}
            })
        );
        let empty_messages = AiCompletionConfigDefault {
            messages: Some(vec![]),
            ..AiCompletionConfigDefault::default()
        };
        assert_eq!(
            empty_messages.to_json()["messages"],
            Value::Null,
            "Python: `if self.messages`"
        );
        let agent = AiAgentConfigDefault {
            instructions: Some("Be brief.".into()),
            ..AiAgentConfigDefault::default()
        };
        assert_eq!(agent.to_json()["instructions"], "Be brief.");
    }

    #[test]
    fn tools_serialize_only_set_fields() {
        let tool = LdTool {
            name: "search".into(),
            description: Some("Find".into()),
            tool_type: None,
            parameters: None,
            custom_parameters: Some(json!({"k": 1})),
        };
        assert_eq!(
            tool.to_json(),
            json!({"name": "search", "description": "Find", "customParameters": {"k": 1}})
        );
    }
}
