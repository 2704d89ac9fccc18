//! Every REST answer carries the fields LaunchDarkly's OpenAPI document marks required, so
//! that its generated clients (which validate answers, as `launchdarkly-api` does) accept it.
//! One session drives every endpoint once and checks each answer against its type's required
//! paths; the Python suite (`tests/sdk-python/test_rest_api.py`) checks the values through the
//! real client. A path no answer reached fails too, so the session keeps covering them.

use std::collections::{BTreeMap, BTreeSet};

use mock_ld::{Config, MockLd};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// Required paths per response type, listed from the models of LaunchDarkly's generated
/// Python client (launchdarkly-api 25.0.1): `a.b` a field, `a[]` every element, `a.*` every
/// value of a map. `variations[].messages` is required by the TypeScript client's models
/// (launchdarkly-api-typescript 17.2.0) too.
#[rustfmt::skip]
const REQUIRED: &[(&str, &[&str])] = &[
    ("ProjectRep", &["_links", "_id", "key", "includeInSnippetByDefault", "name", "tags", "environments", "environments[]._links", "environments[]._id", "environments[].key", "environments[].name", "environments[].apiKey", "environments[].mobileKey", "environments[].color", "environments[].defaultTtl", "environments[].secureMode", "environments[].defaultTrackEvents", "environments[].requireComments", "environments[].confirmChanges", "environments[].tags", "environments[].critical"]),
    ("Projects", &["_links", "items", "items[]._links", "items[]._id", "items[].key", "items[].includeInSnippetByDefault", "items[].name", "items[].tags"]),
    ("Project", &["_links", "_id", "key", "includeInSnippetByDefault", "name", "tags"]),
    ("Environments", &["items", "items[]._links", "items[]._id", "items[].key", "items[].name", "items[].apiKey", "items[].mobileKey", "items[].color", "items[].defaultTtl", "items[].secureMode", "items[].defaultTrackEvents", "items[].requireComments", "items[].confirmChanges", "items[].tags", "items[].critical"]),
    ("Environment", &["_links", "_id", "key", "name", "apiKey", "mobileKey", "color", "defaultTtl", "secureMode", "defaultTrackEvents", "requireComments", "confirmChanges", "tags", "critical"]),
    ("ModelConfig", &["name", "key", "id", "global", "tags", "version", "isRestricted"]),
    ("[ModelConfig]", &["[].name", "[].key", "[].id", "[].global", "[].tags", "[].version", "[].isRestricted"]),
    ("AIConfig", &["description", "key", "name", "tags", "version", "variations", "variations[].key", "variations[]._id", "variations[].model", "variations[].messages", "variations[].name", "variations[].createdAt", "variations[].version", "createdAt", "updatedAt"]),
    ("AIConfigs", &["items", "items[].description", "items[].key", "items[].name", "items[].tags", "items[].version", "items[].variations", "items[].variations[].key", "items[].variations[]._id", "items[].variations[].model", "items[].variations[].name", "items[].variations[].createdAt", "items[].variations[].version", "items[].createdAt", "items[].updatedAt", "totalCount"]),
    ("AIConfigVariation", &["key", "_id", "model", "messages", "name", "createdAt", "version"]),
    ("AIConfigVariationsResponse", &["items", "items[].key", "items[]._id", "items[].model", "items[].messages", "items[].name", "items[].createdAt", "items[].version", "totalCount"]),
    ("AIConfigTargeting", &["createdAt", "environments", "environments.*.contextTargets", "environments.*.contextTargets[].contextKind", "environments.*.contextTargets[].values", "environments.*.contextTargets[].variation", "environments.*.enabled", "environments.*.fallthrough", "environments.*.fallthrough.rollout.contextKind", "environments.*.fallthrough.rollout.variations[].variation", "environments.*.fallthrough.rollout.variations[].weight", "environments.*.lastModified", "environments.*.rules", "environments.*.rules[].clauses", "environments.*.rules[].clauses[].attribute", "environments.*.rules[].clauses[].id", "environments.*.rules[].clauses[].negate", "environments.*.rules[].clauses[].op", "environments.*.rules[].clauses[].values", "environments.*.rules[].trackEvents", "environments.*.targets", "environments.*.targets[].contextKind", "environments.*.targets[].values", "environments.*.targets[].variation", "environments.*.trackEvents", "environments.*.trackEventsFallthrough", "environments.*._environmentName", "environments.*._version", "experiments", "experiments.baselineIdx", "experiments.items", "key", "name", "tags", "variations", "variations[]._id", "variations[].description", "variations[].name", "variations[].value", "_version"]),
    ("UserSegment", &["name", "tags", "creationDate", "lastModifiedDate", "key", "_links", "rules", "rules[].clauses", "rules[].clauses[].attribute", "rules[].clauses[].op", "rules[].clauses[].values", "rules[].clauses[].negate", "version", "deleted", "generation"]),
    ("UserSegments", &["items", "items[].name", "items[].tags", "items[].creationDate", "items[].lastModifiedDate", "items[].key", "items[]._links", "items[].rules", "items[].rules[].clauses", "items[].rules[].clauses[].attribute", "items[].rules[].clauses[].op", "items[].rules[].clauses[].values", "items[].rules[].clauses[].negate", "items[].version", "items[].deleted", "items[].generation", "_links"]),
    ("AuditLogEntryListingRepCollection", &["items", "items[]._links", "items[]._id", "items[]._accountId", "items[].date", "items[].accesses", "items[].kind", "items[].name", "items[].description", "items[].shortDescription", "_links"]),
    ("AuditLogEntryRep", &["_links", "_id", "_accountId", "date", "accesses", "kind", "name", "description", "shortDescription"]),
    ("Error", &["message", "code"]),
];

