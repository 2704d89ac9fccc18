//! The `[[checks]]` tables of a scenario, read strictly: every key known, every value typed,
//! every AI Config and variation named existing. Errors name the offending key so that the
//! scenario loader can point at its line and column.
//!
//! ```toml
//! [[checks]]
//! kind = "rollout_split"        # exact and statistical split checks
//! config = "support-assistant"  # optional: every AI Config when absent
//! min_p_value = 0.001           # optional: the SRM test fails below this p-value
//!
//! [[checks]]
//! kind = "events_complete"      # every tracked event and evaluation reached mock-ld
//!
//! [[checks]]
//! kind = "threshold"            # an alert rule
//! metric = "llm.p99"            # LATENCY.STAT (STAT: pNN[.N], min, max, mean), error_rate,
//!                               # failed_step_rate (steps failed after on_error), cost_per_1k, cost_total, throughput, tokens_per_request,
//!                               # input_/output_tokens_per_request, events_lost,
//!                               # events_lost_rate (a share of the tracked events),
//!                               # fallback_served, fallback_served_rate (a share of the
//!                               # evaluations), recovery_time (streams back after a fault)
//! max = "250ms"                 # or `min`: a duration, a ratio ("2%" or 0.02), USD, a number
//! config = "support-assistant"  # optional scope; with it, optionally `variation`
//! window = "10s"                # optional: the worst 10 s window must pass
//! from = "20s"                  # optional, with `window`: only windows from second 20 on
//! min_samples = 100             # optional, with `window`: windows with fewer are skipped
//! abort_on_fail = true          # optional: stop the load when it fails while running
//! abort_delay = "5s"            # optional, with abort_on_fail: not before this
//! ```
//!
//! Every kind also takes an optional `name`.

use std::time::Duration;

use crate::scenario::bounds::MAX_DURATION;
use crate::scenario::AiConfigSpec;

/// The default significance threshold of the sample-ratio-mismatch test.
pub const DEFAULT_MIN_P_VALUE: f64 = 0.001;

#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    pub name: Option<String>,
    pub kind: CheckKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    RolloutSplit {
        config: Option<String>,
        min_p_value: f64,
    },
    EventsComplete,
    Threshold(Threshold),
}

/// `metric` must stay at or below `max` (or at or above `min`) over `scope`, over the whole
/// run or, with `window`, in every window of the run that has enough samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub limit: Limit,
    pub scope: Scope,
    /// Judge the worst window of this many seconds instead of the whole run.
    pub window: Option<Window>,
    /// Stop the load when the threshold fails while it runs.
    pub abort: Option<Abort>,
}

/// The bound a threshold sets: its `max` or its `min`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub bound: Bound,
    /// Milliseconds for latencies, a ratio for the error rate, USD for cost, requests per
    /// second for throughput, tokens, events.
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Max,
    Min,
}

impl Limit {
    pub fn max(value: f64) -> Self {
        Limit {
            bound: Bound::Max,
            value,
        }
    }

    /// Whether `value` breaks the limit.
    pub fn broken_by(self, value: f64) -> bool {
        match self.bound {
            Bound::Max => value > self.value,
            Bound::Min => value < self.value,
        }
    }

    /// Of two values, the one nearer to breaking the limit.
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match self.bound {
            Bound::Max => a.max(b),
            Bound::Min => a.min(b),
        }
    }

    pub fn key(self) -> &'static str {
        match self.bound {
            Bound::Max => "max",
            Bound::Min => "min",
        }
    }
}

/// Windows of `seconds`, sliding by one second; only windows with at least `min_samples`
/// samples, and starting at or after second `from`, are judged (see
/// [`crate::checks::window`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub seconds: u64,
    pub min_samples: u64,
    /// The first second a window may start at: 0, or later to leave out what a planned
    /// incident does at first (a start-up fault's fallback).
    pub from: u64,
}

/// The default of `min_samples`: below it a window's p99 is one or two requests.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

