//! Projects, environments and the flags and segments each environment serves.
//!
//! Every environment owns a broadcast channel of ready-made SSE frames, one FDv1 and one
//! FDv2 rendering of each change. A change is applied and its frames sent under the
//! environment's lock, and a new stream takes its snapshot (FDv1 `put`, FDv2 full transfer
//! or changes since its basis) and subscribes under the same lock, so no stream ever misses
//! or reorders a change.
//!
//! FDv2 counts changes: an environment's payload version is how many changes it has seen
//! since it was created (or recovered), and its last [`CHANGE_LOG`] changes let an SDK that
//! reconnects or polls with an older basis get only what changed since.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use tokio::sync::broadcast;

use crate::model::{Flag, Segment, Versioned};
use crate::sdk::fdv2::frames::{self as fdv2_frames, Event as Fdv2Event};
use crate::sdk::fdv2::selector::Selector;
use crate::sdk::frames;

/// How many frames a slow stream may fall behind before it is resynchronized with a `put`.
const STREAM_BACKLOG: usize = 1024;

/// How many past changes an environment remembers for FDv2 SDKs that come back with an
/// older basis; one further behind gets a full transfer. The logged events share their
/// bytes with the frames already broadcast.
pub const CHANGE_LOG: usize = STREAM_BACKLOG;

/// The change log's bound in bytes of event data, so that a script writing large flags does
/// not keep [`CHANGE_LOG`] of them: the oldest go first. Per environment, so kept small: an
/// SDK whose basis fell out of it gets a full transfer, which is always correct.
pub const CHANGE_LOG_BYTES: usize = 8 << 20;

/// One change, rendered once for each kind of stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeFrames {
    /// `patch` or `delete` for `/all`.
    pub fdv1: Bytes,
    /// `put-object` or `delete-object`, then `payload-transferred`, for `/sdk/stream`.
    pub fdv2: Bytes,
}

/// The FDv2 full transfer of one moment, built at most once per change and only when an
/// FDv2 SDK asks for it.
pub struct Fdv2Snapshot {
    /// Where the transfer leaves an SDK.
    pub selector: Selector,
    /// A `put-object` frame per flag and segment, then `payload-transferred`.
    pub objects_sse: Bytes,
    /// The same events as `/sdk/poll` items.
    pub objects_json: Bytes,
}

/// What an FDv2 SDK needs, given the basis it sent, to be current.
pub enum Fdv2Transfer {
    /// Everything, replacing what it had; `reason` says why (no basis, or one that cannot
    /// be caught up from).
    Full {
        snapshot: Arc<Fdv2Snapshot>,
        reason: &'static str,
    },
    /// The latest event of each item changed since the basis, in order, ending at `selector`.
    Changes {
        selector: Selector,
        events: Vec<Fdv2Event>,
    },
    /// The basis is current.
    UpToDate(Selector),
}

/// The last changes, oldest first, at most `max_len` of them and `max_bytes` of event data
/// (past that the oldest go; the newest stays even alone past `max_bytes`).
struct ChangeLog {
    changes: VecDeque<LoggedChange>,
    bytes: usize,
    max_len: usize,
    max_bytes: usize,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog::new(CHANGE_LOG, CHANGE_LOG_BYTES)
    }
}

impl ChangeLog {
    fn new(max_len: usize, max_bytes: usize) -> Self {
        ChangeLog {
            changes: VecDeque::new(),
            bytes: 0,
            max_len,
            max_bytes,
        }
    }

    fn push(&mut self, change: LoggedChange) {
        self.bytes += change.event.data.len();
        self.changes.push_back(change);
        while self.changes.len() > self.max_len
            || (self.bytes > self.max_bytes && self.changes.len() > 1)
        {
            let oldest = self.changes.pop_front().expect("not empty");
            self.bytes -= oldest.event.data.len();
        }
    }

    /// The payload version the oldest change kept brought the environment to.
    fn oldest_version(&self) -> Option<u64> {
        self.changes.front().map(|c| c.version)
    }
}

