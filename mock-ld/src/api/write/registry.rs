//! The REST API's own state: every project, with what only the API knows about it.
//!
//! What SDKs evaluate stays in the [`Store`]: an AI Config's targeting in an environment *is*
//! the flag that environment serves, and a segment is the store's segment. The registry keeps
//! the rest: names, ids, keys, variation history, model configs. Each project has one lock,
//! which serializes every write within it; reads take it briefly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::audit::AuditLog;
use super::ledger::Ledger;
use crate::api::access::auth::Caller;
use crate::api::access::roles::Tokens;
use crate::api::json::now_ms;
use crate::api::records::environment::{EnvEntry, EnvMeta};
use crate::api::records::project::{ProjectData, ProjectMeta};
use crate::error::AppError;
use crate::store::Store;

/// The REST API's state, shared by every handler.
pub struct Api {
    pub(super) store: Arc<Store>,
    tokens: Tokens,
    pub(super) projects: RwLock<BTreeMap<String, Arc<ProjectEntry>>>,
    /// The audit log and, with `--state`, the journal.
    pub(super) ledger: Ledger,
    /// When the API started (ms), after seed data loaded: the creation date of what the
    /// seed data or the admin API made without the API's knowledge.
    started_at: u64,
}

/// One project and the lock that serializes writes to it.
pub struct ProjectEntry {
    data: Mutex<ProjectData>,
}

impl Api {
    /// The API over `store`, knowing every project and environment already in it, with an
    /// audit log of at most `max_audit_bytes`.
    pub fn new(store: Arc<Store>, tokens: Tokens, max_audit_bytes: usize) -> Self {
        let mut projects = BTreeMap::new();
        for (key, name) in store.projects() {
            let mut data = ProjectData::new(ProjectMeta::new(&key, &name));
            for env in store
                .environments()
                .into_iter()
                .filter(|e| e.project == key)
            {
                let meta = EnvMeta::new(&env.key, &capitalized(&env.key));
                data.environments
                    .insert(env.key.clone(), EnvEntry { meta, env });
            }
            projects.insert(key, Arc::new(ProjectEntry::new(data)));
        }
        Api {
            store,
            tokens,
            projects: RwLock::new(projects),
            ledger: Ledger::new(AuditLog::new(max_audit_bytes)),
            started_at: now_ms(),
        }
    }

    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Who holds `token`, if anyone.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        self.tokens.get(token).map(|token| Caller { token })
    }

    /// Every valid token: `--api-token` and those of `--roles`.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Runs `read` over the audit log.
    pub(super) fn audit_select<T>(&self, read: impl FnOnce(&AuditLog) -> T) -> T {
        self.ledger.audit(read)
    }

    pub fn project(&self, key: &str) -> Result<Arc<ProjectEntry>, AppError> {
        self.read()
            .get(key)
            .cloned()
            .ok_or_else(|| AppError::not_found("project", key))
    }

    pub fn projects(&self) -> Vec<Arc<ProjectEntry>> {
        self.read().values().cloned().collect()
    }

    /// The project map, locked for adding or removing a project.
    pub fn projects_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<ProjectEntry>>> {
        self.projects
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<ProjectEntry>>> {
        self.projects
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl ProjectEntry {
    pub fn new(data: ProjectData) -> Self {
        ProjectEntry {
            data: Mutex::new(data),
        }
    }

    /// The project's data, locked. Mutations validate before they change anything, so a
    /// panic cannot leave a half-applied change and a poisoned lock is still consistent.
    pub fn lock(&self) -> MutexGuard<'_, ProjectData> {
        self.data
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// `test` → `Test`: the names the default environments get.
pub fn capitalized(key: &str) -> String {
    let mut chars = key.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
