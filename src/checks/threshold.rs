//! Thresholds, as the rollout plan's alert rules: a metric must stay at or below its `max`
//! (or at or above its `min`) over the whole run, one AI Config or one variation, or, with
//! a `window`, in the worst window of the run (see [`super::window`]). Latencies of a config
//! or of the whole run are read from the merged histograms at any percentile, not averaged
//! from per-variation percentiles.

use hdrhistogram::Histogram;

use super::window::{self, stat_ms};
use crate::metrics::{
    empty_histogram, Latency, LatencySummary, Metrics, VariationMetrics, FALLBACK_VARIATION,
};
use crate::results::checks::{CheckOutcome, Details, Status, ThresholdDetails};
use crate::results::cost::CostReport;
use crate::results::RunResults;
use crate::scenario::checks::{Bound, Metric, Scope, Series, Stat, Threshold, Tokens};

/// Everything a threshold can be measured on.
pub struct Measured<'a> {
    pub metrics: &'a Metrics,
    pub results: &'a RunResults,
    pub cost: &'a CostReport,
}

/// A value, how many samples it is over, and a note on what it leaves out.
#[derive(Default)]
struct Reading {
    value: Option<f64>,
    samples: u64,
    note: Option<String>,
    /// The value leaves something out (unpriced calls) and can only grow.
    lower_bound: bool,
    /// The worst window's first second, and the windows judged.
    window: Option<(usize, usize)>,
    /// The reading fails whatever the limit (streams never back: no time would pass).
    fails: bool,
}

impl Reading {
    fn of(value: Option<f64>, samples: u64) -> Self {
        Reading {
            value,
            samples,
            ..Reading::default()
        }
    }

    fn missing(note: &str) -> Self {
        Reading {
            note: Some(note.into()),
            ..Reading::default()
        }
    }
}

pub fn outcome(name: String, threshold: &Threshold, measured: &Measured<'_>) -> CheckOutcome {
    let (config, variation) = match &threshold.scope {
        Scope::Overall => (None, None),
        Scope::Config(c) => (Some(c.clone()), None),
        Scope::Variation { config, variation } => (Some(config.clone()), Some(variation.clone())),
    };
    let unit = unit(threshold.metric);
    let mut r = match threshold.window {
        Some(_) => windowed(measured, threshold),
        None => read(measured, threshold.metric, &threshold.scope),
    };
    let limit = threshold.limit;
    let status = match r.value {
        _ if r.fails => Status::Fail,
        Some(v) if r.lower_bound => match (limit.bound, limit.broken_by(v)) {
            // A lower bound over a maximum can only fail; under a minimum, only pass.
            (Bound::Max, true) => Status::Fail,
            (Bound::Min, false) => Status::Pass,
            _ => Status::Inconclusive,
        },
        Some(v) if limit.broken_by(v) => Status::Fail,
        Some(_) => Status::Pass,
        None => {
            r.note.get_or_insert_with(|| "nothing was measured".into());
            Status::Inconclusive
        }
    };
    // A late load generator is in every latency it measured and every rate it drove.
    let overload = measured.results.harness.overload_note();
    let status = match overload {
        Some(note) if is_timing(threshold.metric) && status != Status::Inconclusive => {
            r.note = Some(match r.note.take() {
                Some(n) => format!("{note}; {n}"),
                None => note,
            });
            Status::Inconclusive
        }
        _ => status,
    };
    let window_text = match (threshold.window, r.window) {
        (Some(w), Some((start, judged))) => format!(
            " in the worst {} s window (from second {start}; {judged} windows judged)",
            w.seconds
        ),
        _ => String::new(),
    };
    let summary = format!(
        "{} = {}{window_text} ({} {}, {} samples){}",
        threshold.metric.label(),
        show(r.value, unit),
        limit.key(),
        show(Some(limit.value), unit),
        r.samples,
        r.note.as_ref().map_or(String::new(), |n| format!("; {n}"))
    );
    let details = ThresholdDetails {
        metric: threshold.metric.label(),
        config,
        variation,
        max: (limit.bound == Bound::Max).then_some(limit.value),
        min: (limit.bound == Bound::Min).then_some(limit.value),
        value: r.value,
        unit: unit.to_owned(),
        samples: r.samples,
        window_seconds: threshold.window.map(|w| w.seconds),
        window_start_second: r.window.map(|(start, _)| start),
        windows_judged: threshold.window.map(|_| r.window.map_or(0, |(_, n)| n)),
        min_samples: threshold
            .window
            .filter(|_| threshold.metric != Metric::Throughput)
            .map(|w| w.min_samples),
        note: r.note,
    };
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::Threshold(details),
    }
}

/// Whether the harness's own lateness can move the metric: latencies and throughput, not
/// counts, rates of errors, tokens or cost.
fn is_timing(metric: Metric) -> bool {
    matches!(metric, Metric::Latency(..) | Metric::Throughput)
}

