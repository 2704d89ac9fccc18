//! What a REST write is, in LaunchDarkly's role-policy terms: [`Change`] and the resource
//! specifiers it names. It sits below the audit log, which records changes, and below
//! [`super::commit`], which runs them.
//!
//! A write handler locks what it changes (its project, or the project list to create or
//! delete one), describes the change ([`Change`]: caller, actions, resource specifier,
//! comment) and runs its mutation through `Change::commit`.

use axum::http::StatusCode;
use serde_json::Value;

use crate::api::access::auth::Caller;

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

impl Outcome<Value> {
    /// A resource created: nothing before, `answer` after and as the response.
    pub fn created(answer: Value) -> Self {
        Outcome::changed(Value::Null, answer)
    }

    /// A resource changed from `before` to `answer`, which is also the response.
    pub fn changed(before: Value, answer: Value) -> Self {
        Outcome {
            before,
            after: answer.clone(),
            response: answer,
        }
    }
}

impl Outcome<StatusCode> {
    /// A resource deleted: `before`, nothing after, and `204 No Content`.
    pub fn deleted(before: Value) -> Self {
        Outcome {
            before,
            after: Value::Null,
            response: StatusCode::NO_CONTENT,
        }
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
    pub fn project(&self) -> &str {
        let rest = self.resource.strip_prefix("proj/").unwrap_or_default();
        rest.split(':').next().unwrap_or_default()
    }
}

/// The role actions a patch needs, each once; `none` (the action of a change to nothing)
/// when it changes nothing, so that even a no-op patch is checked against a role.
pub fn needed_actions(mut actions: Vec<&'static str>, none: &'static str) -> Vec<&'static str> {
    actions.sort_unstable();
    actions.dedup();
    if actions.is_empty() {
        actions.push(none);
    }
    actions
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

/// `proj/{project}:env/{env}:flag/{key}`; `env` is `*` for a change to the flag in every
/// environment (create, delete, name, variations).
pub fn flag_resource(project: &str, env: &str, key: &str) -> String {
    format!("proj/{project}:env/{env}:flag/{key}")
}
