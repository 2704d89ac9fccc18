//! Every event mock-ld received, and running counts of them per environment.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::value::RawValue;

use super::delivery::{Delivery, KindDelivery};
use super::wire::{Counter, Event};

/// Where a payload came from: the environment its SDK key selects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Source {
    pub project: String,
    /// The environment key, or `(unknown)` for a key mock-ld does not know. Such events are
    /// still accepted: answering 401 would disable that SDK's events for good.
    pub env: String,
}

/// One received event, as the SDK sent it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub project: String,
    pub env: String,
    pub payload_id: Option<String>,
    /// Unix epoch milliseconds.
    pub received_at: u64,
    #[serde(skip)]
    pub kind: String,
    #[serde(skip)]
    pub key: Option<String>,
    pub event: Box<RawValue>,
}

/// Counts a test asserts on. `flagVariations` comes from summary counters, which count
/// every evaluation once; feature events are counted apart in `featureEventVariations`
/// because a tracked evaluation produces both, and adding them would count it twice.
///
/// Each map by key holds at most [`crate::bounds::Bounds::max_stat_keys`] distinct keys
/// per environment (`flagVariations` and `featureEventVariations` count flag × variation
/// pairs); what arrives under a key a full map does not hold is counted in `overflow`.
/// Counts an SDK reports (summary counters, `droppedEvents`) are summed saturating: a
/// client's nonsense must not overflow them.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub payloads: u64,
    pub duplicate_payloads: u64,
    pub rejected_payloads: u64,
    pub events: u64,
    /// Events that were JSON but not of their kind's shape; stored raw all the same.
    pub malformed_events: u64,
    /// `droppedEvents` summed over diagnostic events (Python and Node report them).
    pub sdk_dropped_events: u64,
    /// Events no longer listed by `/admin/events` because the log reached its capacity in
    /// events or bytes; they are still in every count here.
    pub evicted_events: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub by_custom_key: BTreeMap<String, u64>,
    /// Sum of `metricValue` per custom event key: total tokens, total duration, …
    pub custom_metric_sums: BTreeMap<String, f64>,
    pub flag_variations: BTreeMap<String, BTreeMap<String, u64>>,
    pub feature_event_variations: BTreeMap<String, BTreeMap<String, u64>>,
    /// What the maps above had no room for. All zero unless a map reached its bound; then a
    /// key missing from it may have arrived all the same, so its absence proves nothing.
    pub overflow: Overflow,
}

/// Counts of events whose key found a full map (`--max-stat-keys`): they are in `events`
/// and `byKind` (if there was room for their kind), but not under their key.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overflow {
    /// Events of a kind `byKind` had no room for.
    pub kinds: u64,
    /// Custom events of a key `byCustomKey` had no room for.
    pub custom_events: u64,
    /// Their `metricValue`s, summed.
    pub custom_metric_sum: f64,
    /// Summary counts of a flag and variation `flagVariations` had no room for.
    pub flag_evaluations: u64,
    /// Feature events of a flag and variation `featureEventVariations` had no room for.
    pub feature_events: u64,
}

impl Overflow {
    /// True when every count by key is complete.
    pub fn is_empty(&self) -> bool {
        *self == Overflow::default()
    }

    fn add(&mut self, other: &Overflow) {
        self.kinds += other.kinds;
        self.custom_events += other.custom_events;
        self.custom_metric_sum += other.custom_metric_sum;
        self.flag_evaluations += other.flag_evaluations;
        self.feature_events += other.feature_events;
    }
}

