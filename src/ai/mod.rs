//! The AI Config layer: LaunchDarkly's Python AI SDK 1.2.0 (`launchdarkly-server-sdk-ai`,
//! `ldai/client.py` and `ldai/tracker.py`) on top of the real Rust SDK, event for event.
//!
//! - [`AiClient::new`] sends `$ld:ai:sdk:info` as Python's `LDAIClient` does, under this
//!   layer's own identity ([`AI_SDK_NAME`], [`AI_SDK_VERSION`], [`AI_SDK_LANGUAGE`]):
//!   LaunchDarkly counts AI SDK usage by that event, and load from this harness should
//!   neither pass for Python traffic nor be hidden from it.
//! - [`AiClient::completion_config`] and [`AiClient::agent_config`] send
//!   `$ld:ai:usage:completion-config` / `agent-config`, evaluate the flag with one plain
//!   `json_variation` and the default converted as Python converts it, read the variation
//!   (cached: see `cache`), interpolate its prompts with chevron's Mustache rules (see
//!   `template`), evaluate the judges it names (Python does, while building its evaluator),
//!   and return the config with a [`Tracker`] for the run.
//! - Like Python 1.x, and unlike Node, neither method checks `_ldMeta.mode`.

mod cache;
mod config;
mod pystr;
mod scope;
mod template;
mod tracker;
mod variation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::{Client, Context, ContextBuilder};
use serde_json::{json, Map, Value};

pub use config::{
    AiAgentConfig, AiAgentConfigDefault, AiCompletionConfig, AiCompletionConfigDefault,
    JudgeConfiguration, JudgeRef, LdMessage, LdTool, ModelConfig, ProviderConfig, Tools,
};
pub use template::TemplateError;
pub use tracker::{FeedbackKind, TokenUsage, Tracker};

use cache::VariationCache;
use scope::Data;
use variation::{Problem, Variation};

/// `aiSdkName` of `$ld:ai:sdk:info`: this crate, not Python's `launchdarkly-server-sdk-ai`.
pub const AI_SDK_NAME: &str = env!("CARGO_PKG_NAME");
pub const AI_SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const AI_SDK_LANGUAGE: &str = "rust";

const SDK_INFO: &str = "$ld:ai:sdk:info";
const USAGE_COMPLETION: &str = "$ld:ai:usage:completion-config";
const USAGE_AGENT: &str = "$ld:ai:usage:agent-config";

/// Variables for prompt interpolation; `ldctx` is always the context, as in Python.
pub type Variables = Map<String, Value>;

/// Why a config could not be had. Python 1.2.0 raises on the same variations (after
/// sending the usage event, as here), except for set-delimiter tags, which it renders.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("AI Config `{key}` served a variation Python's AI SDK cannot read either: {problem}")]
    Variation { key: String, problem: String },
    #[error("AI Config `{key}` has a prompt template that cannot be rendered: {source}")]
    Template {
        key: String,
        #[source]
        source: TemplateError,
    },
}

/// Python's `LDAIClient` over a shared Rust SDK client.
pub struct AiClient {
    client: Arc<Client>,
    cache: VariationCache,
}

impl AiClient {
    /// Wraps `client` and sends `$ld:ai:sdk:info` (context
    /// `{kind:"ld_ai", key:"ld-internal-tracking", anonymous:true}`, metric value 1).
    pub fn new(client: Arc<Client>) -> Self {
        let context = ContextBuilder::new("ld-internal-tracking")
            .kind("ld_ai")
            .anonymous(true)
            .build()
            .expect("a fixed, valid context");
        let data = json!({
            "aiSdkName": AI_SDK_NAME,
            "aiSdkVersion": AI_SDK_VERSION,
            "aiSdkLanguage": AI_SDK_LANGUAGE,
        });
        client.track_metric(context, SDK_INFO, 1.0, data);
        AiClient {
            client,
            cache: VariationCache::default(),
        }
    }

    /// Python's `completion_config(key, context, default, variables)` plus
    /// `create_tracker()`.
    pub fn completion_config(
        &self,
        key: &str,
        context: &Context,
        default: &AiCompletionConfigDefault,
        variables: Option<&Variables>,
    ) -> Result<(AiCompletionConfig, Tracker), AiError> {
        self.completion_config_timed(key, context, default, variables)
            .map(|(config, tracker, _)| (config, tracker))
    }