/// `abort_on_fail = true`: evaluated every second while the load runs, from `delay` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    pub delay: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    Overall,
    Config(String),
    Variation { config: String, variation: String },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    Latency(Series, Stat),
    /// Failed LLM calls over AI calls.
    ErrorRate,
    /// Steps whose LLM call still failed after `on_error`'s retries and fallback, over the
    /// steps that called the LLM: what users got, where `ErrorRate` is the provider's side.
    FailedStepRate,
    /// USD per 1,000 requests (overall) or per 1,000 evaluations (a config or variation).
    CostPer1k,
    /// USD, all calls of the scope.
    CostTotal,
    /// Requests completed per second.
    Throughput,
    /// Tokens per successful LLM call.
    TokensPerRequest(Tokens),
    /// Tracker events the SDKs were handed that mock-ld never received.
    EventsLost,
    /// The same, as a share of the tracker events the SDKs were handed.
    EventsLostRate,
    /// Evaluations served the fallback: the AI layer got the SDK default because the SDK
    /// could not evaluate (the "(default)" variation). The issue's `max_fallback_served`.
    FallbackServed,
    /// The same, as a share of the evaluations.
    FallbackServedRate,
    /// The longest time, over the run's faults that end SDK streams, from a fault going off
    /// until as many streams were open again; one never back before the load ended fails.
    /// The issue's `max_recovery_time`.
    RecoveryTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokens {
    /// Input and output.
    Total,
    Input,
    Output,
}

/// A recorded latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Series {
    Evaluation,
    AiLayer,
    Llm,
    TimeToFirstToken,
    EndToEnd,
    /// Whole requests from their scheduled start (coordinated omission corrected).
    Requests,
    /// Whole requests from their actual start.
    RequestsRaw,
    /// From flush until mock-ld held every event.
    Flush,
    /// From a timed action's REST call until each SDK client served the change.
    Propagation,
}

/// A statistic of a latency histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    /// `pNN` or `pNN.N`: the percentile, from 0 to 100 (`p999` is 99.9).
    Percentile(f64),
    Min,
    Max,
    Mean,
}

const SERIES: &[(&str, Series)] = &[
    ("evaluation", Series::Evaluation),
    ("ai_layer", Series::AiLayer),
    ("llm", Series::Llm),
    ("ttft", Series::TimeToFirstToken),
    ("time_to_first_token", Series::TimeToFirstToken),
    ("end_to_end", Series::EndToEnd),
    ("requests", Series::Requests),
    ("requests_raw", Series::RequestsRaw),
    ("flush", Series::Flush),
    ("propagation", Series::Propagation),
];

/// Metrics that are a single name.
const SINGLE: &[(&str, Metric)] = &[
    ("error_rate", Metric::ErrorRate),
    ("failed_step_rate", Metric::FailedStepRate),
    ("cost_per_1k", Metric::CostPer1k),
    ("cost_total", Metric::CostTotal),
    ("throughput", Metric::Throughput),
    (
        "tokens_per_request",
        Metric::TokensPerRequest(Tokens::Total),
    ),
    (
        "input_tokens_per_request",
        Metric::TokensPerRequest(Tokens::Input),
    ),
    (
        "output_tokens_per_request",
        Metric::TokensPerRequest(Tokens::Output),
    ),
    ("events_lost", Metric::EventsLost),
    ("events_lost_rate", Metric::EventsLostRate),
    ("fallback_served", Metric::FallbackServed),
    ("fallback_served_rate", Metric::FallbackServedRate),
    ("recovery_time", Metric::RecoveryTime),
];

impl Series {
    /// Requests, flushes and propagation are measured for the whole run, not per AI Config.
    pub fn is_run_wide(self) -> bool {
        matches!(
            self,
            Series::Requests | Series::RequestsRaw | Series::Flush | Series::Propagation
        )
    }

    pub fn as_str(self) -> &'static str {
        SERIES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }
}

impl Stat {
    /// `p99`, `p99.9`, `min`, `max`, `mean`.
    pub fn label(self) -> String {
        match self {
            Stat::Percentile(p) => format!("p{p}"),
            Stat::Min => "min".into(),
            Stat::Max => "max".into(),
            Stat::Mean => "mean".into(),
        }
    }

    /// `pNN` or `pNN.N…` (0 < NN < 100), `p999` (99.9, as the summaries name it), `min`,
    /// `max` or `mean`.
    pub fn parse(text: &str) -> Option<Stat> {
        match text {
            "min" => return Some(Stat::Min),
            "max" => return Some(Stat::Max),
            "mean" => return Some(Stat::Mean),
            "p999" => return Some(Stat::Percentile(99.9)),
            _ => {}
        }
        let digits = text.strip_prefix('p')?;
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !plain(whole) || !plain(fraction) || whole.len() > 2 {
            return None;
        }
        let p: f64 = digits.parse().ok()?;
        (p > 0.0 && p < 100.0).then_some(Stat::Percentile(p))
    }
}

