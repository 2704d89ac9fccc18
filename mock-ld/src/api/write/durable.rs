//! Durable state for the REST API (`--state DIR`): recovering every project and the audit log
//! at start-up, journaling each change (see [`super::ledger`]) and compacting the journal
//! into a snapshot.
//!
//! Start-up order: the default project, then what DIR holds (which replaces it), then the
//! `--data` seed files on top, then a snapshot of the result, after which the journal starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::audit::AuditLog;
use super::ledger::{Ledger, Persisted, Record};
use super::persist::ProjectState;
use super::registry::{Api, ProjectEntry};
use crate::api::records::project::ProjectData;
use crate::error::AppError;
use crate::state::{StateDir, StateError};

impl Api {
    /// Opens DIR and, unless it is empty, replaces every project and the audit log with what
    /// it holds. Call before anything else changes the store.
    pub fn recover(&mut self, dir: &Path, test_sdk_key: &str) -> Result<StateDir, StateError> {
        let (state_dir, recovered) = StateDir::open::<Persisted, Record>(dir)?;
        if let Some(persisted) = Persisted::recover(recovered) {
            self.restore(persisted, test_sdk_key)
                .map_err(|message| StateError::Corrupt {
                    place: dir.display().to_string(),
                    message: format!("the recovered state does not hold together: {message}"),
                })?;
        }
        Ok(state_dir)
    }

    fn restore(&mut self, persisted: Persisted, test_sdk_key: &str) -> Result<(), String> {
        let mut registry = BTreeMap::new();
        let mut projects = Vec::new();
        for state in persisted.projects {
            let (data, project) = state.restore(test_sdk_key)?;
            registry.insert(project.key.clone(), Arc::new(ProjectEntry::new(data)));
            projects.push(project);
        }
        self.store.replace_projects(projects);
        *self
            .projects
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner()) = registry;
        let max_bytes = self.ledger.audit(AuditLog::max_bytes);
        self.ledger = Ledger::new(AuditLog::from_entries(max_bytes, persisted.audit));
        Ok(())
    }

    /// Snapshots the state as it is now (recovered state and seed data) and journals every
    /// change from here on.
    pub fn start_journal(&mut self, dir: StateDir) -> Result<(), StateError> {
        let journal = self.with_every_project(|projects| {
            self.ledger.audit(|log| {
                dir.start(&Persisted {
                    projects,
                    audit: log.snapshot(),
                })
            })
        })?;
        self.ledger.attach(journal);
        Ok(())
    }

    /// Replaces the journal with a snapshot. Writes wait meanwhile: the snapshot must hold
    /// exactly the changes the journal held.
    pub fn snapshot(&self) -> Result<(), StateError> {
        self.with_every_project(|projects| self.ledger.compact(projects))
    }

    /// Calls `f` with the state of every project, in the store's order, holding every
    /// project's lock (and the project list's) until it returns.
    fn with_every_project<T>(&self, f: impl FnOnce(Vec<ProjectState>) -> T) -> T {
        let projects = self.read();
        let order: Vec<String> = self
            .store
            .projects()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut locked: Vec<(&String, MutexGuard<'_, ProjectData>)> = projects
            .iter()
            .map(|(key, entry)| (key, entry.lock()))
            .collect();
        locked.sort_by_key(|(key, _)| order.iter().position(|k| k == *key));
        let states = locked
            .iter()
            .map(|(_, data)| ProjectState::capture(data, &self.store))
            .collect();
        f(states)
    }

    /// Runs `change`, an admin API write to one of `project`'s environments, under the
    /// project's lock, and journals the project before answering.
    pub fn write_store<T>(&self, project: &str, change: impl FnOnce() -> T) -> Result<T, AppError> {
        let entry = self.project(project)?;
        let data = entry.lock();
        self.ledger.check()?;
        let out = change();
        let state = || Some(ProjectState::capture(&data, &self.store));
        self.ledger.write(project, state, |_| None)?;
        Ok(out)
    }
}

/// Compacts the journal whenever the ledger says it has grown enough, until shutdown.
pub async fn compact_when_due(api: Arc<Api>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = api.ledger.compaction.notified() => {}
        }
        write_snapshot(api.clone()).await;
    }
}

/// Writes a snapshot off the async threads (it waits for every project's lock) and logs how
/// it went. A failure loses nothing: the journal still holds every change.
pub async fn write_snapshot(api: Arc<Api>) {
    match tokio::task::spawn_blocking(move || api.snapshot()).await {
        Ok(Ok(())) => tracing::info!("state snapshot written, journal emptied"),
        Ok(Err(error)) => tracing::error!(%error, "state snapshot failed; the journal is intact"),
        Err(error) => tracing::error!(%error, "state snapshot panicked; the journal is intact"),
    }
}
