//! `/auditlog`: one entry per accepted REST write, saying who (the token), when, what (the
//! actions on the resource), why (the request's `comment`) and how (the resource's JSON before
//! and after, on the single-entry GET), in LaunchDarkly's `AuditLogEntryRep` shape (spec §7).
//!
//! Entries are listed newest first. Their dates are unique and rising (a burst of writes in
//! one millisecond gets consecutive milliseconds), so paging with `before=<last date>` never
//! skips or repeats an entry.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Caller;
use super::change::Change;
use super::json::{link, now_ms, object_id, query};
use super::policy::Specifier;
use crate::error::AppError;
use crate::AppState;

/// Entries kept in memory (and in durable state); older ones are dropped first.
pub const CAPACITY: usize = 10_000;
/// `_accountId`, which clients require: mock-ld has one account.
const ACCOUNT_ID: &str = "mock-ld";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auditlog", get(list))
        .route("/auditlog/{id}", get(read))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[serde(rename = "_id")]
    pub id: String,
    pub date: u64,
    pub kind: String,
    pub name: String,
    pub description: String,
    pub short_description: String,
    pub title: String,
    pub title_verb: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub token: TokenSummary,
    pub accesses: Vec<Access>,
    pub target: TargetRep,
    pub delta: Delta,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub ending: String,
    pub service_token: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Access {
    pub action: String,
    pub resource: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRep {
    pub name: String,
    pub resources: Vec<String>,
}

/// The changed resource as the API shows it, before and after; `null` where it did not exist.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delta {
    pub before: Value,
    pub after: Value,
}

impl AuditEntry {
    pub fn new(change: &Change, before: Value, after: Value, date: u64) -> Self {
        let (kind, key, env) = describe_resource(&change.resource);
        let verb = title_verb(change.actions.first().copied().unwrap_or_default());
        let place = env.map(|e| format!(" in {e}")).unwrap_or_default();
        let short = format!("{verb} {key}{place}");
        let token = &change.caller.token;
        let description = change
            .actions
            .iter()
            .map(|action| format!("- {action} on `{}`", change.resource))
            .collect::<Vec<_>>()
            .join("\n");
        AuditEntry {
            id: object_id(),
            date,
            kind: kind.to_owned(),
            name: key.to_owned(),
            description,
            title: format!("{} {short}", token.name),
            short_description: short,
            title_verb: verb.to_owned(),
            comment: change.comment.clone(),
            token: TokenSummary {
                id: token.id.clone(),
                name: token.name.clone(),
                ending: token.ending.clone(),
                service_token: false,
            },
            accesses: change
                .actions
                .iter()
                .map(|action| Access {
                    action: (*action).to_owned(),
                    resource: change.resource.clone(),
                })
                .collect(),
            target: TargetRep {
                name: key.to_owned(),
                resources: vec![change.resource.clone()],
            },
            delta: Delta { before, after },
        }
    }

    /// The entry as the list shows it: everything but the delta.
    fn listing_json(&self) -> Value {
        let mut out = self.detail_json();
        if let Value::Object(fields) = &mut out {
            fields.remove("delta");
        }
        out
    }

    fn detail_json(&self) -> Value {
        let mut out = serde_json::to_value(self).expect("audit entries serialize");
        out["_accountId"] = json!(ACCOUNT_ID);
        out["_links"] = json!({"self": link(&format!("/api/v2/auditlog/{}", self.id))});
        out
    }

    fn mentions(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        [
            &self.title,
            &self.description,
            &self.name,
            &self.kind,
            &self.token.name,
        ]
        .into_iter()
        .chain(self.comment.as_ref())
        .chain(&self.target.resources)
        .any(|field| field.to_lowercase().contains(&text))
    }
}

/// The kind of entry, the resource's key and, for environment-scoped resources, the
/// environment: all read from the specifier's parts.
fn describe_resource(resource: &str) -> (&'static str, &str, Option<&str>) {
    let parts: Vec<(&str, &str)> = resource
        .split(':')
        .map(|part| part.split_once('/').unwrap_or((part, "")))
        .collect();
    let (kind, key) = parts.last().copied().unwrap_or_default();
    let env = (kind != "env")
        .then(|| parts.iter().find(|(k, _)| *k == "env").map(|(_, e)| *e))
        .flatten();
    let kind = match kind {
        "proj" => "project",
        "env" => "environment",
        "aiconfig" => "aiconfig",
        "ai-model-config" => "ai-model-config",
        "segment" => "segment",
        _ => "resource",
    };
    (kind, key, env)
}

