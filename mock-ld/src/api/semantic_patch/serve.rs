//! What a rule or the fallthrough serves, in every form clients send: a variation `_id`
//! (`variationId`), a variation index (`variation`), weights keyed by `_id`
//! (`rolloutWeights`), or a flag-style rollout by index (`percentageRolloutConfig`, and
//! `rollout` as a targeting GET returns it).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{Rollout, VariationOrRollout, WeightedVariation};

/// Rollout weights are thousandths of a percent, so they must add up to 100000.
pub const TOTAL_WEIGHT: i64 = 100_000;

/// One variation as instructions may name it: by its position in the flag or by `_id`.
#[derive(Clone, Debug, PartialEq)]
pub struct VariationRef {
    pub id: String,
    pub key: String,
    pub name: String,
    /// The value SDKs receive.
    pub value: Value,
}

/// The index of the variation whose `_id` is `id`.
pub fn index_of(variations: &[VariationRef], id: &str) -> Result<i64, String> {
    match variations.iter().position(|v| v.id == id) {
        Some(index) => Ok(index as i64),
        None => Err(format!(
            "unknown variationId {id:?}; the variations are {}",
            listing(variations)
        )),
    }
}

pub fn check_index(variations: &[VariationRef], index: i64) -> Result<i64, String> {
    if (0..variations.len() as i64).contains(&index) {
        Ok(index)
    } else {
        Err(format!(
            "variation index {index} is out of range; the variations are {}",
            listing(variations)
        ))
    }
}

/// `0: disabled (<id>), 1: premium (<id>)`, for messages that must help pick the right one.
fn listing(variations: &[VariationRef]) -> String {
    let items: Vec<String> = variations
        .iter()
        .enumerate()
        .map(|(index, v)| format!("{index}: {} ({})", v.key, v.id))
        .collect();
    items.join(", ")
}

/// The key of the variation at `index`, for messages.
pub fn key_at(variations: &[VariationRef], index: i64) -> String {
    usize::try_from(index)
        .ok()
        .and_then(|i| variations.get(i))
        .map_or_else(|| format!("#{index}"), |v| v.key.clone())
}

/// A single variation: `variationId` or `variation` (an index).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationChoice {
    variation_id: Option<String>,
    variation: Option<i64>,
}

impl VariationChoice {
    pub fn index(self, variations: &[VariationRef]) -> Result<i64, String> {
        match (self.variation_id, self.variation) {
            (Some(id), None) => index_of(variations, &id),
            (None, Some(index)) => check_index(variations, index),
            (Some(_), Some(_)) => Err("give variationId or variation, not both".into()),
            (None, None) => Err("variationId is required".into()),
        }
    }
}

/// A flag-style rollout: `{variations: [{variation, weight}], contextKind, bucketBy, seed}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutInput {
    variations: Vec<IndexWeight>,
    context_kind: Option<String>,
    bucket_by: Option<String>,
    seed: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct IndexWeight {
    variation: i64,
    weight: i64,
}

/// Every way of saying what to serve; exactly one may be given.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServeInput {
    variation_id: Option<String>,
    variation: Option<i64>,
    rollout_weights: Option<BTreeMap<String, i64>>,
    rollout_bucket_by: Option<String>,
    rollout_context_kind: Option<String>,
    percentage_rollout_config: Option<RolloutInput>,
    rollout: Option<RolloutInput>,
    progressive_rollout_config: Option<Value>,
    guarded_rollout_config: Option<Value>,
}

impl ServeInput {
    /// What to serve; an error if nothing is named.
    pub fn require(self, variations: &[VariationRef]) -> Result<VariationOrRollout, String> {
        self.resolve(variations)?.ok_or_else(|| {
            "say what to serve: variationId, variation (an index) or rolloutWeights".to_owned()
        })
    }