/// A change as the FDv2 change log keeps it.
struct LoggedChange {
    /// The payload version this change brought the environment to.
    version: u64,
    kind: &'static str,
    key: String,
    event: Fdv2Event,
}

/// Deleted items' versions each collection (flags, segments) of an environment remembers.
/// Past it, the older half is forgotten and the highest forgotten version becomes a floor
/// that every item without a tombstone starts above: a key deleted long ago still comes
/// back with a higher version (so SDKs that saw the delete take it), at the cost of a
/// brand-new key starting above 1 once a script has deleted this many distinct keys.
pub const MAX_TOMBSTONES: usize = 10_000;

/// The flags and segments of one environment at one moment, serialized once and shared by
/// every stream and poll that asks for it until the next change.
pub struct Snapshot {
    /// `{"flags":{…},"segments":{…}}`, the poll body and the `put` payload.
    pub all_json: Bytes,
    /// The full `event: put` SSE frame.
    pub put_frame: Bytes,
    /// An opaque validator of `all_json` for `ETag` / `If-None-Match`.
    pub etag: String,
}

#[derive(Default)]
struct EnvData {
    flags: BTreeMap<String, Flag>,
    segments: BTreeMap<String, Segment>,
    /// Versions of deleted items: a re-created item must get a higher version than its
    /// tombstone, or SDKs that saw the delete would ignore it.
    deleted_flags: Tombstones,
    deleted_segments: Tombstones,
    snapshot: Option<Arc<Snapshot>>,
    /// The payload version: how many changes this environment has seen.
    changes: u64,
    log: ChangeLog,
    fdv2_snapshot: Option<Arc<Fdv2Snapshot>>,
}

/// The versions of a collection's deleted items, at most [`MAX_TOMBSTONES`] of them, and the
/// floor above which every item without one starts.
#[derive(Default)]
struct Tombstones {
    versions: HashMap<String, u64>,
    /// At least the version of every tombstone forgotten.
    floor: u64,
}

impl Tombstones {
    fn new(versions: BTreeMap<String, u64>, floor: u64) -> Self {
        let mut tombstones = Tombstones {
            versions: versions.into_iter().collect(),
            floor,
        };
        tombstones.forget_beyond_capacity();
        tombstones
    }

    /// The version `key`'s next item must exceed, its tombstone gone.
    fn take(&mut self, key: &str) -> u64 {
        self.versions.remove(key).unwrap_or(0).max(self.floor)
    }

    fn insert(&mut self, key: &str, version: u64) {
        self.versions.insert(key.to_owned(), version);
        self.forget_beyond_capacity();
    }

    /// Forgets the lower half (by version) when past capacity, raising the floor to cover
    /// them: each tombstone is looked at a few times over its life, not once per delete.
    fn forget_beyond_capacity(&mut self) {
        if self.versions.len() <= MAX_TOMBSTONES {
            return;
        }
        let mut versions: Vec<u64> = self.versions.values().copied().collect();
        let middle = versions.len() / 2;
        let (_, &mut cut, _) = versions.select_nth_unstable(middle);
        self.versions.retain(|_, version| *version > cut);
        self.floor = self.floor.max(cut);
    }
}

/// Everything an environment serves, with the versions of deleted items: what durable state
/// keeps, so that versions keep rising across a restart.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Items {
    pub flags: Vec<Flag>,
    pub segments: Vec<Segment>,
    #[serde(default)]
    pub deleted_flags: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted_segments: BTreeMap<String, u64>,
    /// The version floors of forgotten tombstones (see [`MAX_TOMBSTONES`]); 0 while none was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flag_version_floor: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub segment_version_floor: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One environment of a project: its SDK key, its data and its live streams.
pub struct Environment {
    pub project: String,
    pub key: String,
    pub sdk_key: String,
    /// Names this environment's FDv2 history (see [`Selector`]).
    payload_id: String,
    data: Mutex<EnvData>,
    updates: broadcast::Sender<ChangeFrames>,
    /// How many of the connected streams are FDv2 (`/sdk/stream`).
    fdv2_streams: Arc<AtomicUsize>,
}