/// The worst window of the run's timeline.
fn windowed(m: &Measured<'_>, t: &Threshold) -> Reading {
    let Some(w) = t.window else {
        return Reading::default();
    };
    // Whole seconds of the load: the last, partial second has no full throughput.
    let complete = (m.results.duration_ms / 1000.0).floor() as usize;
    let found = window::worst(&m.metrics.timeline, complete, t.metric, w, t.limit);
    match found.worst {
        Some(worst) => Reading {
            value: Some(worst.value),
            samples: worst.samples,
            window: Some((worst.start_second, found.judged)),
            ..Reading::default()
        },
        None if t.metric == Metric::Throughput => Reading {
            note: Some(format!(
                "the load ran {complete} whole seconds, less than one {} s window",
                w.seconds
            )),
            ..Reading::default()
        },
        None => Reading {
            samples: found.most_samples,
            note: Some(format!(
                "no {} s window has {} samples (the most was {}); lower `min_samples` or widen the window",
                w.seconds, w.min_samples, found.most_samples
            )),
            ..Reading::default()
        },
    }
}

/// The whole run's (or scope's) value.
fn read(m: &Measured<'_>, metric: Metric, scope: &Scope) -> Reading {
    match metric {
        Metric::Latency(series, stat) => latency(m, series, stat, scope),
        Metric::ErrorRate => error_rate(m.metrics, scope),
        Metric::FailedStepRate => failed_step_rate(m.metrics, scope),
        Metric::CostPer1k => cost(m, scope, true),
        Metric::CostTotal => cost(m, scope, false),
        Metric::Throughput => Reading::of(Some(m.results.load.achieved_rate), m.metrics.requests),
        Metric::TokensPerRequest(tokens) => tokens_per_request(m.metrics, scope, tokens),
        Metric::EventsLost => match &m.results.events {
            Some(events) => Reading::of(
                Some(super::events::lost(events) as f64),
                events.tracked.values().sum(),
            ),
            None => Reading::missing("events lost needs mock-ld's event log"),
        },
        Metric::EventsLostRate => match &m.results.events {
            Some(events) => {
                let tracked: u64 = events.tracked.values().sum();
                let rate =
                    (tracked > 0).then(|| super::events::lost(events) as f64 / tracked as f64);
                Reading::of(rate, tracked)
            }
            None => Reading::missing("events lost needs mock-ld's event log"),
        },
        Metric::FallbackServed | Metric::FallbackServedRate => {
            fallback_served(m.metrics, scope, metric == Metric::FallbackServedRate)
        }
        Metric::RecoveryTime => recovery_time(m.results),
    }
}

/// Evaluations in `scope` served the fallback ("(default)"), or their share.
fn fallback_served(metrics: &Metrics, scope: &Scope, rate: bool) -> Reading {
    let evaluations: u64 = in_scope(metrics, scope).map(|v| v.evaluations).sum();
    let fallback: u64 = metrics
        .variations
        .iter()
        .filter(|(config, _)| match scope {
            Scope::Overall => true,
            Scope::Config(c) | Scope::Variation { config: c, .. } => c == *config,
        })
        .filter_map(|(_, variations)| variations.get(FALLBACK_VARIATION))
        .map(|v| v.evaluations)
        .sum();
    // A variation scope names a real variation: what it served is never the fallback.
    let fallback = match scope {
        Scope::Variation { .. } => 0,
        _ => fallback,
    };
    let value = match rate {
        true => (evaluations > 0).then(|| fallback as f64 / evaluations as f64),
        false => (evaluations > 0).then_some(fallback as f64),
    };
    Reading::of(value, evaluations)
}

/// The longest recovery over the faults that end SDK streams (`FaultWindow::recovery`);
/// one whose streams were not back before the load ended fails, with the time it had
/// been off as what is known of it.
fn recovery_time(results: &RunResults) -> Reading {
    let mut longest: Option<f64> = None;
    let mut judged = 0;
    let mut not_back = Vec::new();
    for w in &results.faults {
        match w.recovery() {
            Ok(Some(ms)) => {
                judged += 1;
                longest = Some(longest.map_or(ms, |l| l.max(ms)));
            }
            Ok(None) => {}
            Err(off_ms) => {
                judged += 1;
                let waited = (results.duration_ms - off_ms).max(0.0);
                longest = Some(longest.map_or(waited, |l| l.max(waited)));
                not_back.push(format!(
                    "the streams {} ended ({}) were not back before the load ended, {:.1} s after it went off",
                    w.fault.kind.name(),
                    w.window(),
                    waited / 1000.0
                ));
            }
        }
    }
    if judged == 0 {
        return Reading::missing(
            "no fault that ends SDK streams (streamRefused, streamDropped, sdkUnavailable) went on and off",
        );
    }
    let fails = !not_back.is_empty();
    Reading {
        value: longest,
        samples: judged,
        note: fails.then(|| format!("at least: {}", not_back.join("; "))),
        lower_bound: fails,
        window: None,
        fails,
    }
}

