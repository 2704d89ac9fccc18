//! Calling the Rust SDK's typed variation methods the way the SDK's own contract-test service
//! does for the harness.

use launchdarkly_server_sdk::{Client, Context, Detail};
use serde::Serialize;
use serde_json::Value;

use super::suite::ValueType;

/// What the SDK answered, as JSON.
#[derive(Debug)]
pub struct Actual {
    /// The value of the `*_variation_detail` call (`null` if the SDK gave none).
    pub value: Value,
    /// The value of the plain `*_variation` call, which must agree.
    pub plain_value: Value,
    pub variation_index: Option<i64>,
    pub reason: Value,
}

/// Evaluates `flag_key` with the typed methods for `value_type`.
pub fn evaluate(
    client: &Client,
    context: &Context,
    flag_key: &str,
    value_type: ValueType,
    default: &Value,
) -> Result<Actual, String> {
    let wrong_default = || format!("default {default} does not fit valueType {value_type:?}");
    Ok(match value_type {
        ValueType::Bool => {
            let d = default.as_bool().ok_or_else(wrong_default)?;
            actual(
                client.bool_variation_detail(context, flag_key, d),
                client.bool_variation(context, flag_key, d),
            )
        }
        ValueType::Int => {
            let d = as_int(default).ok_or_else(wrong_default)?;
            actual(
                client.int_variation_detail(context, flag_key, d),
                client.int_variation(context, flag_key, d),
            )
        }
        ValueType::Double => {
            let d = default.as_f64().ok_or_else(wrong_default)?;
            actual(
                client.float_variation_detail(context, flag_key, d),
                client.float_variation(context, flag_key, d),
            )
        }
        ValueType::String => {
            let d = default.as_str().ok_or_else(wrong_default)?;
            actual(
                client.str_variation_detail(context, flag_key, d.to_owned()),
                client.str_variation(context, flag_key, d.to_owned()),
            )
        }
        ValueType::Any => actual(
            client.json_variation_detail(context, flag_key, default.clone()),
            client.json_variation(context, flag_key, default.clone()),
        ),
    })
}

/// A whole number, given as `3` or `3.0`.
fn as_int(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

fn actual<T: Serialize>(detail: Detail<T>, plain: T) -> Actual {
    Actual {
        value: to_json(&detail.value),
        plain_value: to_json(&plain),
        variation_index: detail.variation_index.map(|i| i as i64),
        reason: to_json(&detail.reason),
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("SDK values and reasons serialize")
}
