//! The shape of a server-side evaluation suite, after expansion, and the harness's rules for
//! what an evaluation asks of the SDK.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One suite: the flags and segments to serve and the evaluations to make.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suite {
    pub name: String,
    /// A capability the SDK must have for the suite to apply.
    #[serde(default)]
    pub require_capability: Option<String>,
    // `skipEvaluateAllFlags` only concerns the harness's all-flags check, which this test
    // does not make, so it is ignored.
    #[serde(default)]
    pub sdk_data: SdkData,
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// Flags and segments keyed by their keys; the items themselves may be minimal.
#[derive(Debug, Default, Deserialize)]
pub struct SdkData {
    #[serde(default)]
    pub flags: Map<String, Value>,
    #[serde(default)]
    pub segments: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    #[serde(default)]
    pub name: String,
    pub flag_key: String,
    /// An LD context, or an old-style user (no `kind`, attributes under `custom`), which
    /// the SDK's context parser accepts as a user context.
    #[serde(default)]
    pub context: Option<Value>,
    /// The pre-contexts harness called it `user`.
    #[serde(default)]
    pub user: Option<Value>,
    #[serde(default)]
    pub value_type: Option<String>,
    #[serde(default)]
    pub default: Value,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub variation_index: Option<i64>,
    #[serde(default)]
    pub reason: Value,
}

/// Which typed variation method an evaluation calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueType {
    Bool,
    Int,
    Double,
    String,
    Any,
}

impl Evaluation {
    /// The name the harness reports: the given one, else the flag key.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.flag_key
        } else {
            &self.name
        }
    }

    pub fn context_json(&self) -> Option<&Value> {
        self.context.as_ref().or(self.user.as_ref())
    }

    /// The value type and default the harness would pass to the SDK (its
    /// `makeEvalFlagParams`): a missing default is inferred from the flag's first variation,
    /// and a missing type from the default.
    pub fn call(&self, flags: &Map<String, Value>) -> Result<(ValueType, Value), String> {
        let default = if self.default.is_null() {
            inferred_default(flags.get(&self.flag_key))
        } else {
            self.default.clone()
        };
        let value_type = match self.value_type.as_deref() {
            Some("bool") => ValueType::Bool,
            Some("int") => ValueType::Int,
            Some("double") => ValueType::Double,
            Some("string") => ValueType::String,
            Some("any") => ValueType::Any,
            Some(other) => return Err(format!("unknown valueType {other:?}")),
            None => match &default {
                Value::Bool(_) => ValueType::Bool,
                // The harness asks whether the *given* default is an integer, so an inferred
                // numeric default (0, given none) is evaluated as a double.
                Value::Number(_) if is_integer(&self.default) => ValueType::Int,
                Value::Number(_) => ValueType::Double,
                Value::String(_) => ValueType::String,
                _ => ValueType::Any,
            },
        };
        Ok((value_type, default))
    }
}

/// The harness's `inferDefaultFromFlag`: the zero value of the first variation's type.
fn inferred_default(flag: Option<&Value>) -> Value {
    match flag
        .and_then(|f| f.get("variations"))
        .and_then(|v| v.get(0))
    {
        Some(Value::Bool(_)) => Value::Bool(false),
        Some(Value::Number(_)) => Value::from(0),
        Some(Value::String(_)) => Value::from(""),
        _ => Value::Null,
    }
}

/// Whether a JSON number is a whole number (`3`, or `3.0` as YAML may give it).
fn is_integer(value: &Value) -> bool {
    value.as_i64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}