impl Metric {
    pub fn label(self) -> String {
        match self {
            Metric::Latency(series, stat) => format!("{}.{}", series.as_str(), stat.label()),
            single => SINGLE
                .iter()
                .find(|(_, m)| *m == single)
                .map_or_else(String::new, |(n, _)| (*n).to_owned()),
        }
    }

    /// Measured per run only, never per AI Config or variation.
    pub fn is_run_wide(self) -> bool {
        match self {
            Metric::Latency(series, _) => series.is_run_wide(),
            Metric::Throughput
            | Metric::EventsLost
            | Metric::EventsLostRate
            | Metric::RecoveryTime => true,
            _ => false,
        }
    }

    /// What the per-second timeline records, so what a `window` or `abort_on_fail` can
    /// judge: whole requests (corrected), LLM calls, their error rate, throughput, and the
    /// fallback served.
    pub fn is_windowable(self) -> bool {
        matches!(
            self,
            Metric::Latency(Series::Requests | Series::Llm, _)
                | Metric::ErrorRate
                | Metric::Throughput
                | Metric::FallbackServed
                | Metric::FallbackServedRate
        )
    }
}

/// What is wrong with a check table, and under which key (`None`: the table itself).
#[derive(Debug, PartialEq)]
pub struct SpecError {
    pub key: Option<String>,
    pub message: String,
}

fn error(key: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        key: Some(key.to_owned()),
        message: message.into(),
    }
}

/// Reads one `[[checks]]` table; `configs` are the scenario's AI Configs.
pub fn parse(table: &toml::Table, configs: &[AiConfigSpec]) -> Result<CheckSpec, SpecError> {
    let kind = string(table, "kind")?.ok_or(SpecError {
        key: None,
        message: "a check needs a `kind`: rollout_split, events_complete or threshold".into(),
    })?;
    let allowed: &[&str] = match kind {
        "rollout_split" => &["kind", "name", "config", "min_p_value"],
        "events_complete" => &["kind", "name"],
        "threshold" => &[
            "kind",
            "name",
            "metric",
            "max",
            "min",
            "config",
            "variation",
            "window",
            "min_samples",
            "from",
            "abort_on_fail",
            "abort_delay",
        ],
        other => return Err(error("kind", format!("unknown check kind {other:?}; known kinds: rollout_split, events_complete, threshold"))),
    };
    if let Some(unknown) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error(
            unknown,
            format!(
                "unknown key `{unknown}` for a {kind} check; it takes {}",
                allowed.join(", ")
            ),
        ));
    }
    let name = string(table, "name")?.map(str::to_owned);
    let kind = match kind {
        "rollout_split" => rollout_split(table, configs)?,
        "events_complete" => CheckKind::EventsComplete,
        _ => CheckKind::Threshold(threshold(table, configs)?),
    };
    Ok(CheckSpec { name, kind })
}

fn rollout_split(table: &toml::Table, configs: &[AiConfigSpec]) -> Result<CheckKind, SpecError> {
    let config = string(table, "config")?.map(str::to_owned);
    if let Some(key) = &config {
        find_config(configs, key)?;
    }
    let min_p_value = match table.get("min_p_value") {
        None => DEFAULT_MIN_P_VALUE,
        Some(value) => number(value)
            .filter(|p| *p > 0.0 && *p < 1.0)
            .ok_or_else(|| {
                error(
                    "min_p_value",
                    "min_p_value is a probability between 0 and 1, e.g. 0.001",
                )
            })?,
    };
    Ok(CheckKind::RolloutSplit {
        config,
        min_p_value,
    })
}

