//! `cost` of results.json read back: what the LLM calls cost, by model, AI Config (feature),
//! variation and context kind.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub currency: String,
    pub total: CostLine,
    pub per_thousand_requests_usd: f64,
    pub by_model: BTreeMap<String, CostLine>,
    pub by_config: BTreeMap<String, CostLine>,
    pub by_variation: BTreeMap<String, BTreeMap<String, CostLine>>,
    pub by_context_kind: BTreeMap<String, CostLine>,
    /// By `cost_by` attribute, then value; absent in results written before it existed.
    #[serde(default)]
    pub by_attribute: BTreeMap<String, BTreeMap<String, CostLine>>,
    pub prices: BTreeMap<String, ModelPrice>,
    #[serde(default)]
    pub unpriced_models: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    pub calls: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub unpriced_calls: u64,
}

/// USD per million tokens, and where the price came from.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub source: String,
}
