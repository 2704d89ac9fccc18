//! A segment's record: the REST-only fields; the segment itself is the store's.

use serde::{Deserialize, Serialize};

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
    /// For a segment the API did not create (seed data, the admin API): named by its key.
    pub fn unknown(key: &str) -> Self {
        SegmentMeta {
            name: key.to_owned(),
            description: String::new(),
            tags: Vec::new(),
            creation_date: 0,
            last_modified: 0,
        }
    }
}
