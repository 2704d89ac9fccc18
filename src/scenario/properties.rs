//! Properties of the scenario loader ([`super::parse`]: TOML, then `validate`):
//! - a generated valid scenario (closed or open load, AI Configs with targeting, simulated
//!   models, prices, steps, checks) loads, with the values it was written with;
//! - one number of it set out of range (0, negative, past its bound, NaN, infinite) is
//!   refused at `file:line:col` on that number's line, naming that field;
//! - one value of it replaced by any TOML value, and any text at all, load or are refused
//!   at a line and column, never a panic.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{bounds, parse, ScenarioError};

/// `cases` cases, or `PROPTEST_CASES` when set (as `mock_ld`'s property tests count them).
fn config(cases: u32) -> ProptestConfig {
    let from_env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            from_env.cases
        } else {
            cases
        },
        max_shrink_iters: 2_000,
        // A failure becomes a unit test beside the code it found wrong.
        failure_persistence: None,
        ..from_env
    }
}

/// The model every generated scenario simulates and prices, so out-of-range values have a
/// fixed place to go.
const MODEL: &str = "gpt-4o";

fn ai_config(index: usize) -> impl Strategy<Value = Value> {
    let variation = (
        prop::sample::select(vec![MODEL, "gpt-4o-mini", "claude-3-5-sonnet"]),
        0.0..=2.0f64,
        1..=4096i64,
        "[a-zA-Z ,.]{0,20}",
    );
    (prop::collection::vec(variation, 1..=3), any::<prop::sample::Index>(), any::<bool>())
        .prop_map(move |(variations, fallthrough, target)| {
            let keys: Vec<String> = (0..variations.len()).map(|v| format!("v{v}")).collect();
            let variations: Vec<Value> = variations
                .into_iter()
                .zip(&keys)
                .map(|((model, temperature, max_tokens, content), key)| {
                    json!({"key": key, "model": {"name": model,
                               "parameters": {"temperature": temperature, "max_tokens": max_tokens}},
                           "messages": [{"role": "system", "content": content}]})
                })
                .collect();
            let fallthrough = fallthrough.get(&keys);
            let mut targeting =
                vec![json!({"kind": "updateFallthroughVariationOrRollout", "variation": fallthrough})];
            if target {
                targeting.push(json!({"kind": "addTargets", "variation": keys[0], "values": ["qa-1"]}));
            }
            json!({"key": format!("config-{index}"), "variations": variations, "targeting": targeting})
        })
}

/// `[load]`, closed or open; an open schedule stays within the requests a run may make.
fn load() -> impl Strategy<Value = Value> {
    let events = (1..=bounds::MAX_EVENTS_CAPACITY as i64, 1..=3600u64).prop_map(
        |(capacity, flush)| json!({"capacity": capacity, "flush_interval": format!("{flush}s")}),
    );
    let sizes = (
        1..=bounds::MAX_CONCURRENCY as i64,
        1..=bounds::MAX_SDK_CLIENTS as i64,
        1..=bounds::MAX_IN_FLIGHT as i64,
        prop::option::of(1..=bounds::MAX_REQUESTS as i64),
    );
    let open = (1..=bounds::MAX_OPEN_DURATION.as_secs(), 0.001..0.999f64);
    (sizes, events, prop::option::of(open)).prop_map(
        |((concurrency, clients, in_flight, iterations), events, open)| {
            let mut load = json!({"concurrency": concurrency, "sdk_clients": clients,
                                  "max_in_flight": in_flight, "events": events});
            if let Some(n) = iterations {
                load["iterations"] = n.into();
            }
            if let Some((seconds, share)) = open {
                let most = (bounds::MAX_REQUESTS as f64 / seconds as f64).min(bounds::MAX_RATE);
                load["model"] = "open".into();
                load["rate"] = (most * share).into();
                load["duration"] = format!("{seconds}s").into();
            }
            load
        },
    )
}

/// `[llm]`: a time scale and the model's simulated behaviour, its p99 within the
/// latency histograms' hour once scaled.
fn llm() -> impl Strategy<Value = Value> {
    let time_scale = prop::option::of(0.0..=bounds::MAX_TIME_SCALE);
    let model = (
        1..=10_000u64,
        1.0..=20.0f64,
        0.0..=1.0f64,
        400..=599i64,
        1.0..=1000.0f64,
    );
    (time_scale, model).prop_map(|(scale, (median_ms, spread, error_rate, status, tokens))| {
        let limit_ms = bounds::MAX_LLM_LATENCY.as_millis() as f64 / scale.unwrap_or(1.0).max(1.0);
        let p99_ms = (median_ms as f64 * spread).min(limit_ms).floor() as u64;
        let median_ms = median_ms.min(p99_ms).max(1);
        let mut llm = json!({"models": {MODEL: {
            "latency": {"median": format!("{median_ms}ms"), "p99": format!("{}ms", p99_ms.max(median_ms))},
            "error_rate": error_rate, "error_status": status,
            "output_tokens": {"median": tokens, "p99": tokens * 2.0}}}});
        if let Some(scale) = scale {
            llm["time_scale"] = scale.into();
        }
        llm
    })
}

