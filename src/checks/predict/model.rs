//! Flags and segments in LaunchDarkly's JSON (the SDK data model, and the targeting and
//! segment answers of the REST API, which share its shapes). Only what evaluation reads;
//! everything else is ignored.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::reference::Reference;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub on: bool,
    #[serde(default)]
    pub salt: String,
    #[serde(default)]
    pub off_variation: Option<i64>,
    #[serde(default)]
    pub fallthrough: VariationOrRollout,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub context_targets: Vec<Target>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// How many prerequisites: outside what the predictor models, so a flag with any is
    /// refused.
    #[serde(default, deserialize_with = "count")]
    pub prerequisites: usize,
    /// How many variations; their values do not matter here.
    #[serde(default, deserialize_with = "count")]
    pub variations: usize,
}

fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    Ok(Vec::<IgnoredAny>::deserialize(deserializer)?.len())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub values: Vec<String>,
    pub variation: i64,
    #[serde(default)]
    pub context_kind: Option<String>,
}

impl Target {
    pub fn kind(&self) -> &str {
        self.context_kind.as_deref().unwrap_or("user")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub clauses: Vec<Clause>,
    #[serde(flatten)]
    pub serve: VariationOrRollout,
}

/// A fixed variation, or a rollout; the variation wins when data has both, and neither
/// makes the flag malformed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct VariationOrRollout {
    #[serde(default)]
    pub variation: Option<i64>,
    #[serde(default)]
    pub rollout: Option<Rollout>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    #[serde(default)]
    pub variations: Vec<WeightedVariation>,
    #[serde(default)]
    pub bucket_by: Option<String>,
    #[serde(default)]
    pub context_kind: Option<String>,
    /// `rollout` or `experiment`; an experiment always buckets by key.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub seed: Option<i64>,
}

impl Rollout {
    pub fn is_experiment(&self) -> bool {
        self.kind.as_deref() == Some("experiment")
    }

    pub fn bucket_kind(&self) -> &str {
        self.context_kind.as_deref().unwrap_or("user")
    }

    pub fn bucket_by(&self) -> Reference {
        match (&self.bucket_by, self.is_experiment()) {
            (Some(by), false) => Reference::for_data(by, self.context_kind.is_some()),
            _ => Reference::literal("key"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct WeightedVariation {
    pub variation: i64,
    /// Thousandths of a percent: 100000 is everyone.
    pub weight: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Clause {
    #[serde(default)]
    pub context_kind: Option<String>,
    #[serde(default)]
    pub attribute: String,
    pub op: String,
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub negate: bool,
}

impl Clause {
    pub fn kind(&self) -> &str {
        self.context_kind
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or("user")
    }

    pub fn reference(&self) -> Reference {
        Reference::for_data(&self.attribute, self.context_kind.is_some())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub salt: String,
    #[serde(default)]
    pub included: Vec<String>,
    #[serde(default)]
    pub excluded: Vec<String>,
    #[serde(default)]
    pub included_contexts: Vec<SegmentTarget>,
    #[serde(default)]
    pub excluded_contexts: Vec<SegmentTarget>,
    #[serde(default)]
    pub rules: Vec<SegmentRule>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentTarget {
    #[serde(default)]
    pub values: Vec<String>,
    pub context_kind: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRule {
    #[serde(default)]
    pub clauses: Vec<Clause>,
    /// Thousandths of a percent of the contexts the clauses match; absent means all.
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub bucket_by: Option<String>,
    #[serde(default)]
    pub rollout_context_kind: Option<String>,
}

impl SegmentRule {
    pub fn bucket_kind(&self) -> &str {
        self.rollout_context_kind.as_deref().unwrap_or("user")
    }

    pub fn bucket_by(&self) -> Reference {
        let by = self.bucket_by.as_deref().unwrap_or("key");
        Reference::for_data(by, self.rollout_context_kind.is_some())
    }
}