/// The nodes `path` names in `value`, and the paths of those missing on the way. A part
/// below an absent optional parent (e.g. `fallthrough.rollout` when a variation is served)
/// is not missing: only a required part whose parent exists is.
fn walk<'a>(value: &'a Value, path: &str) -> (Vec<&'a Value>, Vec<String>) {
    let mut nodes = vec![value];
    let mut missing = Vec::new();
    let mut seen = String::new();
    for part in path.split('.') {
        let (name, each) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        seen = if seen.is_empty() {
            part.to_owned()
        } else {
            format!("{seen}.{part}")
        };
        let mut next = Vec::new();
        for node in nodes {
            if name == "*" {
                next.extend(node.as_object().into_iter().flat_map(|m| m.values()));
                continue;
            }
            let child = if name.is_empty() {
                Some(node)
            } else {
                node.get(name)
            };
            match child {
                Some(child) if each => next.extend(child.as_array().into_iter().flatten()),
                Some(child) => next.push(child),
                // `rollout` is the one optional part the paths pass through.
                None if name == "rollout" => {}
                None => missing.push(seen.clone()),
            }
        }
        nodes = next;
    }
    (nodes, missing)
}

struct Session {
    base: String,
    http: Client,
    /// Per type: the paths some answer reached, and every missing one with its request.
    reached: BTreeMap<&'static str, BTreeSet<&'static str>>,
    missing: Vec<String>,
}

impl Session {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: StatusCode,
        shape: &'static str,
    ) -> Value {
        let token = if expect == StatusCode::UNAUTHORIZED {
            "api-wrong"
        } else {
            "api-default-admin"
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}/api/v2{path}", self.base))
            .header("Authorization", token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {answer}");
        self.check(&format!("{method} {path}"), &answer, shape);
        answer
    }

    fn check(&mut self, request: &str, answer: &Value, shape: &'static str) {
        let (_, paths) = REQUIRED.iter().find(|(name, _)| *name == shape).unwrap();
        for path in *paths {
            let (nodes, missing) = walk(answer, path);
            if !nodes.is_empty() {
                self.reached.entry(shape).or_default().insert(path);
            }
            self.missing.extend(
                missing
                    .into_iter()
                    .map(|m| format!("{request} ({shape}): {m}")),
            );
        }
    }
}

