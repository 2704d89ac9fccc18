//! The faults switched on, each counting what it refused while active, and the last ones
//! switched off with their final counts. Streams watch their own environment's faults
//! ([`Faults::watch_environment`]), so a change wakes only the streams it concerns; every
//! other endpoint asks on each request, which costs one atomic load while no fault is on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::journal::{RefusedJournal, RefusedJournalStatus};
use super::refused::{id_hash, Change, Ledger};
pub use super::refused::{EventCount, RefusedEvents};
use super::spec::{Fault, FaultKind, Scope};
use crate::clock::now_millis;

/// At most this many faults on at once: a client that adds without removing is refused.
pub const MAX_ACTIVE: usize = 256;
/// Faults switched off that `GET /admin/faults` still lists, newest kept.
pub const MAX_ENDED: usize = 1_000;
/// The longest switching a fault off waits for the events of payloads it refused to be
/// counted (inflating and splitting the largest payload the bounds allow takes well under
/// a second); past it the record goes out without them, and says so in the log.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

fn settle_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + SETTLE_LIMIT
}

/// The faults on in one environment, oldest first: what its streams watch.
pub type EnvironmentFaults = Arc<[Arc<Active>]>;

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

/// A fault that is on, or was (it stays listed among the ended ones).
#[derive(Debug)]
pub struct Active {
    pub id: u64,
    pub fault: Fault,
    pub started_ms: u64,
    /// When it was switched off, ms since the epoch; 0 while on.
    ended_ms: AtomicU64,
    counts: Counts,
    /// Refused payloads whose events are still being counted, and a wake-up when none are.
    counting: AtomicU64,
    counted: Notify,
    /// Cancelled when it is switched off: what it holds is let go.
    pub off: CancellationToken,
}

impl Active {
    fn new(id: u64, fault: Fault) -> Self {
        Active {
            id,
            fault,
            started_ms: now_millis(),
            ended_ms: AtomicU64::new(0),
            counts: Counts::default(),
            counting: AtomicU64::new(0),
            counted: Notify::new(),
            off: CancellationToken::new(),
        }
    }

    /// One request it applied to.
    pub fn count_request(&self) {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits (until `deadline` at most) until the events of every payload it refused are
    /// counted.
    async fn settled(&self, deadline: tokio::time::Instant) {
        loop {
            // Registered before the check, so a wake-up between the two is not lost.
            let counted = self.counted.notified();
            if self.counting.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, counted).await.is_err() {
                tracing::warn!(id = self.id, "fault off with events still being counted");
                return;
            }
        }
    }

    fn record(&self) -> Record {
        let ended = self.ended_ms.load(Ordering::Relaxed);
        Record {
            id: self.id,
            fault: self.fault.clone(),
            started: self.started_ms,
            ended: (ended != 0).then_some(ended),
            counts: CountsRead {
                requests: self.counts.requests.load(Ordering::Relaxed),
                payloads: self.counts.payloads.load(Ordering::Relaxed),
                events: self.counts.events.load(Ordering::Relaxed),
            },
        }
    }
}

/// An events payload a fault refused, counted (the attempt, and the payload) the moment it
/// was refused; its events are added by [`Refusal::count_events`] once it is read. The
/// fault's final record waits for it (see [`Faults::remove`]).
#[must_use = "a refusal's events are counted with count_events"]
pub struct Refusal {
    pub fault: Arc<Active>,
    environment: (String, String),
    /// The payload id's hash, and whether this was its first refusal (its events count).
    id_hash: Option<u64>,
    first: bool,
}

