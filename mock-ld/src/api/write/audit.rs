//! `/auditlog`: one entry per accepted REST write, saying who (the token), when, what (the
//! actions on the resource), why (the request's `comment`) and how (the resource's JSON before
//! and after, on the single-entry GET), in LaunchDarkly's `AuditLogEntryRep` shape (spec §7).
//!
//! Entries are listed newest first. Their dates are unique and rising (a burst of writes in
//! one millisecond gets consecutive milliseconds), so paging with `before=<last date>` never
//! skips or repeats an entry.
//!
//! Memory is bounded in bytes ([`crate::bounds::Bounds::max_audit_bytes`]): a write makes an
//! entry with the resource before and after in full, but the log keeps, per resource, only
//! its newest state (the tip) and, per entry, JSON Patches (RFC 6902) back from its state
//! after to its state before (`revert`) and from there to the previous entry's state after
//! (`gap`: empty unless something without an entry, such as `/admin`, changed it between).
//! Adding one rule to a 3,000-rule segment then costs the rule, not two copies of the
//! segment. The single-entry GET rebuilds before and after by walking back from the tip.
//! The oldest entries go first once the bytes pass the bound; the newest always stays.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use json_patch::Patch;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::change::Change;
use crate::api::access::auth::Caller;
use crate::api::access::policy::Specifier;
use crate::api::json::{link, now_ms, object_id, query};
use crate::error::AppError;
use crate::AppState;

/// Entries kept in memory (and in durable state) at most, whatever their bytes; older ones
/// are dropped first.
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
    /// In snapshots only, on the newest entry of each resource: the resource's state after
    /// it, from which the older entries' states are rebuilt.
    #[serde(default, skip_serializing)]
    pub tip: Option<Value>,
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

/// How the changed resource differs before and after the write.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Delta {
    /// The resource as the API shows it, before and after (`null` where it did not exist):
    /// what a write makes, the journal keeps and the single-entry GET shows.
    Full { before: Value, after: Value },
    /// What the log keeps (see the module doc).
    Patches { revert: Patch, gap: Patch },
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
            delta: Delta::Full { before, after },
            tip: None,
        }
    }

    /// The resource whose states the entry's delta describes.
    fn resource(&self) -> &str {
        self.target.resources.first().map_or("", String::as_str)
    }

    /// The entry as the list shows it: everything but the delta.
    fn listing_json(&self) -> Result<Value, AppError> {
        let mut out = serde_json::to_value(self)?;
        if let Value::Object(fields) = &mut out {
            fields.remove("delta");
        }
        out["_accountId"] = json!(ACCOUNT_ID);
        out["_links"] = json!({"self": link(&format!("/api/v2/auditlog/{}", self.id))});
        Ok(out)
    }

    /// The entry as the single-entry GET shows it: with the resource before and after.
    fn detail_json(&self, before: Value, after: Value) -> Result<Value, AppError> {
        let mut out = self.listing_json()?;
        out["delta"] = json!({"before": before, "after": after});
        Ok(out)
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

/// Every entry, oldest first, within a byte bound.
pub struct AuditLog {
    entries: VecDeque<Kept>,
    /// The newest state of each resource that has entries.
    tips: HashMap<String, Tip>,
    /// Entries' and tips' bytes, as serialized JSON.
    bytes: usize,
    max_bytes: usize,
    last_date: u64,
}

/// An entry (its delta in [`Delta::Patches`] form) and its size.
struct Kept {
    entry: Arc<AuditEntry>,
    bytes: usize,
}

/// A resource's newest state and how many entries lead back from it.
struct Tip {
    state: Value,
    bytes: usize,
    entries: usize,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog::new(crate::bounds::Bounds::default().max_audit_bytes)
    }
}

/// How an entry's states could not be rebuilt (a damaged snapshot; never expected).
fn rebuild_error(id: &str, why: impl std::fmt::Display) -> AppError {
    AppError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the states of audit log entry {id:?} cannot be rebuilt: {why}"),
    )
}

impl AuditLog {
    pub fn new(max_bytes: usize) -> Self {
        AuditLog {
            entries: VecDeque::new(),
            tips: HashMap::new(),
            bytes: 0,
            max_bytes,
            last_date: 0,
        }
    }

