//! Comparing results as the harness does, and checking what mock-ld served against what it
//! was given.

use serde_json::{Map, Value};

/// JSON equality where numbers compare by value: the data says `-100` where a double
/// evaluation returns `-100.0`, and the harness (Go `ldvalue`) holds every number as a float.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

/// Reasons compare as the harness's reason struct does, where an absent field, `null`,
/// `false` and `""` are all the field's zero value: the SDK omits `inExperiment: false` and an
/// empty `ruleId`, and the data omits what does not apply.
pub fn reasons_eq(expected: &Value, actual: &Value) -> bool {
    json_eq(&without_zero_fields(expected), &without_zero_fields(actual))
}

fn without_zero_fields(reason: &Value) -> Value {
    match reason {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Null | Value::Bool(false)) && *v != "")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    }
}

/// Where `served` does not carry `given` faithfully: every field of the input must come out
/// with the same value. Fields mock-ld adds (defaults for what the input left out) are fine,
/// and so are `key` and `version` at the top, which mock-ld sets. An input `null` may be
/// served absent or `null` alike, since SDKs read both the same.
pub fn changed_fields(given: &Value, served: Option<&Value>) -> Vec<String> {
    let mut changes = Vec::new();
    match served {
        Some(served) => diff(given, served, "", true, &mut changes),
        None => changes.push("the item is missing from the put".to_owned()),
    }
    changes
}

fn diff(given: &Value, served: &Value, path: &str, top: bool, out: &mut Vec<String>) {
    match (given, served) {
        (Value::Object(g), Value::Object(s)) => {
            for (k, gv) in g {
                if top && (k == "key" || k == "version") {
                    continue;
                }
                let p = format!("{path}/{k}");
                match s.get(k) {
                    Some(sv) => diff(gv, sv, &p, false, out),
                    None if gv.is_null() => {}
                    None => out.push(format!("{p}: given {gv}, served nothing")),
                }
            }
        }
        (Value::Array(g), Value::Array(s)) if g.len() == s.len() => {
            for (i, (gv, sv)) in g.iter().zip(s).enumerate() {
                diff(gv, sv, &format!("{path}/{i}"), false, out);
            }
        }
        _ if json_eq(given, served) => {}
        _ => out.push(format!(
            "{}: given {given}, served {served}",
            if path.is_empty() { "/" } else { path }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(
            &json!([1, {"a": -100}]),
            &json!([1.0, {"a": -100.0}])
        ));
        assert!(!json_eq(&json!({"a": null}), &json!({})));
    }

    #[test]
    fn reasons_ignore_zero_fields() {
        assert!(reasons_eq(
            &json!({"kind": "FALLTHROUGH"}),
            &json!({"kind": "FALLTHROUGH", "inExperiment": false, "ruleId": null})
        ));
        assert!(!reasons_eq(
            &json!({"kind": "FALLTHROUGH", "inExperiment": true}),
            &json!({"kind": "FALLTHROUGH"})
        ));
    }

    #[test]
    fn added_defaults_are_fine_but_changed_fields_are_not() {
        let given = json!({"key": "a", "on": true, "rules": [{"clauses": [{"op": "in"}]}]});
        let served = json!({"key": "a", "version": 1, "on": true, "salt": "",
            "rules": [{"clauses": [{"op": "in", "attribute": ""}], "trackEvents": false}]});
        assert!(changed_fields(&given, Some(&served)).is_empty());
        let served = json!({"on": false, "rules": []});
        assert_eq!(changed_fields(&given, Some(&served)).len(), 2);
    }
}
