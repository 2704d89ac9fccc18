//! The checks of a run (a scenario's `[[checks]]`, parsed by `scenario::checks`), each a
//! named pass, fail or inconclusive with the figures behind it, written into the results
//! (`results::checks`), from which the verdict is computed.
//!
//! Modules:
//! - [`predict`]: an independent predictor of LaunchDarkly's evaluation.
//! - [`targeting`]: an AI Config's targeting read back from the REST API before the load.
//! - One module per kind: [`exact`] and [`srm`] (`rollout_split`), [`events`]
//!   (`events_complete`), [`threshold`] (with [`window`] for windowed thresholds), and,
//!   built in, [`actions`] (when the scenario has actions), [`stall`] (unless turned off)
//!   and [`parity`] (`sdk_parity`: a Python or Node run, unless `parity_sample = 0`).

pub mod actions;
pub mod events;
pub mod exact;
pub mod parity;
pub mod predict;
pub mod srm;
pub mod stall;
pub mod targeting;
pub mod threshold;
pub mod window;

use crate::metrics::Metrics;
use crate::results::checks::CheckOutcome;
use crate::results::cost::CostReport;
use crate::results::RunResults;
use crate::scenario::checks::{self as spec, CheckKind, CheckSpec, Scope};
use crate::scenario::population::Generator;
use crate::scenario::Scenario;
use targeting::Targeting;

/// What the runner gathered for the rollout checks of one AI Config.
pub struct RolloutData {
    pub config: String,
    /// As read back from the REST API before the load, or why it could not be.
    pub targeting: Result<Targeting, String>,
    /// Per context, what the SDK served (see `crate::served`); `None` when the population
    /// was too large to record.
    pub served: Option<Vec<u16>>,
}

/// Everything the checks are evaluated on.
pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub results: &'a RunResults,
    pub metrics: &'a Metrics,
    pub cost: &'a CostReport,
    pub population: &'a Generator,
    pub rollouts: &'a [RolloutData],
    /// When the first action was due, in ms into the run; only evaluations before it were
    /// recorded for the rollout checks.
    pub before_ms: Option<f64>,
    /// A Python or Node run's parity sample, or why it could not be run; `None` when there
    /// is no parity check (the Rust SDK, or `parity_sample = 0`).
    pub parity: Option<&'a Result<parity::ParityData, String>>,
}

/// The AI Configs some `rollout_split` check covers, in scenario order.
pub fn rollout_configs(scenario: &Scenario) -> Vec<String> {
    let covered = |key: &str| {
        scenario.checks.iter().any(|c| matches!(&c.kind, CheckKind::RolloutSplit { config, .. } if config.as_deref().is_none_or(|k| k == key)))
    };
    scenario
        .ai_configs
        .iter()
        .map(|c| c.key.clone())
        .filter(|k| covered(k))
        .collect()
}

pub fn evaluate(inputs: &Inputs<'_>) -> Vec<CheckOutcome> {
    let measured = threshold::Measured {
        metrics: inputs.metrics,
        results: inputs.results,
        cost: inputs.cost,
    };
    let mut outcomes = Vec::new();
    for spec in &inputs.scenario.checks {
        match &spec.kind {
            CheckKind::RolloutSplit {
                config,
                min_p_value,
            } => {
                let data = inputs
                    .rollouts
                    .iter()
                    .filter(|d| config.as_deref().is_none_or(|c| c == d.config));
                for data in data {
                    outcomes.extend(rollout_split(spec, data, *min_p_value, inputs));
                }
            }
            CheckKind::EventsComplete => outcomes.push(events::outcome(
                name(spec, "every AI call tracked (events complete)"),
                inputs.results,
            )),
            CheckKind::Threshold(t) => outcomes.push(threshold::outcome(
                name(spec, &threshold_name(t)),
                t,
                &measured,
            )),
        }
    }
    outcomes.extend(actions::outcome(&inputs.results.actions));
    outcomes.extend(stall::outcome(
        inputs.scenario,
        &inputs.metrics.timeline,
        inputs.results.harness.overload_note(),
    ));
    if let Some(data) = inputs.parity {
        outcomes.push(parity::outcome(
            data,
            inputs.scenario.load.sdk.name(),
            inputs.rollouts,
            inputs.population,
        ));
    }
    outcomes
}

fn name(spec: &CheckSpec, default: &str) -> String {
    spec.name.clone().unwrap_or_else(|| default.to_owned())
}

/// `requests.p99 <= 250.00 ms (all AI Configs)`, with ` per 10 s window` when windowed.
pub fn threshold_name(t: &spec::Threshold) -> String {
    let scope = match &t.scope {
        Scope::Overall => "all AI Configs".to_owned(),
        Scope::Config(c) => c.clone(),
        Scope::Variation { config, variation } => format!("{config} / {variation}"),
    };
    let op = match t.limit.bound {
        spec::Bound::Max => "<=",
        spec::Bound::Min => ">=",
    };
    let window = t
        .window
        .map_or(String::new(), |w| format!(" per {} s window", w.seconds));
    format!(
        "{} {op} {}{window} ({scope})",
        t.metric.label(),
        threshold::limit_label(t)
    )
}

/// The name a check goes by: its own, or the default of its kind.
pub fn check_name(spec: &CheckSpec) -> Option<String> {
    match &spec.kind {
        CheckKind::Threshold(t) => Some(name(spec, &threshold_name(t))),
        _ => spec.name.clone(),
    }
}

/// The exact and the statistical outcome for one AI Config.
fn rollout_split(
    spec: &CheckSpec,
    data: &RolloutData,
    min_p_value: f64,
    inputs: &Inputs<'_>,
) -> [CheckOutcome; 2] {
    let base = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("rollout split of {}", data.config));
    let (exact_name, srm_name) = (format!("{base}: exact"), format!("{base}: sample ratio"));
    let targeting = data.targeting.as_ref().ok();
    match compare(data, inputs) {
        Ok((t, comparison)) => {
            let tests = srm::tests(t, &comparison, min_p_value);
            [
                exact::outcome(
                    exact_name,
                    &data.config,
                    targeting,
                    Ok(&comparison),
                    inputs.before_ms,
                ),
                srm::outcome(srm_name, &data.config, Ok(tests), min_p_value),
            ]
        }
        Err(why) => [
            exact::outcome(
                exact_name,
                &data.config,
                targeting,
                Err(&why),
                inputs.before_ms,
            ),
            srm::outcome(srm_name, &data.config, Err(&why), min_p_value),
        ],
    }
}

/// The predictor against what was served, or why that comparison cannot be made.
fn compare<'a>(
    data: &'a RolloutData,
    inputs: &Inputs<'_>,
) -> Result<(&'a Targeting, exact::Comparison), String> {
    let targeting = data.targeting.as_ref().map_err(Clone::clone)?;
    let served = data.served.as_ref().ok_or_else(|| {
        format!(
            "the population of {} contexts is above the {} recorded per context",
            inputs.population.count(),
            crate::served::MAX_CONTEXTS
        )
    })?;
    Ok((
        targeting,
        exact::compare(targeting, served, inputs.population)?,
    ))
}