    /// The log holding `entries` (in full or patch form, oldest first), as far as the bound
    /// lets it.
    pub fn from_entries(max_bytes: usize, entries: Vec<AuditEntry>) -> Self {
        let mut log = AuditLog::new(max_bytes);
        for entry in entries {
            log.push(entry);
        }
        log
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Now, or just after the newest entry if that is later (see the module doc).
    pub fn next_date(&self) -> u64 {
        now_ms().max(self.last_date + 1)
    }

    /// Adds `entry`, keeping its delta as patches, then drops the oldest entries past the
    /// bound.
    pub fn push(&mut self, mut entry: AuditEntry) {
        self.last_date = self.last_date.max(entry.date);
        let resource = entry.resource().to_owned();
        let state = match std::mem::replace(
            &mut entry.delta,
            Delta::Full {
                before: Value::Null,
                after: Value::Null,
            },
        ) {
            Delta::Full { before, after } => {
                let gap = match self.tips.get(&resource) {
                    Some(tip) if tip.state != before => json_patch::diff(&before, &tip.state),
                    _ => Patch::default(),
                };
                let revert = json_patch::diff(&after, &before);
                entry.delta = Delta::Patches { revert, gap };
                Some(after)
            }
            patches => {
                entry.delta = patches;
                entry.tip.take()
            }
        };
        self.set_tip(resource, state);
        let bytes = json_len(&entry);
        self.bytes += bytes;
        self.entries.push_back(Kept {
            entry: Arc::new(entry),
            bytes,
        });
        self.evict();
    }

    /// Counts one more entry for `resource` and, if given, makes `state` its tip.
    fn set_tip(&mut self, resource: String, state: Option<Value>) {
        let tip = self.tips.entry(resource).or_insert(Tip {
            state: Value::Null,
            bytes: 0,
            entries: 0,
        });
        tip.entries += 1;
        if let Some(state) = state {
            self.bytes -= tip.bytes;
            tip.bytes = json_len(&state);
            tip.state = state;
            self.bytes += tip.bytes;
        }
    }

    /// Drops the oldest entries while past the bound in bytes or entries, and the tips no
    /// entry leads back from any more.
    fn evict(&mut self) {
        while self.entries.len() > CAPACITY
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(oldest.bytes);
            let resource = oldest.entry.resource();
            if let Some(tip) = self.tips.get_mut(resource) {
                tip.entries -= 1;
                if tip.entries == 0 {
                    self.bytes = self.bytes.saturating_sub(tip.bytes);
                    self.tips.remove(resource);
                }
            }
        }
    }

    /// The entries as a snapshot keeps them: the newest of each resource with its tip.
    pub fn snapshot(&self) -> Vec<SnapshotEntry<'_>> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<SnapshotEntry<'_>> = (self.entries.iter().rev())
            .map(|kept| {
                let resource = kept.entry.resource();
                let newest = seen.insert(resource);
                SnapshotEntry {
                    entry: &kept.entry,
                    tip: newest
                        .then(|| self.tips.get(resource).map(|t| &t.state))
                        .flatten(),
                }
            })
            .collect();
        out.reverse();
        out
    }

    /// The entry with `id`, and the resource's states before and after it.
    fn get(&self, id: &str) -> Option<Result<Rebuilt, AppError>> {
        let index = self.entries.iter().position(|kept| kept.entry.id == id)?;
        Some(self.states(index))
    }

    /// Walks back from the resource's tip through every later entry of the same resource.
    fn states(&self, index: usize) -> Result<Rebuilt, AppError> {
        let entry = &self.entries[index].entry;
        let resource = entry.resource();
        let tip = self
            .tips
            .get(resource)
            .ok_or_else(|| rebuild_error(&entry.id, "no tip"))?;
        let mut state = tip.state.clone();
        let later = self.entries.iter().skip(index + 1).map(|kept| &kept.entry);
        for newer in later.rev().filter(|e| e.resource() == resource) {
            let Delta::Patches { revert, gap } = &newer.delta else {
                return Err(rebuild_error(&entry.id, "an entry kept in full"));
            };
            json_patch::patch(&mut state, revert).map_err(|e| rebuild_error(&entry.id, e))?;
            json_patch::patch(&mut state, gap).map_err(|e| rebuild_error(&entry.id, e))?;
        }
        let Delta::Patches { revert, .. } = &entry.delta else {
            return Err(rebuild_error(&entry.id, "kept in full"));
        };
        let after = state.clone();
        json_patch::patch(&mut state, revert).map_err(|e| rebuild_error(&entry.id, e))?;
        Ok((entry.clone(), state, after))
    }

    /// The newest entries that pass `filter`, at most `limit + 1` (one more says there is a
    /// next page).
    fn select(&self, filter: &Filter, limit: usize) -> Vec<Arc<AuditEntry>> {
        self.entries
            .iter()
            .rev()
            .map(|kept| &kept.entry)
            .filter(|e| filter.passes(e))
            .take(limit + 1)
            .cloned()
            .collect()
    }
}

