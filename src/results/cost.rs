//! What a run's LLM calls cost, as results carry it: per model, AI Config (feature),
//! variation, context kind and `cost_by` attribute, in total and per 1,000 requests.
//! `cost` computes it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tokens and their cost over some slice of the calls.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    /// Successful LLM calls.
    pub calls: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    /// The cost of the priced calls.
    pub cost_usd: f64,
    /// Calls on models without a price, left out of `costUsd`.
    pub unpriced_calls: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    pub currency: String,
    pub requests: u64,
    pub total: CostLine,
    pub per_thousand_requests_usd: f64,
    pub by_model: BTreeMap<String, CostLine>,
    /// By AI Config: the cost per feature.
    pub by_config: BTreeMap<String, CostLine>,
    /// By AI Config, then variation key.
    pub by_variation: BTreeMap<String, BTreeMap<String, CostLine>>,
    /// By context kind (`user`, `multi:organization+user`).
    pub by_context_kind: BTreeMap<String, CostLine>,
    /// By each of the scenario's `cost_by` attributes, then its value (e.g. tier → premium).
    pub by_attribute: BTreeMap<String, BTreeMap<String, CostLine>>,
    /// The price used for each model called, with its source.
    pub prices: BTreeMap<String, ModelPrice>,
    pub unpriced_models: Vec<String>,
}

impl CostLine {
    pub fn add(&mut self, o: &CostLine) {
        self.calls += o.calls;
        self.input_tokens += o.input_tokens;
        self.cached_input_tokens += o.cached_input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        self.unpriced_calls += o.unpriced_calls;
    }
}

/// One model's price, USD per million tokens, and where it came from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    /// Cached prompt tokens; without it they cost as much as other input.
    pub cached_input: Option<f64>,
    pub source: String,
}