#[tokio::test]
async fn every_answer_carries_every_required_field() {
    let mock = MockLd::start(Config::default()).await.unwrap();
    let mut s = Session {
        base: mock.base_url().to_string(),
        http: Client::new(),
        reached: BTreeMap::new(),
        missing: Vec::new(),
    };
    use Method as M;
    use StatusCode as S;
    s.call(
        M::POST,
        "/projects",
        Some(json!({"key": "shop", "name": "Shop"})),
        S::CREATED,
        "ProjectRep",
    )
    .await;
    s.call(
        M::GET,
        "/projects?expand=environments",
        None,
        S::OK,
        "Projects",
    )
    .await;
    s.call(M::GET, "/projects/shop", None, S::OK, "Project")
        .await;
    s.call(
        M::POST,
        "/projects/shop/environments",
        Some(json!({"key": "eu", "name": "EU", "color": "00AA00"})),
        S::CREATED,
        "Environment",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/environments",
        None,
        S::OK,
        "Environments",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/environments/eu",
        None,
        S::OK,
        "Environment",
    )
    .await;
    s.call(
        M::POST,
        "/projects/shop/ai-configs/model-configs",
        Some(json!({"key": "OpenAI.gpt-4o", "id": "gpt-4o", "name": "GPT-4o"})),
        S::OK,
        "ModelConfig",
    )
    .await;
    // The list is a bare array, as LaunchDarkly's is.
    s.call(
        M::GET,
        "/projects/shop/ai-configs/model-configs",
        None,
        S::OK,
        "[ModelConfig]",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/ai-configs/model-configs/OpenAI.gpt-4o",
        None,
        S::OK,
        "ModelConfig",
    )
    .await;
    s.call(
        M::POST,
        "/projects/shop/ai-configs",
        Some(json!({"key": "chat", "name": "Chat"})),
        S::CREATED,
        "AIConfig",
    )
    .await;
    // One variation with messages, one without: both answer `messages`.
    s.call(M::POST, "/projects/shop/ai-configs/chat/variations", Some(json!({"key": "a", "name": "A", "modelConfigKey": "OpenAI.gpt-4o", "messages": [{"role": "system", "content": "hi"}]})), S::CREATED, "AIConfigVariation").await;
    s.call(
        M::POST,
        "/projects/shop/ai-configs/chat/variations",
        Some(json!({"key": "b", "name": "B"})),
        S::CREATED,
        "AIConfigVariation",
    )
    .await;
    s.call(
        M::PATCH,
        "/projects/shop/ai-configs/chat/variations/b",
        Some(json!({"description": "second"})),
        S::OK,
        "AIConfigVariation",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/ai-configs/chat/variations/b",
        None,
        S::OK,
        "AIConfigVariationsResponse",
    )
    .await;
    s.call(
        M::PATCH,
        "/projects/shop/ai-configs/chat",
        Some(json!({"description": "chats"})),
        S::OK,
        "AIConfig",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/ai-configs/chat",
        None,
        S::OK,
        "AIConfig",
    )
    .await;
    s.call(
        M::GET,
        "/projects/shop/ai-configs",
        None,
        S::OK,
        "AIConfigs",
    )
    .await;
    let targeting = s
        .call(
            M::GET,
            "/projects/shop/ai-configs/chat/targeting",
            None,
            S::OK,
            "AIConfigTargeting",
        )
        .await;
    let id = |i: usize| targeting["variations"][i]["_id"].clone();
    let instructions = json!([
        {"kind": "addTargets", "variationId": id(1), "contextKind": "user", "values": ["u1"]},
        {"kind": "addTargets", "variationId": id(2), "contextKind": "org", "values": ["o1"]},
        {"kind": "addRule", "variationId": id(1), "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["p"]}]},
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {id(1).as_str().unwrap(): 50000, id(2).as_str().unwrap(): 50000}},
    ]);
    s.call(
        M::PATCH,
        "/projects/shop/ai-configs/chat/targeting",
        Some(json!({"environmentKey": "test", "instructions": instructions})),
        S::OK,
        "AIConfigTargeting",
    )
    .await;
    s.call(
        M::POST,
        "/segments/shop/test",
        Some(json!({"key": "beta", "name": "Beta"})),
        S::CREATED,
        "UserSegment",
    )
    .await;
    let rule = json!({"environmentKey": "test", "instructions": [{"kind": "addRule", "clauses": [{"contextKind": "user", "attribute": "plan", "op": "in", "values": ["x"]}]}]});
    s.call(
        M::PATCH,
        "/segments/shop/test/beta",
        Some(rule),
        S::OK,
        "UserSegment",
    )
    .await;
    s.call(
        M::GET,
        "/segments/shop/test/beta",
        None,
        S::OK,
        "UserSegment",
    )
    .await;
    s.call(M::GET, "/segments/shop/test", None, S::OK, "UserSegments")
        .await;
    let log = s
        .call(
            M::GET,
            "/auditlog",
            None,
            S::OK,
            "AuditLogEntryListingRepCollection",
        )
        .await;
    let entry = format!("/auditlog/{}", log["items"][0]["_id"].as_str().unwrap());
    s.call(M::GET, &entry, None, S::OK, "AuditLogEntryRep")
        .await;
    s.call(
        M::POST,
        "/projects/shop/ai-configs",
        Some(json!({"key": "bad key", "name": "x"})),
        S::BAD_REQUEST,
        "Error",
    )
    .await;
    s.call(M::GET, "/projects", None, S::UNAUTHORIZED, "Error")
        .await;
    s.call(
        M::GET,
        "/projects/shop/ai-configs/none",
        None,
        S::NOT_FOUND,
        "Error",
    )
    .await;
    s.call(
        M::POST,
        "/projects/shop/ai-configs",
        Some(json!({"key": "chat", "name": "x"})),
        S::CONFLICT,
        "Error",
    )
    .await;

    assert_eq!(
        s.missing,
        Vec::<String>::new(),
        "answers lack required fields"
    );
    let unreached: Vec<String> = REQUIRED
        .iter()
        .flat_map(|(shape, paths)| paths.iter().map(move |p| (shape, p)))
        .filter(|(shape, path)| !s.reached.get(**shape).is_some_and(|r| r.contains(**path)))
        .map(|(shape, path)| format!("{shape}: {path}"))
        .collect();
    assert_eq!(
        unreached,
        Vec::<String>::new(),
        "the session no longer reaches these paths"
    );
}
