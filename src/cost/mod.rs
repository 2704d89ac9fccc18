//! What a run's LLM calls cost: tokens of successful calls (as the provider reported them)
//! times the price of the model called, per model, AI Config (feature), variation and
//! context kind, in total and per 1,000 requests. Failed calls are not billed by the
//! providers and are not counted.
//!
//! `cost = ((input − cached) · inputPrice + cached · cachedPrice + output · outputPrice) / 10⁶`
//! with prices in USD per million tokens ([`prices`]); cached input costs the input price
//! when the model has no cached price.

pub mod prices;

use std::collections::BTreeMap;

use crate::metrics::{Metrics, TokenCounts};
use crate::results::cost::{CostLine, CostReport, ModelPrice};
pub use prices::PriceTable;

/// The cost of everything `metrics` recorded.
pub fn compute(metrics: &Metrics, prices: &PriceTable) -> CostReport {
    let mut report = CostReport {
        currency: "USD".to_owned(),
        requests: metrics.requests,
        total: CostLine::default(),
        per_thousand_requests_usd: 0.0,
        by_model: BTreeMap::new(),
        by_config: BTreeMap::new(),
        by_variation: BTreeMap::new(),
        by_context_kind: BTreeMap::new(),
        by_attribute: BTreeMap::new(),
        prices: BTreeMap::new(),
        unpriced_models: Vec::new(),
    };
    for (config, variations) in &metrics.variations {
        for (variation, v) in variations {
            for (model, kinds) in &v.usage {
                let price = prices.get(model);
                match price {
                    Some(p) => drop(report.prices.insert(model.clone(), p.clone())),
                    None if !report.unpriced_models.contains(model) => {
                        report.unpriced_models.push(model.clone())
                    }
                    None => {}
                }
                for (kind, tokens) in kinds {
                    let line = line(tokens, price);
                    for target in [
                        &mut report.total,
                        report.by_model.entry(model.clone()).or_default(),
                        report.by_config.entry(config.clone()).or_default(),
                        report
                            .by_variation
                            .entry(config.clone())
                            .or_default()
                            .entry(variation.clone())
                            .or_default(),
                        report.by_context_kind.entry(kind.clone()).or_default(),
                    ] {
                        target.add(&line);
                    }
                }
            }
        }
    }
    for (attribute, values) in &metrics.attribute_usage {
        let lines = report.by_attribute.entry(attribute.clone()).or_default();
        for (value, models) in values {
            let total = lines.entry(value.clone()).or_default();
            for (model, tokens) in models {
                total.add(&line(tokens, prices.get(model)));
            }
        }
    }
    report.per_thousand_requests_usd = if report.requests == 0 {
        0.0
    } else {
        report.total.cost_usd / report.requests as f64 * 1000.0
    };
    report
}

fn line(tokens: &TokenCounts, price: Option<&ModelPrice>) -> CostLine {
    let cost_usd = price.map_or(0.0, |p| {
        let uncached = tokens.input.saturating_sub(tokens.cached_input) as f64;
        let cached_price = p.cached_input.unwrap_or(p.input);
        (uncached * p.input
            + tokens.cached_input as f64 * cached_price
            + tokens.output as f64 * p.output)
            / 1e6
    });
    CostLine {
        calls: tokens.calls,
        input_tokens: tokens.input,
        cached_input_tokens: tokens.cached_input,
        output_tokens: tokens.output,
        cost_usd,
        unpriced_calls: if price.is_none() { tokens.calls } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_cost_with_cached_tokens_and_an_unpriced_model() {
        let mut metrics = Metrics {
            requests: 4,
            ..Metrics::default()
        };
        let v = metrics.variation("assistant", "large");
        v.record_usage(
            "gpt-4o",
            "user",
            TokenCounts {
                calls: 2,
                input: 1000,
                cached_input: 400,
                output: 500,
            },
        );
        v.record_usage(
            "mystery",
            "user",
            TokenCounts {
                calls: 1,
                input: 10,
                cached_input: 0,
                output: 10,
            },
        );
        let prices = PriceTable::defaults();
        let c = compute(&metrics, &prices);
        // (600 × 2.50 + 400 × 1.25 + 500 × 10.00) / 10⁶ = 0.0070
        assert!((c.total.cost_usd - 0.007).abs() < 1e-12, "{c:?}");
        assert!((c.per_thousand_requests_usd - 1.75).abs() < 1e-9);
        assert_eq!(c.total.unpriced_calls, 1);
        assert_eq!(c.unpriced_models, ["mystery"]);
        assert_eq!(c.by_variation["assistant"]["large"].calls, 3);
    }
}