/// Counts one connected FDv2 stream while it lives.
pub struct Fdv2StreamCount(Arc<AtomicUsize>);

impl Drop for Fdv2StreamCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Environment {
    pub fn new(project: &str, key: &str, sdk_key: &str) -> Self {
        Environment {
            project: project.to_owned(),
            key: key.to_owned(),
            sdk_key: sdk_key.to_owned(),
            payload_id: Selector::fresh_payload_id(),
            data: Mutex::new(EnvData::default()),
            updates: broadcast::channel(STREAM_BACKLOG).0,
            fdv2_streams: Arc::default(),
        }
    }

    /// An environment that starts with `items` as they were, versions included.
    pub fn with_items(project: &str, key: &str, sdk_key: &str, items: Items) -> Self {
        let env = Self::new(project, key, sdk_key);
        {
            let mut data = env.lock();
            data.flags = items
                .flags
                .into_iter()
                .map(|f| (f.key.clone(), f))
                .collect();
            data.segments = items
                .segments
                .into_iter()
                .map(|s| (s.key.clone(), s))
                .collect();
            data.deleted_flags = Tombstones::new(items.deleted_flags, items.flag_version_floor);
            data.deleted_segments =
                Tombstones::new(items.deleted_segments, items.segment_version_floor);
        }
        env
    }

    /// A copy of everything the environment serves, versions and tombstones included.
    pub fn items(&self) -> Items {
        let data = self.lock();
        Items {
            flags: data.flags.values().cloned().collect(),
            segments: data.segments.values().cloned().collect(),
            deleted_flags: data.deleted_flags.versions.clone().into_iter().collect(),
            deleted_segments: data.deleted_segments.versions.clone().into_iter().collect(),
            flag_version_floor: data.deleted_flags.floor,
            segment_version_floor: data.deleted_segments.floor,
        }
    }