/// One environment's [`Stats`] and how many flag × variation pairs its two nested maps hold
/// (their bound counts pairs, and counting them on each event would cost a walk).
#[derive(Default)]
struct Counts {
    stats: Stats,
    flag_pairs: usize,
    feature_pairs: usize,
    delivery: Delivery,
    /// When each flag was last evaluated, by a summary or feature event (receipt, ms), for
    /// the REST API's flag status; at most `max_keys` flags.
    last_requested: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts one event of `kind`, received at `received_at` (ms since the epoch).
    fn count_event(
        &mut self,
        incoming: &Incoming<'_>,
        kind: &str,
        received_at: u64,
        max_keys: usize,
    ) {
        let event = &incoming.event;
        if event.is_ok() {
            self.delivery.record(kind, incoming.date, received_at);
        }
        let stats = &mut self.stats;
        stats.events += 1;
        match room(&mut stats.by_kind, kind, max_keys) {
            Some(n) => *n += 1,
            None => stats.overflow.kinds += 1,
        }
        match event {
            Ok(Event::Custom(custom)) => {
                let value = custom.metric_value;
                if let Some(n) = room(&mut stats.by_custom_key, &custom.key, max_keys) {
                    *n += 1;
                    // Its keys are some of `by_custom_key`'s, so within the same bound.
                    if let Some(value) = value {
                        *stats
                            .custom_metric_sums
                            .entry(custom.key.to_string())
                            .or_default() += value;
                    }
                } else {
                    stats.overflow.custom_events += 1;
                    stats.overflow.custom_metric_sum += value.unwrap_or(0.0);
                }
            }
            Ok(Event::Feature(eval)) => {
                if let Some(at) = room(&mut self.last_requested, &eval.key, max_keys) {
                    *at = received_at;
                }
                let label = variation_label(eval.variation, false);
                let map = &mut stats.feature_event_variations;
                match pair_room(map, &mut self.feature_pairs, &eval.key, &label, max_keys) {
                    Some(n) => *n += 1,
                    None => stats.overflow.feature_events += 1,
                }
            }
            Ok(Event::Summary(summary)) => {
                for (flag, counts) in &summary.features {
                    if let Some(at) = room(&mut self.last_requested, flag, max_keys) {
                        *at = received_at;
                    }
                    for Counter {
                        variation,
                        count,
                        unknown,
                        ..
                    } in &counts.counters
                    {
                        let label = variation_label(*variation, *unknown);
                        let map = &mut stats.flag_variations;
                        match pair_room(map, &mut self.flag_pairs, flag, &label, max_keys) {
                            Some(n) => *n = n.saturating_add(*count),
                            None => {
                                stats.overflow.flag_evaluations =
                                    stats.overflow.flag_evaluations.saturating_add(*count)
                            }
                        }
                    }
                }
            }
            Ok(Event::Diagnostic { dropped_events }) => {
                stats.sdk_dropped_events = stats.sdk_dropped_events.saturating_add(*dropped_events);
            }
            Ok(_) => {}
            Err(_) => stats.malformed_events += 1,
        }
    }
}

/// `key`'s count in `map`, added if the map holds fewer than `max` keys; `None` when the
/// map is full without it.
fn room<'m, V: Default>(
    map: &'m mut BTreeMap<String, V>,
    key: &str,
    max: usize,
) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        if map.len() >= max {
            return None;
        }
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
}

/// The count of (`flag`, `label`) in a nested map holding `pairs` pairs, added if there
/// are fewer than `max`; `None` when full without it.
fn pair_room<'m>(
    map: &'m mut BTreeMap<String, BTreeMap<String, u64>>,
    pairs: &mut usize,
    flag: &str,
    label: &str,
    max: usize,
) -> Option<&'m mut u64> {
    let held = map.get(flag).is_some_and(|by| by.contains_key(label));
    if !held {
        if *pairs >= max {
            return None;
        }
        *pairs += 1;
    }
    let by_variation = map.entry(flag.to_owned()).or_default();
    Some(by_variation.entry(label.to_owned()).or_default())
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        self.payloads += other.payloads;
        self.duplicate_payloads += other.duplicate_payloads;
        self.rejected_payloads += other.rejected_payloads;
        self.events += other.events;
        self.malformed_events += other.malformed_events;
        self.sdk_dropped_events = self
            .sdk_dropped_events
            .saturating_add(other.sdk_dropped_events);
        self.evicted_events += other.evicted_events;
        add_counts(&mut self.by_kind, &other.by_kind);
        add_counts(&mut self.by_custom_key, &other.by_custom_key);
        for (key, sum) in &other.custom_metric_sums {
            *self.custom_metric_sums.entry(key.clone()).or_default() += sum;
        }
        for (flag, counts) in &other.flag_variations {
            add_counts(
                self.flag_variations.entry(flag.clone()).or_default(),
                counts,
            );
        }
        for (flag, counts) in &other.feature_event_variations {
            add_counts(
                self.feature_event_variations
                    .entry(flag.clone())
                    .or_default(),
                counts,
            );
        }
        self.overflow.add(&other.overflow);
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        let total = into.entry(key.clone()).or_default();
        *total = total.saturating_add(*n);
    }
}