/// A valid scenario, as the document its TOML is written from.
fn scenario() -> impl Strategy<Value = Value> {
    let configs = (1..=2usize).prop_flat_map(|n| (0..n).map(ai_config).collect::<Vec<_>>());
    let head = (
        "[a-z][a-z0-9-]{0,10}",
        0..=i64::MAX,
        1..=bounds::MAX_POPULATION as i64,
    );
    let price = (0.0..=bounds::MAX_PRICE, 0.0..=bounds::MAX_PRICE);
    let steps = prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 0..=2);
    (head, configs, load(), llm(), price, steps, any::<bool>()).prop_map(
        |((name, seed, count), configs, load, llm, (input, output), steps, check)| {
            let steps: Vec<Value> = steps
                .into_iter()
                .map(|(rate, positive)| {
                    json!({"config": "config-0", "feedback_rate": rate, "positive_feedback": positive})
                })
                .collect();
            let checks = if check { vec![json!({"kind": "events_complete"})] } else { vec![] };
            json!({"name": name, "seed": seed, "ai_configs": configs,
                   "population": {"count": count}, "load": load, "llm": llm,
                   "prices": {MODEL: {"input": input, "output": output}},
                   "steps": steps, "checks": checks})
        },
    )
}

/// The document as TOML, which (unlike JSON) can hold NaN and infinities.
fn as_toml(document: &Value) -> toml::Value {
    toml::Value::try_from(document).expect("a document of tables")
}

fn toml_text(document: &toml::Value) -> String {
    toml::to_string(document).expect("a document of tables")
}

/// The value at `path` (keys, and indices as numbers).
fn value_at<'a>(document: &'a mut toml::Value, path: &[String]) -> &'a mut toml::Value {
    path.iter().fold(document, |at, key| match at {
        toml::Value::Table(table) => table.entry(key.clone()).or_insert(toml::Value::Integer(0)),
        toml::Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
        _ => unreachable!("paths go through tables and arrays"),
    })
}

/// An error that says where: `s.toml:LINE:COL: …`, both from 1, within the text.
fn check_located(error: &ScenarioError, text: &str) -> Result<(), TestCaseError> {
    let Some((line, column)) = error.position else {
        return Err(TestCaseError::fail(format!("not located: {error}")));
    };
    prop_assert!(line >= 1 && column >= 1, "{}", error);
    prop_assert!(
        line <= text.lines().count().max(1) + 1,
        "past the end: {}",
        error
    );
    let prefix = format!("s.toml:{line}:{column}: ");
    prop_assert!(error.to_string().starts_with(&prefix), "{}", error);
    Ok(())
}

/// A field with a bound, and a value past it (or of no sense at all).
fn out_of_range() -> impl Strategy<Value = (Vec<&'static str>, toml::Value)> {
    use toml::Value::{Float, Integer};
    let count = |max: u64| {
        prop_oneof![
            Just(Integer(0)),
            Just(Integer(-1)),
            (max as i64 + 1..=i64::MAX).prop_map(Integer)
        ]
    };
    let float = |max: f64| {
        prop_oneof![
            (f64::MIN..-1e-9).prop_map(Float),
            (max * 1.0001..=f64::MAX).prop_map(Float),
            prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]).prop_map(Float),
        ]
    };
    let at = |path: &'static [&'static str]| Just(path.to_vec());
    prop_oneof![
        (at(&["population", "count"]), count(bounds::MAX_POPULATION)),
        (at(&["load", "concurrency"]), count(bounds::MAX_CONCURRENCY)),
        (at(&["load", "sdk_clients"]), count(bounds::MAX_SDK_CLIENTS)),
        (at(&["load", "max_in_flight"]), count(bounds::MAX_IN_FLIGHT)),
        (at(&["load", "iterations"]), count(bounds::MAX_REQUESTS)),
        (
            at(&["load", "events", "capacity"]),
            count(bounds::MAX_EVENTS_CAPACITY)
        ),
        (at(&["load", "rate"]), float(bounds::MAX_RATE)),
        (at(&["llm", "time_scale"]), float(bounds::MAX_TIME_SCALE)),
        (at(&["llm", "models", MODEL, "error_rate"]), float(1.0)),
        (
            at(&["llm", "models", MODEL, "error_status"]),
            prop_oneof![-1i64..400, 600..=i64::MAX].prop_map(Integer)
        ),
        (at(&["prices", MODEL, "input"]), float(bounds::MAX_PRICE)),
        (at(&["steps", "0", "feedback_rate"]), float(1.0)),
    ]
}

