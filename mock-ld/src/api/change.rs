//! The one door every REST write goes through.
//!
//! A write handler locks what it changes (its project, or the project list to create or
//! delete one), describes the change in LaunchDarkly's role-policy terms ([`Change`]: caller,
//! actions, resource specifier, comment) and runs its mutation through [`Change::commit`].
//! `commit` checks the caller's roles first (403), then runs the mutation, which returns the
//! resource before and after, and last records the change in the audit log and, with
//! `--state`, the journal (fsynced), all under the handler's lock and before the response.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::access::auth::Caller;
use super::audit::AuditEntry;
use super::persist::ProjectState;
use super::records::project::ProjectData;
use super::registry::{Api, ProjectEntry};
use crate::error::AppError;
use crate::store::Store;

/// One write about to happen.
pub struct Change<'a> {
    pub caller: &'a Caller,
    /// Role-policy actions, e.g. `updateAIConfigTargeting`; a segment patch may need several.
    pub actions: Vec<&'static str>,
    /// The resource specifier, e.g. `proj/default:env/test:aiconfig/my-config`; always
    /// `proj/{project}` first (see the helpers below).
    pub resource: String,
    pub comment: Option<String>,
}

/// What a mutation did: the resource as JSON before and after (`null` where it did not
/// exist) and the response body.
pub struct Outcome<T> {
    pub before: Value,
    pub after: Value,
    pub response: T,
}

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

impl<'a> Change<'a> {
    pub fn new(caller: &'a Caller, action: &'static str, resource: String) -> Self {
        Change {
            caller,
            actions: vec![action],
            resource,
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: Option<String>) -> Self {
        self.comment = comment;
        self
    }

    /// The project the resource belongs to.
    fn project(&self) -> &str {
        let rest = self.resource.strip_prefix("proj/").unwrap_or_default();
        rest.split(':').next().unwrap_or_default()
    }

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

/// `proj/{project}`.
pub fn project_resource(project: &str) -> String {
    format!("proj/{project}")
}

/// `proj/{project}:env/{env}`.
pub fn env_resource(project: &str, env: &str) -> String {
    format!("proj/{project}:env/{env}")
}

/// `proj/{project}:aiconfig/{key}`, for configs and their variations.
pub fn ai_config_resource(project: &str, key: &str) -> String {
    format!("proj/{project}:aiconfig/{key}")
}

/// `proj/{project}:env/{env}:aiconfig/{key}`, for targeting.
pub fn targeting_resource(project: &str, env: &str, key: &str) -> String {
    format!("proj/{project}:env/{env}:aiconfig/{key}")
}

/// `proj/{project}:ai-model-config/{key}`.
pub fn model_config_resource(project: &str, key: &str) -> String {
    format!("proj/{project}:ai-model-config/{key}")
}

/// `proj/{project}:env/{env}:segment/{key}`.
pub fn segment_resource(project: &str, env: &str, key: &str) -> String {
    format!("proj/{project}:env/{env}:segment/{key}")
}