/// The variation index as a string key; `default` when the SDK served its default value,
/// `unknown` when the flag did not exist.
fn variation_label(variation: Option<i64>, unknown: bool) -> String {
    match (variation, unknown) {
        (_, true) => "unknown".to_owned(),
        (Some(index), false) => index.to_string(),
        (None, false) => "default".to_owned(),
    }
}

/// What became of one payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored { events: usize },
    Duplicate,
}

/// A parsed payload on its way into the log.
pub struct Payload<'a> {
    pub source: Source,
    pub payload_id: Option<String>,
    pub events: Vec<Incoming<'a>>,
}

/// One event of a payload.
pub struct Incoming<'a> {
    /// As sent (or made servable), which `/admin/events` lists.
    pub raw: &'a RawValue,
    pub event: EventResult<'a>,
    /// When it was made, ms since the epoch, as far as it says ([`super::delivery`]).
    pub date: Option<f64>,
}

impl<'a> Incoming<'a> {
    /// `raw`, read as its kind.
    pub fn parse(raw: &'a RawValue) -> Self {
        let (event, date) = Event::parse_dated(raw);
        Incoming { raw, event, date }
    }
}

/// `/admin/events/stats`: the counts, and the delivery latency per kind unless the query
/// leaves it out (`delivery=false`: encoding the histograms costs more than the counts,
/// and a client polling for counts does not need them).
#[derive(Serialize)]
pub struct StatsAnswer {
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<BTreeMap<String, KindDelivery>>,
}

/// An event read as its kind, or why it could not be.
pub type EventResult<'a> = Result<Event<'a>, super::wire::EventError>;

#[derive(Default)]
struct Inner {
    events: VecDeque<StoredEvent>,
    /// What `events` holds, by [`StoredEvent::footprint`].
    bytes: usize,
    seen: SeenPayloads,
    stats: BTreeMap<Source, Counts>,
}

/// The payload ids of the newest [`SEEN_PAYLOADS`] payloads, as hashes: a retry comes a
/// second after its first try, so a window is enough, and a hash bounds each id's cost.
#[derive(Default)]
struct SeenPayloads {
    hashes: HashSet<u64>,
    order: VecDeque<u64>,
    hasher: RandomState,
}

/// Payload ids remembered for deduplication (a few MB).
const SEEN_PAYLOADS: usize = 100_000;

impl SeenPayloads {
    /// False when `id` was seen (within the window).
    fn insert(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        if !self.hashes.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > SEEN_PAYLOADS {
            if let Some(oldest) = self.order.pop_front() {
                self.hashes.remove(&oldest);
            }
        }
        true
    }
}

/// The received events, in arrival order, and their counts. Counts cover every event; the
/// list keeps the newest ones within `max_events` and `max_bytes`, so a run of millions of
/// events stays in bounded memory.
pub struct EventLog {
    inner: Mutex<Inner>,
    max_events: usize,
    max_bytes: usize,
    /// Distinct keys per map of counts, per environment.
    max_keys: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::with_capacity(DEFAULT_CAPACITY)
    }
}

/// Events `/admin/events` can list by default (about 1 KB each, so the byte bound,
/// [`crate::bounds::Bounds::max_stored_event_bytes`], usually comes first).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// Which events a query selects; every filter is optional.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub project: Option<String>,
    pub env: Option<String>,
    pub kind: Option<String>,
    pub key: Option<String>,
    /// `/admin/events/stats` only: `false` leaves the delivery latency out.
    pub delivery: Option<bool>,
}

