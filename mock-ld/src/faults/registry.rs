//! The faults switched on, each counting what it refused while active, and the last ones
//! switched off with their final counts. Streams watch [`Faults::watch`] to learn of a
//! change at once; every other endpoint asks on each request, which costs one atomic load
//! while no fault is on.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::spec::{Fault, FaultKind};
use crate::clock::now_millis;

/// At most this many faults on at once: a client that adds without removing is refused.
pub const MAX_ACTIVE: usize = 256;
/// Faults switched off that `GET /admin/faults` still lists, newest kept.
pub const MAX_ENDED: usize = 1_000;
/// Refused events payloads remembered by id (as hashes: an id is the client's header, up
/// to hyper's 400 KB), to tell a payload the SDK sent again later.
const MAX_REFUSED_IDS: usize = 100_000;

/// What one fault refused or delayed while it was on.
#[derive(Debug, Default)]
pub struct Counts {
    requests: AtomicU64,
    payloads: AtomicU64,
    events: AtomicU64,
}

/// [`Counts`] read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CountsRead {
    /// Requests it answered or held (an events payload counts here too).
    pub requests: u64,
    /// Events payloads it refused.
    pub payloads: u64,
    /// Events in those payloads.
    pub events: u64,
}

/// A fault that is on.
#[derive(Debug)]
pub struct Active {
    pub id: u64,
    pub fault: Fault,
    pub started_ms: u64,
    counts: Counts,
    /// Cancelled when it is switched off: what it holds is let go.
    pub off: CancellationToken,
}

impl Active {
    /// One request it applied to.
    pub fn count_request(&self) {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// One events payload of `events` events it refused (its request counted too).
    pub fn count_payload(&self, events: u64) {
        self.count_request();
        self.counts.payloads.fetch_add(1, Ordering::Relaxed);
        self.counts.events.fetch_add(events, Ordering::Relaxed);
    }

    fn record(&self, ended_ms: Option<u64>) -> Record {
        Record {
            id: self.id,
            fault: self.fault.clone(),
            started: self.started_ms,
            ended: ended_ms,
            counts: CountsRead {
                requests: self.counts.requests.load(Ordering::Relaxed),
                payloads: self.counts.payloads.load(Ordering::Relaxed),
                events: self.counts.events.load(Ordering::Relaxed),
            },
        }
    }
}

/// A fault as `/admin/faults` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: u64,
    #[serde(flatten)]
    pub fault: Fault,
    /// When it was switched on, ms since the epoch.
    pub started: u64,
    /// When it was switched off; absent while on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
    pub counts: CountsRead,
}

/// Events refused by faults in one environment, and how many of those payloads the SDK
/// sent again and mock-ld took (the same `X-LaunchDarkly-Payload-ID`). An SDK retries a
/// refused payload once under the same id: that is a second attempt of one payload, so
/// `refusedEvents - retriedEvents` is what the refusals lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefusedEvents {
    pub project: String,
    pub environment: String,
    /// Requests refused, retries included.
    pub refused_attempts: u64,
    /// Distinct payloads refused (one without a payload id counts at each attempt).
    pub refused_payloads: u64,
    /// Events in those payloads.
    pub refused_events: u64,
    /// Of those, custom events: what the AI SDKs' trackers send, and what the harness
    /// counts as tracked.
    pub refused_custom_events: u64,
    /// Of those payloads, the ones mock-ld took later, and their events.
    pub retried_payloads: u64,
    pub retried_events: u64,
    pub retried_custom_events: u64,
}

impl RefusedEvents {
    /// What was refused and retried after `before` was read (a mock-ld shared by earlier
    /// runs keeps counting).
    pub fn since(&self, before: &RefusedEvents) -> RefusedEvents {
        RefusedEvents {
            project: self.project.clone(),
            environment: self.environment.clone(),
            refused_attempts: self
                .refused_attempts
                .saturating_sub(before.refused_attempts),
            refused_payloads: self
                .refused_payloads
                .saturating_sub(before.refused_payloads),
            refused_events: self.refused_events.saturating_sub(before.refused_events),
            refused_custom_events: self
                .refused_custom_events
                .saturating_sub(before.refused_custom_events),
            retried_payloads: self
                .retried_payloads
                .saturating_sub(before.retried_payloads),
            retried_events: self.retried_events.saturating_sub(before.retried_events),
            retried_custom_events: self
                .retried_custom_events
                .saturating_sub(before.retried_custom_events),
        }
    }
}

/// The events of one payload: all of them, and the custom ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCount {
    pub all: u64,
    pub custom: u64,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    active: Vec<Arc<Active>>,
    ended: VecDeque<Record>,
    refused: HashMap<(String, String), RefusedEvents>,
    /// Refused payload ids' hashes → their environment and event count, oldest first out.
    refused_ids: HashMap<u64, ((String, String), EventCount)>,
    refused_order: VecDeque<u64>,
    hasher: RandomState,
}

