//! Thresholds, as the rollout plan's alert rules: a latency statistic, the error rate or the
//! cost per 1,000 requests must stay at or below a limit, over the whole run, one AI Config
//! or one variation. Latencies of a config or of the whole run are read from the merged
//! histograms, not averaged from per-variation percentiles.

use crate::metrics::{Latency, LatencySummary, Metrics, VariationMetrics};
use crate::results::checks::{CheckOutcome, Details, Status, ThresholdDetails};
use crate::results::cost::CostReport;
use crate::results::RunResults;
use crate::scenario::checks::{Metric, Scope, Series, Stat, Threshold};

/// Everything a threshold can be measured on.
pub struct Measured<'a> {
    pub metrics: &'a Metrics,
    pub results: &'a RunResults,
    pub cost: &'a CostReport,
}

pub fn outcome(name: String, threshold: &Threshold, measured: &Measured<'_>) -> CheckOutcome {
    let (config, variation) = match &threshold.scope {
        Scope::Overall => (None, None),
        Scope::Config(c) => (Some(c.clone()), None),
        Scope::Variation { config, variation } => (Some(config.clone()), Some(variation.clone())),
    };
    let unit = unit(threshold.metric);
    let (value, samples, mut note) = match threshold.metric {
        Metric::Latency(series, stat) => latency(measured, series, stat, &threshold.scope),
        Metric::ErrorRate => error_rate(measured.metrics, &threshold.scope),
        Metric::CostPer1k => cost_per_1k(measured, &threshold.scope),
    };
    let status = match value {
        Some(v) if v > threshold.max => Status::Fail,
        // A cost that leaves out unpriced tokens is a lower bound: it can only fail.
        Some(_) if note.is_some() => Status::Inconclusive,
        Some(_) => Status::Pass,
        None => {
            note.get_or_insert_with(|| "nothing was measured".into());
            Status::Inconclusive
        }
    };
    let summary = format!(
        "{} = {} (max {}, {samples} samples){}",
        threshold.metric.label(),
        show(value, unit),
        show(Some(threshold.max), unit),
        note.as_ref().map_or(String::new(), |n| format!("; {n}"))
    );
    let details = ThresholdDetails {
        metric: threshold.metric.label(),
        config,
        variation,
        max: threshold.max,
        value,
        unit: unit.to_owned(),
        samples,
        note,
    };
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::Threshold(details),
    }
}

/// The value, how many samples it is over, and a note on what it leaves out.
type Reading = (Option<f64>, u64, Option<String>);

fn latency(m: &Measured<'_>, series: Series, stat: Stat, scope: &Scope) -> Reading {
    let summary = match series {
        Series::Requests => m.metrics.requests_corrected.summary(),
        Series::RequestsRaw => m.metrics.requests_raw.summary(),
        Series::Flush => match &m.results.events {
            Some(e) => e.flush_latency.clone(),
            None => {
                return (
                    None,
                    0,
                    Some("flush latency needs mock-ld's event log".into()),
                )
            }
        },
        _ => merged(m.metrics, scope, |v| stage(v, series)).summary(),
    };
    let value = (summary.count > 0).then(|| pick(&summary, stat));
    (value, summary.count, None)
}

fn stage(v: &VariationMetrics, series: Series) -> &Latency {
    match series {
        Series::Evaluation => &v.evaluation,
        Series::AiLayer => &v.ai_layer,
        Series::Llm => &v.llm,
        Series::TimeToFirstToken => &v.time_to_first_token,
        _ => &v.end_to_end,
    }
}

/// One histogram over every variation in `scope`.
fn merged(
    metrics: &Metrics,
    scope: &Scope,
    series: impl Fn(&VariationMetrics) -> &Latency,
) -> Latency {
    let mut latency = Latency::default();
    for v in in_scope(metrics, scope) {
        latency.merge(series(v));
    }
    latency
}

fn in_scope<'a>(
    metrics: &'a Metrics,
    scope: &'a Scope,
) -> impl Iterator<Item = &'a VariationMetrics> + 'a {
    metrics
        .variations
        .iter()
        .flat_map(move |(config, variations)| {
            variations.iter().filter(move |(key, _)| match scope {
                Scope::Overall => true,
                Scope::Config(c) => c == config,
                Scope::Variation {
                    config: c,
                    variation,
                } => c == config && variation == *key,
            })
        })
        .map(|(_, v)| v)
}

fn pick(s: &LatencySummary, stat: Stat) -> f64 {
    match stat {
        Stat::P50 => s.p50_ms,
        Stat::P90 => s.p90_ms,
        Stat::P95 => s.p95_ms,
        Stat::P99 => s.p99_ms,
        Stat::P999 => s.p999_ms,
        Stat::Max => s.max_ms,
        Stat::Mean => s.mean_ms,
    }
}

fn error_rate(metrics: &Metrics, scope: &Scope) -> Reading {
    let (calls, errors) =
        in_scope(metrics, scope).fold((0, 0), |(c, e), v| (c + v.ai_calls, e + v.errors));
    (
        (calls > 0).then(|| errors as f64 / calls as f64),
        calls,
        None,
    )
}

/// Per 1,000 requests over the run; per 1,000 evaluations for a config or variation.
fn cost_per_1k(m: &Measured<'_>, scope: &Scope) -> Reading {
    let (line, count) = match scope {
        Scope::Overall => (Some(&m.cost.total), m.metrics.requests),
        Scope::Config(c) => (
            m.cost.by_config.get(c),
            in_scope(m.metrics, scope).map(|v| v.evaluations).sum(),
        ),
        Scope::Variation { config, variation } => (
            m.cost
                .by_variation
                .get(config)
                .and_then(|v| v.get(variation)),
            in_scope(m.metrics, scope).map(|v| v.evaluations).sum(),
        ),
    };
    let Some(line) = line.filter(|_| count > 0) else {
        return (None, count, None);
    };
    let note = (line.unpriced_calls > 0).then(|| {
        format!(
            "{} calls on models without a price are not counted",
            line.unpriced_calls
        )
    });
    (Some(line.cost_usd / count as f64 * 1000.0), count, note)
}

fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::Latency(..) => "ms",
        Metric::ErrorRate => "ratio",
        Metric::CostPer1k => "usd",
    }
}

/// The limit as the summary shows it: `250.00 ms`, `2.000 %`, `$0.5000`.
pub fn limit_label(threshold: &Threshold) -> String {
    show(Some(threshold.max), unit(threshold.metric))
}

fn show(value: Option<f64>, unit: &str) -> String {
    match (value, unit) {
        (None, _) => "n/a".into(),
        (Some(v), "ms") => format!("{v:.2} ms"),
        (Some(v), "ratio") => format!("{:.3} %", v * 100.0),
        (Some(v), _) => format!("${v:.4}"),
    }
}