impl Filter {
    fn selects_source(&self, source: &Source) -> bool {
        self.project.as_ref().is_none_or(|p| *p == source.project)
            && self.env.as_ref().is_none_or(|e| *e == source.env)
    }

    fn selects(&self, event: &StoredEvent) -> bool {
        self.project.as_ref().is_none_or(|p| *p == event.project)
            && self.env.as_ref().is_none_or(|e| *e == event.env)
            && self.kind.as_ref().is_none_or(|k| *k == event.kind)
            && self
                .key
                .as_ref()
                .is_none_or(|k| event.key.as_ref() == Some(k))
    }
}

impl StoredEvent {
    /// The bytes it holds, bookkeeping included, as the byte bound counts them.
    fn footprint(&self) -> usize {
        std::mem::size_of::<StoredEvent>()
            + self.event.get().len()
            + self.project.len()
            + self.env.len()
            + self.payload_id.as_ref().map_or(0, String::len)
            + self.kind.len()
            + self.key.as_ref().map_or(0, String::len)
    }
}

/// `{"items":[…],"totalCount":N}`, serialized straight from the log: raw events are copied
/// as they are, never parsed into values.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing<'a> {
    items: Vec<&'a StoredEvent>,
    total_count: usize,
}

impl EventLog {
    /// A log listing at most `capacity` events, within the default byte bound.
    pub fn with_capacity(capacity: usize) -> Self {
        let bytes = crate::bounds::Bounds::default().max_stored_event_bytes;
        EventLog::with_limits(capacity, bytes)
    }

    /// A log listing at most `max_events` events holding at most `max_bytes`.
    pub fn with_limits(max_events: usize, max_bytes: usize) -> Self {
        EventLog {
            inner: Mutex::default(),
            max_events,
            max_bytes,
            max_keys: crate::bounds::Bounds::default().max_stat_keys,
        }
    }