    fn lock(&self) -> MutexGuard<'_, EnvData> {
        // A panic while holding the lock leaves the data consistent (every mutation is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.data
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The current snapshot, built at most once per change.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        snapshot_of(&mut self.lock())
    }

    /// A new stream's starting point: the current `put` and a receiver of every later change.
    pub fn subscribe(&self) -> (Arc<Snapshot>, broadcast::Receiver<ChangeFrames>) {
        let mut data = self.lock();
        (snapshot_of(&mut data), self.updates.subscribe())
    }

    /// A new FDv2 stream's starting point: what brings an SDK at `basis` up to date, and a
    /// receiver of every later change.
    pub fn subscribe_fdv2(
        &self,
        basis: Option<&Selector>,
    ) -> (Fdv2Transfer, broadcast::Receiver<ChangeFrames>) {
        let mut data = self.lock();
        (
            self.transfer_since(&mut data, basis),
            self.updates.subscribe(),
        )
    }

    /// What brings an FDv2 SDK at `basis` up to date (a poll's answer).
    pub fn fdv2_transfer(&self, basis: Option<&Selector>) -> Fdv2Transfer {
        self.transfer_since(&mut self.lock(), basis)
    }

    /// The current payload version's selector.
    pub fn fdv2_selector(&self) -> Selector {
        self.selector_at(self.lock().changes)
    }

    fn selector_at(&self, version: u64) -> Selector {
        Selector {
            payload_id: self.payload_id.clone(),
            version,
        }
    }

    fn transfer_since(&self, data: &mut EnvData, basis: Option<&Selector>) -> Fdv2Transfer {
        let full = |data: &mut EnvData, reason| Fdv2Transfer::Full {
            snapshot: self.fdv2_snapshot_of(data),
            reason,
        };
        let Some(basis) = basis else {
            return full(data, "payload-missing");
        };
        // Another environment's, another process's, or one from the future: nothing to
        // count from.
        if basis.payload_id != self.payload_id || basis.version > data.changes {
            return full(data, "cant-catchup");
        }
        if basis.version == data.changes {
            return Fdv2Transfer::UpToDate(self.selector_at(data.changes));
        }
        let oldest = data.log.oldest_version().unwrap_or(data.changes + 1);
        if basis.version + 1 < oldest {
            return full(data, "cant-catchup");
        }
        // The newest change of each item is all the SDK needs of it.
        let mut seen = HashSet::new();
        let mut events: Vec<Fdv2Event> = data
            .log
            .changes
            .iter()
            .rev()
            .take_while(|c| c.version > basis.version)
            .filter(|c| seen.insert((c.kind, c.key.as_str())))
            .map(|c| c.event.clone())
            .collect();
        events.reverse();
        Fdv2Transfer::Changes {
            selector: self.selector_at(data.changes),
            events,
        }
    }

    fn fdv2_snapshot_of(&self, data: &mut EnvData) -> Arc<Fdv2Snapshot> {
        if let Some(snapshot) = &data.fdv2_snapshot {
            return snapshot.clone();
        }
        let selector = self.selector_at(data.changes);
        let events: Vec<Fdv2Event> = data
            .flags
            .values()
            .map(fdv2_frames::put_object)
            .chain(data.segments.values().map(fdv2_frames::put_object))
            .chain([fdv2_frames::payload_transferred(&selector)])
            .collect();
        let snapshot = Arc::new(Fdv2Snapshot {
            objects_sse: fdv2_frames::sse(&events),
            objects_json: fdv2_frames::json_items(&events).into(),
            selector,
        });
        data.fdv2_snapshot = Some(snapshot.clone());
        snapshot
    }

    /// How many streams (FDv1 and FDv2) are connected now.
    pub fn stream_count(&self) -> usize {
        self.updates.receiver_count()
    }

    /// How many FDv2 streams are connected now.
    pub fn fdv2_stream_count(&self) -> usize {
        self.fdv2_streams.load(Ordering::Relaxed)
    }

    /// Counts an FDv2 stream until the returned guard is dropped.
    pub fn count_fdv2_stream(&self) -> Fdv2StreamCount {
        self.fdv2_streams.fetch_add(1, Ordering::Relaxed);
        Fdv2StreamCount(self.fdv2_streams.clone())
    }

    pub fn flag(&self, key: &str) -> Option<Flag> {
        self.lock().flags.get(key).cloned()
    }

    pub fn segment(&self, key: &str) -> Option<Segment> {
        self.lock().segments.get(key).cloned()
    }

    pub fn flags(&self) -> Vec<Flag> {
        self.lock().flags.values().cloned().collect()
    }

    pub fn segments(&self) -> Vec<Segment> {
        self.lock().segments.values().cloned().collect()
    }

    /// Creates or replaces a flag, bumps its version and pushes a `patch` to every stream.
    pub fn upsert_flag(&self, flag: Flag) -> Flag {
        let mut guard = self.lock();
        let data = &mut *guard;
        let stored = upsert(&mut data.flags, &mut data.deleted_flags, flag);
        self.publish(
            data,
            frames::patch(&stored),
            (Flag::KIND, &stored.key),
            fdv2_frames::put_object(&stored),
        );
        stored
    }

    pub fn upsert_segment(&self, segment: Segment) -> Segment {
        let mut guard = self.lock();
        let data = &mut *guard;
        let stored = upsert(&mut data.segments, &mut data.deleted_segments, segment);
        self.publish(
            data,
            frames::patch(&stored),
            (Segment::KIND, &stored.key),
            fdv2_frames::put_object(&stored),
        );
        stored
    }

    /// Deletes a flag and pushes a `delete`; `None` if there was no such flag.
    pub fn delete_flag(&self, key: &str) -> Option<u64> {
        let mut guard = self.lock();
        let data = &mut *guard;
        let version = remove(&mut data.flags, &mut data.deleted_flags, key)?;
        self.publish(
            data,
            frames::delete(Flag::COLLECTION, key, version),
            (Flag::KIND, key),
            fdv2_frames::delete_object(Flag::KIND, key, version),
        );
        Some(version)
    }

    pub fn delete_segment(&self, key: &str) -> Option<u64> {
        let mut guard = self.lock();
        let data = &mut *guard;
        let version = remove(&mut data.segments, &mut data.deleted_segments, key)?;
        self.publish(
            data,
            frames::delete(Segment::COLLECTION, key, version),
            (Segment::KIND, key),
            fdv2_frames::delete_object(Segment::KIND, key, version),
        );
        Some(version)
    }

    /// Counts a change just applied, logs it, and sends its frames to every stream.
    fn publish(
        &self,
        data: &mut EnvData,
        fdv1: Bytes,
        (kind, key): (&'static str, &str),
        event: Fdv2Event,
    ) {
        data.snapshot = None;
        data.fdv2_snapshot = None;
        data.changes += 1;
        let selector = self.selector_at(data.changes);
        let fdv2 = fdv2_frames::sse([&event, &fdv2_frames::payload_transferred(&selector)]);
        data.log.push(LoggedChange {
            version: data.changes,
            kind,
            key: key.to_owned(),
            event,
        });
        // An error only means no stream is connected.
        let _ = self.updates.send(ChangeFrames { fdv1, fdv2 });
    }
}

