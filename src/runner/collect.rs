//! The runner's measurements turned into results: per variation, per second.

use std::collections::BTreeMap;

use crate::metrics::{Metrics, VariationMetrics};
use crate::results::{
    ConfigResults, ScenarioInfo, SecondResults, VariationLatency, VariationResults,
};
use crate::scenario::Scenario;

pub fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        population: scenario.population.count,
        overrides: scenario.overrides.clone(),
    }
}

pub fn config_results(metrics: &Metrics) -> BTreeMap<String, ConfigResults> {
    metrics
        .variations
        .iter()
        .map(|(config, variations)| {
            let variations = variations
                .iter()
                .map(|(key, v)| (key.clone(), variation_results(v)))
                .collect();
            (config.clone(), ConfigResults { variations })
        })
        .collect()
}

fn variation_results(v: &VariationMetrics) -> VariationResults {
    VariationResults {
        evaluations: v.evaluations,
        ai_calls: v.ai_calls,
        successes: v.successes,
        errors: v.errors,
        retries: v.retries,
        fallbacks: v.fallbacks,
        fallback_successes: v.fallback_successes,
        failed_steps: v.failed_steps,
        input_tokens: v.input_tokens,
        output_tokens: v.output_tokens,
        feedback_positive: v.feedback_positive,
        feedback_negative: v.feedback_negative,
        llm_ahead_of_plan: v.llm_ahead_of_plan,
        latency: VariationLatency {
            evaluation: v.evaluation.summary(),
            ai_layer: v.ai_layer.summary(),
            llm: v.llm.summary(),
            llm_planned_real_time: v.llm_planned_real_time.summary(),
            llm_excess: v.llm_excess.summary(),
            time_to_first_token: v.time_to_first_token.summary(),
            end_to_end: v.end_to_end.summary(),
        },
    }
}

pub fn timeline(metrics: &Metrics) -> Vec<SecondResults> {
    metrics
        .timeline
        .iter()
        .enumerate()
        .map(|(second, s)| {
            let summary = s.latency.summary();
            SecondResults {
                second,
                requests: s.requests,
                errors: s.errors,
                p50_ms: summary.p50_ms,
                p99_ms: summary.p99_ms,
                evaluations: s.evaluations,
                fallback_served: s.fallback_served,
            }
        })
        .collect()
}
