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

/// A refused payload's id: its environment, its events once counted, and whether mock-ld
/// took it on a retry before they were.
struct RefusedId {
    environment: (String, String),
    events: Option<EventCount>,
    retried: bool,
}

/// The refused-event totals per environment and the refused ids they need.
#[derive(Default)]
pub struct Ledger {
    totals: HashMap<(String, String), RefusedEvents>,
    /// Refused payload ids' hashes, oldest first out.
    ids: HashMap<u64, RefusedId>,
    order: VecDeque<u64>,
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
        if let (true, Some(hash)) = (first, id) {
            self.remember(hash, environment);
        }
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
        if events.is_some() {
            self.ids.remove(&hash);
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
        let id = RefusedId {
            environment: environment.clone(),
            events: None,
            retried: false,
        };
        self.ids.insert(hash, id);
        self.order.push_back(hash);
        while self.order.len() > MAX_REFUSED_IDS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Totals per environment, in a stable order.
    pub fn totals_sorted(&self) -> Vec<RefusedEvents> {
        let mut all: Vec<RefusedEvents> = self.totals.values().cloned().collect();
        all.sort_by(|a, b| (&a.project, &a.environment).cmp(&(&b.project, &b.environment)));
        all
    }

    /// The ids remembered, and the length of their order (equal, within the bound).
    #[cfg(test)]
    pub fn id_counts(&self) -> (usize, usize) {
        (self.ids.len(), self.order.len())
    }
}

fn key(project: &str, env: &str) -> (String, String) {
    (project.to_owned(), env.to_owned())
}
