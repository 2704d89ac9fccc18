//! Reading a served AI Config variation the way Python's AI SDK 1.2.0 does
//! (`LDAIClient.__evaluate` and `_resolve_tools` in `ldai/client.py`), once per distinct
//! variation: the result, with its compiled templates, is cached by [`super::cache`].
//!
//! Where Python raises (no `model.name`, a message without `role` or `content`, a version
//! that `int()` rejects, a malformed template) this is an error too. Where Python would pass
//! a non-string through (a numeric `variationKey`, model or provider name, or role) this
//! reports an error instead, since LaunchDarkly never stores those.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::config::{
    JudgeConfiguration, JudgeRef, LdMessage, LdTool, ModelConfig, ProviderConfig, Tools,
};
use super::pystr::{is_truthy, to_int, PyStr};
use super::scope::Data;
use super::template::{Template, TemplateError};
use super::tracker::TrackMeta;

/// Why a variation cannot be read.
#[derive(Debug, PartialEq)]
pub(crate) enum Problem {
    Shape(String),
    Template(TemplateError),
}

impl From<TemplateError> for Problem {
    fn from(error: TemplateError) -> Self {
        Problem::Template(error)
    }
}

fn shape(message: impl Into<String>) -> Problem {
    Problem::Shape(message.into())
}

/// A served variation, read once.
pub(crate) struct Variation {
    /// The value as served, to recognise it next time.
    source: Value,
    /// `_ldMeta.enabled`: missing is false; an explicit `null` is `None` (agents then use
    /// the default's).
    pub enabled: Option<bool>,
    pub model: Option<Arc<ModelConfig>>,
    pub provider: Option<Arc<ProviderConfig>>,
    messages: Option<Messages>,
    instructions: Option<Template>,
    pub tools: Option<Arc<Tools>>,
    pub judges: Option<Arc<JudgeConfiguration>>,
    pub tracking: Arc<TrackMeta>,
}

enum Messages {
    /// No message has a tag: the same messages serve every call.
    Text(Arc<[LdMessage]>),
    Templates(Vec<(Arc<str>, Template)>),
}

impl Variation {
    pub fn parse(config_key: &Arc<str>, source: Value) -> Result<Variation, Problem> {
        let object = source
            .as_object()
            .ok_or_else(|| shape("the served value is not a JSON object"))?;
        let meta = match object.get("_ldMeta") {
            None => &Map::new(),
            Some(Value::Object(meta)) => meta,
            Some(_) => return Err(shape("`_ldMeta` is not an object")),
        };
        let messages = parse_messages(object.get("messages"))?;
        let instructions = match object.get("instructions") {
            Some(Value::String(text)) => Some(Template::compile(text)?),
            _ => None,
        };
        let provider = parse_provider(object.get("provider"))?;
        let model = parse_model(object.get("model"))?;
        let tracking = TrackMeta {
            config_key: config_key.clone(),
            variation_key: optional_string(meta.get("variationKey"), "`_ldMeta.variationKey`")?,
            version: meta
                .get("version")
                .map_or(Some(1), to_int)
                .ok_or_else(|| shape("`_ldMeta.version` is not an integer"))?,
            model_name: model.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
            provider_name: provider
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        };
        let enabled = match meta.get("enabled") {
            None => Some(false),
            Some(Value::Null) => None,
            Some(value) => Some(is_truthy(value)),
        };
        let judges = parse_judges(object.get("judgeConfiguration")).map(Arc::new);
        let tools = resolve_tools(object).map(Arc::new);
        Ok(Variation {
            enabled,
            model: model.map(Arc::new),
            provider: provider.map(Arc::new),
            messages,
            instructions,
            tools,
            judges,
            tracking: Arc::new(tracking),
            source,
        })
    }

    pub fn is(&self, served: &Value) -> bool {
        self.source == *served
    }

    pub fn same_source(&self, other: &Variation) -> bool {
        self.source == other.source
    }

    pub fn key(&self) -> &Arc<str> {
        &self.tracking.config_key
    }