fn latency(m: &Measured<'_>, series: Series, stat: Stat, scope: &Scope) -> Reading {
    let from = |h: &Histogram<u64>| Reading::of(stat_ms(h, stat), h.len());
    match series {
        Series::Requests => from(m.metrics.requests_corrected.histogram()),
        Series::RequestsRaw => from(m.metrics.requests_raw.histogram()),
        Series::Flush => match &m.results.events {
            Some(e) => match decode(&e.flush_latency) {
                Some(h) => from(&h),
                None => Reading::missing("the flush latency's histogram could not be read"),
            },
            None => Reading::missing("flush latency needs mock-ld's event log"),
        },
        Series::Propagation => {
            let mut merged = empty_histogram();
            for a in &m.results.actions {
                if let Some(h) = decode(&a.propagation) {
                    // Both grow to fit: adding cannot fail.
                    let _ = merged.add(&h);
                }
            }
            from(&merged)
        }
        _ => from(merged(m.metrics, scope, |v| stage(v, series)).histogram()),
    }
}

/// A summary's HDR histogram, as written to results.json.
fn decode(summary: &LatencySummary) -> Option<Histogram<u64>> {
    summary.histogram().ok()
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

fn error_rate(metrics: &Metrics, scope: &Scope) -> Reading {
    let (calls, errors) =
        in_scope(metrics, scope).fold((0, 0), |(c, e), v| (c + v.ai_calls, e + v.errors));
    Reading::of((calls > 0).then(|| errors as f64 / calls as f64), calls)
}

/// Steps failed after their retries and fallback over the steps that called the LLM.
fn failed_step_rate(metrics: &Metrics, scope: &Scope) -> Reading {
    let (steps, failed) =
        in_scope(metrics, scope).fold((0, 0), |(s, f), v| (s + v.llm_steps(), f + v.failed_steps));
    Reading::of((steps > 0).then(|| failed as f64 / steps as f64), steps)
}

/// Tokens per successful LLM call (failed calls have none).
fn tokens_per_request(metrics: &Metrics, scope: &Scope, tokens: Tokens) -> Reading {
    let (calls, count) = in_scope(metrics, scope).fold((0, 0), |(c, n), v| {
        let t = match tokens {
            Tokens::Total => v.input_tokens + v.output_tokens,
            Tokens::Input => v.input_tokens,
            Tokens::Output => v.output_tokens,
        };
        (c + v.successes, n + t)
    });
    Reading::of((calls > 0).then(|| count as f64 / calls as f64), calls)
}

/// In USD: per 1,000 requests over the run, per 1,000 evaluations for a config or variation
/// (`per_1k`), or in all.
fn cost(m: &Measured<'_>, scope: &Scope, per_1k: bool) -> Reading {
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
        return Reading::of(None, count);
    };
    let lower_bound = line.unpriced_calls > 0;
    let note = lower_bound.then(|| {
        format!(
            "{} calls on models without a price are not counted",
            line.unpriced_calls
        )
    });
    let value = if per_1k {
        line.cost_usd / count as f64 * 1000.0
    } else {
        line.cost_usd
    };
    Reading {
        value: Some(value),
        samples: count,
        note,
        lower_bound,
        window: None,
        fails: false,
    }
}

fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::Latency(..) => "ms",
        Metric::ErrorRate | Metric::FailedStepRate => "ratio",
        Metric::CostPer1k | Metric::CostTotal => "usd",
        Metric::Throughput => "per_s",
        Metric::TokensPerRequest(_) => "tokens",
        Metric::EventsLost => "events",
        Metric::EventsLostRate | Metric::FallbackServedRate => "ratio",
        Metric::FallbackServed => "evaluations",
        Metric::RecoveryTime => "ms",
    }
}

/// The limit as the summary shows it: `250.00 ms`, `2.000 %`, `$0.5000`, `50.0/s`.
pub fn limit_label(threshold: &Threshold) -> String {
    show(Some(threshold.limit.value), unit(threshold.metric))
}

fn show(value: Option<f64>, unit: &str) -> String {
    match (value, unit) {
        (None, _) => "n/a".into(),
        (Some(v), "ms") => format!("{v:.2} ms"),
        (Some(v), "ratio") => format!("{:.3} %", v * 100.0),
        (Some(v), "per_s") => format!("{v:.1}/s"),
        (Some(v), "tokens") => format!("{v:.1} tokens"),
        (Some(v), "events") => format!("{v:.0} events"),
        (Some(v), "evaluations") => format!("{v:.0} evaluations"),
        (Some(v), _) => format!("${v:.4}"),
    }
}
