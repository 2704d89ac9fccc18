//! A model config's record, also its POST body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    pub key: String,
    /// The provider's model id, e.g. `gpt-4o`: the `model.name` SDKs receive.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub custom_params: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// US dollars per token.
    #[serde(default)]
    pub cost_per_input_token: Option<f64>,
    #[serde(default)]
    pub cost_per_output_token: Option<f64>,
    /// US dollars per cached input token, which LaunchDarkly's clients send and read back.
    #[serde(default)]
    pub cost_per_cached_input_token: Option<f64>,
    #[serde(default, skip_deserializing)]
    pub version: u64,
    #[serde(default, skip_deserializing)]
    pub global: bool,
    #[serde(default, skip_deserializing)]
    pub is_restricted: bool,
}