fn upsert<T: Versioned>(
    items: &mut BTreeMap<String, T>,
    deleted: &mut Tombstones,
    mut item: T,
) -> T {
    let key = item.key().to_owned();
    let previous = items
        .get(&key)
        .map(Versioned::version)
        .unwrap_or_else(|| deleted.take(&key));
    // A caller may ask for a higher version (a data file, a replayed export); never lower.
    let version = (previous + 1).max(item.version());
    item.set_identity(&key, version);
    items.insert(key, item.clone());
    item
}

fn remove<T: Versioned>(
    items: &mut BTreeMap<String, T>,
    deleted: &mut Tombstones,
    key: &str,
) -> Option<u64> {
    let version = items.remove(key)?.version() + 1;
    deleted.insert(key, version);
    Some(version)
}

fn snapshot_of(data: &mut EnvData) -> Arc<Snapshot> {
    if let Some(snapshot) = &data.snapshot {
        return snapshot.clone();
    }
    #[derive(Serialize)]
    struct All<'a> {
        flags: &'a BTreeMap<String, Flag>,
        segments: &'a BTreeMap<String, Segment>,
    }
    let all_json = Bytes::from(
        serde_json::to_vec(&All {
            flags: &data.flags,
            segments: &data.segments,
        })
        .expect("flags and segments always serialize"),
    );
    let snapshot = Arc::new(Snapshot {
        put_frame: frames::put(&all_json),
        etag: etag_of(data),
        all_json,
    });
    data.snapshot = Some(snapshot.clone());
    snapshot
}

