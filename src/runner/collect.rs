//! The runner's measurements turned into results: the whole [`RunResults`] of a run
//! (before its checks), per variation, per second.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cost::{self, PriceTable};
use crate::metrics::{Metrics, VariationMetrics};
use crate::results::harness::HarnessHealth;
use crate::results::verdict::{RunStatus, Verdict};
use crate::results::{
    self, ConfigResults, LoadInfo, RunResults, ScenarioInfo, SecondResults, VariationLatency,
    VariationResults,
};
use crate::scenario::Scenario;

/// What the load and its aftermath produced besides the metrics.
pub struct LoadFigures {
    pub elapsed: Duration,
    pub harness: HarnessHealth,
    pub target_rate: Option<f64>,
    pub status: RunStatus,
    pub events: Option<results::EventResults>,
    pub actions: Vec<results::ActionResults>,
    pub simulated: Option<results::simulated::SimulatedInfo>,
    pub sdk: results::SdkInfo,
    pub faults: Vec<results::faults::FaultWindow>,
    pub restarts: Vec<results::restarts::RestartWindow>,
    pub refused_events: Option<mock_ld::faults::registry::RefusedEvents>,
    pub sdk_start: Option<results::sdk_start::SdkStart>,
}

/// The results of a run, its checks still to be evaluated and its verdict decided.
pub fn assemble(
    scenario: &Scenario,
    metrics: &Metrics,
    figures: LoadFigures,
    prices: &PriceTable,
) -> RunResults {
    let LoadFigures {
        elapsed,
        harness,
        target_rate,
        status,
        events,
        actions,
        simulated,
        sdk,
        faults,
        restarts,
        refused_events,
        sdk_start,
    } = figures;
    let event_accounting = events
        .as_ref()
        .zip(refused_events.as_ref())
        .map(|(e, r)| results::faults::EventAccounting::of(e, r));
    RunResults {
        schema_version: results::SCHEMA_VERSION,
        scenario: scenario_info(scenario),
        status,
        duration_ms: elapsed.as_secs_f64() * 1e3,
        load: LoadInfo {
            model: format!("{:?}", scenario.load.model).to_lowercase(),
            sdk_clients: scenario.load.sdk_clients,
            requests: metrics.requests,
            failed_requests: metrics.failed_requests,
            target_rate,
            achieved_rate: metrics.requests as f64 / elapsed.as_secs_f64().max(1e-9),
            sdk,
        },
        harness,
        requests_corrected: metrics.requests_corrected.summary(),
        requests_raw: metrics.requests_raw.summary(),
        configs: config_results(metrics),
        context_kinds: metrics.context_kinds.clone(),
        timeline: timeline(metrics),
        simulated,
        events,
        actions,
        faults,
        restarts,
        event_accounting,
        refused_events,
        sdk_start,
        cost: cost::compute(metrics, prices),
        checks: Vec::new(),
        baseline: None,
        verdict: Verdict::of(&[], None, &RunStatus::Complete, None),
    }
}

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
