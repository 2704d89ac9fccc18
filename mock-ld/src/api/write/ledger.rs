//! Where every committed change is written down: the audit log and, with `--state`, the
//! journal. One lock covers both, so the journal holds audit entries in the log's order, and
//! every date is assigned in that order too.
//!
//! A journal change is the complete state of the one project a write touched (or its
//! removal), not the request: replaying it needs none of the handlers' logic, random ids or
//! clocks, applying it twice changes nothing, and the newest state of each project simply
//! wins. The cost is writing the whole project on each change, which compaction bounds.

use std::sync::{Mutex, MutexGuard};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::audit::{AuditEntry, AuditLog};
use super::persist::ProjectState;
use crate::error::AppError;
use crate::state::{Journal, Recovered, StateError};

/// One journal line's change.
#[derive(Serialize, Deserialize)]
pub struct Record<A = AuditEntry> {
    pub project: String,
    /// The project after the change; `None` when the change removed it.
    pub state: Option<ProjectState>,
    /// For REST writes; admin API writes have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<A>,
}

/// The snapshot: every project, in the store's order, and the audit log, oldest first (its
/// entries as patches, each resource's newest entry with the resource's state).
#[derive(Serialize, Deserialize)]
pub struct Persisted<A = AuditEntry> {
    pub projects: Vec<ProjectState>,
    pub audit: Vec<A>,
}

impl Persisted {
    /// The snapshot with the journal's changes applied in order; `None` for a first start.
    /// (There is no journal without a snapshot: [`crate::state::StateDir::open`] refuses it.)
    pub fn recover(recovered: Recovered<Persisted, Record>) -> Option<Persisted> {
        let mut persisted = recovered.snapshot?;
        for record in recovered.changes {
            let index = persisted
                .projects
                .iter()
                .position(|p| p.key() == record.project);
            match (index, record.state) {
                (Some(i), Some(state)) => persisted.projects[i] = state,
                (None, Some(state)) => persisted.projects.push(state),
                (Some(i), None) => drop(persisted.projects.remove(i)),
                (None, None) => {}
            }
            persisted.audit.extend(record.audit);
        }
        Some(persisted)
    }
}

pub struct Ledger {
    inner: Mutex<Inner>,
    /// Signalled when the journal has grown enough to be compacted.
    pub compaction: Notify,
}

struct Inner {
    audit: AuditLog,
    journal: Option<Journal>,
}

impl Ledger {
    pub fn new(audit: AuditLog) -> Self {
        Ledger {
            inner: Mutex::new(Inner {
                audit,
                journal: None,
            }),
            compaction: Notify::new(),
        }
    }

    /// From now on, every write is journaled before it is acknowledged.
    pub fn attach(&mut self, journal: Journal) {
        let inner = self
            .inner
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.journal = Some(journal);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation under this lock is a push or a whole-line append: a panic leaves
        // nothing half done.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// 503 once the journal has failed: a change now could not be made durable.
    pub fn check(&self) -> Result<(), AppError> {
        match &self.lock().journal {
            Some(journal) => journal
                .check()
                .map_err(|e| AppError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
            None => Ok(()),
        }
    }

    /// Records a change to `project`: journals `state()` (called only with `--state`) and
    /// the audit entry `entry` makes for its date, if any, then adds the entry to the log.
    pub fn write(
        &self,
        project: &str,
        state: impl FnOnce() -> Option<ProjectState>,
        entry: impl FnOnce(u64) -> Option<AuditEntry>,
    ) -> Result<(), AppError> {
        let mut guard = self.lock();
        let Inner { audit, journal } = &mut *guard;
        let entry = entry(audit.next_date());
        let mut result = Ok(());
        if let Some(journal) = journal {
            let record = Record {
                project: project.to_owned(),
                state: state(),
                audit: entry.as_ref(),
            };
            result = journal.append(&record).map_err(|e| {
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "the change was applied but could not be made durable ({e}); \
                         mock-ld takes no more writes until it is restarted"
                    ),
                )
            });
            if journal.wants_compaction() {
                self.compaction.notify_one();
            }
        }
        // The change happened either way, so the log says so.
        if let Some(entry) = entry {
            audit.push(entry);
        }
        result
    }

    /// Runs `read` over the audit log.
    pub fn audit<T>(&self, read: impl FnOnce(&AuditLog) -> T) -> T {
        read(&self.lock().audit)
    }

    /// Writes `projects` and the audit log as the snapshot and empties the journal. The
    /// caller holds every project's lock, so `projects` holds exactly what the journal does.
    pub fn compact(&self, projects: Vec<ProjectState>) -> Result<(), StateError> {
        let mut guard = self.lock();
        let Inner { audit, journal } = &mut *guard;
        let Some(journal) = journal else {
            return Ok(());
        };
        let persisted = Persisted {
            projects,
            audit: audit.snapshot(),
        };
        journal.compact(&persisted)
    }
}
