//! Clause operators, as LaunchDarkly's SDKs apply them to one context value and one clause
//! value. A value of the wrong type never matches; an unknown operator never matches. The
//! operator names are [`crate::scenario::rules::OPERATORS`], which the scenario loader
//! checks clauses against (`segmentMatch` is the predictor's, in `mod.rs`).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::Value;

/// Largest integer an f64 holds exactly; the SDKs refuse to read larger numbers as integers.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_991.0;

/// Compiled `matches` patterns, by pattern: a clause is tested against many contexts.
#[derive(Default)]
pub struct Regexes(RefCell<HashMap<String, Option<Regex>>>);

impl Regexes {
    fn is_match(&self, pattern: &str, text: &str) -> bool {
        let mut cache = self.0.borrow_mut();
        let regex = cache
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok());
        regex.as_ref().is_some_and(|r| r.is_match(text))
    }
}

/// Whether `op` holds between a context value and a clause value.
pub fn matches(op: &str, context: &Value, clause: &Value, regexes: &Regexes) -> bool {
    match op {
        "in" => json_eq(context, clause),
        "startsWith" => strings(context, clause, |c, v| c.starts_with(v)),
        "endsWith" => strings(context, clause, |c, v| c.ends_with(v)),
        "contains" => strings(context, clause, |c, v| c.contains(v)),
        "matches" => strings(context, clause, |c, v| regexes.is_match(v, c)),
        "lessThan" => numbers(context, clause, |o| o == Ordering::Less),
        "lessThanOrEqual" => numbers(context, clause, |o| o != Ordering::Greater),
        "greaterThan" => numbers(context, clause, |o| o == Ordering::Greater),
        "greaterThanOrEqual" => numbers(context, clause, |o| o != Ordering::Less),
        "before" => dates(context, clause, |o| o == Ordering::Less),
        "after" => dates(context, clause, |o| o == Ordering::Greater),
        "semVerEqual" => semvers(context, clause, |o| o == Ordering::Equal),
        "semVerLessThan" => semvers(context, clause, |o| o == Ordering::Less),
        "semVerGreaterThan" => semvers(context, clause, |o| o == Ordering::Greater),
        _ => false,
    }
}

/// JSON equality with numbers compared as numbers (`1` equals `1.0`, `0` equals `-0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn strings(context: &Value, clause: &Value, test: impl Fn(&str, &str) -> bool) -> bool {
    matches!((context, clause), (Value::String(c), Value::String(v)) if test(c, v))
}

fn numbers(context: &Value, clause: &Value, test: impl Fn(Ordering) -> bool) -> bool {
    match (context.as_f64(), clause.as_f64()) {
        (Some(c), Some(v)) => c.partial_cmp(&v).is_some_and(test),
        _ => false,
    }
}

fn dates(context: &Value, clause: &Value, test: impl Fn(Ordering) -> bool) -> bool {
    match (date(context), date(clause)) {
        (Some(c), Some(v)) => test(c.cmp(&v)),
        _ => false,
    }
}

/// Milliseconds since the epoch, or an RFC 3339 string.
fn date(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => {
            let millis = n.as_f64().filter(|m| m.abs() <= MAX_EXACT_INT)?;
            DateTime::from_timestamp_millis(millis as i64)
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        _ => None,
    }
}

fn semvers(context: &Value, clause: &Value, test: impl Fn(Ordering) -> bool) -> bool {
    match (semver(context), semver(clause)) {
        (Some(c), Some(v)) => test(c.cmp_precedence(&v)),
        _ => false,
    }
}

/// A semantic version; like the SDKs, `1` and `1.2` are read as `1.0.0` and `1.2.0`, and
/// build metadata does not count.
fn semver(value: &Value) -> Option<semver::Version> {
    let text = value.as_str()?;
    semver::Version::parse(text)
        .ok()
        .or_else(|| semver::Version::parse(&pad_version(text)?).ok())
}

/// `1.2-beta` → `1.2.0-beta`: the numeric part padded to three components.
fn pad_version(text: &str) -> Option<String> {
    let numeric_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (numeric, rest) = text.split_at(numeric_end);
    let parts: Vec<&str> = numeric.split('.').collect();
    let well_formed = !parts.is_empty() && parts.len() <= 3 && parts.iter().all(|p| !p.is_empty());
    if !well_formed {
        return None;
    }
    let padding = ".0".repeat(3 - parts.len());
    Some(format!("{numeric}{padding}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(op: &str, c: Value, v: Value) -> bool {
        matches(op, &c, &v, &Regexes::default())
    }

    /// Every operator the scenario loader accepts is one the predictor applies: each
    /// matches some pair of values (`segmentMatch` is tested on segments, in `mod.rs`).
    #[test]
    fn the_loaders_operators_are_the_predictors() {
        let pairs = [
            (json!("a"), json!("a")),
            (json!(1), json!(2)),
            (json!(2), json!(1)),
            (json!("2020-01-01T00:00:00Z"), json!("2021-01-01T00:00:00Z")),
            (json!("2021-01-01T00:00:00Z"), json!("2020-01-01T00:00:00Z")),
            (json!("1.0.0"), json!("2.0.0")),
            (json!("2.0.0"), json!("1.0.0")),
            (json!("1.0.0"), json!("1.0.0")),
        ];
        for op in crate::scenario::rules::OPERATORS {
            if *op == "segmentMatch" {
                continue;
            }
            assert!(
                pairs.iter().any(|(c, v)| m(op, c.clone(), v.clone())),
                "{op} is unknown to the predictor"
            );
        }
        assert!(!m("inn", json!("a"), json!("a")));
    }

    #[test]
    fn equality_strings_and_numbers() {
        assert!(
            m("in", json!(1), json!(1.0))
                && m("in", json!([0]), json!([-0.0]))
                && !m("in", json!("1"), json!(1))
        );
        assert!(
            m("startsWith", json!("premium-x"), json!("premium"))
                && !m("startsWith", json!(1), json!("1"))
        );
        assert!(
            m("matches", json!("user-42"), json!("^user-\\d+$"))
                && !m("matches", json!("x"), json!("("))
        );
        assert!(m("lessThanOrEqual", json!(2), json!(2.0)) && !m("lessThan", json!("1"), json!(2)));
    }

    #[test]
    fn dates_and_versions() {
        assert!(m("before", json!(0), json!("1970-01-01T00:00:00.001Z")));
        assert!(m(
            "after",
            json!("2024-01-01T01:00:00+01:00"),
            json!("2023-12-31T23:59:59Z")
        ));
        assert!(m("semVerEqual", json!("2.0"), json!("2.0.0+build")));
        assert!(m("semVerLessThan", json!("2.0.0-rc.1"), json!("2")));
        assert!(
            !m("semVerEqual", json!("2.x"), json!("2.0.0"))
                && !m("semVerEqual", json!("02.0.0"), json!("2.0.0"))
        );
    }
}
