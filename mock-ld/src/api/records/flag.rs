//! A feature flag's record: what only the REST API knows about an ordinary flag (its name,
//! description, tags, variation ids and names, defaults). Its targeting in each environment
//! is the store's flag there, which SDKs evaluate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::ClientSideAvailability;

/// A flag's project-level REST fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagMeta {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub temporary: bool,
    pub creation_date: u64,
    /// `_version`: rises with every change to the flag, in any environment.
    pub version: u64,
    pub variations: Vec<FlagVariation>,
    pub defaults: FlagDefaults,
    pub client_side_availability: ClientSideAvailability,
    pub maintainer_id: Option<String>,
    pub custom_properties: Map<String, Value>,
    pub archived: bool,
    pub deprecated: bool,
    /// When each environment's targeting last changed through the API (ms).
    pub last_modified: BTreeMap<String, u64>,
}

/// One variation: the value SDKs receive and its REST-only `_id`, name and description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagVariation {
    #[serde(rename = "_id")]
    pub id: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The variations a new environment serves: on (fallthrough) and off, by index.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagDefaults {
    pub on_variation: i64,
    pub off_variation: i64,
}

impl FlagMeta {
    /// `boolean` when every variation is a boolean, else `multivariate`.
    pub fn kind(&self) -> &'static str {
        if self.variations.iter().all(|v| v.value.is_boolean()) {
            "boolean"
        } else {
            "multivariate"
        }
    }

    /// The variation values, in flag order, as SDKs receive them.
    pub fn values(&self) -> Vec<Value> {
        self.variations.iter().map(|v| v.value.clone()).collect()
    }
}