/// Every fault of one mock-ld.
pub struct Faults {
    registry: Mutex<Registry>,
    /// Whether any fault is on: the one load on every SDK request while none is.
    any: AtomicBool,
    changed: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            registry: Mutex::default(),
            any: AtomicBool::new(false),
            changed: watch::channel(0).0,
        }
    }
}

/// Why a fault could not be switched on.
#[derive(Debug, PartialEq)]
pub struct TooMany;

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches `fault` on; its record.
    pub fn add(&self, fault: Fault) -> Result<Record, TooMany> {
        let mut r = self.lock();
        if r.active.len() >= MAX_ACTIVE {
            return Err(TooMany);
        }
        r.next_id += 1;
        let active = Arc::new(Active {
            id: r.next_id,
            fault,
            started_ms: now_millis(),
            counts: Counts::default(),
            off: CancellationToken::new(),
        });
        tracing::info!(id = active.id, kind = active.fault.kind.name(), "fault on");
        let record = active.record(None);
        r.active.push(active);
        self.any.store(true, Ordering::Release);
        drop(r);
        self.changed.send_modify(|generation| *generation += 1);
        Ok(record)
    }

    /// Switches fault `id` off; its final record, or `None` when no such fault is on.
    pub fn remove(&self, id: u64) -> Option<Record> {
        let mut r = self.lock();
        let at = r.active.iter().position(|a| a.id == id)?;
        let active = r.active.remove(at);
        let record = Self::end(&mut r, &active);
        self.any.store(!r.active.is_empty(), Ordering::Release);
        drop(r);
        self.changed.send_modify(|generation| *generation += 1);
        Some(record)
    }

    /// Switches every fault off; their final records.
    pub fn clear(&self) -> Vec<Record> {
        let mut r = self.lock();
        let active = std::mem::take(&mut r.active);
        let records = active.iter().map(|a| Self::end(&mut r, a)).collect();
        self.any.store(false, Ordering::Release);
        drop(r);
        self.changed.send_modify(|generation| *generation += 1);
        records
    }

    fn end(r: &mut Registry, active: &Active) -> Record {
        active.off.cancel();
        let record = active.record(Some(now_millis()));
        tracing::info!(id = record.id, kind = record.fault.kind.name(), counts = ?record.counts, "fault off");
        if r.ended.len() >= MAX_ENDED {
            r.ended.pop_front();
        }
        r.ended.push_back(record.clone());
        record
    }

    /// The faults on, then the last ones switched off.
    pub fn records(&self) -> (Vec<Record>, Vec<Record>) {
        let r = self.lock();
        let active = r.active.iter().map(|a| a.record(None)).collect();
        (active, r.ended.iter().cloned().collect())
    }

    /// The first fault on of one of `kinds` in an environment (the oldest wins).
    pub fn in_environment(
        &self,
        project: &str,
        environment: &str,
        kinds: &[FaultKind],
    ) -> Option<Arc<Active>> {
        self.find(|f| kinds.contains(&f.kind) && f.in_environment(project, environment))
    }

    /// The first fault on for calls of `model` on the provider.
    pub fn on_model(&self, model: &str) -> Option<Arc<Active>> {
        self.find(|f| f.on_model(model))
    }

    fn find(&self, matches: impl Fn(&Fault) -> bool) -> Option<Arc<Active>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.lock()
            .active
            .iter()
            .find(|a| matches(&a.fault))
            .cloned()
    }

    /// A receiver that changes whenever a fault is switched on or off.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// An events payload `fault` refused: counted against the fault and the environment,
    /// and its id remembered to notice a retry.
    pub fn refused(
        &self,
        fault: &Active,
        env: (&str, &str),
        payload_id: Option<&str>,
        events: EventCount,
    ) {
        fault.count_payload(events.all);
        let key = (env.0.to_owned(), env.1.to_owned());
        let mut r = self.lock();
        let hash = payload_id.map(|id| r.hasher.hash_one(id));
        let first_refusal = hash.is_none_or(|h| !r.refused_ids.contains_key(&h));
        let totals = r
            .refused
            .entry(key.clone())
            .or_insert_with(|| RefusedEvents {
                project: key.0.clone(),
                environment: key.1.clone(),
                ..RefusedEvents::default()
            });
        totals.refused_attempts += 1;
        if !first_refusal {
            return;
        }
        totals.refused_payloads += 1;
        totals.refused_events += events.all;
        totals.refused_custom_events += events.custom;
        let Some(hash) = hash else { return };
        r.refused_ids.insert(hash, (key, events));
        r.refused_order.push_back(hash);
        while r.refused_order.len() > MAX_REFUSED_IDS {
            if let Some(old) = r.refused_order.pop_front() {
                r.refused_ids.remove(&old);
            }
        }
    }

    /// An events payload mock-ld took: when its id was refused before, it is a retry.
    pub fn received(&self, payload_id: Option<&str>) {
        let Some(id) = payload_id else { return };
        let mut r = self.lock();
        if r.refused_ids.is_empty() {
            return;
        }
        let hash = r.hasher.hash_one(id);
        let Some((key, events)) = r.refused_ids.remove(&hash) else {
            return;
        };
        if let Some(totals) = r.refused.get_mut(&key) {
            totals.retried_payloads += 1;
            totals.retried_events += events.all;
            totals.retried_custom_events += events.custom;
        }
    }

    /// Refused events per environment, in a stable order.
    pub fn refused_events(&self) -> Vec<RefusedEvents> {
        let mut all: Vec<RefusedEvents> = self.lock().refused.values().cloned().collect();
        all.sort_by(|a, b| (&a.project, &a.environment).cmp(&(&b.project, &b.environment)));
        all
    }

    /// Forgets refused-event totals and ended faults (`/admin/reset`); faults on stay on.
    pub fn reset(&self) {
        let mut r = self.lock();
        r.ended.clear();
        r.refused.clear();
        r.refused_ids.clear();
        r.refused_order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::spec::FaultSpec;

    /// `n` events, of which one less than half are custom.
    fn count(n: u64) -> EventCount {
        EventCount {
            all: n,
            custom: n / 2,
        }
    }

    fn fault(json: &str) -> Fault {
        serde_json::from_str::<FaultSpec>(json)
            .unwrap()
            .check()
            .unwrap()
    }

    #[test]
    fn on_off_and_counts() {
        let faults = Faults::default();
        assert!(faults
            .in_environment("default", "test", &[FaultKind::EventsError])
            .is_none());
        let on = faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        let active = faults
            .in_environment(
                "default",
                "test",
                &[FaultKind::EventsError, FaultKind::SdkUnavailable],
            )
            .unwrap();
        faults.refused(&active, ("default", "test"), Some("p1"), count(10));
        faults.refused(&active, ("default", "test"), Some("p1"), count(10)); // the SDK's retry
        faults.refused(&active, ("default", "test"), Some("p2"), count(5));
        faults.received(Some("p1"));
        faults.received(Some("p1")); // counted once
        faults.received(Some("other"));
        let off = faults.remove(on.id).unwrap();
        assert!(active.off.is_cancelled());
        assert_eq!(
            off.counts,
            CountsRead {
                requests: 3,
                payloads: 3,
                events: 25
            }
        );
        assert!(faults
            .in_environment("default", "test", &[FaultKind::EventsError])
            .is_none());
        assert_eq!(faults.remove(on.id), None);
        let refused = &faults.refused_events()[0];
        assert_eq!(
            (
                refused.refused_payloads,
                refused.refused_events,
                refused.retried_payloads,
                refused.retried_events
            ),
            (2, 15, 1, 10)
        );
        let (active, ended) = faults.records();
        assert!(active.is_empty());
        assert_eq!(ended, vec![off]);
    }

    #[test]
    fn a_long_payload_id_is_told_apart_by_its_hash() {
        let faults = Faults::default();
        faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        let active = faults
            .in_environment("default", "test", &[FaultKind::EventsError])
            .unwrap();
        let long = "p".repeat(400_000);
        faults.refused(&active, ("default", "test"), Some(&long), count(3));
        faults.refused(&active, ("default", "test"), Some(&long), count(3));
        faults.received(Some(&long[1..]));
        faults.received(Some(&long));
        let totals = &faults.refused_events()[0];
        assert_eq!(
            (
                totals.refused_attempts,
                totals.refused_payloads,
                totals.retried_events
            ),
            (2, 1, 3)
        );
    }

    #[test]
    fn bounded() {
        let faults = Faults::default();
        for _ in 0..MAX_ACTIVE {
            faults.add(fault(r#"{"kind": "llmOutage"}"#)).unwrap();
        }
        assert_eq!(faults.add(fault(r#"{"kind": "llmOutage"}"#)), Err(TooMany));
        assert_eq!(faults.clear().len(), MAX_ACTIVE);
        faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        let active = faults
            .in_environment("default", "test", &[FaultKind::EventsError])
            .unwrap();
        for n in 0..(MAX_REFUSED_IDS + 10) {
            faults.refused(&active, ("default", "test"), Some(&n.to_string()), count(1));
        }
        let r = faults.lock();
        assert_eq!(r.refused_ids.len(), MAX_REFUSED_IDS);
        assert_eq!(r.refused_order.len(), MAX_REFUSED_IDS);
    }
}