fn threshold(table: &toml::Table, configs: &[AiConfigSpec]) -> Result<Threshold, SpecError> {
    let metric_text =
        string(table, "metric")?.ok_or_else(|| error("kind", "a threshold needs a `metric`"))?;
    let metric = metric(metric_text).map_err(|m| error("metric", m))?;
    let limit = match (table.get("max"), table.get("min")) {
        (Some(value), None) => Limit::max(limit(metric, value).map_err(|m| error("max", m))?),
        (None, Some(value)) => Limit {
            bound: Bound::Min,
            value: limit(metric, value).map_err(|m| error("min", m))?,
        },
        (Some(_), Some(_)) => {
            return Err(error(
                "min",
                "a threshold takes `max` or `min`, not both: write two thresholds",
            ))
        }
        (None, None) => return Err(error("kind", "a threshold needs a `max` or a `min`")),
    };
    let scope = scope(table, configs, metric)?;
    let window = window(table, metric, &scope)?;
    let abort = abort(table, metric, &scope)?;
    Ok(Threshold {
        metric,
        limit,
        scope,
        window,
        abort,
    })
}

fn scope(
    table: &toml::Table,
    configs: &[AiConfigSpec],
    metric: Metric,
) -> Result<Scope, SpecError> {
    Ok(
        match (string(table, "config")?, string(table, "variation")?) {
            (None, None) => Scope::Overall,
            (None, Some(_)) => return Err(error("variation", "`variation` needs `config`")),
            (Some(config), variation) => {
                let spec = find_config(configs, config)?;
                if metric.is_run_wide() {
                    return Err(error(
                        "config",
                        format!(
                            "{} is measured for the whole run, not per AI Config",
                            metric.label()
                        ),
                    ));
                }
                match variation {
                    None => Scope::Config(config.to_owned()),
                    Some(v) if spec.variations.iter().any(|s| s.key == v) || v == "disabled" => {
                        Scope::Variation {
                            config: config.to_owned(),
                            variation: v.to_owned(),
                        }
                    }
                    Some(v) => {
                        return Err(error(
                            "variation",
                            format!("AI Config {config:?} has no variation {v:?}"),
                        ))
                    }
                }
            }
        },
    )
}

/// What the per-second timeline can judge, as an error message, or `None` when it can.
fn not_per_second(metric: Metric, scope: &Scope) -> Option<String> {
    if !metric.is_windowable() {
        return Some(format!(
            "{} is not recorded per second; per second there are requests.STAT, llm.STAT, error_rate, throughput, fallback_served and fallback_served_rate",
            metric.label()
        ));
    }
    (*scope != Scope::Overall)
        .then(|| "the per-second timeline is kept for the whole run, not per AI Config".into())
}

fn window(table: &toml::Table, metric: Metric, scope: &Scope) -> Result<Option<Window>, SpecError> {
    let Some(value) = table.get("window") else {
        for key in ["min_samples", "from"] {
            if table.contains_key(key) {
                return Err(error(key, format!("`{key}` needs `window`")));
            }
        }
        return Ok(None);
    };
    let seconds = value
        .as_str()
        .and_then(|t| humantime_serde::re::humantime::parse_duration(t).ok())
        .filter(|d| d.subsec_nanos() == 0 && d.as_secs() >= 1 && *d <= MAX_DURATION)
        .ok_or_else(|| {
            error(
                "window",
                format!(
                    "a window is a whole number of seconds, at least one and at most {}: \"1s\", \"10s\", \"1m\"",
                    humantime_serde::re::humantime::format_duration(MAX_DURATION)
                ),
            )
        })?
        .as_secs();
    if let Some(message) = not_per_second(metric, scope) {
        return Err(error("window", message));
    }
    let min_samples = match table.get("min_samples") {
        None => DEFAULT_MIN_SAMPLES,
        Some(value) => value
            .as_integer()
            .filter(|n| *n >= 1)
            .ok_or_else(|| error("min_samples", "min_samples is a whole number, at least 1"))?
            as u64,
    };
    let from = match table.get("from") {
        None => 0,
        Some(value) => value
            .as_str()
            .and_then(|t| humantime_serde::re::humantime::parse_duration(t).ok())
            .filter(|d| d.subsec_nanos() == 0 && *d <= MAX_DURATION)
            .ok_or_else(|| {
                error(
                    "from",
                    "from is a whole number of seconds into the load, such as \"20s\"",
                )
            })?
            .as_secs(),
    };
    Ok(Some(Window {
        seconds,
        min_samples,
        from,
    }))
}