/// An entry and the resource's states before and after it.
type Rebuilt = (Arc<AuditEntry>, Value, Value);

/// An entry as a snapshot writes it.
#[derive(Serialize)]
pub struct SnapshotEntry<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    tip: Option<&'a Value>,
}

/// The length of `value` as JSON, without writing it anywhere.
fn json_len(value: &impl Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing into a counter cannot fail, nor can serializing plain values.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    before: Option<u64>,
    after: Option<u64>,
    q: Option<String>,
    spec: Option<String>,
    token: Option<String>,
    member: Option<String>,
}

struct Filter {
    before: Option<u64>,
    after: Option<u64>,
    q: Option<String>,
    spec: Option<Specifier>,
    /// An access token's `_id`: only its entries.
    token: Option<String>,
    /// A member's `_id`. Every entry here was made with a token, so none matches.
    member: Option<String>,
}

impl Filter {
    fn passes(&self, entry: &AuditEntry) -> bool {
        self.before.is_none_or(|before| entry.date < before)
            && self.after.is_none_or(|after| entry.date > after)
            && self.q.as_deref().is_none_or(|q| entry.mentions(q))
            && (self.spec.as_ref())
                .is_none_or(|spec| entry.target.resources.iter().any(|r| spec.matches(r)))
            && self.token.as_deref().is_none_or(|id| entry.token.id == id)
            && self.member.is_none()
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
        token: params.token.filter(|t| !t.is_empty()),
        member: params.member.filter(|m| !m.is_empty()),
    };
    let mut entries = state.api.audit_select(|log| log.select(&filter, limit));
    let mut links = json!({"self": link("/api/v2/auditlog")});
    if entries.len() > limit {
        entries.truncate(limit);
        let last = entries.last().map_or(0, |e| e.date);
        links["next"] = link(&next_href(&filter, limit, last));
    }
    let items = entries
        .iter()
        .map(|e| e.listing_json())
        .collect::<Result<Vec<Value>, AppError>>()?;
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
    for (name, value) in [("token", &filter.token), ("member", &filter.member)] {
        if let Some(value) = value {
            href.push_str(&format!("&{name}={}", percent_encoded(value)));
        }
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
    let found = state.api.audit_select(|log| log.get(&id)).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            format!("no audit log entry with _id {id:?}"),
        )
    })?;
    let (entry, before, after) = found?;
    Ok(Json(entry.detail_json(before, after)?))
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
            delta: Delta::Full {
                before: Value::Null,
                after: Value::Null,
            },
            tip: None,
        }
    }

    fn filter() -> Filter {
        Filter {
            before: None,
            after: None,
            q: None,
            spec: None,
            token: None,
            member: None,
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
        let log = AuditLog::from_entries(
            usize::MAX,
            vec![
                entry(10, "proj/p:env/test:aiconfig/chat", Some("first try")),
                entry(20, "proj/p:env/production:aiconfig/chat", Some("ship it")),
                entry(30, "proj/p:env/test:segment/beta", None),
            ],
        );
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
        let token = |id: &str| Filter {
            token: Some(id.into()),
            ..filter()
        };
        assert_eq!(dates(&log, &token("t"), 10), [30, 20, 10]);
        assert_eq!(dates(&log, &token("other"), 10), [] as [u64; 0]);
        let member = Filter {
            member: Some("m".into()),
            ..filter()
        };
        assert_eq!(
            dates(&log, &member, 10),
            [] as [u64; 0],
            "tokens made every entry"
        );
        assert_eq!(log.get("id-20").unwrap().unwrap().0.date, 20);
    }

    fn change(date: u64, resource: &str, before: Value, after: Value) -> AuditEntry {
        AuditEntry {
            delta: Delta::Full { before, after },
            ..entry(date, resource, None)
        }
    }

    fn segment(rules: usize) -> Value {
        let rules: Vec<Value> = (0..rules).map(|i| json!({"_id": format!("r{i}"), "clauses": [{"attribute": "plan", "op": "in", "values": ["pad".repeat(50)]}]})).collect();
        json!({"key": "beta", "rules": rules, "_version": rules.len()})
    }

    fn states(log: &AuditLog, id: &str) -> (Value, Value) {
        let (_, before, after) = log.get(id).unwrap().unwrap();
        (before, after)
    }

    #[test]
    fn entries_keep_patches_and_rebuild_before_and_after() {
        let mut log = AuditLog::new(usize::MAX);
        let seg = "proj/p:env/test:segment/beta";
        log.push(change(1, seg, Value::Null, segment(0)));
        for n in 1..=50 {
            log.push(change(1 + n as u64, seg, segment(n - 1), segment(n)));
        }
        // Something without an entry (the admin API) changed it, then another write.
        let mut edited = segment(50);
        edited["name"] = json!("edited");
        log.push(change(100, seg, edited.clone(), segment(51)));
        log.push(change(
            101,
            "proj/p:aiconfig/chat",
            Value::Null,
            json!({"key": "chat"}),
        ));
        assert_eq!(states(&log, "id-1"), (Value::Null, segment(0)));
        assert_eq!(states(&log, "id-11"), (segment(9), segment(10)));
        assert_eq!(states(&log, "id-51"), (segment(49), segment(50)));
        assert_eq!(states(&log, "id-100"), (edited, segment(51)));
        assert_eq!(
            states(&log, "id-101"),
            (Value::Null, json!({"key": "chat"}))
        );
        let tip = json_len(&segment(51)) + json_len(&json!({"key": "chat"}));
        assert!(
            log.bytes < tip + 53 * 2_000,
            "each entry costs its rule, not the segment: {} bytes",
            log.bytes
        );
    }

    #[test]
    fn the_oldest_entries_go_past_the_byte_bound_and_the_newest_stays() {
        let seg = "proj/p:env/test:segment/beta";
        let mut log = AuditLog::new(20_000);
        log.push(change(1, seg, Value::Null, segment(0)));
        for n in 1..=200 {
            log.push(change(1 + n as u64, seg, segment(n - 1), segment(n)));
        }
        assert_eq!(log.entries.len(), 1, "the tip alone passes the bound");
        assert_eq!(states(&log, "id-201"), (segment(199), segment(200)));
        assert!(log.get("id-200").is_none());
        log.push(change(300, "proj/p", Value::Null, json!({"key": "p"})));
        assert_eq!(log.entries.len(), 1);
        assert_eq!(
            log.tips.len(),
            1,
            "the segment's tip went with its last entry"
        );
        assert_eq!(log.bytes, log.entries[0].bytes + log.tips["proj/p"].bytes);
    }

    #[test]
    fn a_snapshot_round_trips_through_json() {
        let seg = "proj/p:env/test:segment/beta";
        let mut log = AuditLog::new(usize::MAX);
        for n in 1..=5 {
            log.push(change(n as u64, seg, segment(n - 1), segment(n)));
        }
        log.push(change(9, "proj/p", Value::Null, json!({"key": "p"})));
        let text = serde_json::to_string(&log.snapshot()).unwrap();
        let entries: Vec<AuditEntry> = serde_json::from_str(&text).unwrap();
        let mut restored = AuditLog::from_entries(usize::MAX, entries);
        assert_eq!(states(&restored, "id-2"), (segment(1), segment(2)));
        assert_eq!(
            states(&restored, "id-9"),
            (Value::Null, json!({"key": "p"}))
        );
        restored.push(change(10, seg, segment(5), segment(6)));
        assert_eq!(states(&restored, "id-5"), (segment(4), segment(5)));
        assert_eq!(states(&restored, "id-10"), (segment(5), segment(6)));
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
