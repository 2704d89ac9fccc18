//! Events refused by faults, per environment, and the refused payload ids that tell a retry.
//! Every change goes through [`Ledger::apply`], live and when `--state` replays its journal
//! ([`super::journal`]), so the totals are computed in one place.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// Refused events payloads remembered by id (as hashes: an id is the client's header, up
/// to hyper's 400 KB), to tell a payload the SDK sent again later.
pub const MAX_REFUSED_IDS: usize = 100_000;

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
    /// Of those payloads, the ones refused again on a later try and not taken since, and
    /// their events: an SDK sends a payload at most twice, so these are lost for good as
    /// soon as the second try is refused, while `refusedEvents - retriedEvents` also holds
    /// payloads still waiting for their retry.
    #[serde(default)]
    pub lost_payloads: u64,
    #[serde(default)]
    pub lost_events: u64,
    #[serde(default)]
    pub lost_custom_events: u64,
}

impl RefusedEvents {
    /// What was refused and retried after `before` was read (a mock-ld shared by earlier
    /// runs keeps counting). Every refusal adds an attempt, so fewer attempts than
    /// `before` means the counts were reset meanwhile (`/admin/reset`, or a
    /// restart without `--state`): then all they hold came after, and they are taken whole
    /// rather than saturating each count at 0.
    pub fn since(&self, before: &RefusedEvents) -> RefusedEvents {
        if self.refused_attempts < before.refused_attempts {
            return self.clone();
        }
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
            lost_payloads: self.lost_payloads.saturating_sub(before.lost_payloads),
            lost_events: self.lost_events.saturating_sub(before.lost_events),
            lost_custom_events: self
                .lost_custom_events
                .saturating_sub(before.lost_custom_events),
        }
    }
}

/// The events of one payload: all of them, and the custom ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCount {
    pub all: u64,
    pub custom: u64,
}