    /// Whether interpolation reads `ldctx`, so the caller can skip serializing the context.
    pub fn needs_ldctx(&self) -> bool {
        let messages = match &self.messages {
            Some(Messages::Templates(templates)) => templates.iter().any(|(_, t)| t.needs_ldctx()),
            _ => false,
        };
        messages
            || self
                .instructions
                .as_ref()
                .is_some_and(Template::needs_ldctx)
    }

    pub fn messages(&self, data: &Data<'_>) -> Option<Arc<[LdMessage]>> {
        match self.messages.as_ref()? {
            Messages::Text(messages) => Some(messages.clone()),
            Messages::Templates(templates) => Some(
                templates
                    .iter()
                    .map(|(role, template)| LdMessage {
                        role: role.clone(),
                        content: template.render(data),
                    })
                    .collect(),
            ),
        }
    }

    pub fn instructions(&self, data: &Data<'_>) -> Option<Arc<str>> {
        self.instructions.as_ref().map(|t| t.render(data))
    }
}

/// `messages` counts only as a list of objects; each needs a string `role` and `content`
/// (a `null` content renders as "", as chevron renders `None`).
fn parse_messages(messages: Option<&Value>) -> Result<Option<Messages>, Problem> {
    let entries = match messages {
        Some(Value::Array(entries)) if entries.iter().all(Value::is_object) => entries,
        _ => return Ok(None),
    };
    let mut templates = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let role = match entry.get("role") {
            Some(Value::String(role)) => Arc::<str>::from(role.as_str()),
            _ => return Err(shape(format!("message {i} has no string `role`"))),
        };
        let template = match entry.get("content") {
            Some(Value::String(content)) => Template::compile(content)?,
            Some(Value::Null) => Template::compile("")?,
            _ => return Err(shape(format!("message {i} has no string `content`"))),
        };
        templates.push((role, template));
    }
    if templates
        .iter()
        .all(|(_, t)| matches!(t, Template::Text(_)))
    {
        let empty = Data {
            vars: None,
            ldctx: None,
        };
        let text = templates.iter().map(|(role, t)| LdMessage {
            role: role.clone(),
            content: t.render(&empty),
        });
        return Ok(Some(Messages::Text(text.collect())));
    }
    Ok(Some(Messages::Templates(templates)))
}

fn parse_provider(provider: Option<&Value>) -> Result<Option<ProviderConfig>, Problem> {
    match provider {
        Some(Value::Object(provider)) => Ok(Some(ProviderConfig {
            name: optional_string(provider.get("name"), "`provider.name`")?,
        })),
        _ => Ok(None),
    }
}

fn parse_model(model: Option<&Value>) -> Result<Option<ModelConfig>, Problem> {
    let Some(Value::Object(model)) = model else {
        return Ok(None);
    };
    let name = match model.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(shape("`model.name` is not a string")),
        None => return Err(shape("`model` has no `name` (Python raises KeyError)")),
    };
    Ok(Some(ModelConfig {
        name,
        parameters: non_null(model.get("parameters")),
        custom: non_null(model.get("custom")),
        region: non_null(model.get("region")),
    }))
}

/// A string field that may be missing or `null` (then empty).
fn optional_string(value: Option<&Value>, what: &str) -> Result<String, Problem> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(shape(format!("{what} is not a string"))),
    }
}

fn non_null(value: Option<&Value>) -> Option<Value> {
    value.filter(|v| !v.is_null()).cloned()
}

/// Judges with a string `key` and a numeric `samplingRate`; none is `None`.
fn parse_judges(configuration: Option<&Value>) -> Option<JudgeConfiguration> {
    let judges = configuration?.get("judges")?.as_array()?;
    let judges: Vec<JudgeRef> = judges
        .iter()
        .filter_map(|judge| {
            Some(JudgeRef {
                key: judge.get("key")?.as_str()?.to_owned(),
                sampling_rate: judge.get("samplingRate")?.as_f64()?,
            })
        })
        .collect();
    (!judges.is_empty()).then_some(JudgeConfiguration { judges })
}