    /// [`Self::completion_config`], plus how long the SDK's evaluation of the config took,
    /// so a run can tell SDK evaluation latency from this layer's overhead.
    pub fn completion_config_timed(
        &self,
        key: &str,
        context: &Context,
        default: &AiCompletionConfigDefault,
        variables: Option<&Variables>,
    ) -> Result<(AiCompletionConfig, Tracker, Duration), AiError> {
        let (variation, evaluation) =
            self.evaluate(USAGE_COMPLETION, key, context, default.to_json())?;
        let ldctx = ldctx_for(&variation, context);
        let data = Data {
            vars: variables,
            ldctx: ldctx.as_ref(),
        };
        let config = AiCompletionConfig {
            key: variation.key().clone(),
            enabled: variation.enabled.unwrap_or(false),
            model: variation.model.clone(),
            provider: variation.provider.clone(),
            messages: variation.messages(&data),
            tools: variation.tools.clone(),
            judge_configuration: variation.judges.clone(),
        };
        Ok((config, self.tracker(&variation, context), evaluation))
    }

    /// Python's `agent_config(key, context, default, variables)` plus `create_tracker()`.
    /// A served variation without `model`, `provider` or `instructions` (or with
    /// `_ldMeta.enabled: null`) takes the default's; the tracker still reports the served
    /// variation's (empty) model and provider names, as Python's does.
    pub fn agent_config(
        &self,
        key: &str,
        context: &Context,
        default: &AiAgentConfigDefault,
        variables: Option<&Variables>,
    ) -> Result<(AiAgentConfig, Tracker), AiError> {
        self.agent_config_timed(key, context, default, variables)
            .map(|(config, tracker, _)| (config, tracker))
    }

    /// [`Self::agent_config`], plus how long the SDK's evaluation of the config took.
    pub fn agent_config_timed(
        &self,
        key: &str,
        context: &Context,
        default: &AiAgentConfigDefault,
        variables: Option<&Variables>,
    ) -> Result<(AiAgentConfig, Tracker, Duration), AiError> {
        let (variation, evaluation) =
            self.evaluate(USAGE_AGENT, key, context, default.to_json())?;
        let ldctx = ldctx_for(&variation, context);
        let data = Data {
            vars: variables,
            ldctx: ldctx.as_ref(),
        };
        let instructions = variation.instructions(&data);
        let config = AiAgentConfig {
            key: variation.key().clone(),
            enabled: variation.enabled.unwrap_or(default.enabled),
            model: variation
                .model
                .clone()
                .or_else(|| default.model.clone().map(Arc::new)),
            provider: variation
                .provider
                .clone()
                .or_else(|| default.provider.clone().map(Arc::new)),
            instructions: instructions.or_else(|| default.instructions.as_deref().map(Arc::from)),
            tools: variation.tools.clone(),
            judge_configuration: variation.judges.clone(),
        };
        Ok((config, self.tracker(&variation, context), evaluation))
    }

    /// The usage event, then one plain evaluation (timed), as Python's methods do.
    fn evaluate(
        &self,
        usage: &str,
        key: &str,
        context: &Context,
        default: Value,
    ) -> Result<(Arc<Variation>, Duration), AiError> {
        self.client.track_metric(context.clone(), usage, 1.0, key);
        let started = Instant::now();
        let served = self.client.json_variation(context, key, default);
        let evaluation = started.elapsed();
        let variation = self
            .cache
            .get(key, served)
            .map_err(|problem| match problem {
                Problem::Shape(problem) => AiError::Variation {
                    key: key.into(),
                    problem,
                },
                Problem::Template(source) => AiError::Template {
                    key: key.into(),
                    source,
                },
            })?;
        self.evaluate_judges(&variation, context);
        Ok((variation, evaluation))
    }

    /// Python 1.2.0 builds an evaluator for every config naming judges, which evaluates
    /// each judge's config. The harness runs no judges, but LaunchDarkly counts those
    /// evaluations, so they are made all the same (with Python's judge default).
    fn evaluate_judges(&self, variation: &Variation, context: &Context) {
        for judge in variation.judges.iter().flat_map(|j| &j.judges) {
            let default = json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null,
                "messages": null, "evaluationMetricKey": null});
            self.client.json_variation(context, &judge.key, default);
        }
    }

    fn tracker(&self, variation: &Variation, context: &Context) -> Tracker {
        Tracker::new(
            self.client.clone(),
            context.clone(),
            variation.tracking.clone(),
        )
    }
}

/// `ldctx`, the context as LaunchDarkly JSON (Python's `context.to_dict()`), made only
/// when a template reads it.
fn ldctx_for(variation: &Variation, context: &Context) -> Option<Value> {
    variation
        .needs_ldctx()
        .then(|| serde_json::to_value(context).unwrap_or_else(|_| json!({})))
}
