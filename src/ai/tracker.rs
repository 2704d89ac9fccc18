//! The per-run tracker: the custom events Python's AI SDK 1.2.0 (`ldai/tracker.py`
//! `LDAIConfigTracker`) sends, with the same keys, values, `data` fields and
//! at-most-once rules.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use launchdarkly_server_sdk::{Client, Context};
use serde::Serialize;
use uuid::Uuid;

/// Token counts of one generation. Each count is sent only when it is above zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub total: u64,
    pub input: u64,
    pub output: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedbackKind {
    Positive,
    Negative,
}

/// What every event of a config's trackers carries besides the run id; shared by all
/// trackers of one cached variation.
#[derive(Debug, PartialEq)]
pub(crate) struct TrackMeta {
    pub config_key: Arc<str>,
    /// Sent only when not empty, as in Python 1.x.
    pub variation_key: String,
    pub version: i64,
    pub model_name: String,
    pub provider_name: String,
}

/// The metrics a tracker records at most once. Success and error share one slot, so only
/// the first of them counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Once {
    Duration = 1,
    TimeToFirstToken = 2,
    Tokens = 4,
    Outcome = 8,
    Feedback = 16,
}

/// Which once-only metrics were recorded; atomic, so a tracker can be shared by the tasks
/// of one run (say, a stream reader timing the first token while another times the whole).
#[derive(Debug, Default)]
struct Recorded(AtomicU8);

impl Recorded {
    /// True the first time `metric` is claimed.
    fn claim(&self, metric: Once) -> bool {
        let bit = metric as u8;
        self.0.fetch_or(bit, Ordering::AcqRel) & bit == 0
    }
}

/// Records the metrics of one AI run; a new tracker is a new run with a new `runId`
/// (UUIDv4). Every method returns whether it recorded (false when the metric was already
/// recorded on this tracker, as Python 1.2.0 ignores repeats).
pub struct Tracker {
    client: Arc<Client>,
    context: Context,
    meta: Arc<TrackMeta>,
    run_id: Uuid,
    recorded: Recorded,
}

/// The SDK client has no `Debug`; the run and what its events carry do.
impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("run_id", &self.run_id)
            .field("meta", &self.meta)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

/// The `data` of every tracker event (`LDAIConfigTracker.__get_track_data`), plus
/// `toolKey` for tool calls.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    run_id: &'a Uuid,
    config_key: &'a str,
    version: i64,
    model_name: &'a str,
    provider_name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    variation_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_key: Option<&'a str>,
}

impl Tracker {
    pub(crate) fn new(client: Arc<Client>, context: Context, meta: Arc<TrackMeta>) -> Self {
        Tracker {
            client,
            context,
            meta,
            run_id: new_run_id(),
            recorded: Recorded::default(),
        }
    }

    /// A tracker for another run of the same config (Python's `config.create_tracker()`).
    pub fn new_run(&self) -> Tracker {
        Tracker::new(self.client.clone(), self.context.clone(), self.meta.clone())
    }

    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// `_ldMeta.variationKey` of the served variation ("" when it has none).
    pub fn variation_key(&self) -> &str {
        &self.meta.variation_key
    }

    /// `$ld:ai:duration:total`, at most once.
    pub fn track_duration(&self, millis: u64) -> bool {
        self.once(Once::Duration, "$ld:ai:duration:total", millis)
    }

    /// `$ld:ai:tokens:ttf`, at most once.
    pub fn track_time_to_first_token(&self, millis: u64) -> bool {
        self.once(Once::TimeToFirstToken, "$ld:ai:tokens:ttf", millis)
    }

    /// `$ld:ai:tokens:total`, `:input` and `:output`, each only if above zero; at most once
    /// (a first call with all zeros still uses up the slot, as in Python).
    pub fn track_tokens(&self, tokens: TokenUsage) -> bool {
        if !self.claim(Once::Tokens, "track_tokens") {
            return false;
        }
        let counts = [
            ("$ld:ai:tokens:total", tokens.total),
            ("$ld:ai:tokens:input", tokens.input),
            ("$ld:ai:tokens:output", tokens.output),
        ];
        for (key, count) in counts.into_iter().filter(|(_, count)| *count > 0) {
            self.send(key, count, None);
        }
        true
    }