impl Refusal {
    /// The payload's `events`, added to its fault and its environment's refused totals.
    pub fn count_events(self, faults: &Faults, events: EventCount) {
        self.fault
            .counts
            .events
            .fetch_add(events.all, Ordering::Relaxed);
        if !self.first {
            return;
        }
        let (project, env) = self.environment.clone();
        faults.lock().change(&Change::Counted {
            project,
            env,
            id: self.id_hash,
            events,
        });
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        if self.fault.counting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.fault.counted.notify_waiters();
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

#[derive(Default)]
struct Registry {
    next_id: u64,
    active: Vec<Arc<Active>>,
    ended: VecDeque<Arc<Active>>,
    refused: Ledger,
    /// With `--state`: where each change to `refused` is kept.
    journal: Option<RefusedJournal>,
    /// Per environment streams watch, the faults on there.
    watchers: HashMap<(String, String), watch::Sender<EnvironmentFaults>>,
}

impl Registry {
    /// Applies `change` to the refused-event ledger and journals it if it changed
    /// anything; whether it did.
    fn change(&mut self, change: &Change) -> bool {
        let changed = self.refused.apply(change);
        if let (true, Some(journal)) = (changed, &mut self.journal) {
            journal.append(change);
        }
        changed
    }

    fn environment_faults(&self, project: &str, environment: &str) -> EnvironmentFaults {
        self.active
            .iter()
            .filter(|a| a.fault.in_environment(project, environment))
            .cloned()
            .collect()
    }

    /// Tells the streams of the environment `scope` names, if any watch it.
    fn notify(&self, scope: &Scope) {
        let Scope::Environment {
            project,
            environment,
        } = scope
        else {
            return;
        };
        let key = (project.clone(), environment.clone());
        if let Some(watchers) = self.watchers.get(&key) {
            watchers.send_replace(self.environment_faults(project, environment));
        }
    }
}

/// Every fault of one mock-ld.
pub struct Faults {
    registry: Mutex<Registry>,
    /// Whether any fault is on: the one load on every SDK request while none is.
    any: AtomicBool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            registry: Mutex::default(),
            any: AtomicBool::new(false),
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

    /// Faults whose refused-event totals are kept in `dir` (`--state`): replayed from its
    /// `refused.jsonl`, and each change appended to it.
    pub fn durable(
        dir: &std::path::Path,
        max_bytes: u64,
    ) -> Result<Self, crate::state::StateError> {
        let mut refused = Ledger::default();
        let journal = RefusedJournal::open(dir, max_bytes, &mut refused)?;
        let registry = Registry {
            refused,
            journal: Some(journal),
            ..Registry::default()
        };
        Ok(Faults {
            registry: Mutex::new(registry),
            any: AtomicBool::new(false),
        })
    }

    /// Switches `fault` on; its record.
    pub fn add(&self, fault: Fault) -> Result<Record, TooMany> {
        let mut r = self.lock();
        if r.active.len() >= MAX_ACTIVE {
            return Err(TooMany);
        }
        r.next_id += 1;
        let active = Arc::new(Active::new(r.next_id, fault));
        tracing::info!(id = active.id, kind = active.fault.kind.name(), "fault on");
        let record = active.record();
        r.active.push(active.clone());
        self.any.store(true, Ordering::Release);
        r.notify(&active.fault.scope);
        Ok(record)
    }

    /// Switches fault `id` off; its final record once the events of the payloads it
    /// refused are counted, or `None` when no such fault is on.
    pub async fn remove(&self, id: u64) -> Option<Record> {
        let ended = {
            let mut r = self.lock();
            let at = r.active.iter().position(|a| a.id == id)?;
            let active = r.active.remove(at);
            Self::end(&mut r, &active);
            self.any.store(!r.active.is_empty(), Ordering::Release);
            r.notify(&active.fault.scope);
            active
        };
        ended.settled(settle_deadline()).await;
        Some(ended.record())
    }

    /// Switches every fault off; their final records, as [`Faults::remove`].
    pub async fn clear(&self) -> Vec<Record> {
        let ended = {
            let mut r = self.lock();
            let active = std::mem::take(&mut r.active);
            for a in &active {
                Self::end(&mut r, a);
            }
            self.any.store(false, Ordering::Release);
            for a in &active {
                r.notify(&a.fault.scope);
            }
            active
        };
        let (deadline, mut records) = (settle_deadline(), Vec::with_capacity(ended.len()));
        for a in ended {
            a.settled(deadline).await;
            records.push(a.record());
        }
        records
    }

    fn end(r: &mut Registry, active: &Arc<Active>) {
        active.ended_ms.store(now_millis(), Ordering::Relaxed);
        active.off.cancel();
        tracing::info!(id = active.id, kind = active.fault.kind.name(), counts = ?active.record().counts, "fault off");
        if r.ended.len() >= MAX_ENDED {
            r.ended.pop_front();
        }
        r.ended.push_back(active.clone());
    }

    /// Whether any fault is on (one atomic load).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The faults on, then the last ones switched off.
    pub fn records(&self) -> (Vec<Record>, Vec<Record>) {
        let r = self.lock();
        let active = r.active.iter().map(|a| a.record()).collect();
        (active, r.ended.iter().map(|a| a.record()).collect())
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

    /// The faults on in one environment, as they change: a receiver that changes only
    /// when one of that environment's faults is switched on or off.
    pub fn watch_environment(
        &self,
        project: &str,
        environment: &str,
    ) -> watch::Receiver<EnvironmentFaults> {
        let mut r = self.lock();
        let key = (project.to_owned(), environment.to_owned());
        if let Some(watchers) = r.watchers.get(&key) {
            return watchers.subscribe();
        }
        // A new environment watched: forget those no stream watches any more, so the map
        // holds at most the environments with streams open.
        r.watchers.retain(|_, w| w.receiver_count() > 0);
        let (watchers, receiver) = watch::channel(r.environment_faults(project, environment));
        r.watchers.insert(key, watchers);
        receiver
    }

    /// Refuses an events payload if a fault of one of `kinds` is on in environment `env`:
    /// the request and the payload counted against the fault, and the attempt (and the
    /// payload, the first time its id is refused) against the environment, in the same
    /// step that found the fault, so a fault switched off at once has counted it. Its
    /// events are added by [`Refusal::count_events`].
    pub fn refuse_events(
        &self,
        env: (&str, &str),
        kinds: &[FaultKind],
        payload_id: Option<&str>,
    ) -> Option<Refusal> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let id_hash = payload_id.map(id_hash);
        let mut r = self.lock();
        let fault = r
            .active
            .iter()
            .find(|a| kinds.contains(&a.fault.kind) && a.fault.in_environment(env.0, env.1))?
            .clone();
        fault.count_request();
        fault.counts.payloads.fetch_add(1, Ordering::Relaxed);
        fault.counting.fetch_add(1, Ordering::AcqRel);
        let environment = (env.0.to_owned(), env.1.to_owned());
        let first = r.refused.first(id_hash);
        r.change(&Change::Refused {
            project: environment.0.clone(),
            env: environment.1.clone(),
            id: id_hash,
        });
        Some(Refusal {
            fault,
            environment,
            id_hash,
            first,
        })
    }

    /// An events payload mock-ld took: when its id was refused before, it is a retry.
    pub fn received(&self, payload_id: Option<&str>) {
        let Some(id) = payload_id else { return };
        if self.lock().refused.no_ids() {
            return;
        }
        // Hashed outside the lock: an id may be long.
        let id = id_hash(id);
        self.lock().change(&Change::Taken { id });
    }

    /// Refused events per environment, in a stable order.
    pub fn refused_events(&self) -> Vec<RefusedEvents> {
        self.lock().refused.totals_sorted()
    }

    /// With `--state`, what `/admin/faults` says of the refused-events journal.
    pub fn journal_status(&self) -> Option<RefusedJournalStatus> {
        self.lock().journal.as_ref().map(RefusedJournal::status)
    }

    /// Forgets refused-event totals and ended faults (`/admin/reset`); faults on stay on.
    pub fn reset(&self) {
        let mut r = self.lock();
        r.ended.clear();
        r.refused = Ledger::default();
        if let Some(journal) = &mut r.journal {
            journal.clear();
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::refused::MAX_REFUSED_IDS;
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

    const TEST: (&str, &str) = ("default", "test");
    const EVENTS: &[FaultKind] = &[FaultKind::EventsError, FaultKind::SdkUnavailable];

    /// One payload refused in `default/test` and its `n` events counted.
    fn refuse(faults: &Faults, id: Option<&str>, n: u64) {
        let refusal = faults.refuse_events(TEST, EVENTS, id).expect("a fault on");
        refusal.count_events(faults, count(n));
    }

    #[tokio::test]
    async fn on_off_and_counts() {
        let faults = Faults::default();
        assert!(faults.refuse_events(TEST, EVENTS, Some("p0")).is_none());
        let on = faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        refuse(&faults, Some("p1"), 10);
        refuse(&faults, Some("p1"), 10); // the SDK's retry
        refuse(&faults, Some("p2"), 5);
        faults.received(Some("p1"));
        faults.received(Some("p1")); // counted once
        faults.received(Some("other"));
        let active = faults.in_environment("default", "test", EVENTS).unwrap();
        let off = faults.remove(on.id).await.unwrap();
        assert!(active.off.is_cancelled());
        assert_eq!(
            off.counts,
            CountsRead {
                requests: 3,
                payloads: 3,
                events: 25
            }
        );
        assert!(faults.in_environment("default", "test", EVENTS).is_none());
        assert_eq!(faults.remove(on.id).await, None);
        let refused = &faults.refused_events()[0];
        assert_eq!(
            (
                refused.refused_attempts,
                refused.refused_payloads,
                refused.refused_events,
                refused.retried_payloads,
                refused.retried_events
            ),
            (3, 2, 15, 1, 10)
        );
        let (active, ended) = faults.records();
        assert!(active.is_empty());
        assert_eq!(ended, vec![off]);
    }

    /// The attempt counts the moment it is refused; switching the fault off waits for its
    /// events; a retry taken before they were counted gets them as retried.
    #[tokio::test]
    async fn a_refusal_counts_at_once_and_its_events_before_the_fault_is_off() {
        let faults = Arc::new(Faults::default());
        let on = faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        let refusal = faults.refuse_events(TEST, EVENTS, Some("p1")).unwrap();
        let (active, _) = faults.records();
        assert_eq!(
            active[0].counts,
            CountsRead {
                requests: 1,
                payloads: 1,
                events: 0
            }
        );
        faults.received(Some("p1")); // taken on a retry, its events not counted yet
        let off = tokio::spawn({
            let faults = faults.clone();
            async move { faults.remove(on.id).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!off.is_finished(), "waits for the events being counted");
        refusal.count_events(&faults, count(4));
        let off = off.await.unwrap();
        assert_eq!(off.counts.events, 4);
        let totals = &faults.refused_events()[0];
        assert_eq!(
            (
                totals.refused_attempts,
                totals.refused_events,
                totals.retried_payloads,
                totals.retried_events
            ),
            (1, 4, 1, 4)
        );
    }

    #[test]
    fn a_long_payload_id_is_told_apart_by_its_hash() {
        let faults = Faults::default();
        faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        let long = "p".repeat(400_000);
        refuse(&faults, Some(&long), 3);
        refuse(&faults, Some(&long), 3);
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

    /// A stream watches its own environment: a fault elsewhere, or the provider's, leaves
    /// its receiver unchanged.
    #[tokio::test]
    async fn only_the_environments_own_faults_change_its_watch() {
        let faults = Faults::default();
        let test = faults.watch_environment("default", "test");
        let mut production = faults.watch_environment("default", "production");
        faults.add(fault(r#"{"kind": "llmOutage"}"#)).unwrap();
        let stalled = faults
            .add(fault(
                r#"{"kind": "streamStalled", "environment": "production"}"#,
            ))
            .unwrap();
        assert!(!test.has_changed().unwrap());
        assert!(production.has_changed().unwrap());
        assert_eq!(production.borrow_and_update()[0].id, stalled.id);
        faults.remove(stalled.id).await;
        assert!(production.borrow_and_update().is_empty());
        assert!(!test.has_changed().unwrap());
        // A stream that starts while a fault is on sees it at once.
        faults.add(fault(r#"{"kind": "streamStalled"}"#)).unwrap();
        let late = faults.watch_environment("default", "test");
        assert_eq!(late.borrow().len(), 1);
    }

    #[tokio::test]
    async fn bounded() {
        let faults = Faults::default();
        for _ in 0..MAX_ACTIVE {
            faults.add(fault(r#"{"kind": "llmOutage"}"#)).unwrap();
        }
        assert_eq!(faults.add(fault(r#"{"kind": "llmOutage"}"#)), Err(TooMany));
        assert_eq!(faults.clear().await.len(), MAX_ACTIVE);
        faults.add(fault(r#"{"kind": "eventsError"}"#)).unwrap();
        for n in 0..(MAX_REFUSED_IDS + 10) {
            refuse(&faults, Some(&n.to_string()), 1);
        }
        let ids = faults.lock().refused.id_counts();
        assert_eq!(ids, (MAX_REFUSED_IDS, MAX_REFUSED_IDS));
    }
}
