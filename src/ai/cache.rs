//! Served variations, read once: the runner evaluates the same few variations millions of
//! times, and reading one (templates included) costs more than recognising it.
//!
//! A variation is recognised by equality with the value as served, so a changed prompt is
//! a new entry even if its `_ldMeta.version` stayed the same. Each config keeps its most
//! recent [`PER_CONFIG`] variations.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

use super::variation::{Problem, Variation};

/// Enough for every variation of a config plus a few edits during a run.
const PER_CONFIG: usize = 16;

#[derive(Default)]
pub(crate) struct VariationCache {
    by_config: RwLock<HashMap<Arc<str>, Vec<Arc<Variation>>>>,
}

impl VariationCache {
    /// The read variation for what `config_key` served.
    pub fn get(&self, config_key: &str, served: Value) -> Result<Arc<Variation>, Problem> {
        if let Some(hit) = self.find(config_key, &served) {
            return Ok(hit);
        }
        let key: Arc<str> = Arc::from(config_key);
        let read = Arc::new(Variation::parse(&key, served)?);
        let mut by_config = self
            .by_config
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entries = by_config.entry(key).or_default();
        // Another thread may have read the same variation meanwhile.
        if let Some(hit) = entries.iter().find(|v| v.same_source(&read)) {
            return Ok(hit.clone());
        }
        if entries.len() == PER_CONFIG {
            entries.remove(0);
        }
        entries.push(read.clone());
        Ok(read)
    }

    fn find(&self, config_key: &str, served: &Value) -> Option<Arc<Variation>> {
        let by_config = self
            .by_config
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        by_config
            .get(config_key)?
            .iter()
            .find(|v| v.is(served))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_share_one_read_and_changes_are_new_entries() {
        let cache = VariationCache::default();
        let v1 = json!({"_ldMeta": {"enabled": true, "version": 1}, "messages": [{"role": "system", "content": "A {{x}}"}]});
        let mut v1_edited = v1.clone();
        v1_edited["messages"][0]["content"] = json!("B {{x}}");
        let first = cache.get("cfg", v1.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get("cfg", v1.clone()).unwrap()));
        let edited = cache.get("cfg", v1_edited).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &edited),
            "same version, different prompt"
        );
        assert!(
            !Arc::ptr_eq(&first, &cache.get("other", v1).unwrap()),
            "per config key"
        );
    }

    #[test]
    fn each_config_keeps_its_latest_variations() {
        let cache = VariationCache::default();
        let variation = |i: usize| json!({"_ldMeta": {"variationKey": format!("v{i}")}});
        let first = cache.get("cfg", variation(0)).unwrap();
        for i in 1..=PER_CONFIG {
            cache.get("cfg", variation(i)).unwrap();
        }
        assert!(
            !Arc::ptr_eq(&first, &cache.get("cfg", variation(0)).unwrap()),
            "evicted, read again"
        );
        assert_eq!(cache.by_config.read().unwrap()["cfg"].len(), PER_CONFIG);
    }

    #[test]
    fn unreadable_variations_are_errors_and_not_kept() {
        let cache = VariationCache::default();
        assert!(cache.get("cfg", json!({"model": {}})).is_err());
        assert!(cache.by_config.read().unwrap().get("cfg").is_none());
    }
}
