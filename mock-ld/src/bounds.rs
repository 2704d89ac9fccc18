//! Every bound mock-ld keeps, in one place, so that no input (hostile, absurd or just
//! long-running) grows its memory without limit. Each has a `mock-ld` flag of the same
//! name (`--max-event-body-bytes`, …) and is a field of [`crate::Config::bounds`].
//!
//! Where each is enforced:
//! - request bodies: [`crate::router`] puts `max_api_body_bytes` on every route but the
//!   events intake (a route added anywhere inherits it) and turns its 413 into a
//!   `{code, message}` body; the events intake reads its body itself, see below;
//! - events intake (`/bulk`, `/diagnostic`): [`crate::events`] refuses a body over
//!   `max_event_body_bytes` or inflating past `max_inflated_bytes` with 400 (never 413,
//!   which would stop an SDK's events), counted as a rejected payload;
//! - stored events: [`crate::events::log::EventLog`] drops the oldest past `max_stored_events`
//!   or `max_stored_event_bytes` (counted as `evictedEvents`);
//! - counts by key: each map of `/admin/events/stats` (per environment) and the per-model
//!   counts of `/admin/llm/stats` hold at most `max_stat_keys` distinct keys; what a full
//!   map has no room for is counted apart (`overflow`, or model `(other)`), never dropped;
//! - the events journal of `--state` ([`crate::events::journal`]): at most
//!   `max_event_journal_bytes`, then received events are counted in memory only; the
//!   refused-events journal ([`crate::faults::journal`]) has the same bound on its own, then
//!   refusals are counted in memory only;
//! - the audit log: [`crate::api`] keeps each entry as patches and drops the oldest entries
//!   past `max_audit_bytes`;
//! - AI Config variation versions: each variation keeps its newest `max_variation_versions`.
//!
//! Bounds that change nothing a client can see are constants beside what they bound, not
//! flags: payload ids remembered for deduplication (`events::log::SEEN_PAYLOADS`), audit
//! entries (`api::write::audit::CAPACITY`), frames a slow stream may lag (`store::STREAM_BACKLOG`),
//! and deleted items' versions (`store::MAX_TOMBSTONES`, past which versions rise from a
//! floor instead).
//!
//! JSON Patch `copy`: one patch copies at most `api::patch::MAX_COPIED_BYTES` (16 MiB; 400
//! past it), since each copy may double the resource.
//!
//! JSON depth: serde_json refuses REST bodies nested deeper than 128 (400); events keep
//! their first 100 levels and the rest as text ([`crate::events::servable`]).

/// 1 MiB.
const MIB: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Largest `/bulk` or `/diagnostic` body as sent, compressed or not. An SDK flushes at
    /// most its event capacity (10,000 by default; tests send 100,000, about 50 MB).
    pub max_event_body_bytes: usize,
    /// Largest events body after gunzip; decompression stops there.
    pub max_inflated_bytes: usize,
    /// Largest request body of every other route: the REST API, `/admin`, `/v1`.
    pub max_api_body_bytes: usize,
    /// Bytes of events `/admin/events` keeps listing (raw JSON plus bookkeeping).
    pub max_stored_event_bytes: usize,
    /// Bytes of the audit log: entries, their patches and the newest state of each
    /// resource they describe.
    pub max_audit_bytes: usize,
    /// Distinct keys each map of counts holds (custom event keys, flag × variation pairs,
    /// event kinds, per environment; model names). A run with thousands of flags or metric
    /// keys fits; a fuzz sending a new key per event stops growing there. Measured on the
    /// release binary: a new custom event key together with a new flag (a feature event and
    /// a summary counter) costs about 1.3 KB over the four maps they enter, so the maps of
    /// one environment stop at about 14 MB by default (BENCHMARKS.md, Soak).
    pub max_stat_keys: usize,
    /// Bytes of received events `--state` journals (`events.jsonl`); past it events are
    /// counted in memory only, and `/admin/events/stats` says `journal.full`. The refused
    /// events' journal (`refused.jsonl`) stops at as many bytes of its own, and
    /// `/admin/faults` says `journal.full`.
    pub max_event_journal_bytes: usize,
    /// Versions each AI Config variation keeps (the newest; version numbers keep rising).
    /// Every update is one; a script updating a variation every second for a day would
    /// otherwise keep 86,400.
    pub max_variation_versions: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_event_body_bytes: 100 * MIB,
            max_inflated_bytes: 100 * MIB,
            max_api_body_bytes: 16 * MIB,
            max_stored_event_bytes: 512 * MIB,
            max_audit_bytes: 64 * MIB,
            max_stat_keys: 10_000,
            max_event_journal_bytes: 1024 * MIB,
            max_variation_versions: 1_000,
        }
    }
}