fn abort(table: &toml::Table, metric: Metric, scope: &Scope) -> Result<Option<Abort>, SpecError> {
    let on = match table.get("abort_on_fail") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(error("abort_on_fail", "`abort_on_fail` is true or false")),
    };
    let delay = match table.get("abort_delay") {
        None => Duration::ZERO,
        Some(_) if !on => {
            return Err(error(
                "abort_delay",
                "`abort_delay` needs `abort_on_fail = true`",
            ))
        }
        Some(value) => value
            .as_str()
            .and_then(|t| humantime_serde::re::humantime::parse_duration(t).ok())
            .filter(|d| *d <= MAX_DURATION)
            .ok_or_else(|| {
                error(
                    "abort_delay",
                    format!(
                        "abort_delay is a duration such as \"5s\", at most {}",
                        humantime_serde::re::humantime::format_duration(MAX_DURATION)
                    ),
                )
            })?,
    };
    if !on {
        return Ok(None);
    }
    if let Some(message) = not_per_second(metric, scope) {
        return Err(error(
            "abort_on_fail",
            format!("abort_on_fail is judged on the live per-second timeline: {message}"),
        ));
    }
    Ok(Some(Abort { delay }))
}

fn metric(text: &str) -> Result<Metric, String> {
    if let Some(metric) = lookup(SINGLE, text) {
        return Ok(metric);
    }
    let (series, stat) = text.split_once('.').ok_or_else(|| {
        format!(
            "unknown metric {text:?}: use LATENCY.STAT (e.g. llm.p99) or one of {}",
            names(SINGLE)
        )
    })?;
    let series = lookup(SERIES, series)
        .ok_or_else(|| format!("unknown latency {series:?}; known: {}", names(SERIES)))?;
    let stat = Stat::parse(stat).ok_or_else(|| {
        format!("unknown statistic {stat:?}; known: pNN or pNN.N (p50, p98, p99.9), min, max, mean")
    })?;
    Ok(Metric::Latency(series, stat))
}

fn lookup<T: Copy>(list: &[(&str, T)], name: &str) -> Option<T> {
    list.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn names<T>(list: &[(&str, T)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A latency's limit is a duration; an error rate's a ratio (`0.02` or `"2%"`); a cost's
/// a number of US dollars; throughput's requests per second; tokens and events counts.
fn limit(metric: Metric, value: &toml::Value) -> Result<f64, String> {
    let at_least_zero = |what: &str| {
        number(value)
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("a {what} limit is a finite number, at least 0"))
    };
    match metric {
        Metric::Latency(..) | Metric::RecoveryTime => {
            let text = value
                .as_str()
                .ok_or("a latency limit is a duration such as \"250ms\" or \"1.5s\"")?;
            let duration: Duration = humantime_serde::re::humantime::parse_duration(text)
                .map_err(|e| format!("{text:?} is not a duration ({e})"))?;
            Ok(duration.as_secs_f64() * 1e3)
        }
        Metric::ErrorRate
        | Metric::FailedStepRate
        | Metric::EventsLostRate
        | Metric::FallbackServedRate => {
            let ratio = match value.as_str() {
                Some(text) => text
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                None => number(value),
            };
            ratio.filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                "a rate limit (error_rate, failed_step_rate, events_lost_rate, fallback_served_rate) is a ratio from 0 to 1 (0.02) or a percentage (\"2%\")".into()
            })
        }
        Metric::CostPer1k | Metric::CostTotal => at_least_zero("cost (US dollars)"),
        Metric::Throughput => at_least_zero("throughput (requests per second)"),
        Metric::TokensPerRequest(_) => at_least_zero("tokens-per-request"),
        Metric::EventsLost => at_least_zero("lost-events"),
        Metric::FallbackServed => at_least_zero("fallback-served (evaluations)"),
    }
}

fn find_config<'a>(configs: &'a [AiConfigSpec], key: &str) -> Result<&'a AiConfigSpec, SpecError> {
    configs
        .iter()
        .find(|c| c.key == key)
        .ok_or_else(|| error("config", format!("unknown AI Config {key:?}")))
}

fn string<'a>(table: &'a toml::Table, key: &str) -> Result<Option<&'a str>, SpecError> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(key, format!("`{key}` is a string"))),
    }
}