/// Python's `_resolve_tools`: the root `tools` map when the key is present (even if it is
/// not a map: then no tools), else the named entries of `model.parameters.tools`.
fn resolve_tools(variation: &Map<String, Value>) -> Option<Tools> {
    let tools: Tools = match variation.get("tools") {
        Some(tools) => tools
            .as_object()?
            .iter()
            .filter_map(|(key, tool)| {
                let tool = tool.as_object()?;
                let name = tool
                    .get("name")
                    .map_or_else(|| key.clone(), |n| PyStr(n).to_string());
                Some((key.clone(), ld_tool(name, tool)))
            })
            .collect(),
        None => {
            let list = variation
                .get("model")?
                .get("parameters")?
                .get("tools")?
                .as_array()?;
            list.iter()
                .filter_map(|item| {
                    let item = item.as_object()?;
                    let name = PyStr(item.get("name").filter(|n| is_truthy(n))?).to_string();
                    Some((name.clone(), ld_tool(name, item)))
                })
                .collect()
        }
    };
    (!tools.is_empty()).then_some(tools)
}

fn ld_tool(name: String, tool: &Map<String, Value>) -> LdTool {
    LdTool {
        name,
        description: non_null(tool.get("description")),
        tool_type: non_null(tool.get("type")),
        parameters: non_null(tool.get("parameters")),
        custom_parameters: non_null(tool.get("customParameters")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Variation, Problem> {
        Variation::parse(&Arc::from("cfg"), value)
    }

    fn render_messages(variation: &Variation, vars: Value, ldctx: Value) -> Vec<(String, String)> {
        let data = Data {
            vars: vars.as_object(),
            ldctx: Some(&ldctx),
        };
        let messages = variation.messages(&data).unwrap();
        messages
            .iter()
            .map(|m| (m.role.to_string(), m.content.to_string()))
            .collect()
    }

    #[test]
    fn reads_a_full_completion_variation() {
        let variation = parse(json!({
            "_ldMeta": {"enabled": true, "variationKey": "v-a", "version": 4, "mode": "completion"},
            "model": {"name": "gpt-4o", "parameters": {"temperature": 0.2}, "custom": {"team": "x"}},
            "provider": {"name": "openai"},
            "messages": [
                {"role": "system", "content": "You help {{ldctx.key}} with {{topic}}."},
                {"role": "user", "content": "Plain."}
            ]
        }))
        .unwrap();
        assert_eq!(variation.enabled, Some(true));
        let model = variation.model.as_deref().unwrap();
        assert_eq!(
            (model.name.as_str(), model.region.as_ref()),
            ("gpt-4o", None)
        );
        assert_eq!(model.parameters, Some(json!({"temperature": 0.2})));
        assert_eq!(variation.provider.as_ref().unwrap().name, "openai");
        assert_eq!(
            *variation.tracking,
            TrackMeta {
                config_key: "cfg".into(),
                variation_key: "v-a".into(),
                version: 4,
                model_name: "gpt-4o".into(),
                provider_name: "openai".into(),
            }
        );
        assert!(variation.needs_ldctx());
        assert_eq!(
            render_messages(
                &variation,
                json!({"topic": "billing"}),
                json!({"kind": "user", "key": "u1"})
            ),
            [
                ("system".into(), "You help u1 with billing.".into()),
                ("user".into(), "Plain.".into())
            ]
        );
    }

    #[test]
    fn missing_fields_take_python_defaults() {
        let variation = parse(json!({})).unwrap();
        assert_eq!(
            variation.enabled,
            Some(false),
            "no _ldMeta.enabled is disabled"
        );
        assert!(
            variation.model.is_none() && variation.provider.is_none() && variation.tools.is_none()
        );
        assert!(variation
            .messages(&Data {
                vars: None,
                ldctx: None
            })
            .is_none());
        let meta = &*variation.tracking;
        assert_eq!((meta.variation_key.as_str(), meta.version), ("", 1));
        assert_eq!(
            (meta.model_name.as_str(), meta.provider_name.as_str()),
            ("", "")
        );

        let default_shaped = parse(json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null, "messages": null})).unwrap();
        assert_eq!(default_shaped.enabled, Some(false));
        assert!(parse(json!({"_ldMeta": {"enabled": null}}))
            .unwrap()
            .enabled
            .is_none());
        assert_eq!(
            parse(json!({"_ldMeta": {"enabled": 1}})).unwrap().enabled,
            Some(true)
        );
        assert_eq!(
            parse(json!({"_ldMeta": {"version": 2.7}}))
                .unwrap()
                .tracking
                .version,
            2
        );
        assert_eq!(
            parse(json!({"provider": {}}))
                .unwrap()
                .tracking
                .provider_name,
            ""
        );
    }

    #[test]
    fn messages_count_only_as_a_list_of_objects() {
        let text = Data {
            vars: None,
            ldctx: None,
        };
        assert!(parse(json!({"messages": "hi"}))
            .unwrap()
            .messages(&text)
            .is_none());
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "a"}, "b"]}))
                .unwrap()
                .messages(&text)
                .is_none()
        );
        assert_eq!(
            parse(json!({"messages": []}))
                .unwrap()
                .messages(&text)
                .unwrap()
                .len(),
            0
        );
        let null_content = parse(json!({"messages": [{"role": "user", "content": null}]})).unwrap();
        assert_eq!(&*null_content.messages(&text).unwrap()[0].content, "");
    }

    #[test]
    fn where_python_raises_this_errors() {
        let cases = [
            json!("not an object"),
            json!({"_ldMeta": null}),
            json!({"model": {"parameters": {}}}),
            json!({"messages": [{"content": "no role"}]}),
            json!({"messages": [{"role": "user"}]}),
            json!({"_ldMeta": {"version": "two"}}),
            json!({"_ldMeta": {"version": null}}),
            json!({"instructions": "{{#open}}"}),
        ];
        for case in cases {
            assert!(parse(case.clone()).is_err(), "{case}");
        }
    }

    #[test]
    fn tools_come_from_the_root_map_or_model_parameters() {
        let root = parse(json!({
            "tools": {"search": {"description": "Find", "type": "function"}, "calc": {"name": "calculator"}, "bad": 3},
            "model": {"name": "m", "parameters": {"tools": [{"name": "ignored"}]}}
        }))
        .unwrap();
        let tools = root.tools.as_deref().unwrap();
        assert_eq!(tools.keys().collect::<Vec<_>>(), ["calc", "search"]);
        assert_eq!(tools["calc"].name, "calculator");
        assert_eq!(tools["search"].name, "search");
        assert_eq!(tools["search"].tool_type, Some(json!("function")));

        let fallback = parse(json!({"model": {"name": "m", "parameters": {"tools": [
            {"name": "lookup", "parameters": {"type": "object"}}, {"description": "no name"}, {"name": ""}, 7
        ]}}}))
        .unwrap();
        let tools = fallback.tools.as_deref().unwrap();
        assert_eq!(tools.keys().collect::<Vec<_>>(), ["lookup"]);
        assert_eq!(tools["lookup"].parameters, Some(json!({"type": "object"})));

        assert!(parse(json!({"tools": null, "model": {"name": "m", "parameters": {"tools": [{"name": "x"}]}}}))
            .unwrap()
            .tools
            .is_none(), "a present but non-map `tools` means none, without fallback");
        assert!(
            parse(json!({"tools": {}})).unwrap().tools.is_none(),
            "empty is None"
        );
    }

    #[test]
    fn judges_need_a_key_and_a_sampling_rate() {
        let variation = parse(json!({"judgeConfiguration": {"judges": [
            {"key": "relevance", "samplingRate": 0.25}, {"key": "no-rate"}, {"samplingRate": 1}
        ]}}))
        .unwrap();
        let judges = &variation.judges.as_deref().unwrap().judges;
        assert_eq!(
            judges,
            &[JudgeRef {
                key: "relevance".into(),
                sampling_rate: 0.25
            }]
        );
        assert!(parse(json!({"judgeConfiguration": {"judges": []}}))
            .unwrap()
            .judges
            .is_none());
    }
}
