//! Runs a script of AI Config calls through `aiconfig_harness::ai` with the real Rust SDK,
//! prints what each call returned as JSON (one line per call), flushes and exits. The
//! Python parity test (`tests/sdk-python/test_ai_layer_parity.py`) runs the same script
//! through Python's AI SDK and compares results and events.
//!
//! ```text
//! ai_layer_calls --base-url http://127.0.0.1:PORT --sdk-key KEY [SCRIPT.json]   (stdin without a file)
//! ```
//!
//! Script: `{"calls": [{"method": "completion_config" | "agent_config", "key": "...",
//! "context": {LaunchDarkly context JSON}, "variables": {...}?, "default": {...}?,
//! "runs": [[{"op": "duration", "value": 100}, ...], ...]}]}`. `default` has Python's
//! default fields (`enabled`, `model`, `provider`, `messages` or `instructions`); each run
//! is one tracker (the first the call's own, the rest new runs), with the ops `duration`,
//! `ttft`, `tokens` (`total`, `input`, `output`), `success`, `error`, `feedback`
//! (`kind`: `positive` | `negative`) and `tool_call` (`key`).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use aiconfig_harness::ai::{
    AiAgentConfigDefault, AiClient, AiCompletionConfigDefault, FeedbackKind, LdMessage,
    ModelConfig, ProviderConfig, TokenUsage, Tools, Tracker,
};
use aiconfig_harness::ld_client::{start_client, EventOptions, SdkOptions};
use anyhow::{bail, Context as _};
use clap::Parser;
use launchdarkly_server_sdk::Context;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    sdk_key: String,
    /// The script; standard input when absent.
    script: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
struct Script {
    calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    method: String,
    key: String,
    context: Context,
    variables: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    default: Value,
    #[serde(default)]
    runs: Vec<Vec<Value>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script: Script =
        serde_json::from_str(&read_script(&args)?).context("reading the script")?;
    let options = SdkOptions {
        base_url: args.base_url,
        stream_url: None,
        events_url: None,
        sdk_key: args.sdk_key,
        events: Some(EventOptions::default()),
    };
    let client = Arc::new(start_client(&options, Duration::from_secs(10)).await?);
    let ai = AiClient::new(client.clone());
    for call in &script.calls {
        println!("{}", run_call(&ai, call)?);
    }
    if !client.flush_blocking(Duration::from_secs(10)).await {
        bail!("the events were not delivered within 10 s");
    }
    tokio::task::spawn_blocking(move || client.close()).await?;
    Ok(())
}

fn read_script(args: &Args) -> anyhow::Result<String> {
    match &args.script {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("{}", path.display())),
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Ok(text)
        }
    }
}

/// One call, its runs, and the config as JSON in the shape of Python's `to_dict()`s.
fn run_call(ai: &AiClient, call: &Call) -> anyhow::Result<Value> {
    let vars = call.variables.as_ref();
    let (result, tracker) = match call.method.as_str() {
        "completion_config" => {
            let default = completion_default(&call.default)?;
            match ai.completion_config(&call.key, &call.context, &default, vars) {
                Ok((c, tracker)) => {
                    let messages = c
                        .messages
                        .map(|m| m.iter().map(LdMessage::to_json).collect::<Vec<_>>());
                    let config = config_json(
                        c.enabled,
                        c.model.as_deref(),
                        c.provider.as_deref(),
                        c.tools.as_deref(),
                    );
                    (json!({"config": config, "messages": messages}), tracker)
                }
                Err(error) => return Ok(json!({ "error": error.to_string() })),
            }
        }
        "agent_config" => {
            let default = agent_default(&call.default)?;
            match ai.agent_config(&call.key, &call.context, &default, vars) {
                Ok((a, tracker)) => {
                    let config = config_json(
                        a.enabled,
                        a.model.as_deref(),
                        a.provider.as_deref(),
                        a.tools.as_deref(),
                    );
                    (
                        json!({"config": config, "instructions": a.instructions.as_deref()}),
                        tracker,
                    )
                }
                Err(error) => return Ok(json!({ "error": error.to_string() })),
            }
        }
        other => bail!("unknown method {other:?}"),
    };
    for (i, ops) in call.runs.iter().enumerate() {
        let run = if i == 0 {
            None
        } else {
            Some(tracker.new_run())
        };
        for op in ops {
            apply(run.as_ref().unwrap_or(&tracker), op)?;
        }
    }
    Ok(result)
}

fn config_json(
    enabled: bool,
    model: Option<&ModelConfig>,
    provider: Option<&ProviderConfig>,
    tools: Option<&Tools>,
) -> Value {
    let tools = tools.map(|t| {
        t.iter()
            .map(|(k, tool)| (k.clone(), tool.to_json()))
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "enabled": enabled,
        "model": model.map(ModelConfig::to_json),
        "provider": provider.map(ProviderConfig::to_json),
        "tools": tools,
    })
}

fn apply(tracker: &Tracker, op: &Value) -> anyhow::Result<()> {
    let number = |field: &str| {
        op[field]
            .as_u64()
            .with_context(|| format!("{op}: `{field}`"))
    };
    match op["op"].as_str().unwrap_or_default() {
        "duration" => tracker.track_duration(number("value")?),
        "ttft" => tracker.track_time_to_first_token(number("value")?),
        "tokens" => tracker.track_tokens(TokenUsage {
            total: number("total")?,
            input: number("input")?,
            output: number("output")?,
        }),
        "success" => tracker.track_success(),
        "error" => tracker.track_error(),
        "feedback" if op["kind"] == "positive" => tracker.track_feedback(FeedbackKind::Positive),
        "feedback" => tracker.track_feedback(FeedbackKind::Negative),
        "tool_call" => tracker.track_tool_call(op["key"].as_str().context("tool_call `key`")?),
        other => bail!("unknown tracker op {other:?}"),
    };
    Ok(())
}

fn completion_default(spec: &Value) -> anyhow::Result<AiCompletionConfigDefault> {
    let messages = match spec.get("messages").and_then(Value::as_array) {
        Some(list) => Some(
            list.iter()
                .map(|m| Ok(LdMessage::new(text(&m["role"])?, text(&m["content"])?)))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        None => None,
    };
    Ok(AiCompletionConfigDefault {
        enabled: spec["enabled"].as_bool().unwrap_or(false),
        model: model(spec)?,
        provider: provider(spec)?,
        messages,
        ..AiCompletionConfigDefault::default()
    })
}

fn agent_default(spec: &Value) -> anyhow::Result<AiAgentConfigDefault> {
    Ok(AiAgentConfigDefault {
        enabled: spec["enabled"].as_bool().unwrap_or(false),
        model: model(spec)?,
        provider: provider(spec)?,
        instructions: spec
            .get("instructions")
            .map(text)
            .transpose()?
            .map(str::to_owned),
        ..AiAgentConfigDefault::default()
    })
}

fn model(spec: &Value) -> anyhow::Result<Option<ModelConfig>> {
    spec.get("model")
        .map(|m| {
            Ok(ModelConfig {
                parameters: m.get("parameters").cloned(),
                ..ModelConfig::new(text(&m["name"])?)
            })
        })
        .transpose()
}

fn provider(spec: &Value) -> anyhow::Result<Option<ProviderConfig>> {
    spec.get("provider")
        .map(|p| {
            Ok(ProviderConfig {
                name: text(&p["name"])?.to_owned(),
            })
        })
        .transpose()
}

fn text(value: &Value) -> anyhow::Result<&str> {
    value
        .as_str()
        .with_context(|| format!("{value} is not a string"))
}
