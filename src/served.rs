//! What the SDK served each context, per AI Config: the variation index the first time the
//! context was evaluated, for the exact rollout check. One `u16` per context of the
//! population, written without locks, and only while the population is at most
//! [`MAX_CONTEXTS`].
//!
//! Targeting changes made by scenario actions would make earlier and later evaluations of
//! the same context disagree for good reasons, so only evaluations that finished before the
//! first action started are recorded: nothing an action changes can have reached the SDK by
//! then.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

/// Populations larger than this are not recorded (2 bytes per context and AI Config).
pub const MAX_CONTEXTS: u64 = 2_000_000;

/// Not evaluated (before the cutoff).
pub const UNSEEN: u16 = 0;
/// The AI layer served its default: the flag was missing or could not be read.
pub const DEFAULT: u16 = u16::MAX;
/// A variation key that the targeting read back from the REST API does not have.
pub const UNKNOWN: u16 = u16::MAX - 1;

/// The record of one AI Config.
pub struct ConfigLog {
    pub config: String,
    /// Variation keys in flag order, from the targeting read back before the load; a
    /// config has a handful, so a scan beats hashing the key on every request.
    keys: Vec<String>,
    served: Vec<AtomicU16>,
}

pub struct ServedLog {
    configs: Vec<ConfigLog>,
    /// When the first action is due; later evaluations are not recorded.
    cutoff: Option<Instant>,
}

impl ServedLog {
    /// `configs`: each AI Config to record with its variation keys in flag order. Records
    /// nothing when the population is larger than [`MAX_CONTEXTS`].
    pub fn new(
        configs: Vec<(String, Vec<String>)>,
        population: u64,
        cutoff: Option<Instant>,
    ) -> Self {
        let configs = if population <= MAX_CONTEXTS {
            configs
        } else {
            Vec::new()
        };
        let configs = configs
            .into_iter()
            .map(|(config, keys)| ConfigLog {
                config,
                keys,
                served: (0..population).map(|_| AtomicU16::new(UNSEEN)).collect(),
            })
            .collect();
        ServedLog { configs, cutoff }
    }

    /// Which record an AI Config has, if any.
    pub fn slot(&self, config: &str) -> Option<usize> {
        self.configs.iter().position(|c| c.config == config)
    }

    /// Notes what context `context` was served, if this is the first time and the
    /// evaluation finished before the cutoff. `variation_key` is `_ldMeta.variationKey`, or
    /// empty for the AI layer's default.
    pub fn record(&self, slot: usize, context: u64, variation_key: &str) {
        self.record_at(slot, context, variation_key, Instant::now());
    }

    /// [`ServedLog::record`] of an evaluation that finished at `at` (a worker's, reported
    /// a little later).
    pub fn record_at(&self, slot: usize, context: u64, variation_key: &str, at: Instant) {
        if self.cutoff.is_some_and(|cutoff| at >= cutoff) {
            return;
        }
        let log = &self.configs[slot];
        // Stored as index + 1, so that 0 can mean unseen.
        let code = match variation_key {
            "" => DEFAULT,
            key => log
                .keys
                .iter()
                .position(|k| k == key)
                .map_or(UNKNOWN, |i| i as u16 + 1),
        };
        if let Some(cell) = log.served.get(context as usize) {
            let _ = cell.compare_exchange(UNSEEN, code, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Per AI Config, per context: [`UNSEEN`], [`DEFAULT`], [`UNKNOWN`] or index + 1.
    pub fn records(&self) -> Vec<(String, Vec<u16>)> {
        self.configs
            .iter()
            .map(|c| {
                (
                    c.config.clone(),
                    c.served.iter().map(|s| s.load(Ordering::Relaxed)).collect(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_evaluation_wins_and_unknown_keys_are_marked() {
        let log = ServedLog::new(
            vec![("c".into(), vec!["disabled".into(), "a".into()])],
            4,
            None,
        );
        let slot = log.slot("c").unwrap();
        log.record(slot, 0, "a");
        log.record(slot, 0, "disabled");
        log.record(slot, 1, "");
        log.record(slot, 2, "zzz");
        assert_eq!(
            log.records(),
            vec![("c".to_owned(), vec![2, DEFAULT, UNKNOWN, UNSEEN])]
        );
    }

    #[test]
    fn nothing_is_recorded_after_the_cutoff_or_for_huge_populations() {
        let past = Instant::now() - Duration::from_millis(1);
        let log = ServedLog::new(vec![("c".into(), vec!["a".into()])], 2, Some(past));
        log.record(0, 0, "a");
        assert_eq!(log.records()[0].1, vec![UNSEEN, UNSEEN]);
        assert!(
            ServedLog::new(vec![("c".into(), vec![])], MAX_CONTEXTS + 1, None)
                .slot("c")
                .is_none()
        );
    }
}