/// Any TOML value, for where a scenario expects something else.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    use toml::Value as T;
    let leaf = prop_oneof![
        any::<bool>().prop_map(T::Boolean),
        any::<i64>().prop_map(T::Integer),
        any::<f64>().prop_map(T::Float),
        "\\PC{0,8}".prop_map(T::String),
        prop::sample::select(vec!["0s", "100000h", "1ms", "-1s", "soon"])
            .prop_map(|s| T::String(s.into())),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(T::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| T::Table(m.into_iter().collect())),
        ]
    })
}

/// The paths of every value below the root of a document.
fn paths(value: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let children: Vec<(String, &toml::Value)> = match value {
        toml::Value::Table(table) => table.iter().map(|(k, v)| (k.clone(), v)).collect(),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        path.push(key);
        out.push(path.clone());
        paths(child, path, out);
        path.pop();
    }
}

/// Text made of TOML's punctuation and a scenario's keys.
fn toml_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "name",
        "population",
        "count",
        "load",
        "concurrency",
        "ai_configs",
        "variations",
        "llm",
        "models",
        "[",
        "]",
        "[[",
        "]]",
        "=",
        " = ",
        "{",
        "}",
        ",",
        ".",
        "\"",
        "'''",
        "\"\"\"",
        "#",
        "1",
        "-1",
        "1e999",
        "inf",
        "nan",
        "9223372036854775808",
        "0x1f",
        "1979-05-27T07:32:00Z",
        "\"1s\"",
        "true",
        "é",
        "\t",
        " ",
        "\\u0000",
        "\u{feff}",
    ]);
    prop::collection::vec(prop::collection::vec(token, 0..8), 0..10).prop_map(|lines| {
        lines
            .into_iter()
            .map(|t| t.concat())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_generated_scenario_loads_with_its_values(document in scenario()) {
        let text = toml_text(&as_toml(&document));
        let s = parse(Path::new("s.toml"), &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(Some(s.name.as_str()), document["name"].as_str());
        prop_assert_eq!(Some(s.seed), document["seed"].as_u64());
        prop_assert_eq!(Some(s.population.count), document["population"]["count"].as_u64());
        prop_assert_eq!(Some(s.load.concurrency as u64), document["load"]["concurrency"].as_u64());
        prop_assert_eq!(s.load.iterations, document["load"]["iterations"].as_u64());
        prop_assert_eq!(s.load.rate, document["load"]["rate"].as_f64());
        prop_assert_eq!(s.llm.time_scale, document["llm"]["time_scale"].as_f64());
        prop_assert_eq!(s.ai_configs.len(), document["ai_configs"].as_array().unwrap().len());
        prop_assert_eq!(s.checks.len(), document["checks"].as_array().unwrap().len());
    }

    #[test]
    fn a_number_out_of_range_is_refused_at_its_line_naming_its_field(
        document in scenario(),
        (path, value) in out_of_range(),
    ) {
        let mut document = as_toml(&document);
        if path[0] == "steps" {
            // Every scenario may have steps; this one has one to hold the value.
            document["steps"] = toml::Value::try_from(json!([{"config": "config-0"}])).unwrap();
        }
        let path: Vec<String> = path.iter().map(|k| (*k).to_owned()).collect();
        *value_at(&mut document, &path) = value;
        let text = toml_text(&document);
        let error = parse(Path::new("s.toml"), &text).expect_err("out of range");
        check_located(&error, &text)?;
        let key = path.last().unwrap();
        let field = path.join(".").replace(".0.", "[0].");
        prop_assert_eq!(&error.field, &field, "{}", error);
        let line = text.lines().nth(error.position.unwrap().0 - 1).unwrap_or("");
        prop_assert!(line.contains(&format!("{key} =")), "{} points at {:?}", error, line);
    }

    #[test]
    fn a_replaced_value_loads_or_is_refused_at_a_line_and_column(
        document in scenario(),
        at in any::<prop::sample::Index>(),
        value in toml_value(),
    ) {
        let mut document = as_toml(&document);
        let mut all = Vec::new();
        paths(&document, &mut Vec::new(), &mut all);
        *value_at(&mut document, &all[at.index(all.len())]) = value;
        let text = toml_text(&document);
        if let Err(error) = parse(Path::new("s.toml"), &text) {
            check_located(&error, &text)?;
        }
    }

    #[test]
    fn any_text_loads_or_is_refused_at_a_line_and_column(
        text in prop_oneof!["\\PC{0,80}", toml_soup()],
    ) {
        if let Err(error) = parse(Path::new("s.toml"), &text) {
            check_located(&error, &text)?;
        }
    }
}