fn title_verb(action: &str) -> &'static str {
    match action {
        "createProject" => "created the project",
        "deleteProject" => "deleted the project",
        "createEnvironment" => "created the environment",
        "deleteEnvironment" => "deleted the environment",
        "createAIConfig" => "created the AI Config",
        "updateAIConfig" => "updated the AI Config",
        "deleteAIConfig" => "deleted the AI Config",
        "createAIConfigVariation" => "added a variation to the AI Config",
        "updateAIConfigVariation" => "updated a variation of the AI Config",
        "deleteAIConfigVariation" => "deleted a variation of the AI Config",
        "updateAIConfigTargeting" => "updated the targeting of the AI Config",
        "createAIModelConfig" => "created the model config",
        "deleteAIModelConfig" => "deleted the model config",
        "createSegment" => "created the segment",
        "deleteSegment" => "deleted the segment",
        "updateIncluded" | "updateExcluded" | "updateRules" | "updateTags" | "updateName" => {
            "updated the segment"
        }
        _ => "changed",
    }
}

/// Every entry, oldest first.
#[derive(Default)]
pub struct AuditLog {
    entries: VecDeque<Arc<AuditEntry>>,
    last_date: u64,
}

impl AuditLog {
    pub fn from_entries(entries: Vec<AuditEntry>) -> Self {
        let mut log = AuditLog::default();
        for entry in entries {
            log.push(entry);
        }
        log
    }

    /// Now, or just after the newest entry if that is later (see the module doc).
    pub fn next_date(&self) -> u64 {
        now_ms().max(self.last_date + 1)
    }

    pub fn push(&mut self, entry: AuditEntry) {
        self.last_date = self.last_date.max(entry.date);
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(Arc::new(entry));
    }

    pub fn entries(&self) -> impl Iterator<Item = &AuditEntry> {
        self.entries.iter().map(|e| &**e)
    }

    fn get(&self, id: &str) -> Option<Arc<AuditEntry>> {
        self.entries.iter().find(|e| e.id == id).cloned()
    }

    /// The newest entries that pass `filter`, at most `limit + 1` (one more says there is a
    /// next page).
    fn select(&self, filter: &Filter, limit: usize) -> Vec<Arc<AuditEntry>> {
        self.entries
            .iter()
            .rev()
            .filter(|e| filter.passes(e))
            .take(limit + 1)
            .cloned()
            .collect()
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    before: Option<u64>,
    after: Option<u64>,
    q: Option<String>,
    spec: Option<String>,
}

struct Filter {
    before: Option<u64>,
    after: Option<u64>,
    q: Option<String>,
    spec: Option<Specifier>,
}

impl Filter {
    fn passes(&self, entry: &AuditEntry) -> bool {
        self.before.is_none_or(|before| entry.date < before)
            && self.after.is_none_or(|after| entry.date > after)
            && self.q.as_deref().is_none_or(|q| entry.mentions(q))
            && (self.spec.as_ref())
                .is_none_or(|spec| entry.target.resources.iter().any(|r| spec.matches(r)))
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(10);
    if !(1..=20).contains(&limit) {
        return Err(AppError::bad_request(format!(
            "limit {limit} is out of range: give 1 to 20 (the default is 10)"
        )));
    }
    let spec = params
        .spec
        .as_deref()
        .map(|s| s.parse::<Specifier>().map_err(AppError::bad_request))
        .transpose()?;
    let filter = Filter {
        before: params.before,
        after: params.after,
        q: params.q.filter(|q| !q.is_empty()),
        spec,
    };
    let mut entries = state.api.audit_select(|log| log.select(&filter, limit));
    let mut links = json!({"self": link("/api/v2/auditlog")});
    if entries.len() > limit {
        entries.truncate(limit);
        let last = entries.last().map_or(0, |e| e.date);
        links["next"] = link(&next_href(&filter, limit, last));
    }
    let items: Vec<Value> = entries.iter().map(|e| e.listing_json()).collect();
    Ok(Json(json!({"items": items, "_links": links})))
}

/// The same query, one page further back.
fn next_href(filter: &Filter, limit: usize, before: u64) -> String {
    let mut href = format!("/api/v2/auditlog?limit={limit}&before={before}");
    if let Some(after) = filter.after {
        href.push_str(&format!("&after={after}"));
    }
    if let Some(q) = &filter.q {
        href.push_str(&format!("&q={}", percent_encoded(q)));
    }
    if let Some(spec) = &filter.spec {
        href.push_str(&format!("&spec={}", percent_encoded(&spec.to_string())));
    }
    href
}

/// Encodes every byte but RFC 3986's unreserved characters.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    state
        .api
        .audit_select(|log| log.get(&id))
        .map(|entry| Json(entry.detail_json()))
        .ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                format!("no audit log entry with _id {id:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(date: u64, resource: &str, comment: Option<&str>) -> AuditEntry {
        let (kind, key, _) = describe_resource(resource);
        AuditEntry {
            id: format!("id-{date}"),
            date,
            kind: kind.into(),
            name: key.into(),
            description: String::new(),
            short_description: String::new(),
            title: format!("alice changed {key}"),
            title_verb: String::new(),
            comment: comment.map(str::to_owned),
            token: TokenSummary {
                id: "t".into(),
                name: "alice".into(),
                ending: "abcd".into(),
                service_token: false,
            },
            accesses: Vec::new(),
            target: TargetRep {
                name: key.into(),
                resources: vec![resource.into()],
            },
            delta: Delta {
                before: Value::Null,
                after: Value::Null,
            },
        }
    }

