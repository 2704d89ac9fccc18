//! Clauses as clients send them, normalized into the form every SDK accepts.

use serde::Deserialize;
use serde_json::Value;

use crate::model::Clause;

/// The operators LaunchDarkly evaluates. SDKs silently treat any other as "never matches",
/// so a typo (`In`, `equals`) is refused here instead (and by the harness's scenario loader,
/// which uses this list).
pub const OPERATORS: &[&str] = &[
    "in",
    "endsWith",
    "startsWith",
    "matches",
    "contains",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "before",
    "after",
    "semVerEqual",
    "semVerLessThan",
    "semVerGreaterThan",
    "segmentMatch",
];

/// For rules sent whole (JSON Patch, merge patch): the first clause whose op is not one of
/// [`OPERATORS`], as `rules/{i}/clauses/{j}/op: …`, since SDKs would never match it.
pub fn check_ops<'a>(rules: impl IntoIterator<Item = &'a [Clause]>) -> Result<(), String> {
    for (i, clauses) in rules.into_iter().enumerate() {
        if let Some((j, clause)) = clauses
            .iter()
            .enumerate()
            .find(|(_, c)| !OPERATORS.contains(&c.op.as_str()))
        {
            return Err(format!(
                "rules/{i}/clauses/{j}/op: unknown op {:?}; ops are {}",
                clause.op,
                OPERATORS.join(", ")
            ));
        }
    }
    Ok(())
}

/// `{contextKind, attribute, op, values, negate}`; a `segmentMatch` clause may also come in
/// the older form with only `op` and `values`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseInput {
    context_kind: Option<String>,
    attribute: Option<String>,
    op: String,
    values: Vec<Value>,
    #[serde(default)]
    negate: bool,
}

impl ClauseInput {
    /// The clause SDKs will read, under a fresh `_id`.
    pub fn into_clause(self) -> Result<Clause, String> {
        self.into_clause_with_id(uuid::Uuid::new_v4().to_string())
    }

    pub fn into_clause_with_id(self, id: String) -> Result<Clause, String> {
        if !OPERATORS.contains(&self.op.as_str()) {
            return Err(format!(
                "unknown op {:?}; ops are {}",
                self.op,
                OPERATORS.join(", ")
            ));
        }
        let (context_kind, attribute) = if self.op == "segmentMatch" {
            segment_match_target(&self.values)?
        } else {
            let attribute = self
                .attribute
                .filter(|a| !a.is_empty())
                .ok_or_else(|| format!("a clause with op {:?} needs an attribute", self.op))?;
            // REST clauses default to the `user` kind (LaunchDarkly's documented default).
            let kind = self.context_kind.filter(|k| !k.is_empty());
            (Some(kind.unwrap_or_else(|| "user".to_owned())), attribute)
        };
        Ok(Clause {
            context_kind,
            attribute,
            op: self.op,
            values: self.values,
            negate: self.negate,
            id: Some(id),
        })
    }
}

/// A `segmentMatch` clause has no context kind (its segments say which kinds they hold) and
/// the attribute `segmentMatch`, as LaunchDarkly writes it: the Python SDK requires an
/// `attribute` string on every clause, and Rust reads an empty `contextKind` as invalid.
fn segment_match_target(values: &[Value]) -> Result<(Option<String>, String), String> {
    check_values("segmentMatch", values)?;
    Ok((None, "segmentMatch".to_owned()))
}

/// Values a clause of `op` may hold: for `segmentMatch`, segment keys (strings) only. Every
/// instruction that puts values into a clause checks them here.
pub fn check_values(op: &str, values: &[Value]) -> Result<(), String> {
    match values.iter().find(|v| !v.is_string()) {
        Some(value) if op == "segmentMatch" => Err(format!(
            "segmentMatch values are segment keys (strings), not {value}"
        )),
        _ => Ok(()),
    }
}

/// Each input as a clause, naming the position of the first that is wrong.
pub fn new_clauses(inputs: Vec<ClauseInput>) -> Result<Vec<Clause>, String> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            input
                .into_clause()
                .map_err(|e| format!("clauses[{i}]: {e}"))
        })
        .collect()
}