    /// The same log, its maps of counts holding at most `max_keys` distinct keys each per
    /// environment ([`crate::bounds::Bounds::max_stat_keys`]).
    pub fn with_max_stat_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records a payload unless its payload id was seen before (an SDK's retry);
    /// `received_at` is when it arrived, ms since the epoch.
    pub fn record(&self, payload: Payload<'_>, received_at: u64) -> Outcome {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let counts = inner.stats.entry(payload.source.clone()).or_default();
        if let Some(id) = &payload.payload_id {
            if !inner.seen.insert(id) {
                counts.stats.duplicate_payloads += 1;
                return Outcome::Duplicate;
            }
        }
        counts.stats.payloads += 1;
        let count = payload.events.len();
        // Events the list could not keep anyway are counted, not copied.
        let listed_from = self.first_kept(&payload.events);
        let mut stored = Vec::with_capacity(count - listed_from);
        for (i, incoming) in payload.events.into_iter().enumerate() {
            let (kind, key) = kind_and_key(&incoming.event);
            counts.count_event(&incoming, &kind, received_at, self.max_keys);
            if i < listed_from {
                counts.stats.evicted_events += 1;
                continue;
            }
            stored.push(StoredEvent {
                project: payload.source.project.clone(),
                env: payload.source.env.clone(),
                payload_id: payload.payload_id.clone(),
                received_at,
                kind,
                key,
                event: incoming.raw.to_owned(),
            });
        }
        for event in stored {
            inner.bytes += event.footprint();
            inner.events.push_back(event);
        }
        self.evict_beyond_capacity(inner);
        Outcome::Stored { events: count }
    }

    /// The index of the first of `events` that the list can hold, counting from the newest;
    /// the raw JSON stands for each event's size.
    fn first_kept(&self, events: &[Incoming<'_>]) -> usize {
        let mut bytes = 0;
        let kept = events
            .iter()
            .rev()
            .take(self.max_events)
            .take_while(|incoming| {
                bytes += incoming.raw.get().len();
                bytes <= self.max_bytes
            })
            .count();
        events.len() - kept
    }

    fn evict_beyond_capacity(&self, inner: &mut Inner) {
        while inner.events.len() > self.max_events || inner.bytes > self.max_bytes {
            let Some(oldest) = inner.events.pop_front() else {
                break;
            };
            inner.bytes = inner.bytes.saturating_sub(oldest.footprint());
            let source = Source {
                project: oldest.project,
                env: oldest.env,
            };
            inner.stats.entry(source).or_default().stats.evicted_events += 1;
        }
    }

    /// When each flag was last evaluated in one environment, as its SDKs' events say
    /// (receipt time, ms since the epoch).
    pub fn last_requested(&self, project: &str, env: &str) -> BTreeMap<String, u64> {
        let source = Source {
            project: project.to_owned(),
            env: env.to_owned(),
        };
        self.lock()
            .stats
            .get(&source)
            .map(|c| c.last_requested.clone())
            .unwrap_or_default()
    }

    pub fn reject(&self, source: Source) {
        self.lock()
            .stats
            .entry(source)
            .or_default()
            .stats
            .rejected_payloads += 1;
    }

    /// Stored events the filter selects, serialized as `{"items":[…],"totalCount":N}`.
    pub fn query_json(&self, filter: &Filter) -> serde_json::Result<Vec<u8>> {
        let inner = self.lock();
        let items: Vec<&StoredEvent> = inner.events.iter().filter(|e| filter.selects(e)).collect();
        let total_count = items.len();
        serde_json::to_vec(&Listing { items, total_count })
    }

    pub fn stats(&self, filter: &Filter) -> Stats {
        self.merged(filter, false).0
    }

    /// What `/admin/events/stats` answers: the counts and the delivery latencies of one
    /// moment, so that they agree.
    pub fn stats_answer(&self, filter: &Filter) -> StatsAnswer {
        let with_delivery = filter.delivery != Some(false);
        let (stats, delivery) = self.merged(filter, with_delivery);
        StatsAnswer {
            stats,
            delivery: with_delivery.then(|| delivery.report()),
        }
    }

    /// The counts of the environments the filter selects, and their delivery latencies
    /// when asked for (merging histograms costs more than adding counts).
    fn merged(&self, filter: &Filter, with_delivery: bool) -> (Stats, Delivery) {
        let inner = self.lock();
        let mut stats = Stats::default();
        let mut delivery = Delivery::default();
        for (_, counts) in inner
            .stats
            .iter()
            .filter(|(source, _)| filter.selects_source(source))
        {
            stats.merge(&counts.stats);
            if with_delivery {
                delivery.merge(&counts.delivery);
            }
        }
        (stats, delivery)
    }

    /// Forgets every event, count and payload id.
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }
}

fn kind_and_key(event: &EventResult<'_>) -> (String, Option<String>) {
    match event {
        Ok(Event::Feature(e) | Event::Debug(e)) => (event_kind(event), Some(e.key.to_string())),
        Ok(Event::Custom(c)) => (event_kind(event), Some(c.key.to_string())),
        _ => (event_kind(event), None),
    }
}

fn event_kind(event: &EventResult<'_>) -> String {
    match event {
        Ok(event) => event.kind().to_owned(),
        Err(_) => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::split_payload;
    use super::*;

    fn payload<'a>(body: &'a [u8], id: Option<&str>) -> Payload<'a> {
        let events = split_payload(body)
            .unwrap()
            .into_iter()
            .map(Incoming::parse)
            .collect();
        Payload {
            source: Source {
                project: "default".into(),
                env: "test".into(),
            },
            payload_id: id.map(str::to_owned),
            events,
        }
    }