/// A payload id as the ledger keeps it: the first 8 bytes of its SHA-1. Stable across
/// processes and builds (unlike `RandomState`), so a journal replayed after a restart
/// still recognises the retry of a payload refused before it.
pub fn id_hash(payload_id: &str) -> u64 {
    let digest = Sha1::digest(payload_id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"))
}

/// One change to the ledger: what the journal holds, one per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Change {
    /// An attempt refused in `project`/`env`, with its payload id's hash if it had one.
    #[serde(rename_all = "camelCase")]
    Refused {
        project: String,
        env: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// The events of a payload at its first refusal, once counted.
    #[serde(rename_all = "camelCase")]
    Counted {
        project: String,
        env: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        events: EventCount,
    },
    /// A payload mock-ld took whose id it had refused: the SDK's retry.
    Taken { id: u64 },
}

/// A refused payload's id: its environment, its events once counted, whether mock-ld
/// took it on a retry before they were, and whether a later try was refused too.
struct RefusedId {
    environment: (String, String),
    events: Option<EventCount>,
    retried: bool,
    refused_again: bool,
    /// Its place in [`Ledger::order`]: an entry there of the same hash with another
    /// number is one left behind by an earlier payload of that id.
    seq: u64,
}

/// The refused-event totals per environment and the refused ids they need.
#[derive(Default)]
pub struct Ledger {
    totals: HashMap<(String, String), RefusedEvents>,
    /// Refused payload ids' hashes, oldest first out.
    ids: HashMap<u64, RefusedId>,
    /// `(hash, seq)` in the order remembered. An id forgotten on its retry leaves its entry
    /// here until it comes out first or the entries left behind are swept.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
}

impl Ledger {
    /// Applies `change`; whether it changed anything (a `Taken` of an id never refused,
    /// or already retried, does not, and need not be journaled).
    pub fn apply(&mut self, change: &Change) -> bool {
        match change {
            Change::Refused { project, env, id } => {
                self.refused(&key(project, env), *id);
                true
            }
            Change::Counted {
                project,
                env,
                id,
                events,
            } => {
                self.counted(&key(project, env), *id, *events);
                true
            }
            Change::Taken { id } => self.taken(*id),
        }
    }

    /// Whether a payload with this id hash would be a first refusal.
    pub fn first(&self, id: Option<u64>) -> bool {
        id.is_none_or(|h| !self.ids.contains_key(&h))
    }

    /// Whether no refused id waits for its retry.
    pub fn no_ids(&self) -> bool {
        self.ids.is_empty()
    }

    fn refused(&mut self, environment: &(String, String), id: Option<u64>) {
        let first = self.first(id);
        let totals = self.totals(environment);
        totals.refused_attempts += 1;
        if first {
            totals.refused_payloads += 1;
        }
        match (first, id) {
            (true, Some(hash)) => self.remember(hash, environment),
            (false, Some(hash)) => self.refused_again(hash),
            _ => {}
        }
    }

    /// A later try of a refused payload refused too: lost, once its events are counted.
    fn refused_again(&mut self, hash: u64) {
        let Some(refused) = self.ids.get_mut(&hash) else {
            return;
        };
        if refused.retried || refused.refused_again {
            return;
        }
        refused.refused_again = true;
        if let Some(events) = refused.events {
            let environment = refused.environment.clone();
            self.lose(&environment, events);
        }
    }

    /// Counts a payload and its events lost for good.
    fn lose(&mut self, environment: &(String, String), events: EventCount) {
        self.add_to_lost(environment, events, u64::saturating_add);
    }

    /// Takes back a payload counted lost that was taken on a later try after all.
    fn found(&mut self, environment: &(String, String), events: EventCount) {
        self.add_to_lost(environment, events, u64::saturating_sub);
    }

    fn add_to_lost(
        &mut self,
        environment: &(String, String),
        events: EventCount,
        by: fn(u64, u64) -> u64,
    ) {
        let totals = self.totals(environment);
        totals.lost_payloads = by(totals.lost_payloads, 1);
        totals.lost_events = by(totals.lost_events, events.all);
        totals.lost_custom_events = by(totals.lost_custom_events, events.custom);
    }

    fn counted(&mut self, environment: &(String, String), id: Option<u64>, events: EventCount) {
        let totals = self.totals(environment);
        totals.refused_events += events.all;
        totals.refused_custom_events += events.custom;
        let Some(hash) = id else { return };
        let Some(refused) = self.ids.get_mut(&hash) else {
            return;
        };
        if !refused.retried {
            refused.events = Some(events);
            if refused.refused_again {
                let environment = refused.environment.clone();
                self.lose(&environment, events);
            }
            return;
        }
        // Taken on a retry before its events were counted: they count as retried now.
        self.ids.remove(&hash);
        let totals = self.totals(environment);
        totals.retried_events += events.all;
        totals.retried_custom_events += events.custom;
    }

    fn taken(&mut self, hash: u64) -> bool {
        let Some(refused) = self.ids.get_mut(&hash) else {
            return false;
        };
        if refused.retried {
            return false;
        }
        refused.retried = true;
        let (environment, events) = (refused.environment.clone(), refused.events);
        let was_lost = refused.refused_again;
        if events.is_some() {
            self.ids.remove(&hash);
        }
        // Taken after all on a third try (not an SDK's way, but any client's): not lost.
        if let (true, Some(events)) = (was_lost, events) {
            self.found(&environment, events);
        }
        let totals = self.totals(&environment);
        totals.retried_payloads += 1;
        if let Some(events) = events {
            totals.retried_events += events.all;
            totals.retried_custom_events += events.custom;
        }
        true
    }

    fn totals(&mut self, key: &(String, String)) -> &mut RefusedEvents {
        self.totals
            .entry(key.clone())
            .or_insert_with(|| RefusedEvents {
                project: key.0.clone(),
                environment: key.1.clone(),
                ..RefusedEvents::default()
            })
    }

    /// Remembers a refused payload id, forgetting the oldest past [`MAX_REFUSED_IDS`].
    fn remember(&mut self, hash: u64, environment: &(String, String)) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = RefusedId {
            environment: environment.clone(),
            events: None,
            retried: false,
            refused_again: false,
            seq,
        };
        self.ids.insert(hash, id);
        self.order.push_back((hash, seq));
        while self.ids.len() > MAX_REFUSED_IDS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.holds(oldest) {
                self.ids.remove(&oldest.0);
            }
        }
        // Entries left behind by ids taken on a retry: swept once they are as many as the
        // ids held can be, so the order stays within twice the bound.
        if self.order.len() > 2 * MAX_REFUSED_IDS {
            let order = std::mem::take(&mut self.order);
            self.order = order.into_iter().filter(|e| self.holds(*e)).collect();
        }
    }

    /// Whether `(hash, seq)` is the place of an id still held.
    fn holds(&self, (hash, seq): (u64, u64)) -> bool {
        self.ids.get(&hash).is_some_and(|id| id.seq == seq)
    }

    /// Totals per environment, in a stable order.
    pub fn totals_sorted(&self) -> Vec<RefusedEvents> {
        let mut all: Vec<RefusedEvents> = self.totals.values().cloned().collect();
        all.sort_by(|a, b| (&a.project, &a.environment).cmp(&(&b.project, &b.environment)));
        all
    }

    /// The ids remembered, and the length of their order (at most twice the bound: it
    /// also holds the places of ids taken since).
    #[cfg(test)]
    pub fn id_counts(&self) -> (usize, usize) {
        (self.ids.len(), self.order.len())
    }
}

