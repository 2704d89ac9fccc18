//! The results of a run, as written to `results.json` (the input of checks, reports and
//! baselines) and summarized on the terminal.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::outcome::Checks;
use crate::cost::CostReport;
use crate::metrics::{LatencySummary, Metrics, VariationMetrics};
use crate::scenario::{Price, Scenario};

/// Bumped whenever a field changes meaning or disappears. 2: `checks` holds the evaluated
/// checks (it held the scenario's raw tables); `cost` added.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResults {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    /// True when the run was interrupted (Ctrl-C, or a threshold's `abort_on_fail`):
    /// everything measured up to then.
    pub partial: bool,
    /// The name of the threshold whose `abort_on_fail` stopped the load, if one did.
    pub aborted_by: Option<String>,
    pub duration_ms: f64,
    pub load: LoadInfo,
    /// Whole requests: `corrected` from the scheduled start (coordinated omission),
    /// `raw` from the actual start.
    pub requests_corrected: LatencySummary,
    pub requests_raw: LatencySummary,
    pub configs: BTreeMap<String, ConfigResults>,
    pub context_kinds: BTreeMap<String, u64>,
    pub timeline: Vec<SecondResults>,
    pub events: Option<EventResults>,
    pub actions: Vec<ActionResults>,
    pub prices: BTreeMap<String, Price>,
    /// What the LLM calls cost, per model, config, variation and context kind.
    pub cost: CostReport,
    /// Every check's outcome: the exit code's reasons.
    pub checks: Checks,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub population: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadInfo {
    pub model: String,
    pub sdk_clients: usize,
    pub requests: u64,
    pub failed_requests: u64,
    /// Open model: the scheduled rate; `achieved_rate` is what was started.
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
    /// CPU time the harness process used during the load (all threads: SDK clients, their
    /// event threads, an embedded mock-ld). Near the machine's cores × duration, the load
    /// generator itself was the bottleneck.
    pub cpu_seconds: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResults {
    pub variations: BTreeMap<String, VariationResults>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationResults {
    pub evaluations: u64,
    pub ai_calls: u64,
    pub successes: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub feedback_positive: u64,
    pub feedback_negative: u64,
    pub latency: VariationLatency,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationLatency {
    pub evaluation: LatencySummary,
    pub ai_layer: LatencySummary,
    pub llm: LatencySummary,
    pub time_to_first_token: LatencySummary,
    pub end_to_end: LatencySummary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondResults {
    pub second: usize,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What the SDKs sent versus what mock-ld received.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResults {
    /// Tracker events the AI layer handed to the SDKs, by key.
    pub tracked: BTreeMap<String, u64>,
    /// Custom events mock-ld received, by key.
    pub received: BTreeMap<String, u64>,
    /// Per AI Config key, evaluations made versus summary counts received.
    pub evaluations: BTreeMap<String, (u64, u64)>,
    pub payloads: u64,
    pub duplicate_payloads: u64,
    pub rejected_payloads: u64,
    /// From `flush()` to mock-ld holding every event, per SDK client.
    pub flush_latency: LatencySummary,
    /// Whether every event arrived before the wait gave up.
    pub complete: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResults {
    pub at_ms: f64,
    /// `flag` (a change to an AI Config) or `llm` (a change to the simulated LLM).
    pub kind: &'static str,
    /// The AI Config changed; empty for an `llm` action.
    pub config: String,
    pub description: String,
    /// The REST call that made the change.
    pub apply_ms: f64,
    /// From the REST call's start until each SDK client served the new flag version.
    pub propagation: LatencySummary,
    /// Clients that never saw the change before the wait gave up.
    pub clients_missed: usize,
    /// An `llm` action: when the model's profile was put back, in ms into the run.
    pub restored_at_ms: Option<f64>,
    pub error: Option<String>,
}

impl RunResults {
    pub fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
        ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            seed: scenario.seed,
            population: scenario.population.count,
        }
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
        input_tokens: v.input_tokens,
        output_tokens: v.output_tokens,
        feedback_positive: v.feedback_positive,
        feedback_negative: v.feedback_negative,
        latency: VariationLatency {
            evaluation: v.evaluation.summary(),
            ai_layer: v.ai_layer.summary(),
            llm: v.llm.summary(),
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
            }
        })
        .collect()
}

/// A plain-text summary for the terminal and CI logs.
pub fn render(r: &RunResults) -> String {
    let mut out = format!(
        "scenario {}{}: {} requests in {:.1} s ({:.0}/s{}), {} failed{}\n",
        r.scenario.name,
        match (&r.aborted_by, r.partial) {
            (Some(threshold), _) => format!(" (ABORTED by threshold {threshold:?})"),
            (None, true) => " (PARTIAL: interrupted)".into(),
            (None, false) => String::new(),
        },
        r.load.requests,
        r.duration_ms / 1000.0,
        r.load.achieved_rate,
        r.load
            .target_rate
            .map_or(String::new(), |t| format!(", target {t:.0}/s")),
        r.load.failed_requests,
        r.load.cpu_seconds.map_or(String::new(), |cpu| format!(
            "; harness CPU {cpu:.1} s ({:.1} cores)",
            cpu / (r.duration_ms / 1000.0).max(1e-9)
        )),
    );
    out += &format!(
        "requests: p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms (corrected); raw p99 {:.2} ms\n\n",
        r.requests_corrected.p50_ms, r.requests_corrected.p95_ms, r.requests_corrected.p99_ms, r.requests_corrected.max_ms, r.requests_raw.p99_ms
    );
    out += "config / variation                 evals  ai calls  errors  tokens in/out     eval p99  llm p95   llm p99  ttft p95\n";
    for (config, c) in &r.configs {
        for (key, v) in &c.variations {
            let l = &v.latency;
            out += &format!(
                "{:<32} {:>7} {:>9} {:>7} {:>8}/{:<8} {:>6.3}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms\n",
                format!("{config} / {key}"),
                v.evaluations,
                v.ai_calls,
                v.errors,
                v.input_tokens,
                v.output_tokens,
                l.evaluation.p99_ms,
                l.llm.p95_ms,
                l.llm.p99_ms,
                l.time_to_first_token.p95_ms
            );
        }
    }
    if let Some(e) = &r.events {
        let tracked: u64 = e.tracked.values().sum();
        let received: u64 = e
            .tracked
            .keys()
            .map(|k| e.received.get(k).copied().unwrap_or(0))
            .sum();
        out += &format!(
            "\nevents: {received} of {tracked} tracker events received{}, flush p99 {:.1} ms, {} payloads ({} duplicate, {} rejected)\n",
            if e.complete { "" } else { " (INCOMPLETE)" },
            e.flush_latency.p99_ms,
            e.payloads,
            e.duplicate_payloads,
            e.rejected_payloads
        );
    }
    for a in &r.actions {
        out += &match &a.error {
            Some(error) => format!("action at {:.1} s on {}: FAILED: {error}\n", a.at_ms / 1000.0, a.config),
            None if a.kind == "llm" => format!(
                "action at {:.1} s: {}{}\n",
                a.at_ms / 1000.0,
                a.description,
                a.restored_at_ms.map_or(String::new(), |at| format!(", undone at {:.1} s", at / 1000.0))
            ),
            None => format!(
                "action at {:.1} s on {} ({}): reached {} SDK clients in p50 {:.2} ms, max {:.2} ms{}\n",
                a.at_ms / 1000.0,
                a.config,
                a.description,
                a.propagation.count,
                a.propagation.p50_ms,
                a.propagation.max_ms,
                if a.clients_missed > 0 { format!(", {} clients MISSED it", a.clients_missed) } else { String::new() }
            ),
        };
    }
    out += &crate::cost::render(&r.cost);
    out += &crate::checks::render(&r.checks);
    out
}