    const BODY: &[u8] = br#"[
      {"kind":"custom","key":"$ld:ai:tokens:total","metricValue":30,"context":{"kind":"user","key":"u"}},
      {"kind":"custom","key":"$ld:ai:tokens:total","metricValue":12,"context":{"kind":"user","key":"v"}},
      {"kind":"feature","key":"cfg","variation":1,"version":2,"context":{"kind":"user","key":"u"}},
      {"kind":"summary","features":{"cfg":{"counters":[{"variation":0,"count":6},{"variation":1,"count":4}]}}},
      {"kind":"custom"}
    ]"#;

    #[test]
    fn stats_count_kinds_keys_and_summary_variations() {
        let log = EventLog::default();
        assert_eq!(
            log.record(payload(BODY, Some("p1")), 1),
            Outcome::Stored { events: 5 }
        );
        let stats = log.stats(&Filter::default());
        assert_eq!(stats.payloads, 1);
        assert_eq!(stats.events, 5);
        assert_eq!(stats.by_kind["custom"], 2);
        assert_eq!(stats.by_kind["malformed"], 1);
        assert_eq!(stats.malformed_events, 1);
        assert_eq!(stats.by_custom_key["$ld:ai:tokens:total"], 2);
        assert_eq!(stats.custom_metric_sums["$ld:ai:tokens:total"], 42.0);
        assert_eq!(stats.flag_variations["cfg"]["0"], 6);
        assert_eq!(stats.flag_variations["cfg"]["1"], 4);
        assert_eq!(stats.feature_event_variations["cfg"]["1"], 1);
    }

    #[test]
    fn counts_by_key_stop_at_their_bound_and_count_the_rest_as_overflow() {
        let log = EventLog::default().with_max_stat_keys(2);
        let mut events = Vec::new();
        for i in 0..5 {
            events.push(format!(
                r#"{{"kind":"custom","key":"k{i}","metricValue":{i},"context":{{"kind":"user","key":"u"}}}}"#
            ));
            events.push(format!(
                r#"{{"kind":"feature","key":"f{i}","variation":0,"version":1,"context":{{"kind":"user","key":"u"}}}}"#
            ));
        }
        events.push(
            r#"{"kind":"summary","features":{"f0":{"counters":[{"variation":0,"count":3},{"variation":1,"count":4},{"variation":2,"count":5}]}}}"#
                .to_owned(),
        );
        events.push(r#"{"kind":"made-up"}"#.to_owned());
        let body = format!("[{}]", events.join(","));
        log.record(payload(body.as_bytes(), Some("p1")), 1);
        // Keys already held keep counting.
        log.record(payload(BODY, Some("p2")), 2);
        let stats = log.stats(&Filter::default());
        assert_eq!(stats.events, 12 + 5);
        assert_eq!(
            stats.by_kind.keys().collect::<Vec<_>>(),
            ["custom", "feature"]
        );
        assert_eq!(stats.by_kind["custom"], 7);
        assert_eq!(stats.by_custom_key.keys().collect::<Vec<_>>(), ["k0", "k1"]);
        assert_eq!(stats.custom_metric_sums["k1"], 1.0);
        assert_eq!(stats.feature_event_variations.len(), 2);
        assert_eq!(stats.flag_variations["f0"].len(), 2);
        let overflow = &stats.overflow;
        assert_eq!(overflow.kinds, 4, "two summaries, made-up, malformed");
        assert_eq!(
            overflow.custom_events,
            3 + 2,
            "k2..k4 and BODY's custom key"
        );
        assert_eq!(overflow.custom_metric_sum, 2.0 + 3.0 + 4.0 + 30.0 + 12.0);
        assert_eq!(overflow.feature_events, 3 + 1, "f2..f4 and BODY's cfg");
        assert_eq!(
            overflow.flag_evaluations,
            5 + 6 + 4,
            "f0/2 and BODY's cfg/0, cfg/1"
        );
        assert!(!overflow.is_empty());
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["overflow"]["customEvents"], 5);
        log.clear();
        assert!(log.stats(&Filter::default()).overflow.is_empty());
    }

    #[test]
    fn each_events_delivery_is_its_receipt_minus_its_date_and_odd_dates_are_counted_apart() {
        let log = EventLog::default();
        let now: u64 = 1_800_000_000_000;
        let body = format!(
            r#"[{{"kind":"custom","key":"a","creationDate":{c1}}},
                {{"kind":"custom","key":"a","creationDate":{c2}}},
                {{"kind":"custom","key":"a"}},
                {{"kind":"index","creationDate":{ahead},"context":{{"kind":"user","key":"u"}}}},
                {{"kind":"summary","startDate":1,"endDate":{c2},"features":{{}}}},
                {{"kind":"custom","creationDate":{c1}}}]"#,
            c1 = now - 40,
            c2 = now - 2000,
            ahead = now + 5,
        );
        log.record(payload(body.as_bytes(), Some("p1")), now);
        let answer = log.stats_answer(&Filter::default());
        let delivery = answer.delivery.unwrap();
        let custom = &delivery["custom"];
        assert_eq!(
            (custom.count, custom.undated),
            (2, 1),
            "the malformed one is in neither"
        );
        assert!((custom.p50_ms - 40.0).abs() < 0.1, "{custom:?}");
        assert!((custom.max_ms - 2000.0).abs() < 2.0, "{custom:?}");
        assert_eq!((delivery["index"].count, delivery["index"].future), (0, 1));
        let summary = &delivery["summary"];
        assert_eq!(summary.count, 1);
        assert!(
            (summary.p50_ms - 2000.0).abs() < 2.0,
            "from endDate: {summary:?}"
        );
        assert_eq!(answer.stats.by_kind["custom"], 3);
        let without = Filter {
            delivery: Some(false),
            ..Filter::default()
        };
        assert!(log.stats_answer(&without).delivery.is_none());
        let json = serde_json::to_value(log.stats_answer(&Filter::default())).unwrap();
        assert_eq!(json["delivery"]["custom"]["count"], 2);
        assert_eq!(json["byKind"]["custom"], 3, "the counts sit beside it");
    }

    #[test]
    fn a_retried_payload_is_counted_once() {
        let log = EventLog::default();
        log.record(payload(BODY, Some("p1")), 1);
        assert_eq!(log.record(payload(BODY, Some("p1")), 2), Outcome::Duplicate);
        let stats = log.stats(&Filter::default());
        assert_eq!(
            (stats.payloads, stats.duplicate_payloads, stats.events),
            (1, 1, 5)
        );
    }

    #[test]
    fn the_list_keeps_the_newest_events_and_counts_keep_all() {
        let log = EventLog::with_capacity(3);
        log.record(payload(BODY, Some("p1")), 1);
        let stats = log.stats(&Filter::default());
        assert_eq!((stats.events, stats.evicted_events), (5, 2));
        assert_eq!(stats.by_custom_key["$ld:ai:tokens:total"], 2);
        let json: serde_json::Value =
            serde_json::from_slice(&log.query_json(&Filter::default()).unwrap()).unwrap();
        assert_eq!(json["totalCount"], 3);
        assert_eq!(
            json["items"][0]["event"]["kind"], "feature",
            "the oldest two were evicted"
        );
        log.record(payload(BODY, Some("p2")), 2);
        let stats = log.stats(&Filter::default());
        assert_eq!((stats.events, stats.evicted_events), (10, 7));
        assert_eq!(log.lock().events.len(), 3);
    }

    #[test]
    fn a_log_of_capacity_zero_counts_everything_and_lists_nothing() {
        let log = EventLog::with_capacity(0);
        log.record(payload(BODY, Some("p1")), 1);
        let stats = log.stats(&Filter::default());
        assert_eq!((stats.events, stats.evicted_events), (5, 5));
        assert_eq!(stats.by_custom_key["$ld:ai:tokens:total"], 2);
        assert!(log.lock().events.is_empty());
    }

    #[test]
    fn the_list_keeps_within_its_bytes() {
        let one = EventLog::default();
        one.record(payload(BODY, Some("p0")), 1);
        let five = one.lock().bytes;
        let bound = five / 2;
        let log = EventLog::with_limits(usize::MAX, bound);
        for id in ["p1", "p2"] {
            log.record(payload(BODY, Some(id)), 1);
            let listed = log.lock().events.len();
            assert!((1..5).contains(&listed), "{listed}");
            assert!(log.lock().bytes <= bound);
        }
        let stats = log.stats(&Filter::default());
        let listed = log.lock().events.len() as u64;
        assert_eq!((stats.events, stats.evicted_events), (10, 10 - listed));
    }

    #[test]
    fn payload_ids_are_remembered_within_a_window() {
        let log = EventLog::default();
        for i in 0..=SEEN_PAYLOADS {
            log.record(payload(b"[]", Some(&format!("p{i}"))), 1);
        }
        assert_eq!(
            log.record(payload(b"[]", Some("p1")), 2),
            Outcome::Duplicate
        );
        assert_eq!(
            log.record(payload(b"[]", Some("p0")), 2),
            Outcome::Stored { events: 0 },
            "forgotten past the window"
        );
        assert_eq!(log.lock().seen.order.len(), SEEN_PAYLOADS);
    }

    #[test]
    fn odd_events_are_listed_as_json_every_reader_parses() {
        let log = EventLog::default();
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body = format!(
            r#"[{{"kind":"custom","key":"k\ud800","data":"\udfff"}},{{"kind":"custom","key":"n","metricValue":1e999}},{{"kind":"custom","key":"d","data":{deep}}}]"#
        );
        let raw = split_payload(body.as_bytes()).unwrap();
        let fixed: Vec<_> = raw
            .iter()
            .map(|r| super::super::servable::servable_raw(r))
            .collect();
        let events = raw
            .iter()
            .zip(&fixed)
            .map(|(r, f)| Incoming::parse(f.as_deref().unwrap_or(r)))
            .collect();
        let source = Source {
            project: "default".into(),
            env: "test".into(),
        };
        log.record(
            Payload {
                source,
                payload_id: None,
                events,
            },
            1,
        );
        let json: serde_json::Value =
            serde_json::from_slice(&log.query_json(&Filter::default()).unwrap()).unwrap();
        assert_eq!(json["totalCount"], 3);
        assert_eq!(json["items"][0]["event"]["key"], "k\u{fffd}");
        assert_eq!(json["items"][1]["event"]["metricValue"], "1e999");
        assert!(json["items"][2]["event"]["data"].is_array());
        assert_eq!(log.stats(&Filter::default()).by_custom_key["k\u{fffd}"], 1);
    }

    #[test]
    fn counts_an_sdk_reports_saturate() {
        let log = EventLog::default();
        let body = format!(
            r#"[{{"kind":"summary","features":{{"f":{{"counters":[{{"variation":1,"count":{max}}},{{"variation":1,"count":{max}}}]}}}}}},
                {{"kind":"diagnostic","droppedEvents":{max}}},{{"kind":"diagnostic","droppedEvents":1}}]"#,
            max = u64::MAX
        );
        log.record(payload(body.as_bytes(), None), 1);
        let mut other = payload(body.as_bytes(), None);
        other.source.env = "production".into();
        log.record(other, 1);
        let stats = log.stats(&Filter::default());
        assert_eq!(stats.flag_variations["f"]["1"], u64::MAX);
        assert_eq!(stats.sdk_dropped_events, u64::MAX);
    }

    #[test]
    fn queries_filter_by_env_kind_and_key() {
        let log = EventLog::default();
        log.record(payload(BODY, None), 7);
        let filter = Filter {
            kind: Some("custom".into()),
            key: Some("$ld:ai:tokens:total".into()),
            ..Filter::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&log.query_json(&filter).unwrap()).unwrap();
        assert_eq!(json["totalCount"], 2);
        assert_eq!(json["items"][0]["event"]["metricValue"], 30);
        assert_eq!(json["items"][0]["receivedAt"], 7);
        let other_env = Filter {
            env: Some("production".into()),
            ..Filter::default()
        };
        assert_eq!(log.stats(&other_env).events, 0);
        log.clear();
        assert_eq!(log.stats(&Filter::default()).events, 0);
    }
}
