//! The REST API v2 over real HTTP on 127.0.0.1:0, driven the way admin scripts drive
//! LaunchDarkly's: status codes, `{code, message}` error bodies, and every change reaching
//! the SDK streams before its response.

use std::time::Duration;

use futures::StreamExt;
use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::TryRecvError;

const TOKEN: &str = "api-default-admin";
const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// A script's view of mock-ld: the REST API with the admin token.
struct Script {
    mock: MockLdHandle,
    http: Client,
}

impl Script {
    async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    async fn with_config(config: Config) -> Self {
        Script {
            mock: MockLd::start(config).await.expect("mock-ld starts"),
            http: Client::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}/api/v2{path}", self.mock.base_url());
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", TOKEN)
            .header("LD-API-Version", "beta");
        if let Some(body) = body {
            request = request
                .header("Content-Type", SEMANTIC_PATCH)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    /// An AI Config `chat` with variations `basic` and `premium`; returns their `_id`s by key.
    async fn chat_config(&self) -> serde_json::Map<String, Value> {
        let (status, _) = self
            .post(
                "/projects/default/ai-configs",
                json!({"key": "chat", "name": "Chat", "mode": "completion"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        for (key, model) in [("basic", "gpt-4o-mini"), ("premium", "gpt-4o")] {
            let (status, body) = self
                .post(
                    "/projects/default/ai-configs/chat/variations",
                    json!({"key": key, "name": key, "modelConfigKey": format!("OpenAI.{model}"),
                           "model": {"modelName": model, "parameters": {"temperature": 0.5}},
                           "messages": [{"role": "system", "content": "Help {{ldctx.key}}."}]}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (_, targeting) = self
            .get("/projects/default/ai-configs/chat/targeting")
            .await;
        targeting["variations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["key"].as_str().unwrap().to_owned(), v["_id"].clone()))
            .collect()
    }

    fn env(&self, key: &str) -> std::sync::Arc<mock_ld::store::Environment> {
        self.mock.store().environment("default", key).unwrap()
    }
}

fn assert_error(response: &(StatusCode, Value), status: StatusCode, code: &str, needle: &str) {
    let (actual, body) = response;
    assert_eq!(*actual, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should contain {needle:?}"
    );
}

/// Reads SSE frames from `/all`.
struct Frames {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Frames {
    async fn open(script: &Script, sdk_key: &str) -> Frames {
        let response = script
            .http
            .get(format!("{}/all", script.mock.base_url()))
            .header("Authorization", sdk_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "stream for {sdk_key}");
        let mut frames = Frames {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        };
        let put = frames.next().await;
        assert!(put.starts_with("event: put"), "{put}");
        frames
    }

    /// The next frame's event name and data.
    async fn next_event(&mut self) -> (String, Value) {
        let frame = self.next().await;
        let event = frame.lines().next().unwrap().trim_start_matches("event: ");
        let data = frame.lines().nth(1).unwrap().trim_start_matches("data: ");
        (event.to_owned(), serde_json::from_str(data).unwrap())
    }

    async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return frame;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("a frame within 5 s")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn tokens_are_checked_and_errors_are_json() {
    let script = Script::start().await;
    let url = format!("{}/api/v2/projects", script.mock.base_url());
    for (header, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("api-wrong"), StatusCode::UNAUTHORIZED),
        (Some("Bearer api-default-admin"), StatusCode::OK),
        (Some(TOKEN), StatusCode::OK),
    ] {
        let mut request = script.http.get(&url);
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{header:?}");
        if status == StatusCode::UNAUTHORIZED {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized");
        }
    }
    assert_error(
        &script.get("/nowhere").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "GET /api/v2/nowhere",
    );
    let response = script.send(Method::PUT, "/projects", None).await;
    assert_error(
        &response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "PUT",
    );
    let response = script.post("/projects", json!({"key": "x"})).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "missing field `name`",
    );
    let response = script
        .send(Method::POST, "/projects/default/environments", None)
        .await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "body is empty",
    );
    let response = script
        .post("/projects", json!({"key": "a b", "name": "x"}))
        .await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "invalid project key \"a b\"",
    );
}

#[tokio::test]
async fn projects_and_environments_are_created_and_new_sdk_keys_stream() {
    let script = Script::start().await;
    let (status, list) = script.get("/projects?expand=environments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["totalCount"], 1);
    let default_envs = &list["items"][0]["environments"]["items"];
    let keys: Vec<(&str, &str)> = default_envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap(), e["apiKey"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            ("production", "sdk-default-production"),
            ("test", "sdk-default-test")
        ]
    );

    let (status, project) = script
        .post("/projects", json!({"key": "shop", "name": "Shop"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["_id"].as_str().unwrap().len(), 24);
    let envs = project["environments"]
        .as_array()
        .expect("a plain array in the POST answer");
    assert_eq!(envs.len(), 2);
    for env in envs {
        assert!(env["apiKey"].as_str().unwrap().starts_with("sdk-"));
        assert!(env["mobileKey"].as_str().unwrap().starts_with("mob-"));
        assert_eq!(env["_id"].as_str().unwrap().len(), 24);
        assert!(
            env["color"].is_string() && env["defaultTtl"].is_i64() && env["critical"].is_boolean()
        );
    }
    let duplicate = script
        .post("/projects", json!({"key": "shop", "name": "Again"}))
        .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "already exists",
    );
    let (_, listed) = script.get("/projects?limit=1&offset=1").await;
    assert_eq!(
        (
            listed["totalCount"].as_i64(),
            listed["items"][0]["key"].as_str()
        ),
        (Some(2), Some("shop"))
    );
    assert!(
        listed["items"][0].get("environments").is_none(),
        "only with expand"
    );

    let (status, staging) = script
        .post(
            "/projects/shop/environments",
            json!({"key": "staging", "name": "Staging", "color": "00FF00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{staging}");
    let sdk_key = staging["apiKey"].as_str().unwrap().to_owned();
    Frames::open(&script, &sdk_key).await;
    let duplicate = script
        .post(
            "/projects/shop/environments",
            json!({"key": "staging", "name": "S"}),
        )
        .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "already has an environment",
    );
    let (status, read) = script.get("/projects/shop/environments/staging").await;
    assert_eq!(
        (status, read["apiKey"].as_str()),
        (StatusCode::OK, Some(sdk_key.as_str()))
    );

    let (status, _) = script.delete("/projects/shop/environments/staging").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stream = script
        .http
        .get(format!("{}/all", script.mock.base_url()))
        .header("Authorization", &sdk_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.status(),
        StatusCode::UNAUTHORIZED,
        "a deleted environment's key is unknown"
    );
    assert_error(
        &script.get("/projects/shop/environments/staging").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "staging",
    );
    assert_error(
        &script.get("/projects/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "nope",
    );
    assert_eq!(
        script.delete("/projects/shop").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(script.get("/projects/shop").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ai_configs_variations_and_model_configs() {
    let script = Script::start().await;
    let (status, model) = script
        .post(
            "/projects/default/ai-configs/model-configs",
            json!({"key": "Acme.fast-1", "id": "fast-1", "name": "Fast", "provider": "acme",
                   "costPerInputToken": 0.000001, "costPerOutputToken": 0.000004}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{model}");
    let (_, models) = script
        .get("/projects/default/ai-configs/model-configs")
        .await;
    assert_eq!(
        models[0]["costPerOutputToken"], 0.000004,
        "a bare array: {models}"
    );

    let (status, config) = script
        .post(
            "/projects/default/ai-configs",
            json!({"key": "agent", "name": "Agent", "mode": "agent", "maintainerId": "m1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (config["version"].as_i64(), config["maintainerId"].as_str()),
        (Some(1), Some("m1"))
    );
    let duplicate = script
        .post(
            "/projects/default/ai-configs",
            json!({"key": "agent", "name": "A"}),
        )
        .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "already exists",
    );

    let (status, v1) = script
        .post(
            "/projects/default/ai-configs/agent/variations",
            json!({"key": "fast", "name": "Fast", "instructions": "Be quick.", "modelConfigKey": "Acme.fast-1",
                   "tools": [{"key": "search", "version": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let (status, v2) = script
        .patch(
            "/projects/default/ai-configs/agent/variations/fast",
            json!({"instructions": "Be very quick."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(
        (v2["version"].as_i64(), &v2["_id"]),
        (Some(2), &v1["_id"]),
        "a new version, the same _id"
    );
    let (_, versions) = script
        .get("/projects/default/ai-configs/agent/variations/fast")
        .await;
    let listed: Vec<i64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [2, 1], "newest first");
    let bad = script
        .post(
            "/projects/default/ai-configs/agent/variations",
            json!({"key": "x", "name": "X", "messages": [{"role": "robot", "content": "hi"}]}),
        )
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "unknown variant `robot`",
    );
    let duplicate = script
        .post(
            "/projects/default/ai-configs/agent/variations",
            json!({"key": "fast", "name": "F"}),
        )
        .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "already has a variation",
    );

    // What SDKs receive: the agent-mode object the AI SDKs read.
    let flag = script
        .env("production")
        .flag("agent")
        .expect("served in every environment");
    assert_eq!(flag.variations[0]["_ldMeta"]["enabled"], false);
    assert_eq!(
        flag.fallthrough.variation,
        Some(0),
        "a new config serves its disabled variation"
    );
    let fast = &flag.variations[1];
    assert_eq!(
        fast["_ldMeta"],
        json!({"enabled": true, "variationKey": "fast", "version": 2, "mode": "agent"})
    );
    assert_eq!(fast["model"]["name"], "fast-1", "the model config's id");
    assert_eq!(fast["provider"]["name"], "acme");
    assert_eq!(fast["instructions"], "Be very quick.");
    assert_eq!(fast["tools"]["search"]["name"], "search");

    let (status, patched) = script
        .patch(
            "/projects/default/ai-configs/agent",
            json!({"name": "Agent 2", "archived": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (patched["name"].as_str(), patched["archived"].as_bool()),
        (Some("Agent 2"), Some(true))
    );
    let (_, listed) = script.get("/projects/default/ai-configs").await;
    assert_eq!(
        listed["items"][0]["variations"][0]["instructions"],
        "Be very quick."
    );

    assert_eq!(
        script
            .delete("/projects/default/ai-configs/agent/variations/fast")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        script.delete("/projects/default/ai-configs/agent").await.0,
        StatusCode::NO_CONTENT
    );
    assert!(script.env("test").flag("agent").is_none());
    assert_error(
        &script.get("/projects/default/ai-configs/agent").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "agent",
    );
}

#[tokio::test]
async fn targeting_reads_back_with_ids_and_both_on_and_enabled() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let (status, targeting) = script
        .get("/projects/default/ai-configs/chat/targeting")
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = targeting["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["disabled", "basic", "premium"]);
    assert_eq!(
        targeting["variations"][2]["value"]["model"]["name"],
        "gpt-4o"
    );
    assert_eq!(
        targeting["variations"][2]["value"]["provider"]["name"],
        "OpenAI"
    );
    let test = &targeting["environments"]["test"];
    assert_eq!(
        (test["on"].as_bool(), test["enabled"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (
            test["offVariation"].as_i64(),
            test["fallthrough"]["variation"].as_i64()
        ),
        (Some(0), Some(0))
    );

    let (status, after) = script
        .patch(
            "/projects/default/ai-configs/chat/targeting",
            json!({"environmentKey": "test", "comment": "premium rule", "instructions": [
                {"kind": "addRule", "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]}],
                 "variationId": ids["premium"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let rule = &after["environments"]["test"]["rules"][0];
    assert!(rule["_id"].is_string());
    assert_eq!(rule["clauses"][0]["_id"], rule["clauses"][0]["id"]);
    assert_eq!(
        after["environments"]["production"]["rules"],
        json!([]),
        "other environments untouched"
    );
    assert!(after["_version"].as_i64() > targeting["_version"].as_i64());
}

#[tokio::test]
async fn a_targeting_patch_reaches_streams_before_its_response() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let mut frames = Frames::open(&script, "sdk-default-test").await;
    // A subscriber on the environment itself sees exactly what was sent before the response.
    let (_, mut sent) = script.env("test").subscribe();

    let (status, after) = script
        .patch(
            "/projects/default/ai-configs/chat/targeting",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["basic"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let version = after["environments"]["test"]["_version"].as_u64().unwrap();
    let frame = sent
        .try_recv()
        .expect("the patch was sent before the response");
    assert!(std::str::from_utf8(&frame.fdv1)
        .unwrap()
        .contains("\"path\":\"/flags/chat\""));

    let (event, data) = frames.next_event().await;
    assert_eq!(event, "patch");
    assert_eq!(data["path"], "/flags/chat");
    assert_eq!(data["data"]["version"].as_u64(), Some(version));
    assert_eq!(data["data"]["fallthrough"], json!({"variation": 1}));
    assert_eq!(
        data["data"]["variations"][1]["model"]["name"],
        "gpt-4o-mini"
    );
}

#[tokio::test]
async fn a_refused_patch_changes_nothing_and_names_the_instruction() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let before = script
        .get("/projects/default/ai-configs/chat/targeting")
        .await
        .1;
    let (_, mut sent) = script.env("test").subscribe();
    let path = "/projects/default/ai-configs/chat/targeting";
    let cases = [
        (
            json!([{"kind": "addTargets", "values": ["qa"], "variationId": ids["basic"]},
                {"kind": "addRule", "clauses": [], "rolloutWeights": {ids["basic"].as_str().unwrap(): 90000}}]),
            "instructions[1] (addRule): rolloutWeights sum to 90000, not 100000",
        ),
        (
            json!([{"kind": "updateOffVariation", "variationId": "nope"}]),
            "instructions[0] (updateOffVariation): unknown variationId \"nope\"",
        ),
        (
            json!([{"kind": "removeClauses", "ruleId": "r", "clauseIds": ["c"]}]),
            "unknown ruleId \"r\"",
        ),
        (
            json!([{"kind": "addTargets", "values": ["qa"], "variationId": ids["basic"]},
                {"kind": "addTargets", "values": ["qa"], "variationId": ids["premium"]}]),
            "instructions[1] (addTargets): user \"qa\" is already targeted",
        ),
        (
            json!([{"kind": "turnFlagOn"}]),
            "instructions[0] (turnFlagOn): only feature flags take this instruction",
        ),
    ];
    for (instructions, needle) in cases {
        let response = script
            .patch(
                path,
                json!({"environmentKey": "test", "instructions": instructions}),
            )
            .await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            needle,
        );
    }
    assert_eq!(
        sent.try_recv(),
        Err(TryRecvError::Empty),
        "nothing reached the streams"
    );
    assert_eq!(script.get(path).await.1, before, "nothing changed");

    let missing_env = script.patch(path, json!({"instructions": []})).await;
    assert_error(
        &missing_env,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "environmentKey",
    );
    let missing = script.patch(path, json!({"environmentKey": "test"})).await;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "`instructions` is missing",
    );
    let unknown_env = script
        .patch(path, json!({"environmentKey": "qa", "instructions": [{"kind": "updateTrackEvents", "trackEvents": true}]}))
        .await;
    assert_error(&unknown_env, StatusCode::NOT_FOUND, "not_found", "qa");
    let unknown_config = script
        .patch(
            "/projects/default/ai-configs/nope/targeting",
            json!({"environmentKey": "test", "instructions": [
            {"kind": "updateTrackEvents", "trackEvents": true}]}),
        )
        .await;
    assert_error(&unknown_config, StatusCode::NOT_FOUND, "not_found", "nope");
    let empty = script
        .patch(path, json!({"environmentKey": "test", "instructions": []}))
        .await;
    assert_error(&empty, StatusCode::BAD_REQUEST, "invalid_request", "empty");
}

#[tokio::test]
async fn concurrent_patches_serialize() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let start = script.env("test").flag("chat").unwrap().version;
    let patches = (0..20).map(|i| {
        script.patch(
            "/projects/default/ai-configs/chat/targeting",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "addTargets", "values": [format!("user-{i}")], "variationId": ids["premium"]}]}),
        )
    });
    for (status, body) in futures::future::join_all(patches).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let flag = script.env("test").flag("chat").unwrap();
    assert_eq!(flag.targets[0].values.len(), 20, "no update was lost");
    assert_eq!(flag.version, start + 20);
}

#[tokio::test]
async fn a_served_variation_cannot_be_deleted_and_deleting_renumbers() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let path = "/projects/default/ai-configs/chat/targeting";
    script
        .patch(
            path,
            json!({"environmentKey": "production", "instructions": [
            {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["premium"]}]}),
        )
        .await;
    let refused = script
        .delete("/projects/default/ai-configs/chat/variations/premium")
        .await;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "still served by targeting in environment \"production\"",
    );
    assert_eq!(
        script
            .delete("/projects/default/ai-configs/chat/variations/basic")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let flag = script.env("production").flag("chat").unwrap();
    assert_eq!(flag.variations.len(), 2);
    assert_eq!(
        flag.fallthrough.variation,
        Some(1),
        "premium moved from 2 to 1"
    );
    assert_eq!(flag.variations[1]["_ldMeta"]["variationKey"], "premium");
}

#[tokio::test]
async fn segments_are_managed_and_pushed_to_their_environment() {
    let script = Script::start().await;
    let path = "/segments/default/test";
    let (status, created) = script
        .post(
            path,
            json!({"key": "beta", "name": "Beta testers", "tags": ["qa"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let duplicate = script
        .post(path, json!({"key": "beta", "name": "Again"}))
        .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "already has a segment",
    );

    let mut frames = Frames::open(&script, "sdk-default-test").await;
    let (status, patched) = script
        .patch(&format!("{path}/beta"), json!({"environmentKey": "test", "comment": "add testers", "instructions": [
            {"kind": "addIncludedTargets", "contextKind": "user", "values": ["u1", "u2"]},
            {"kind": "addRule", "clauses": [{"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["beta"]}]}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["included"], json!(["u1", "u2"]));
    assert_eq!(patched["name"], "Beta testers");
    let rule = &patched["rules"][0];
    assert_eq!(rule["clauses"][0]["_id"], rule["clauses"][0]["id"]);
    let (event, data) = frames.next_event().await;
    assert_eq!(
        (event.as_str(), data["path"].as_str()),
        ("patch", Some("/segments/beta"))
    );
    assert_eq!(data["data"]["included"], json!(["u1", "u2"]));
    assert_eq!(data["data"]["version"], patched["version"]);

    let refused = script
        .patch(
            &format!("{path}/beta"),
            json!({"environmentKey": "test", "instructions": [
            {"kind": "addExcludedUsers", "values": ["u1"]}]}),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "instructions[0] (addExcludedUsers): user \"u1\" is included",
    );
    let json_patch = script
        .send(
            Method::PATCH,
            &format!("{path}/beta"),
            Some(json!([{"op": "add", "path": "/included/-", "value": "u3"}])),
        )
        .await;
    // JSON Patch, as LaunchDarkly's TypeScript client sends it, is taken too.
    assert_eq!(json_patch.0, StatusCode::OK, "{}", json_patch.1);
    assert_eq!(json_patch.1["included"], json!(["u1", "u2", "u3"]));
    let (event, data) = frames.next_event().await;
    assert_eq!(event, "patch");
    assert_eq!(data["data"]["included"], json!(["u1", "u2", "u3"]));
    let read_only = script
        .send(
            Method::PATCH,
            &format!("{path}/beta"),
            Some(json!({"patch": [{"op": "replace", "path": "/salt", "value": "x"}]})),
        )
        .await;
    assert_error(
        &read_only,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "/salt is read-only",
    );

    let (_, listed) = script.get(path).await;
    assert_eq!(listed["totalCount"], 1);
    assert_eq!(
        script.get(&format!("{path}/beta")).await.1["tags"],
        json!(["qa"])
    );
    assert_eq!(
        script.delete(&format!("{path}/beta")).await.0,
        StatusCode::NO_CONTENT
    );
    let (event, data) = frames.next_event().await;
    assert_eq!(
        (event.as_str(), data["path"].as_str()),
        ("delete", Some("/segments/beta"))
    );
    assert_error(
        &script.get(&format!("{path}/beta")).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "beta",
    );
}

#[tokio::test]
async fn segment_match_clauses_in_the_older_form_are_normalized_for_sdks() {
    let script = Script::start().await;
    let ids = script.chat_config().await;
    let (status, _) = script
        .patch(
            "/projects/default/ai-configs/chat/targeting",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "addRule", "clauses": [{"op": "segmentMatch", "values": ["beta"]}], "variationId": ids["premium"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let served = script.env("test").snapshot();
    let all: Value = serde_json::from_slice(&served.all_json).unwrap();
    let clause = &all["flags"]["chat"]["rules"][0]["clauses"][0];
    assert_eq!(
        clause["attribute"], "segmentMatch",
        "Python requires an attribute: {clause}"
    );
    assert!(clause.get("contextKind").is_none(), "{clause}");
}

#[tokio::test]
async fn a_variation_keeps_its_newest_versions_within_the_bound() {
    let mut config = Config::default();
    config.bounds.max_variation_versions = 3;
    let script = Script::with_config(config).await;
    script.chat_config().await;
    let path = "/projects/default/ai-configs/chat/variations/basic";
    let mut ids = std::collections::BTreeSet::new();
    for i in 2..=6 {
        let (status, body) = script
            .patch(path, json!({"instructions": format!("version {i}")}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["version"], i);
        ids.insert(body["_id"].to_string());
    }
    assert_eq!(ids.len(), 1, "the same _id throughout");
    let (_, versions) = script.get(path).await;
    let listed: Vec<i64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [6, 5, 4], "the newest three, newest first");
    assert_eq!(versions["totalCount"], 3);
    assert_eq!(versions["items"][0]["instructions"], "version 6");
}

/// An AI Config flag in a `--data` file is listed as an AI Config, its variations read back
/// from their SDK values, and a targeting change through the API keeps what SDKs are served.
#[tokio::test]
async fn seeded_ai_config_flags_are_ai_configs() {
    let variation = |key: &str, model: &str| {
        json!({"_ldMeta": {"enabled": true, "variationKey": key, "version": 2, "mode": "completion"},
               "model": {"name": model, "parameters": {"temperature": 0.2}},
               "provider": {"name": "openai"},
               "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}]})
    };
    let seeded = json!({"key": "seeded-chat", "on": true, "salt": "seed-salt", "offVariation": 0,
        "fallthrough": {"variation": 0},
        "variations": [variation("standard", "gpt-4o-mini"), variation("premium", "gpt-4o")]});
    let plain = json!({"key": "banner", "on": true, "variations": [true, false]});
    let dir = std::env::temp_dir().join(format!("mock-ld-seeded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.json");
    let file = json!({"flags": {"seeded-chat": seeded, "banner": plain}});
    std::fs::write(&path, file.to_string()).unwrap();
    let config = Config {
        data: vec![format!("test={}", path.display()).parse().unwrap()],
        ..Config::default()
    };
    let script = Script::with_config(config).await;
    std::fs::remove_dir_all(&dir).ok();

    let (status, list) = script.get("/projects/default/ai-configs").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let keys: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["seeded-chat"], "the plain flag stays a flag");
    let (status, config) = script.get("/projects/default/ai-configs/seeded-chat").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    let variations = config["variations"].as_array().unwrap();
    let described: Vec<(&str, &str, u64)> = variations
        .iter()
        .map(|v| {
            let model = v["model"]["modelName"].as_str().unwrap();
            (
                v["key"].as_str().unwrap(),
                model,
                v["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        described,
        [("standard", "gpt-4o-mini", 2), ("premium", "gpt-4o", 2)]
    );

    let before = script.env("test").flag("seeded-chat").unwrap();
    let premium = variations[1]["_id"].clone();
    let (status, after) = script
        .patch(
            "/projects/default/ai-configs/seeded-chat/targeting",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "updateFallthroughVariationOrRollout", "variationId": premium}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let served = script.env("test").flag("seeded-chat").unwrap();
    assert_eq!(
        served.fallthrough.variation,
        Some(1),
        "indices kept: no disabled variation"
    );
    assert_eq!(
        served.variations, before.variations,
        "values served unchanged"
    );
    assert_eq!(served.salt, "seed-salt", "bucketing unchanged");
}

/// A flag change names what it changes and changes nothing else: a semantic patch for one
/// environment leaves the others' flags (and versions) alone, even a new value of a variation
/// reaches each environment once, and a JSON Patch may not remove a variation that every
/// environment's targeting names by index.
#[tokio::test]
async fn flag_patches_change_what_they_name_and_keep_variation_indices() {
    let script = Script::start().await;
    let (status, flag) = script
        .post(
            "/flags/default",
            json!({"key": "banner", "name": "Banner", "variations": [
                {"value": "red"}, {"value": "green"}, {"value": "blue"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flag}");
    let version = |env: &str| script.env(env).flag("banner").unwrap().version;
    let (production, test_before) = (version("production"), version("test"));
    let green = flag["variations"][1]["_id"].clone();

    let (status, body) = script
        .patch(
            "/flags/default/banner",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "updateVariation", "variationId": green, "value": "lime"},
                {"kind": "turnFlagOn"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = script.env("test").flag("banner").unwrap();
    assert_eq!(test.version, test_before + 1, "one change, one version");
    assert!(test.on);
    assert_eq!(test.variations[1], json!("lime"));
    assert_eq!(
        version("production"),
        production + 1,
        "the new value once, not the targeting"
    );
    assert!(!script.env("production").flag("banner").unwrap().on);

    let (status, body) = script
        .patch(
            "/flags/default/banner",
            json!({"patch": [{"op": "remove", "path": "/variations/0"}]}),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "not remove or reorder",
    );
    assert_eq!(
        script.env("test").flag("banner").unwrap().variations.len(),
        3
    );
}

/// A seeded flag whose rules carry no ids: a change to one environment through the flags API
/// does not touch the other environment's flag, which the role check did not cover.
#[tokio::test]
async fn a_flag_patch_for_one_environment_leaves_seeded_flags_elsewhere_alone() {
    let flag = json!({"key": "gate", "on": true, "variations": [true, false],
        "fallthrough": {"variation": 1}, "offVariation": 1,
        "rules": [{"clauses": [{"attribute": "tier", "op": "in", "values": ["beta"]}], "variation": 0}]});
    let dir = std::env::temp_dir().join(format!("mock-ld-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(&seed, json!({"flags": {"gate": flag}}).to_string()).unwrap();
    let data =
        ["test", "production"].map(|env| format!("{env}={}", seed.display()).parse().unwrap());
    let script = Script::with_config(Config {
        data: data.to_vec(),
        ..Config::default()
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
    let production = script.env("production").flag("gate").unwrap();

    let (status, body) = script
        .patch(
            "/flags/default/gate",
            json!({"environmentKey": "test", "instructions": [{"kind": "turnFlagOff"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!script.env("test").flag("gate").unwrap().on);
    assert_eq!(script.env("production").flag("gate").unwrap(), production);
}

/// A flag's targeting that the SDKs could not evaluate (a fallthrough serving nothing, a
/// rollout without arms or whose weights are not 100000, a flag its own prerequisite) is
/// refused by JSON Patch with the field named, and the flag stays as it was.
#[tokio::test]
async fn a_json_patch_leaving_targeting_unservable_is_refused() {
    let script = Script::start().await;
    let (status, _) = script
        .post(
            "/flags/default",
            json!({"key": "f", "name": "F", "variations": [{"value": true}, {"value": false}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let fallthrough = |value: Value| json!([{"op": "replace", "path": "/environments/test/fallthrough", "value": value}]);
    let arms = |weights: &[i64]| {
        let variations: Vec<Value> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| json!({"variation": i, "weight": w}))
            .collect();
        json!({"rollout": {"variations": variations}})
    };
    let cases = [
        (
            fallthrough(json!({})),
            "/environments/test/fallthrough: serves neither a variation nor a rollout",
        ),
        (
            fallthrough(arms(&[])),
            "/environments/test/fallthrough/rollout: weights sum to 0, not 100000",
        ),
        (
            fallthrough(arms(&[5, 7])),
            "/environments/test/fallthrough/rollout: weights sum to 12, not 100000",
        ),
        (
            fallthrough(arms(&[-5, 100005])),
            "/environments/test/fallthrough/rollout/variations/0/weight: -5 is negative",
        ),
        (
            json!([{"op": "add", "path": "/environments/test/prerequisites/-",
                    "value": {"key": "f", "variation": 0}}]),
            "/environments/test/prerequisites/0/key: a flag cannot be its own prerequisite",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = script.patch("/flags/default/f", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["code"], "invalid_request");
        assert_eq!(error["message"], message, "{body}");
    }
    let (_, flag) = script.get("/flags/default/f").await;
    assert_eq!(flag["_version"], 1);
    assert_eq!(flag["environments"]["test"]["prerequisites"], json!([]));
    let (status, _) = script
        .patch("/flags/default/f", fallthrough(arms(&[40000, 60000])))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A JSON Patch's prerequisites are checked as a semantic patch's are (a flag of the
/// project, one of its variations) and may not close a cycle, which the SDKs would
/// evaluate as a malformed flag.
#[tokio::test]
async fn a_json_patch_prerequisite_must_exist_and_not_close_a_cycle() {
    let script = Script::start().await;
    for key in ["a", "b", "c"] {
        let (status, _) = script
            .post(
                "/flags/default",
                json!({"key": key, "name": key, "variations": [{"value": 1}, {"value": 2}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let require = |key: &str, variation: i64| {
        json!([{"op": "add", "path": "/environments/test/prerequisites/-",
                "value": {"key": key, "variation": variation}}])
    };
    for (flag, on, variation) in [("a", "b", 0), ("b", "c", 1)] {
        let (status, body) = script
            .patch(&format!("/flags/default/{flag}"), require(on, variation))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for (body, message) in [
        (
            require("zz", 0),
            "/environments/test/prerequisites/0/key: the project has no flag \"zz\"",
        ),
        (
            require("a", 0),
            "/environments/test/prerequisites/0/key: \"a\" requires this flag through its \
             prerequisites; a prerequisite cycle",
        ),
        (
            require("b", 2),
            "/environments/test/prerequisites/0/variation: variation index 2 is out of range \
             (flag \"b\" has 2)",
        ),
    ] {
        let (status, error) = script.patch("/flags/default/c", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["message"], message, "{body}");
    }
    let ids = |flag: Value| -> Vec<Value> {
        flag["variations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["_id"].clone())
            .collect()
    };
    let (_, a) = script.get("/flags/default/a").await;
    let (status, error) = script
        .patch(
            "/flags/default/c",
            json!({"environmentKey": "test", "instructions": [
                {"kind": "addPrerequisite", "key": "a", "variationId": ids(a)[0]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(
        error["message"],
        "/environments/test/prerequisites/0/key: \"a\" requires this flag through its \
         prerequisites; a prerequisite cycle"
    );
    // The same prerequisite in another environment, where b does not require c, is fine.
    let (status, _) = script
        .patch(
            "/flags/default/c",
            json!([{"op": "add", "path": "/environments/production/prerequisites/-",
                    "value": {"key": "a", "variation": 0}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// The flag list pages by `limit` and `offset`, as the generated clients send them.
#[tokio::test]
async fn the_flag_list_takes_limit_and_offset() {
    let script = Script::start().await;
    for key in ["a", "b", "c"] {
        let (status, _) = script
            .post(
                "/flags/default",
                json!({"key": key, "name": key, "variations": [{"value": 1}, {"value": 2}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = script
        .get("/flags/default?limit=1&offset=1&summary=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["totalCount"], 3);
    let keys: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["key"])
        .collect();
    assert_eq!(keys, [&json!("b")]);
    let (status, error) = script.get("/flags/default?limit=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("limit"),
        "{error}"
    );
}

/// Rules sent whole by JSON Patch are checked as a semantic patch's are: a clause op SDKs
/// do not know (they would never match it) and a segment rule's weight outside 0..=100000
/// are refused with the field named.
#[tokio::test]
async fn json_patched_rules_take_known_ops_and_weights() {
    let script = Script::start().await;
    let (status, _) = script
        .post(
            "/flags/default",
            json!({"key": "f", "name": "F", "variations": [{"value": 1}, {"value": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = script
        .post("/segments/default/test", json!({"key": "s", "name": "S"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let rule = |op: &str, weight: Option<i64>| {
        let mut rule = json!({"variation": 0, "clauses": [
            {"attribute": "key", "op": "in", "values": ["a"]},
            {"attribute": "key", "op": op, "values": ["a"]}]});
        if let Some(weight) = weight {
            rule["weight"] = json!(weight);
        }
        rule
    };
    let add = |path: &str, rule: Value| json!([{"op": "add", "path": path, "value": rule}]);
    let ops = "in, endsWith, startsWith, matches, contains, lessThan, lessThanOrEqual, \
               greaterThan, greaterThanOrEqual, before, after, semVerEqual, semVerLessThan, \
               semVerGreaterThan, segmentMatch";
    for (path, body, message) in [
        (
            "/flags/default/f",
            add("/environments/test/rules/-", rule("equals", None)),
            format!(
                "/environments/test/rules/0/clauses/1/op: unknown op \"equals\"; ops are {ops}"
            ),
        ),
        (
            "/segments/default/test/s",
            add("/rules/-", rule("In", None)),
            format!("/rules/0/clauses/1/op: unknown op \"In\"; ops are {ops}"),
        ),
        (
            "/segments/default/test/s",
            add("/rules/-", rule("in", Some(-5))),
            "/rules/0/weight: -5 is not from 0 to 100000".to_owned(),
        ),
    ] {
        let (status, error) = script.patch(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["message"], message.as_str(), "{body}");
    }
    let (status, _) = script
        .patch(
            "/segments/default/test/s",
            add("/rules/-", rule("in", Some(100000))),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A key starts with a letter or digit, as LaunchDarkly's do: `..` could be created but
/// never read back, since HTTP clients resolve it out of the URL.
#[tokio::test]
async fn a_key_starts_with_a_letter_or_digit() {
    let script = Script::start().await;
    let flag =
        |key: &str| json!({"key": key, "name": "n", "variations": [{"value": 1}, {"value": 2}]});
    for key in ["..", ".", "-x", "_x"] {
        let (status, error) = script.post("/flags/default", flag(key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(
            error["message"],
            format!(
                "invalid flag key {key:?}: start with a letter or digit, then use letters, \
                 digits, '.', '_' and '-'"
            )
        );
    }
    let (status, _) = script.post("/flags/default", flag("x..y")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, read) = script.get("/flags/default/x..y").await;
    assert_eq!((status, &read["key"]), (StatusCode::OK, &json!("x..y")));
}