/// Derived from every item's key and version, so it changes exactly when the data does.
fn etag_of(data: &EnvData) -> String {
    let mut hasher = Sha1::new();
    for (prefix, key, version) in data
        .flags
        .values()
        .map(|f| ("f", &f.key, f.version))
        .chain(data.segments.values().map(|s| ("s", &s.key, s.version)))
    {
        hasher.update(format!("{prefix}:{key}:{version}\n"));
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("\"mock-ld-{hex}\"")
}

/// A project and its environments.
pub struct Project {
    pub key: String,
    pub name: String,
    pub environments: Vec<Arc<Environment>>,
}

/// Every project, found by key or by an environment's SDK key.
#[derive(Default)]
pub struct Store {
    projects: RwLock<Vec<Project>>,
}

impl Store {
    /// The store mock-ld starts with: project `default` with environments `test` (whose SDK
    /// key is `test_sdk_key`) and `production`.
    pub fn with_default_project(test_sdk_key: &str) -> Self {
        let environments = vec![
            Arc::new(Environment::new("default", "test", test_sdk_key)),
            Arc::new(Environment::new(
                "default",
                "production",
                "sdk-default-production",
            )),
        ];
        let project = Project {
            key: "default".into(),
            name: "Default project".into(),
            environments,
        };
        Store {
            projects: RwLock::new(vec![project]),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Project>> {
        self.projects
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Project>> {
        self.projects
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Every project's key and name, in creation order.
    pub fn projects(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .map(|p| (p.key.clone(), p.name.clone()))
            .collect()
    }

    /// Adds a project with its environments; `false`, and no change, if the key is taken.
    pub fn add_project(&self, project: Project) -> bool {
        let mut projects = self.write();
        if projects.iter().any(|p| p.key == project.key) {
            return false;
        }
        projects.push(project);
        true
    }

    /// Replaces every project, as durable state recovers them.
    pub fn replace_projects(&self, projects: Vec<Project>) {
        *self.write() = projects;
    }

    /// Removes a project: its SDK keys stop selecting anything at once.
    pub fn remove_project(&self, key: &str) -> Option<Project> {
        let mut projects = self.write();
        let index = projects.iter().position(|p| p.key == key)?;
        Some(projects.remove(index))
    }

    /// Adds an environment to its project (`env.project`), after which its SDK key selects
    /// it; `false` if there is no such project or the key is taken.
    pub fn add_environment(&self, env: Arc<Environment>) -> bool {
        let mut projects = self.write();
        let Some(project) = projects.iter_mut().find(|p| p.key == env.project) else {
            return false;
        };
        if project.environments.iter().any(|e| e.key == env.key) {
            return false;
        }
        project.environments.push(env);
        true
    }

    /// Removes an environment. Streams already open keep their last data; new ones get 401.
    pub fn remove_environment(&self, project: &str, env: &str) -> Option<Arc<Environment>> {
        let mut projects = self.write();
        let environments = &mut projects.iter_mut().find(|p| p.key == project)?.environments;
        let index = environments.iter().position(|e| e.key == env)?;
        Some(environments.remove(index))
    }

    /// The environment an SDK key belongs to. Keys are compared exactly; callers strip any
    /// `api_key ` scheme first.
    pub fn environment_by_sdk_key(&self, sdk_key: &str) -> Option<Arc<Environment>> {
        self.read()
            .iter()
            .flat_map(|p| &p.environments)
            .find(|e| e.sdk_key == sdk_key)
            .cloned()
    }

    pub fn environment(&self, project: &str, env: &str) -> Option<Arc<Environment>> {
        self.read()
            .iter()
            .filter(|p| p.key == project)
            .flat_map(|p| &p.environments)
            .find(|e| e.key == env)
            .cloned()
    }

    pub fn environments(&self) -> Vec<Arc<Environment>> {
        self.read()
            .iter()
            .flat_map(|p| p.environments.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(key: &str, version: u64) -> Flag {
        Flag {
            key: key.into(),
            version,
            variations: vec![true.into()],
            ..Flag::default()
        }
    }

    #[test]
    fn every_change_bumps_the_version_even_across_a_delete() {
        let env = Environment::new("p", "e", "sdk-x");
        assert_eq!(env.upsert_flag(flag("a", 0)).version, 1);
        assert_eq!(env.upsert_flag(flag("a", 0)).version, 2);
        assert_eq!(env.delete_flag("a"), Some(3));
        assert_eq!(env.upsert_flag(flag("a", 0)).version, 4);
        assert_eq!(env.upsert_flag(flag("a", 10)).version, 10);
        assert_eq!(env.delete_flag("missing"), None);
    }

    #[test]
    fn subscribers_receive_changes_after_their_snapshot() {
        let env = Environment::new("p", "e", "sdk-x");
        env.upsert_flag(flag("a", 0));
        let (snapshot, mut rx) = env.subscribe();
        assert!(std::str::from_utf8(&snapshot.put_frame)
            .unwrap()
            .contains("\"a\""));
        let before = snapshot.etag.clone();
        env.upsert_flag(flag("b", 0));
        let frame = rx.try_recv().unwrap();
        assert!(std::str::from_utf8(&frame.fdv1)
            .unwrap()
            .starts_with("event: patch\n"));
        let fdv2 = std::str::from_utf8(&frame.fdv2).unwrap();
        assert!(fdv2.starts_with("event: put-object\n"), "{fdv2}");
        assert!(fdv2.contains("event: payload-transferred\n"), "{fdv2}");
        assert_ne!(env.snapshot().etag, before);
    }

    fn names(events: &[Fdv2Event]) -> Vec<(&str, String)> {
        events
            .iter()
            .map(|e| {
                let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
                (e.name, data["key"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    #[test]
    fn fdv2_basis_gets_a_full_transfer_the_changes_since_or_nothing() {
        let env = Environment::new("p", "e", "sdk-x");
        env.upsert_flag(flag("a", 0));
        env.upsert_segment(Segment {
            key: "s".into(),
            ..Segment::default()
        });
        let Fdv2Transfer::Full { snapshot, reason } = env.fdv2_transfer(None) else {
            panic!("no basis is a full transfer");
        };
        assert_eq!(reason, "payload-missing");
        assert_eq!(snapshot.selector.version, 2);
        let sse = std::str::from_utf8(&snapshot.objects_sse).unwrap();
        assert_eq!(sse.matches("event: put-object").count(), 2);
        assert!(sse.ends_with(&format!(
            "data: {{\"state\":\"{}\",\"version\":2}}\n\n",
            snapshot.selector
        )));
        let at_two = snapshot.selector.clone();
        assert!(
            matches!(env.fdv2_transfer(Some(&at_two)), Fdv2Transfer::UpToDate(s) if s == at_two)
        );

        // a changed twice, then deleted; b created: the latest of each, in order.
        env.upsert_flag(flag("a", 0));
        env.upsert_flag(flag("b", 0));
        env.delete_flag("a");
        let Fdv2Transfer::Changes { selector, events } = env.fdv2_transfer(Some(&at_two)) else {
            panic!("a known basis gets changes");
        };
        assert_eq!(selector.version, 5);
        assert_eq!(
            names(&events),
            [("put-object", "b".into()), ("delete-object", "a".into())]
        );
        // The snapshot was rebuilt for the new version, once.
        let Fdv2Transfer::Full { snapshot: now, .. } = env.fdv2_transfer(None) else {
            panic!()
        };
        assert_eq!(now.selector.version, 5);
        let Fdv2Transfer::Full {
            snapshot: again, ..
        } = env.fdv2_transfer(None)
        else {
            panic!()
        };
        assert!(Arc::ptr_eq(&now, &again));

        // Another environment's basis, or one from the future, cannot be caught up from.
        let other = Environment::new("p", "e", "sdk-x");
        for foreign in [
            other.fdv2_selector(),
            Selector {
                version: 6,
                ..selector.clone()
            },
        ] {
            assert!(matches!(
                env.fdv2_transfer(Some(&foreign)),
                Fdv2Transfer::Full {
                    reason: "cant-catchup",
                    ..
                }
            ));
        }
    }

    #[test]
    fn fdv2_change_log_is_bounded_and_older_bases_get_a_full_transfer() {
        let env = Environment::new("p", "e", "sdk-x");
        let start = env.fdv2_selector();
        env.upsert_flag(flag("a", 0));
        let after_one = env.fdv2_selector();
        for _ in 0..CHANGE_LOG {
            env.upsert_flag(flag("b", 0));
        }
        assert_eq!(env.lock().log.changes.len(), CHANGE_LOG);
        // The change from 0 to 1 was forgotten; from 1 on everything is still there.
        assert!(matches!(
            env.fdv2_transfer(Some(&start)),
            Fdv2Transfer::Full {
                reason: "cant-catchup",
                ..
            }
        ));
        let Fdv2Transfer::Changes { events, .. } = env.fdv2_transfer(Some(&after_one)) else {
            panic!("the log reaches back to version 1");
        };
        assert_eq!(names(&events), [("put-object", "b".into())]);
    }

    #[test]
    fn fdv2_change_log_is_bounded_in_length_and_bytes() {
        let change = |version: u64, bytes: usize| LoggedChange {
            version,
            kind: "flag",
            key: "k".into(),
            event: Fdv2Event {
                name: "put-object",
                data: Bytes::from(vec![b'x'; bytes]),
            },
        };
        let mut log = ChangeLog::new(3, 100);
        for version in 1..=5 {
            log.push(change(version, 10));
        }
        assert_eq!(
            (log.oldest_version(), log.changes.len(), log.bytes),
            (Some(3), 3, 30)
        );
        log.push(change(6, 80));
        assert_eq!((log.oldest_version(), log.bytes), (Some(4), 100));
        // The newest is kept even alone past the byte bound.
        log.push(change(7, 500));
        assert_eq!(
            (log.oldest_version(), log.changes.len(), log.bytes),
            (Some(7), 1, 500)
        );
    }

    #[test]
    fn items_round_trip_with_versions_and_tombstones() {
        let env = Environment::new("p", "e", "sdk-x");
        env.upsert_flag(flag("a", 5));
        env.upsert_flag(flag("gone", 0));
        env.delete_flag("gone");
        let items = env.items();
        assert_eq!(items.deleted_flags["gone"], 2);
        let json = serde_json::to_string(&items).unwrap();
        let restored =
            Environment::with_items("p", "e", "sdk-x", serde_json::from_str(&json).unwrap());
        assert_eq!(restored.items(), items);
        assert_eq!(restored.snapshot().etag, env.snapshot().etag);
        assert_eq!(restored.upsert_flag(flag("gone", 0)).version, 3);
    }

    #[test]
    fn tombstones_are_bounded_and_versions_still_rise_past_forgotten_ones() {
        let env = Environment::new("p", "e", "sdk-x");
        let n = MAX_TOMBSTONES + 1;
        for i in 0..n {
            let key = format!("f{i}");
            env.upsert_flag(flag(&key, i as u64 + 1));
            assert_eq!(env.delete_flag(&key), Some(i as u64 + 2));
        }
        let items = env.items();
        assert!(items.deleted_flags.len() <= MAX_TOMBSTONES / 2 + 1);
        assert!(items.flag_version_floor > 0);
        // Forgotten or remembered, a deleted key comes back above its delete.
        assert!(!items.deleted_flags.contains_key("f0"));
        assert!(env.upsert_flag(flag("f0", 0)).version > 2);
        let newest = format!("f{}", n - 1);
        assert_eq!(items.deleted_flags[&newest], n as u64 + 1);
        assert_eq!(env.upsert_flag(flag(&newest, 0)).version, n as u64 + 2);
        // A brand-new key starts above the floor.
        let floor = items.flag_version_floor;
        assert_eq!(env.upsert_flag(flag("new", 0)).version, floor + 1);
        // The floor survives a round trip through durable state.
        let json = serde_json::to_string(&env.items()).unwrap();
        let restored =
            Environment::with_items("p", "e", "sdk-x", serde_json::from_str(&json).unwrap());
        assert_eq!(restored.upsert_flag(flag("other", 0)).version, floor + 1);
    }

    #[test]
    fn sdk_keys_select_environments() {
        let store = Store::with_default_project("sdk-t");
        assert_eq!(store.environment_by_sdk_key("sdk-t").unwrap().key, "test");
        assert_eq!(
            store
                .environment_by_sdk_key("sdk-default-production")
                .unwrap()
                .key,
            "production"
        );
        assert!(store.environment_by_sdk_key("sdk-nope").is_none());
        assert!(store.environment("default", "test").is_some());
    }

    #[test]
    fn added_environments_are_selected_by_their_sdk_key_until_removed() {
        let store = Store::with_default_project("sdk-t");
        let staging = Arc::new(Environment::new("default", "staging", "sdk-s"));
        assert!(store.add_environment(staging.clone()));
        assert!(!store.add_environment(staging), "duplicate key");
        assert_eq!(
            store.environment_by_sdk_key("sdk-s").unwrap().key,
            "staging"
        );
        assert!(store.remove_environment("default", "staging").is_some());
        assert!(store.environment_by_sdk_key("sdk-s").is_none());

        let other = Project {
            key: "other".into(),
            name: "Other".into(),
            environments: vec![Arc::new(Environment::new("other", "test", "sdk-o"))],
        };
        assert!(store.add_project(other));
        assert_eq!(
            store.environment_by_sdk_key("sdk-o").unwrap().project,
            "other"
        );
        assert_eq!(store.projects().len(), 2);
        assert!(store.remove_project("other").is_some());
        assert!(store.environment_by_sdk_key("sdk-o").is_none());
    }
}