    /// `$ld:ai:generation:success`, unless success or error was already recorded.
    pub fn track_success(&self) -> bool {
        self.once(Once::Outcome, "$ld:ai:generation:success", 1)
    }

    /// `$ld:ai:generation:error`, unless success or error was already recorded.
    pub fn track_error(&self) -> bool {
        self.once(Once::Outcome, "$ld:ai:generation:error", 1)
    }

    /// `$ld:ai:feedback:user:positive` or `:negative`, at most once.
    pub fn track_feedback(&self, kind: FeedbackKind) -> bool {
        let key = match kind {
            FeedbackKind::Positive => "$ld:ai:feedback:user:positive",
            FeedbackKind::Negative => "$ld:ai:feedback:user:negative",
        };
        self.once(Once::Feedback, key, 1)
    }

    /// `$ld:ai:tool_call` with `data.toolKey`; every call records (no once rule in 1.2.0).
    pub fn track_tool_call(&self, tool_key: &str) -> bool {
        self.send("$ld:ai:tool_call", 1, Some(tool_key));
        true
    }

    fn once(&self, metric: Once, key: &str, value: u64) -> bool {
        let recorded = self.claim(metric, key);
        if recorded {
            self.send(key, value, None);
        }
        recorded
    }

    /// Python logs a warning for every ignored repeat; so does this.
    fn claim(&self, metric: Once, what: &str) -> bool {
        let first = self.recorded.claim(metric);
        if !first {
            tracing::warn!(
                config_key = &*self.meta.config_key,
                run_id = %self.run_id,
                "skipping {what}: already recorded on this tracker; start a new run for another"
            );
        }
        first
    }

    fn send(&self, key: &str, value: u64, tool_key: Option<&str>) {
        let meta = &*self.meta;
        let data = EventData {
            run_id: &self.run_id,
            config_key: &meta.config_key,
            version: meta.version,
            model_name: &meta.model_name,
            provider_name: &meta.provider_name,
            variation_key: &meta.variation_key,
            tool_key,
        };
        self.client
            .track_metric(self.context.clone(), key, value as f64, &data);
    }
}

/// A UUIDv4 from the thread-local RNG: `Uuid::new_v4` would ask the OS for every run.
fn new_run_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_metric_is_claimed_once_and_outcomes_share_a_slot() {
        let recorded = Recorded::default();
        for metric in [
            Once::Duration,
            Once::TimeToFirstToken,
            Once::Tokens,
            Once::Feedback,
        ] {
            assert!(recorded.claim(metric), "{metric:?} first");
            assert!(!recorded.claim(metric), "{metric:?} again");
        }
        assert!(recorded.claim(Once::Outcome), "success or error, the first");
        assert!(!recorded.claim(Once::Outcome), "then neither");
    }

    #[test]
    fn run_ids_are_distinct_uuid_v4s() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.get_version_num(), 4);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn event_data_has_python_1_2_fields() {
        let run_id = new_run_id();
        let mut data = EventData {
            run_id: &run_id,
            config_key: "cfg",
            version: 3,
            model_name: "gpt-4o",
            provider_name: "openai",
            variation_key: "v-a",
            tool_key: None,
        };
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            serde_json::json!({"runId": run_id.to_string(), "configKey": "cfg", "version": 3,
                "modelName": "gpt-4o", "providerName": "openai", "variationKey": "v-a"})
        );
        data.variation_key = "";
        data.tool_key = Some("search");
        let value = serde_json::to_value(&data).unwrap();
        assert!(value.get("variationKey").is_none(), "omitted when empty");
        assert_eq!(value["toolKey"], "search");
    }
}