fn number(value: &toml::Value) -> Option<f64> {
    value
        .as_float()
        .or_else(|| value.as_integer().map(|i| i as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> Vec<AiConfigSpec> {
        toml::from_str::<toml::Table>(
            "[[c]]\nkey = \"a\"\nvariations = [{ key = \"small\", model = { name = \"m\" } }]\n",
        )
        .unwrap()["c"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.clone().try_into().unwrap())
            .collect()
    }

    fn parse_text(text: &str) -> Result<CheckSpec, SpecError> {
        parse(&toml::from_str(text).unwrap(), &configs())
    }

    #[test]
    fn every_kind_parses() {
        let spec = parse_text("kind = \"threshold\"\nmetric = \"llm.p99\"\nmax = \"250ms\"\nconfig = \"a\"\nvariation = \"small\"\n").unwrap();
        let expected = Threshold {
            metric: Metric::Latency(Series::Llm, Stat::Percentile(99.0)),
            limit: Limit::max(250.0),
            scope: Scope::Variation {
                config: "a".into(),
                variation: "small".into(),
            },
            window: None,
            abort: None,
        };
        assert_eq!(spec.kind, CheckKind::Threshold(expected));
        let spec =
            parse_text("kind = \"threshold\"\nmetric = \"error_rate\"\nmax = \"2%\"\n").unwrap();
        assert!(
            matches!(spec.kind, CheckKind::Threshold(Threshold { limit, .. }) if (limit.value - 0.02).abs() < 1e-12)
        );
        let spec = parse_text("kind = \"rollout_split\"\nname = \"split\"\n").unwrap();
        assert_eq!(
            spec,
            CheckSpec {
                name: Some("split".into()),
                kind: CheckKind::RolloutSplit {
                    config: None,
                    min_p_value: 0.001
                }
            }
        );
        assert_eq!(
            parse_text("kind = \"events_complete\"\n").unwrap().kind,
            CheckKind::EventsComplete
        );
    }

    #[test]
    fn errors_name_the_key() {
        let key = |text: &str| parse_text(text).unwrap_err().key;
        assert_eq!(
            key("kind = \"threshold\"\nmetric = \"llm.p100\"\nmax = \"1s\"\n").as_deref(),
            Some("metric")
        );
        assert_eq!(
            key("kind = \"threshold\"\nmetric = \"llm.p99\"\nmax = 250\n").as_deref(),
            Some("max")
        );
        assert_eq!(
            key("kind = \"threshold\"\nmetric = \"flush.p99\"\nmax = \"1s\"\nconfig = \"a\"\n")
                .as_deref(),
            Some("config")
        );
        assert_eq!(
            key("kind = \"events_complete\"\nmax = 1\n").as_deref(),
            Some("max")
        );
        assert_eq!(
            key("kind = \"rollout_split\"\nconfig = \"nope\"\n").as_deref(),
            Some("config")
        );
        assert_eq!(key("kind = \"splits\"\n").as_deref(), Some("kind"));
        assert_eq!(key("config = \"a\"\n"), None);
    }

    fn threshold(text: &str) -> Threshold {
        match parse_text(&format!("kind = \"threshold\"\n{text}")) {
            Ok(CheckSpec {
                kind: CheckKind::Threshold(t),
                ..
            }) => t,
            other => panic!("{other:?}"),
        }
    }

    fn threshold_error(text: &str) -> SpecError {
        parse_text(&format!("kind = \"threshold\"\n{text}")).unwrap_err()
    }

    #[test]
    fn any_percentile_parses() {
        let stat = |text: &str| Stat::parse(text);
        assert_eq!(stat("p98"), Some(Stat::Percentile(98.0)));
        assert_eq!(stat("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(stat("p99.99"), Some(Stat::Percentile(99.99)));
        assert_eq!(stat("p999"), Some(Stat::Percentile(99.9)));
        assert_eq!(stat("p5"), Some(Stat::Percentile(5.0)));
        assert_eq!(stat("min"), Some(Stat::Min));
        for bad in [
            "p0", "p100", "p", "p9x", "p99.", "p.5", "p-1", "99", "p1e2", "p 9",
        ] {
            assert_eq!(stat(bad), None, "{bad}");
        }
        let t = threshold("metric = \"requests.p99.9\"\nmax = \"1s\"\n");
        assert_eq!(
            t.metric,
            Metric::Latency(Series::Requests, Stat::Percentile(99.9))
        );
        assert_eq!(t.metric.label(), "requests.p99.9");
        let e = threshold_error("metric = \"llm.p100\"\nmax = \"1s\"\n");
        assert_eq!(e.key.as_deref(), Some("metric"));
        assert!(e.message.contains("pNN or pNN.N"), "{}", e.message);
    }

    #[test]
    fn fallback_and_recovery_metrics_parse_with_their_units() {
        let t = threshold("metric = \"fallback_served\"\nmax = 0\n");
        assert_eq!(
            (t.metric, t.limit),
            (Metric::FallbackServed, Limit::max(0.0))
        );
        let t = threshold(
            "metric = \"fallback_served_rate\"\nmax = \"1%\"\nwindow = \"5s\"\nfrom = \"7s\"\n",
        );
        assert_eq!(t.metric, Metric::FallbackServedRate);
        assert_eq!(t.window.map(|w| (w.seconds, w.from)), Some((5, 7)));
        let t = threshold("metric = \"recovery_time\"\nmax = \"20s\"\n");
        assert_eq!(
            (t.metric, t.limit),
            (Metric::RecoveryTime, Limit::max(20_000.0))
        );
        assert_eq!(t.metric.label(), "recovery_time");
        let key = |text: &str| threshold_error(text).key;
        assert_eq!(
            key("metric = \"recovery_time\"\nmax = 20\n").as_deref(),
            Some("max")
        );
        assert_eq!(
            key("metric = \"recovery_time\"\nmax = \"20s\"\nwindow = \"5s\"\n").as_deref(),
            Some("window")
        );
        assert_eq!(
            key("metric = \"recovery_time\"\nmax = \"20s\"\nconfig = \"a\"\n").as_deref(),
            Some("config")
        );
        assert_eq!(
            key("metric = \"fallback_served_rate\"\nmax = 2\n").as_deref(),
            Some("max")
        );
        assert_eq!(
            key("metric = \"error_rate\"\nmax = 0\nfrom = \"5s\"\n").as_deref(),
            Some("from")
        );
        assert_eq!(
            key("metric = \"error_rate\"\nmax = 0\nwindow = \"5s\"\nfrom = \"1.5s\"\n").as_deref(),
            Some("from")
        );
    }

    #[test]
    fn min_or_max_but_exactly_one() {
        let t = threshold("metric = \"throughput\"\nmin = 50\n");
        assert_eq!(
            t.limit,
            Limit {
                bound: Bound::Min,
                value: 50.0
            }
        );
        assert!(t.limit.broken_by(49.0) && !t.limit.broken_by(50.0));
        let both = threshold_error("metric = \"throughput\"\nmin = 50\nmax = 100\n");
        assert_eq!(both.key.as_deref(), Some("min"));
        let neither = threshold_error("metric = \"throughput\"\n");
        assert_eq!(neither.key.as_deref(), Some("kind"));
        assert!(neither.message.contains("`max` or a `min`"));
        let bad = threshold_error("metric = \"throughput\"\nmin = \"fast\"\n");
        assert_eq!(bad.key.as_deref(), Some("min"));
    }

    #[test]
    fn new_metrics_parse_with_their_units_and_scopes() {
        let metric =
            |m: &str, limit: &str| threshold(&format!("metric = \"{m}\"\n{limit}\n")).metric;
        assert_eq!(metric("cost_total", "max = 2.5"), Metric::CostTotal);
        assert_eq!(
            metric("tokens_per_request", "max = 900"),
            Metric::TokensPerRequest(Tokens::Total)
        );
        assert_eq!(
            metric("output_tokens_per_request", "max = 400"),
            Metric::TokensPerRequest(Tokens::Output)
        );
        assert_eq!(metric("events_lost", "max = 0"), Metric::EventsLost);
        assert_eq!(
            metric("failed_step_rate", "max = \"2%\""),
            Metric::FailedStepRate
        );
        assert_eq!(Metric::FailedStepRate.label(), "failed_step_rate");
        let rate = threshold("metric = \"failed_step_rate\"\nmax = \"2%\"\nconfig = \"a\"\n");
        assert_eq!(
            (rate.limit.value, rate.scope),
            (0.02, Scope::Config("a".into()))
        );
        // Failed steps are counted per variation, not per second.
        let e = threshold_error("metric = \"failed_step_rate\"\nmax = 0\nwindow = \"5s\"\n");
        assert_eq!(e.key.as_deref(), Some("window"));
        assert!(
            e.message.contains("not recorded per second"),
            "{}",
            e.message
        );
        let e = threshold_error("metric = \"failed_step_rate\"\nmax = 1.5\n");
        assert_eq!(e.key.as_deref(), Some("max"));
        assert_eq!(
            metric("events_lost_rate", "max = \"1%\""),
            Metric::EventsLostRate
        );
        assert_eq!(
            metric("propagation.p99", "max = \"500ms\""),
            Metric::Latency(Series::Propagation, Stat::Percentile(99.0))
        );
        assert_eq!(
            metric("llm.min", "min = \"1ms\""),
            Metric::Latency(Series::Llm, Stat::Min)
        );
        // Tokens and cost per config; throughput, events and propagation for the run only.
        threshold("metric = \"tokens_per_request\"\nmax = 900\nconfig = \"a\"\n");
        for m in ["throughput", "events_lost"] {
            let e = threshold_error(&format!("metric = \"{m}\"\nmax = 1\nconfig = \"a\"\n"));
            assert_eq!(e.key.as_deref(), Some("config"), "{m}");
        }
        let e = threshold_error("metric = \"propagation.max\"\nmax = \"1s\"\nconfig = \"a\"\n");
        assert_eq!(e.key.as_deref(), Some("config"));
        let e = threshold_error("metric = \"cost_total\"\nmax = -1\n");
        assert_eq!(e.key.as_deref(), Some("max"));
        let e = threshold_error("metric = \"tokens\"\nmax = 1\n");
        assert!(e.message.contains("tokens_per_request"), "{}", e.message);
    }

    #[test]
    fn windows_are_whole_seconds_on_what_the_timeline_records() {
        let t = threshold("metric = \"llm.p99\"\nmax = \"1s\"\nwindow = \"10s\"\n");
        assert_eq!(
            t.window,
            Some(Window {
                seconds: 10,
                min_samples: DEFAULT_MIN_SAMPLES,
                from: 0,
            })
        );
        let t = threshold("metric = \"throughput\"\nmin = 5\nwindow = \"1m\"\nmin_samples = 3\n");
        assert_eq!(
            t.window,
            Some(Window {
                seconds: 60,
                min_samples: 3,
                from: 0,
            })
        );
        let key = |text: &str| threshold_error(text).key;
        for bad in ["\"1.5s\"", "\"500ms\"", "\"0s\"", "10", "\"soon\""] {
            assert_eq!(
                key(&format!(
                    "metric = \"llm.p99\"\nmax = \"1s\"\nwindow = {bad}\n"
                ))
                .as_deref(),
                Some("window"),
                "{bad}"
            );
        }
        assert_eq!(
            key("metric = \"ttft.p99\"\nmax = \"1s\"\nwindow = \"1s\"\n").as_deref(),
            Some("window")
        );
        assert_eq!(
            key("metric = \"llm.p99\"\nmax = \"1s\"\nconfig = \"a\"\nwindow = \"1s\"\n").as_deref(),
            Some("window")
        );
        assert_eq!(
            key("metric = \"llm.p99\"\nmax = \"1s\"\nmin_samples = 5\n").as_deref(),
            Some("min_samples")
        );
        assert_eq!(
            key("metric = \"llm.p99\"\nmax = \"1s\"\nwindow = \"1s\"\nmin_samples = 0\n")
                .as_deref(),
            Some("min_samples")
        );
    }

    #[test]
    fn abort_on_fail_takes_a_delay() {
        let t = threshold(
            "metric = \"requests.p99\"\nmax = \"1s\"\nabort_on_fail = true\nabort_delay = \"5s\"\n",
        );
        assert_eq!(
            t.abort,
            Some(Abort {
                delay: Duration::from_secs(5)
            })
        );
        assert_eq!(
            threshold("metric = \"requests.p99\"\nmax = \"1s\"\nabort_on_fail = false\n").abort,
            None
        );
        let key = |text: &str| threshold_error(text).key;
        assert_eq!(
            key("metric = \"requests.p99\"\nmax = \"1s\"\nabort_delay = \"5s\"\n").as_deref(),
            Some("abort_delay")
        );
        assert_eq!(
            key("metric = \"requests.p99\"\nmax = \"1s\"\nabort_on_fail = \"yes\"\n").as_deref(),
            Some("abort_on_fail")
        );
        assert_eq!(
            key("metric = \"cost_total\"\nmax = 1\nabort_on_fail = true\n").as_deref(),
            Some("abort_on_fail")
        );
    }
}