    fn filter() -> Filter {
        Filter {
            before: None,
            after: None,
            q: None,
            spec: None,
        }
    }

    fn dates(log: &AuditLog, filter: &Filter, limit: usize) -> Vec<u64> {
        log.select(filter, limit).iter().map(|e| e.date).collect()
    }

    #[test]
    fn resources_name_the_kind_key_and_environment() {
        let targeting = "proj/p:env/production:aiconfig/chat";
        assert_eq!(
            describe_resource(targeting),
            ("aiconfig", "chat", Some("production"))
        );
        assert_eq!(
            describe_resource("proj/p:aiconfig/chat"),
            ("aiconfig", "chat", None)
        );
        assert_eq!(
            describe_resource("proj/p:env/test"),
            ("environment", "test", None)
        );
        assert_eq!(describe_resource("proj/p"), ("project", "p", None));
        let model = "proj/p:ai-model-config/m";
        assert_eq!(describe_resource(model), ("ai-model-config", "m", None));
        let segment = "proj/p:env/test:segment/beta";
        assert_eq!(
            describe_resource(segment),
            ("segment", "beta", Some("test"))
        );
    }

    #[test]
    fn filters_select_newest_first() {
        let log = AuditLog::from_entries(vec![
            entry(10, "proj/p:env/test:aiconfig/chat", Some("first try")),
            entry(20, "proj/p:env/production:aiconfig/chat", Some("ship it")),
            entry(30, "proj/p:env/test:segment/beta", None),
        ]);
        assert_eq!(dates(&log, &filter(), 10), [30, 20, 10]);
        assert_eq!(
            dates(&log, &filter(), 1),
            [30, 20],
            "one more than the limit"
        );
        let window = Filter {
            before: Some(30),
            after: Some(10),
            ..filter()
        };
        assert_eq!(dates(&log, &window, 10), [20]);
        let text = Filter {
            q: Some("SHIP".into()),
            ..filter()
        };
        assert_eq!(dates(&log, &text, 10), [20]);
        let spec = Filter {
            spec: Some("proj/*:env/test:*/*".parse().unwrap()),
            ..filter()
        };
        assert_eq!(dates(&log, &spec, 10), [30, 10]);
        assert_eq!(log.get("id-20").unwrap().date, 20);
    }

    #[test]
    fn dates_are_unique_and_rising() {
        let mut log = AuditLog::default();
        let far = now_ms() + 60_000;
        log.push(entry(far, "proj/p", None));
        assert_eq!(log.next_date(), far + 1);
    }

    #[test]
    fn next_links_keep_the_filters() {
        let filter = Filter {
            q: Some("ship it".into()),
            spec: Some("proj/*:env/production:aiconfig/*".parse().unwrap()),
            ..filter()
        };
        assert_eq!(
            next_href(&filter, 5, 1234),
            "/api/v2/auditlog?limit=5&before=1234&q=ship%20it\
             &spec=proj%2F%2A%3Aenv%2Fproduction%3Aaiconfig%2F%2A"
        );
    }
}
