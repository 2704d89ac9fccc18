//! The one door every REST write goes through: [`Change::commit`].
//!
//! `commit` checks the caller's roles first (403), then runs the mutation, which returns the
//! resource before and after, and last records the change in the audit log and, with
//! `--state`, the journal (fsynced), all under the handler's lock and before the response.
//! It is here rather than beside [`Change`] because it needs the registry and the ledger,
//! which sit above the audit log that records a `Change`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::audit::AuditEntry;
use super::change::{Change, Outcome};
use super::persist::ProjectState;
use super::registry::{Api, ProjectEntry};
use crate::api::records::project::ProjectData;
use crate::error::AppError;
use crate::store::Store;

/// What a write holds locked and changes: one project's data, or the list of projects.
pub trait Scope {
    /// `project` after the change, as the journal keeps it; `None` if it no longer exists.
    fn state_of(&self, project: &str, store: &Store) -> Option<ProjectState>;
}

impl Scope for ProjectData {
    fn state_of(&self, _project: &str, store: &Store) -> Option<ProjectState> {
        Some(ProjectState::capture(self, store))
    }
}

impl Scope for BTreeMap<String, Arc<ProjectEntry>> {
    fn state_of(&self, project: &str, store: &Store) -> Option<ProjectState> {
        let entry = self.get(project)?;
        let data = entry.lock();
        Some(ProjectState::capture(&data, store))
    }
}

impl Change<'_> {
    /// Checks the caller's roles, runs `mutate` on `scope` (it applies the change and pushes
    /// it to SDK streams, or leaves everything as it was and says why not), then records the
    /// change. An `Err` from recording means the change was applied but is not durable.
    pub fn commit<S: Scope, T>(
        self,
        api: &Api,
        scope: &mut S,
        mutate: impl FnOnce(&mut S) -> Result<Outcome<T>, AppError>,
    ) -> Result<T, AppError> {
        self.caller.authorize(&self.actions, &self.resource)?;
        api.ledger.check()?;
        let Outcome {
            before,
            after,
            response,
        } = mutate(scope)?;
        tracing::info!(
            token = %self.caller.token.name,
            actions = ?self.actions,
            resource = %self.resource,
            comment = self.comment.as_deref().unwrap_or(""),
            "api change"
        );
        let state = || scope.state_of(self.project(), &api.store);
        let entry = |date| Some(AuditEntry::new(&self, before, after, date));
        api.ledger.write(self.project(), state, entry)?;
        Ok(response)
    }
}
