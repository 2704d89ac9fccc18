//! The one door every REST write goes through.
//!
//! A write handler locks what it changes (its project), describes the change in LaunchDarkly's
//! role-policy terms ([`Change`]: caller, actions, resource specifier, comment) and runs its
//! mutation through [`Change::commit`]. The mutation returns the resource before and after.
//! A role check belongs at the top of `commit`, and an audit entry and a durable record at its
//! end: every write passes there, under the lock, with everything they need.

use serde_json::Value;

use super::auth::Caller;
use crate::error::AppError;

/// One write about to happen.
pub struct Change<'a> {
    pub caller: &'a Caller,
    /// Role-policy actions, e.g. `updateAIConfigTargeting`; a segment patch may need several.
    pub actions: Vec<&'static str>,
    /// The resource specifier, e.g. `proj/default:env/test:aiconfig/my-config`.
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

    /// Runs `mutate`, which applies the change (and pushes it to SDK streams) or leaves
    /// everything as it was and says why not.
    pub fn commit<T>(
        self,
        mutate: impl FnOnce() -> Result<Outcome<T>, AppError>,
    ) -> Result<T, AppError> {
        let outcome = mutate()?;
        tracing::info!(
            caller = %self.caller.name,
            actions = ?self.actions,
            resource = %self.resource,
            comment = self.comment.as_deref().unwrap_or(""),
            "api change"
        );
        tracing::debug!(before = %outcome.before, after = %outcome.after, "api change detail");
        Ok(outcome.response)
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
