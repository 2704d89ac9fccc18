//! A clause as the REST API shows it, in flag rules and segment rules alike.

use serde::Serialize;
use serde_json::Value;

use crate::model::Clause;

/// A clause with its id under both `_id` (as flags carry it) and `id` (as LaunchDarkly's
/// clients read it); instructions name it by either.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseRep {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "id")]
    pub ai_config_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_kind: Option<String>,
    pub attribute: String,
    pub op: String,
    pub values: Vec<Value>,
    pub negate: bool,
}

impl ClauseRep {
    pub fn new(clause: &Clause) -> Self {
        let id = clause.id.clone().unwrap_or_default();
        ClauseRep {
            ai_config_id: id.clone(),
            id,
            context_kind: clause.context_kind.clone(),
            attribute: clause.attribute.clone(),
            op: clause.op.clone(),
            values: clause.values.clone(),
            negate: clause.negate,
        }
    }
}
