//! Model prices in USD per million tokens, from three places, later ones winning: the
//! shipped defaults (`default_prices.json`), a `--prices FILE`, and the scenario's
//! `[prices]`.
//!
//! A file is JSON in either of two shapes, entry by entry:
//! - the harness's own: `{"MODEL": {"input": 2.5, "output": 10, "cachedInput": 1.25}}` in
//!   USD per million tokens, optionally wrapped as `{"models": {…}, "asOf": "…"}`;
//! - LiteLLM's `model_prices_and_context_window.json` as is: `input_cost_per_token`,
//!   `output_cost_per_token` and `cache_read_input_token_cost` in USD per token. Its
//!   `sample_spec` and entries without both token prices (image, audio, embedding-only
//!   models) are skipped.
//!
//! Models are looked up by the exact name the AI Config's variation gives.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::results::cost::ModelPrice;
use crate::scenario::Price;

const DEFAULTS: &str = include_str!("default_prices.json");

#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// The shipped list prices.
    pub fn defaults() -> Self {
        PriceTable::parse(DEFAULTS, "default").expect("the shipped price table is valid")
    }

    /// The defaults with a file's prices over them.
    pub fn with_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let file = PriceTable::parse(&text, &format!("file {}", path.display()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut table = PriceTable::defaults();
        table.models.extend(file.models);
        Ok(table)
    }

    /// Reads a price file; `source` names it in the prices of the results.
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let root = json
            .as_object()
            .ok_or("a price file is a JSON object of models")?;
        let (entries, source) = match root.get("models").and_then(Value::as_object) {
            Some(models) => (
                models,
                root.get("asOf")
                    .and_then(Value::as_str)
                    .map_or(source.to_owned(), |d| {
                        format!("{source} (list prices as of {d})")
                    }),
            ),
            None => (root, source.to_owned()),
        };
        let mut models = BTreeMap::new();
        for (name, entry) in entries.iter().filter(|(name, _)| *name != "sample_spec") {
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("model {name:?}: not an object"))?;
            if let Some(price) =
                model_price(entry, &source).map_err(|e| format!("model {name:?}: {e}"))?
            {
                models.insert(name.clone(), price);
            }
        }
        if models.is_empty() {
            return Err("no model prices in it".into());
        }
        Ok(PriceTable { models })
    }

    /// The scenario's `[prices]` over these.
    pub fn with_scenario(mut self, prices: &BTreeMap<String, Price>) -> Self {
        for (model, p) in prices {
            let price = ModelPrice {
                input: p.input,
                output: p.output,
                cached_input: p.cached_input,
                source: "scenario".into(),
            };
            self.models.insert(model.clone(), price);
        }
        self
    }

    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model)
    }
}

/// A harness entry (per million, `input` and `output`) or a LiteLLM entry (per token);
/// `None` for an entry with neither (LiteLLM lists image and audio models too).
fn model_price(entry: &Map<String, Value>, source: &str) -> Result<Option<ModelPrice>, String> {
    let number = |key: &str| -> Result<Option<f64>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|n| *n >= 0.0)
                .map(Some)
                .ok_or_else(|| format!("`{key}` is not a non-negative number")),
        }
    };
    if entry.contains_key("input") || entry.contains_key("output") {
        return match (number("input")?, number("output")?) {
            (Some(input), Some(output)) => Ok(Some(ModelPrice {
                input,
                output,
                cached_input: number("cachedInput")?,
                source: source.to_owned(),
            })),
            _ => Err("needs both `input` and `output` (USD per million tokens)".into()),
        };
    }
    let (Some(input), Some(output)) = (
        number("input_cost_per_token")?,
        number("output_cost_per_token")?,
    ) else {
        return Ok(None);
    };
    let cached_input = number("cache_read_input_token_cost")?.map(|c| c * 1e6);
    Ok(Some(ModelPrice {
        input: input * 1e6,
        output: output * 1e6,
        cached_input,
        source: format!("{source} (LiteLLM format)"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load_with_their_date() {
        let table = PriceTable::defaults();
        let gpt = table.get("gpt-4o-mini").unwrap();
        assert_eq!(
            (gpt.input, gpt.output, gpt.cached_input),
            (0.15, 0.60, Some(0.075))
        );
        assert_eq!(gpt.source, "default (list prices as of 2025-06)");
    }

    #[test]
    fn litellm_entries_are_read_as_is() {
        let text = r#"{
            "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "max_tokens": "LEGACY"},
            "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai"},
            "dall-e-3": {"input_cost_per_pixel": 1e-08, "output_cost_per_pixel": 0.0}
        }"#;
        let table = PriceTable::parse(text, "file x.json").unwrap();
        let p = table.get("gpt-4o").unwrap();
        assert!(
            (p.input - 2.5).abs() < 1e-9
                && (p.output - 10.0).abs() < 1e-9
                && (p.cached_input.unwrap() - 1.25).abs() < 1e-9
        );
        assert!(table.get("sample_spec").is_none() && table.get("dall-e-3").is_none());
    }

    #[test]
    fn bad_entries_name_the_model() {
        let e = PriceTable::parse(r#"{"m": {"input": -1, "output": 2}}"#, "f").unwrap_err();
        assert!(e.contains("model \"m\"") && e.contains("input"), "{e}");
        assert!(PriceTable::parse(r#"{"m": {"input": 1}}"#, "f")
            .unwrap_err()
            .contains("needs both `input` and `output`"));
        assert_eq!(
            PriceTable::parse("{}", "f").unwrap_err(),
            "no model prices in it"
        );
    }
}