fn key(project: &str, env: &str) -> (String, String) {
    (project.to_owned(), env.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(attempts: u64, events: u64, retried: u64) -> RefusedEvents {
        RefusedEvents {
            refused_attempts: attempts,
            refused_custom_events: events,
            retried_custom_events: retried,
            ..RefusedEvents::default()
        }
    }

    #[test]
    fn since_subtracts_the_counts_before_and_takes_a_reset_whole() {
        let before = counts(10, 100, 40);
        let d = counts(14, 130, 50).since(&before);
        assert_eq!((d.refused_attempts, d.refused_custom_events), (4, 30));
        assert_eq!(d.retried_custom_events, 10);
        // Reset after `before` was read, then 3 refusals: all of them are this run's.
        let d = counts(3, 25, 5).since(&before);
        assert_eq!(d, counts(3, 25, 5));
    }

    fn refused(id: u64) -> Change {
        Change::Refused {
            project: "p".into(),
            env: "e".into(),
            id: Some(id),
        }
    }

    fn counted(id: u64, custom: u64) -> Change {
        Change::Counted {
            project: "p".into(),
            env: "e".into(),
            id: Some(id),
            events: EventCount {
                all: custom + 1,
                custom,
            },
        }
    }

    fn lost(ledger: &Ledger) -> (u64, u64, u64) {
        let t = &ledger.totals_sorted()[0];
        (t.lost_payloads, t.lost_events, t.lost_custom_events)
    }

    /// Refused once: waiting for its retry, not lost; refused again: lost, counted once
    /// whatever the order of its count and the second refusal; taken on a later try after
    /// all: not lost.
    #[test]
    fn a_payload_is_lost_when_its_second_try_is_refused() {
        let mut ledger = Ledger::default();
        for change in [refused(1), counted(1, 3)] {
            ledger.apply(&change);
        }
        assert_eq!(lost(&ledger), (0, 0, 0), "its retry may still come");
        ledger.apply(&refused(1));
        ledger.apply(&refused(1));
        assert_eq!(lost(&ledger), (1, 4, 3), "lost once, however often refused");
        // Its count after the second refusal (the count runs on the blocking pool).
        for change in [refused(2), refused(2), counted(2, 5)] {
            ledger.apply(&change);
        }
        assert_eq!(lost(&ledger), (2, 10, 8));
        ledger.apply(&Change::Taken { id: 1 });
        assert_eq!(lost(&ledger), (1, 6, 5), "taken after all");
        let t = &ledger.totals_sorted()[0];
        assert_eq!((t.retried_payloads, t.retried_custom_events), (1, 3));
        // Refused once and retried: never lost.
        for change in [refused(3), counted(3, 2), Change::Taken { id: 3 }] {
            ledger.apply(&change);
        }
        assert_eq!(lost(&ledger), (1, 6, 5));
    }

    /// An id taken on its retry leaves its place behind; the same id refused again later
    /// is held from its new place, not forgotten when the old one comes out first; and the
    /// places left behind are swept, so the order stays bounded.
    #[test]
    fn places_left_behind_neither_forget_a_held_id_nor_grow_without_bound() {
        let mut ledger = Ledger::default();
        for change in [refused(0), counted(0, 1), Change::Taken { id: 0 }] {
            ledger.apply(&change);
        }
        assert!(ledger.first(Some(0)), "forgotten once taken");
        for id in 1..MAX_REFUSED_IDS as u64 {
            ledger.apply(&refused(id));
        }
        ledger.apply(&refused(0));
        // The bound is full, and id 0's first place comes out first: it stays held, and
        // the oldest held id goes.
        ledger.apply(&refused(u64::MAX));
        assert!(!ledger.first(Some(0)), "id 0 is still held");
        assert!(ledger.first(Some(1)), "the oldest held id is forgotten");
        assert_eq!(ledger.id_counts().0, MAX_REFUSED_IDS);
        // Many more refused and taken at once: the order keeps within twice the bound.
        for id in 0..2 * MAX_REFUSED_IDS as u64 {
            let id = (1 << 40) + id;
            ledger.apply(&refused(id));
            ledger.apply(&Change::Taken { id });
        }
        let (held, places) = ledger.id_counts();
        assert!(held <= MAX_REFUSED_IDS, "{held}");
        assert!(places <= 2 * MAX_REFUSED_IDS, "{places}");
    }
}
