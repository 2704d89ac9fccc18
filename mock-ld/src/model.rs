//! Flags and segments in LaunchDarkly's canonical server-side JSON form.
//!
//! Input may be minimal (a data file, an admin `PUT`); output always carries every field the
//! strictest SDK requires. The Rust SDK rejects a whole `put` if one flag lacks `targets`,
//! `rules`, `prerequisites`, `salt` or a rule's `trackEvents`; Python needs an integer
//! `version` and integer rollout weights (see `shared/spec/ld-sdk-protocol.md` §5.1).
//! Malformed-but-parseable data (a variation index out of range, a fallthrough with neither
//! variation nor rollout) is passed through unchanged, so SDKs report it as they would against
//! LaunchDarkly itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A feature flag; AI Configs are flags whose variations are JSON objects.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub on: bool,
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub context_targets: Vec<Target>,
    #[serde(default)]
    pub rules: Vec<FlagRule>,
    #[serde(default = "VariationOrRollout::first")]
    pub fallthrough: VariationOrRollout,
    /// Serialized as `null` when absent, as LaunchDarkly does.
    #[serde(default)]
    pub off_variation: Option<i64>,
    #[serde(default)]
    pub variations: Vec<Value>,
    #[serde(default)]
    pub client_side_availability: ClientSideAvailability,
    #[serde(default)]
    pub salt: String,
    #[serde(default)]
    pub track_events: bool,
    #[serde(default)]
    pub track_events_fallthrough: bool,
    #[serde(default)]
    pub debug_events_until_date: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude_from_summaries: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_ratio: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientSideAvailability {
    #[serde(default)]
    pub using_mobile_key: bool,
    #[serde(default)]
    pub using_environment_id: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Prerequisite {
    pub key: String,
    pub variation: i64,
}

/// Individual targets: `targets` (user kind, legacy) or `contextTargets`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub values: Vec<String>,
    pub variation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_kind: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlagRule {
    #[serde(default)]
    pub id: String,
    // Not a flattened `VariationOrRollout`: flattening would cost data-file errors their
    // line and column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default)]
    pub clauses: Vec<Clause>,
    #[serde(default)]
    pub track_events: bool,
    /// Set through the REST API; SDKs ignore it, as they do LaunchDarkly's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a rule or the fallthrough serves. Both fields are optional on the wire so that
/// malformed data reaches the SDKs as sent.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct VariationOrRollout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

impl VariationOrRollout {
    fn first() -> Self {
        Self {
            variation: Some(0),
            rollout: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub variations: Vec<WeightedVariation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct WeightedVariation {
    pub variation: i64,
    pub weight: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untracked: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Clause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_kind: Option<String>,
    /// Required by the Python SDK on every clause; `segmentMatch` ignores it, so older
    /// clients omit it there and it defaults to `""`.
    #[serde(default)]
    pub attribute: String,
    pub op: String,
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub negate: bool,
    /// The clause's id in the REST API (`_id`), which semantic patches name; SDKs ignore it.
    #[serde(default, rename = "_id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A segment: included/excluded keys and rules.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub included: Vec<String>,
    #[serde(default)]
    pub excluded: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_contexts: Vec<SegmentTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_contexts: Vec<SegmentTarget>,
    #[serde(default)]
    pub rules: Vec<SegmentRule>,
    #[serde(default)]
    pub salt: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unbounded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbounded_context_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentTarget {
    pub context_kind: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub clauses: Vec<Clause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_context_kind: Option<String>,
    /// Set through the REST API; SDKs ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An item the store versions: a flag or a segment.
pub trait Versioned: Serialize + Clone {
    /// `"flags"` or `"segments"`: the path segment in stream events.
    const COLLECTION: &'static str;
    /// `"flag"` or `"segment"`: the `kind` of FDv2 `put-object` and `delete-object` events.
    const KIND: &'static str;
    fn key(&self) -> &str;
    fn version(&self) -> u64;
    fn set_identity(&mut self, key: &str, version: u64);
}

impl Versioned for Flag {
    const COLLECTION: &'static str = "flags";
    const KIND: &'static str = "flag";
    fn key(&self) -> &str {
        &self.key
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_identity(&mut self, key: &str, version: u64) {
        key.clone_into(&mut self.key);
        self.version = version;
    }
}

impl Versioned for Segment {
    const COLLECTION: &'static str = "segments";
    const KIND: &'static str = "segment";
    fn key(&self) -> &str {
        &self.key
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_identity(&mut self, key: &str, version: u64) {
        key.clone_into(&mut self.key);
        self.version = version;
    }
}

impl Flag {
    /// The flag LaunchDarkly's file data source makes of a `flagValues` entry: on, one
    /// variation, served to everyone.
    pub fn from_value(key: &str, value: Value) -> Self {
        Flag {
            key: key.to_owned(),
            on: true,
            variations: vec![value],
            fallthrough: VariationOrRollout::first(),
            ..Flag::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_flag_is_emitted_in_full_canonical_form() {
        let flag: Flag = serde_json::from_value(json!({"variations": [true, false]})).unwrap();
        let out = serde_json::to_value(&flag).unwrap();
        for field in [
            "key",
            "version",
            "on",
            "prerequisites",
            "targets",
            "contextTargets",
            "rules",
            "fallthrough",
            "offVariation",
            "variations",
            "salt",
            "trackEvents",
            "trackEventsFallthrough",
            "debugEventsUntilDate",
            "clientSideAvailability",
        ] {
            assert!(out.get(field).is_some(), "missing {field} in {out}");
        }
        assert_eq!(out["fallthrough"], json!({"variation": 0}));
        assert_eq!(out["offVariation"], Value::Null);
    }

    #[test]
    fn rule_always_carries_track_events_and_keeps_rollout() {
        let rule: FlagRule = serde_json::from_value(json!({
            "id": "r1",
            "clauses": [{"op": "segmentMatch", "values": ["beta"]}],
            "rollout": {"variations": [{"variation": 0, "weight": 60000}, {"variation": 1, "weight": 40000}]}
        }))
        .unwrap();
        let out = serde_json::to_value(&rule).unwrap();
        assert_eq!(out["trackEvents"], json!(false));
        assert_eq!(out["clauses"][0]["attribute"], json!(""));
        assert_eq!(out["rollout"]["variations"][1]["weight"], json!(40000));
        assert!(out.get("variation").is_none());
    }

    #[test]
    fn malformed_serve_passes_through_unchanged() {
        let flag: Flag =
            serde_json::from_value(json!({"fallthrough": {}, "variations": [1]})).unwrap();
        assert_eq!(
            serde_json::to_value(&flag).unwrap()["fallthrough"],
            json!({})
        );
    }

    #[test]
    fn fractional_weight_is_rejected() {
        let err =
            serde_json::from_value::<WeightedVariation>(json!({"variation": 0, "weight": 0.5}));
        assert!(err.is_err());
    }
}
