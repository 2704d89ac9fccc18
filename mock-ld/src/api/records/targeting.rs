//! An AI Config's targeting as the REST API answers it (`AIConfigTargeting` in LaunchDarkly's
//! OpenAPI document): typed here once, so that every field the generated clients require is
//! there by construction. The store's flag stays the truth; these types only show it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::clause::ClauseRep;
use crate::model::{Flag, FlagRule, Rollout, Target, VariationOrRollout, WeightedVariation};

/// The context kind LaunchDarkly assumes where a target or rollout names none.
const USER: &str = "user";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetingRep {
    pub key: String,
    pub name: String,
    pub tags: Vec<String>,
    pub created_at: u64,
    #[serde(rename = "_version")]
    pub version: u64,
    pub variations: Vec<TargetingVariation>,
    pub defaults: TargetingDefaults,
    pub experiments: Experiments,
    pub environments: BTreeMap<String, EnvTargeting>,
}

/// A variation as targeting names it: `_id` is what instructions send as `variationId`.
#[derive(Debug, Serialize)]
pub struct TargetingVariation {
    #[serde(rename = "_id")]
    pub id: String,
    pub key: String,
    pub name: String,
    /// The variation's description as set, empty when none was.
    pub description: String,
    /// What SDKs receive for this variation.
    pub value: Value,
}

/// What environments created later serve, as variation indexes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetingDefaults {
    pub on_variation: usize,
    pub off_variation: usize,
}

/// mock-ld runs no experiments: baseline 0, none listed.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiments {
    pub baseline_idx: u32,
    pub items: Vec<Value>,
}

/// One environment's targeting: the flag it serves, in the REST shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvTargeting {
    pub on: bool,
    /// LaunchDarkly's name for `on` in this answer; both are sent.
    pub enabled: bool,
    pub off_variation: Option<i64>,
    pub fallthrough: ServeRep,
    pub rules: Vec<RuleRep>,
    pub targets: Vec<TargetRep>,
    pub context_targets: Vec<TargetRep>,
    pub track_events: bool,
    pub track_events_fallthrough: bool,
    /// When this environment's targeting last changed (the config's creation until then).
    pub last_modified: u64,
    #[serde(rename = "_environmentName")]
    pub environment_name: String,
    #[serde(rename = "_version")]
    pub version: u64,
}

impl EnvTargeting {
    /// `flag` as the environment named `environment_name` serves it, its rules and clauses
    /// already carrying ids (see `semantic_patch::fill_ids`).
    pub fn new(flag: &Flag, environment_name: &str, last_modified: u64) -> Self {
        EnvTargeting {
            on: flag.on,
            enabled: flag.on,
            off_variation: flag.off_variation,
            fallthrough: ServeRep::new(&flag.fallthrough),
            rules: flag.rules.iter().map(RuleRep::new).collect(),
            targets: flag.targets.iter().map(TargetRep::new).collect(),
            context_targets: flag.context_targets.iter().map(TargetRep::new).collect(),
            track_events: flag.track_events,
            track_events_fallthrough: flag.track_events_fallthrough,
            last_modified,
            environment_name: environment_name.to_owned(),
            version: flag.version,
        }
    }
}

/// A target list; `targets` hold user keys, so their kind is `user`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRep {
    pub context_kind: String,
    pub values: Vec<String>,
    pub variation: i64,
}

impl TargetRep {
    fn new(target: &Target) -> Self {
        TargetRep {
            context_kind: target.context_kind.clone().unwrap_or_else(|| USER.into()),
            values: target.values.clone(),
            variation: target.variation,
        }
    }
}

/// A variation or a rollout, as a rule or the fallthrough serves it.
#[derive(Debug, Clone, Serialize)]
pub struct ServeRep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutRep>,
}

impl ServeRep {
    fn new(serve: &VariationOrRollout) -> Self {
        ServeRep {
            variation: serve.variation,
            rollout: serve.rollout.as_ref().map(RolloutRep::new),
        }
    }
}

/// A rollout; it buckets by a `user` key unless it names another kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRep {
    pub context_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    pub variations: Vec<WeightedRep>,
}

impl RolloutRep {
    fn new(rollout: &Rollout) -> Self {
        RolloutRep {
            context_kind: rollout.context_kind.clone().unwrap_or_else(|| USER.into()),
            bucket_by: rollout.bucket_by.clone(),
            kind: rollout.kind.clone(),
            seed: rollout.seed,
            variations: rollout.variations.iter().map(WeightedRep::new).collect(),
        }
    }
}

/// A rollout's share of a variation; `_untracked` as the REST API names it.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedRep {
    pub variation: i64,
    pub weight: i64,
    #[serde(rename = "_untracked")]
    pub untracked: bool,
}

impl WeightedRep {
    fn new(share: &WeightedVariation) -> Self {
        WeightedRep {
            variation: share.variation,
            weight: share.weight,
            untracked: share.untracked,
        }
    }
}

/// A rule: `_id` (and `id`, as flags carry it) is what instructions send as `ruleId`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRep {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "id")]
    pub flag_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutRep>,
    pub clauses: Vec<ClauseRep>,
    pub track_events: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RuleRep {
    pub fn new(rule: &FlagRule) -> Self {
        RuleRep {
            id: rule.id.clone(),
            flag_id: rule.id.clone(),
            variation: rule.variation,
            rollout: rule.rollout.as_ref().map(RolloutRep::new),
            clauses: rule.clauses.iter().map(ClauseRep::new).collect(),
            track_events: rule.track_events,
            description: rule.description.clone(),
        }
    }
}
