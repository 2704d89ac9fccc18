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
//! metric = "llm.p99"            # LATENCY.STAT, error_rate or cost_per_1k
//! max = "250ms"                 # a duration, a ratio ("2%" or 0.02), or USD
//! config = "support-assistant"  # optional scope; with it, optionally `variation`
//! ```
//!
//! Every kind also takes an optional `name`.

use std::time::Duration;

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

/// `metric` must stay at or below `max` over `scope`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    /// Milliseconds for latencies, a ratio for the error rate, USD for cost.
    pub max: f64,
    pub scope: Scope,
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
    /// USD per 1,000 requests (overall) or per 1,000 evaluations (a config or variation).
    CostPer1k,
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
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    P50,
    P90,
    P95,
    P99,
    P999,
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
];

const STATS: &[(&str, Stat)] = &[
    ("p50", Stat::P50),
    ("p90", Stat::P90),
    ("p95", Stat::P95),
    ("p99", Stat::P99),
    ("p999", Stat::P999),
    ("max", Stat::Max),
    ("mean", Stat::Mean),
];

impl Series {
    /// Requests and flushes are measured for the whole run, not per AI Config.
    pub fn is_run_wide(self) -> bool {
        matches!(self, Series::Requests | Series::RequestsRaw | Series::Flush)
    }

    pub fn as_str(self) -> &'static str {
        SERIES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }
}

impl Stat {
    pub fn as_str(self) -> &'static str {
        STATS
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }
}

impl Metric {
    pub fn label(self) -> String {
        match self {
            Metric::Latency(series, stat) => format!("{}.{}", series.as_str(), stat.as_str()),
            Metric::ErrorRate => "error_rate".into(),
            Metric::CostPer1k => "cost_per_1k".into(),
        }
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
        "threshold" => &["kind", "name", "metric", "max", "config", "variation"],
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
    let max_value = table
        .get("max")
        .ok_or_else(|| error("kind", "a threshold needs a `max`"))?;
    let max = limit(metric, max_value).map_err(|m| error("max", m))?;
    let scope = match (string(table, "config")?, string(table, "variation")?) {
        (None, None) => Scope::Overall,
        (None, Some(_)) => return Err(error("variation", "`variation` needs `config`")),
        (Some(config), variation) => {
            let spec = find_config(configs, config)?;
            if matches!(metric, Metric::Latency(series, _) if series.is_run_wide()) {
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
    };
    Ok(Threshold { metric, max, scope })
}

fn metric(text: &str) -> Result<Metric, String> {
    match text {
        "error_rate" => return Ok(Metric::ErrorRate),
        "cost_per_1k" => return Ok(Metric::CostPer1k),
        _ => {}
    }
    let (series, stat) = text.split_once('.').ok_or_else(|| {
        format!(
            "unknown metric {text:?}: use LATENCY.STAT (e.g. llm.p99), error_rate or cost_per_1k"
        )
    })?;
    let series = lookup(SERIES, series)
        .ok_or_else(|| format!("unknown latency {series:?}; known: {}", names(SERIES)))?;
    let stat = lookup(STATS, stat)
        .ok_or_else(|| format!("unknown statistic {stat:?}; known: {}", names(STATS)))?;
    Ok(Metric::Latency(series, stat))
}

fn lookup<T: Copy>(list: &[(&str, T)], name: &str) -> Option<T> {
    list.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn names<T>(list: &[(&str, T)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A latency's `max` is a duration; an error rate's a ratio (`0.02` or `"2%"`); a cost's
/// a number of US dollars.
fn limit(metric: Metric, value: &toml::Value) -> Result<f64, String> {
    match metric {
        Metric::Latency(..) => {
            let text = value
                .as_str()
                .ok_or("a latency limit is a duration such as \"250ms\" or \"1.5s\"")?;
            let duration: Duration = humantime_serde::re::humantime::parse_duration(text)
                .map_err(|e| format!("{text:?} is not a duration ({e})"))?;
            Ok(duration.as_secs_f64() * 1e3)
        }
        Metric::ErrorRate => {
            let ratio = match value.as_str() {
                Some(text) => text
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                None => number(value),
            };
            ratio.filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                "an error-rate limit is a ratio from 0 to 1 (0.02) or a percentage (\"2%\")".into()
            })
        }
        Metric::CostPer1k => number(value)
            .filter(|usd| *usd >= 0.0)
            .ok_or_else(|| "a cost limit is a number of US dollars, at least 0".into()),
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
            metric: Metric::Latency(Series::Llm, Stat::P99),
            max: 250.0,
            scope: Scope::Variation {
                config: "a".into(),
                variation: "small".into(),
            },
        };
        assert_eq!(spec.kind, CheckKind::Threshold(expected));
        let spec =
            parse_text("kind = \"threshold\"\nmetric = \"error_rate\"\nmax = \"2%\"\n").unwrap();
        assert!(
            matches!(spec.kind, CheckKind::Threshold(Threshold { max, .. }) if (max - 0.02).abs() < 1e-12)
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
            key("kind = \"threshold\"\nmetric = \"llm.p98\"\nmax = \"1s\"\n").as_deref(),
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
}