    /// What to serve, or `None` if nothing is named.
    pub fn resolve(
        self,
        variations: &[VariationRef],
    ) -> Result<Option<VariationOrRollout>, String> {
        if self.progressive_rollout_config.is_some() || self.guarded_rollout_config.is_some() {
            return Err(
                "progressive and guarded rollouts need LaunchDarkly's release \
                        automation, which mock-ld does not run; use rolloutWeights or \
                        percentageRolloutConfig"
                    .into(),
            );
        }
        let forms = [
            ("variationId", self.variation_id.is_some()),
            ("variation", self.variation.is_some()),
            ("rolloutWeights", self.rollout_weights.is_some()),
            (
                "percentageRolloutConfig",
                self.percentage_rollout_config.is_some(),
            ),
            ("rollout", self.rollout.is_some()),
        ];
        let given: Vec<&str> = forms.iter().filter(|f| f.1).map(|f| f.0).collect();
        if given.len() > 1 {
            return Err(format!(
                "give one way to serve, not {}",
                given.join(" and ")
            ));
        }
        let serve = if let Some(id) = self.variation_id {
            fixed(index_of(variations, &id)?)
        } else if let Some(index) = self.variation {
            fixed(check_index(variations, index)?)
        } else if let Some(weights) = self.rollout_weights {
            let weights = weights
                .into_iter()
                .map(|(id, weight)| Ok((index_of(variations, &id)?, weight)))
                .collect::<Result<_, String>>()?;
            let shape = Shape {
                context_kind: self.rollout_context_kind,
                bucket_by: self.rollout_bucket_by,
                seed: None,
            };
            rollout("rolloutWeights", weights, shape)?
        } else if let Some(input) = self.percentage_rollout_config {
            indexed_rollout("percentageRolloutConfig", input, variations)?
        } else if let Some(input) = self.rollout {
            indexed_rollout("rollout", input, variations)?
        } else {
            return Ok(None);
        };
        Ok(Some(serve))
    }
}

fn fixed(index: i64) -> VariationOrRollout {
    VariationOrRollout {
        variation: Some(index),
        rollout: None,
    }
}

struct Shape {
    context_kind: Option<String>,
    bucket_by: Option<String>,
    seed: Option<i64>,
}

fn indexed_rollout(
    field: &str,
    input: RolloutInput,
    variations: &[VariationRef],
) -> Result<VariationOrRollout, String> {
    let weights = input
        .variations
        .iter()
        .map(|w| Ok((check_index(variations, w.variation)?, w.weight)))
        .collect::<Result<_, String>>()?;
    let shape = Shape {
        context_kind: input.context_kind,
        bucket_by: input.bucket_by,
        seed: input.seed,
    };
    rollout(field, weights, shape)
}

/// A rollout over `(index, weight)` pairs, in variation order (bucketing walks the list, so
/// the order must not depend on how the client happened to list them).
fn rollout(
    field: &str,
    mut weights: Vec<(i64, i64)>,
    shape: Shape,
) -> Result<VariationOrRollout, String> {
    if weights.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if let Some((index, weight)) = weights
        .iter()
        .find(|(_, w)| !(0..=TOTAL_WEIGHT).contains(w))
    {
        return Err(format!(
            "{field}: weight {weight} of variation {index} is outside 0..=100000"
        ));
    }
    let sum: i64 = weights.iter().map(|(_, w)| w).sum();
    if sum != TOTAL_WEIGHT {
        return Err(format!("{field} sum to {sum}, not {TOTAL_WEIGHT}"));
    }
    weights.sort_unstable();
    if let Some(pair) = weights.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!("{field} names variation {} twice", pair[0].0));
    }
    let context_kind = shape.context_kind.filter(|k| !k.is_empty());
    Ok(VariationOrRollout {
        variation: None,
        rollout: Some(Rollout {
            variations: weights
                .into_iter()
                .map(|(variation, weight)| WeightedVariation {
                    variation,
                    weight,
                    untracked: false,
                })
                .collect(),
            bucket_by: shape.bucket_by.filter(|b| !b.is_empty()),
            context_kind: Some(context_kind.unwrap_or_else(|| "user".to_owned())),
            kind: None,
            seed: shape.seed,
        }),
    })
}
