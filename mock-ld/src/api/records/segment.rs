//! A segment's record: the REST-only fields; the segment itself is the store's. And the
//! segment as the REST API answers it (`UserSegment`), both together.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clause::ClauseRep;
use crate::model::{Segment, SegmentRule, SegmentTarget};

/// A segment's REST-only fields.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMeta {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub creation_date: u64,
    pub last_modified: u64,
}

impl SegmentMeta {
    /// For a segment the API did not create (seed data, the admin API): named by its key,
    /// dated `seen` (when the API started, the closest it knows).
    pub fn unknown(key: &str, seen: u64) -> Self {
        SegmentMeta {
            name: key.to_owned(),
            description: String::new(),
            tags: Vec::new(),
            creation_date: seen,
            last_modified: seen,
        }
    }
}

/// A segment as the REST API answers it: the store's segment and its REST-only fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRep {
    pub key: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub creation_date: u64,
    pub last_modified_date: u64,
    pub included: Vec<String>,
    pub excluded: Vec<String>,
    pub included_contexts: Vec<SegmentTarget>,
    pub excluded_contexts: Vec<SegmentTarget>,
    pub rules: Vec<SegmentRuleRep>,
    pub version: u64,
    pub deleted: bool,
    pub generation: i64,
    pub unbounded: bool,
    pub unbounded_context_kind: Option<String>,
    pub salt: String,
    #[serde(rename = "_links")]
    pub links: Value,
    /// The flags that use the segment: mock-ld does not track them.
    #[serde(rename = "_flags")]
    pub flags: Vec<Value>,
}

impl SegmentRep {
    /// `segment`, its rules already carrying ids (see `semantic_patch::fill_ids`).
    pub fn new(segment: &Segment, meta: &SegmentMeta, links: Value) -> Self {
        SegmentRep {
            key: segment.key.clone(),
            name: meta.name.clone(),
            description: meta.description.clone(),
            tags: meta.tags.clone(),
            creation_date: meta.creation_date,
            last_modified_date: meta.last_modified,
            included: segment.included.clone(),
            excluded: segment.excluded.clone(),
            included_contexts: segment.included_contexts.clone(),
            excluded_contexts: segment.excluded_contexts.clone(),
            rules: segment.rules.iter().map(SegmentRuleRep::new).collect(),
            version: segment.version,
            deleted: false,
            generation: segment.generation.unwrap_or(0),
            unbounded: segment.unbounded,
            unbounded_context_kind: segment.unbounded_context_kind.clone(),
            salt: segment.salt.clone(),
            links,
            flags: Vec::new(),
        }
    }
}

/// A segment rule: `_id` (and `id`, as segments carry it) is what instructions name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRuleRep {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "id")]
    pub segment_id: String,
    pub clauses: Vec<ClauseRep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_context_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SegmentRuleRep {
    fn new(rule: &SegmentRule) -> Self {
        let id = rule.id.clone().unwrap_or_default();
        SegmentRuleRep {
            segment_id: id.clone(),
            id,
            clauses: rule.clauses.iter().map(ClauseRep::new).collect(),
            weight: rule.weight,
            bucket_by: rule.bucket_by.clone(),
            rollout_context_kind: rule.rollout_context_kind.clone(),
            description: rule.description.clone(),
        }
    }
}
