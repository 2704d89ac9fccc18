//! The audit log over real HTTP: one entry per accepted write with who (the token), when,
//! what (actions on a resource), the request's comment and, on the single-entry GET, the
//! resource before and after; newest first, with `limit`, `before`, `after`, `q` and `spec`.

use std::path::PathBuf;

use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "api-default-admin";
const DEVELOPER: &str = "api-developer";
const RELEASE_MANAGER: &str = "api-release-manager";
const TARGETING: &str = "/projects/default/ai-configs/chat/targeting";

struct Api {
    mock: MockLdHandle,
    http: Client,
}

impl Api {
    async fn start() -> Self {
        let roles = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/roles.yaml");
        let config = Config {
            roles: Some(roles),
            ..Config::default()
        };
        Api {
            mock: MockLd::start(config).await.expect("mock-ld starts"),
            http: Client::new(),
        }
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/api/v2{path}", self.mock.base_url());
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.send(token, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn log(&self, query: &str) -> Value {
        let path = format!("/auditlog{query}");
        self.ok(ADMIN, Method::GET, &path, None).await
    }

    async fn serve(&self, token: &str, env: &str, variation: &str, comment: &str) {
        let targeting = self.ok(ADMIN, Method::GET, TARGETING, None).await;
        let id = targeting["variations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == variation)
            .unwrap()["_id"]
            .clone();
        let body = json!({"environmentKey": env, "comment": comment, "instructions": [
            {"kind": "updateFallthroughVariationOrRollout", "variationId": id}]});
        self.ok(token, Method::PATCH, TARGETING, Some(body)).await;
    }
}

/// A config made by the admin, a test rollout by a developer and a production one by the
/// release manager: four writes, each with a comment.
async fn rollout(api: &Api) {
    let config = json!({"key": "chat", "name": "Chat", "comment": "new assistant"});
    api.ok(
        ADMIN,
        Method::POST,
        "/projects/default/ai-configs",
        Some(config),
    )
    .await;
    let variation = json!({"key": "basic", "name": "Basic", "comment": "cheap model",
                           "model": {"modelName": "gpt-4o-mini"}});
    let path = "/projects/default/ai-configs/chat/variations";
    api.ok(DEVELOPER, Method::POST, path, Some(variation)).await;
    api.serve(DEVELOPER, "test", "basic", "try basic in test")
        .await;
    api.serve(RELEASE_MANAGER, "production", "basic", "ship basic")
        .await;
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

#[tokio::test]
async fn every_write_is_an_entry_with_who_when_what_and_why() {
    let api = Api::start().await;
    let started = now_ms();
    rollout(&api).await;
    let page = api.log("").await;
    let entries = items(&page);
    assert_eq!(entries.len(), 4, "{page:#}");
    let newest = &entries[0];
    assert_eq!(newest["kind"], "aiconfig");
    assert_eq!(newest["name"], "chat");
    assert_eq!(newest["comment"], "ship basic");
    assert_eq!(newest["token"]["name"], "release-manager");
    assert_eq!(newest["token"]["ending"], "ager");
    assert_eq!(newest["token"]["_id"].as_str().unwrap().len(), 24);
    let resource = "proj/default:env/production:aiconfig/chat";
    assert_eq!(
        newest["accesses"],
        json!([{"action": "updateAIConfigTargeting", "resource": resource}])
    );
    assert_eq!(newest["target"]["resources"], json!([resource]));
    assert_eq!(
        newest["titleVerb"],
        "updated the targeting of the AI Config"
    );
    assert_eq!(
        newest["title"],
        "release-manager updated the targeting of the AI Config chat in production"
    );
    for field in [
        "_id",
        "_accountId",
        "_links",
        "description",
        "shortDescription",
    ] {
        assert!(newest.get(field).is_some(), "{field} in {newest:#}");
    }
    assert!(newest.get("delta").is_none(), "the list has no delta");
    let dates: Vec<u64> = entries
        .iter()
        .map(|e| e["date"].as_u64().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] > w[1]),
        "newest first: {dates:?}"
    );
    assert!(
        dates[3] >= started && dates[0] <= now_ms() + 10,
        "{dates:?}"
    );
    let who: Vec<(&str, &str)> = entries
        .iter()
        .rev()
        .map(|e| {
            let action = e["accesses"][0]["action"].as_str().unwrap();
            (e["token"]["name"].as_str().unwrap(), action)
        })
        .collect();
    assert_eq!(
        who,
        [
            ("api-token", "createAIConfig"),
            ("developer", "createAIConfigVariation"),
            ("developer", "updateAIConfigTargeting"),
            ("release-manager", "updateAIConfigTargeting"),
        ]
    );
    assert_eq!(entries[3]["comment"], "new assistant");
    assert_eq!(entries[2]["comment"], "cheap model");
}

#[tokio::test]
async fn one_entry_carries_the_resource_before_and_after() {
    let api = Api::start().await;
    rollout(&api).await;
    let page = api.log("?limit=1").await;
    let id = items(&page)[0]["_id"].as_str().unwrap().to_owned();
    let entry = api
        .ok(ADMIN, Method::GET, &format!("/auditlog/{id}"), None)
        .await;
    assert_eq!(entry["_id"], id.as_str());
    assert_eq!(entry["comment"], "ship basic");
    let delta = &entry["delta"];
    assert_eq!(delta["before"]["fallthrough"], json!({"variation": 0}));
    assert_eq!(delta["after"]["fallthrough"], json!({"variation": 1}));
    let versions = (
        delta["before"]["_version"].as_u64(),
        delta["after"]["_version"].as_u64(),
    );
    assert!(versions.0 < versions.1, "{versions:?}");

    let created = items(&api.log("?q=new%20assistant").await)[0].clone();
    let path = format!("/auditlog/{}", created["_id"].as_str().unwrap());
    let entry = api.ok(ADMIN, Method::GET, &path, None).await;
    assert_eq!(entry["delta"]["before"], Value::Null);
    assert_eq!(entry["delta"]["after"]["key"], "chat");

    let (status, body) = api.send(ADMIN, Method::GET, "/auditlog/nope", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = api.send("api-wrong", Method::GET, "/auditlog", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn filters_and_pages() {
    let api = Api::start().await;
    rollout(&api).await;
    let all = api.log("").await;
    let dates: Vec<u64> = items(&all)
        .iter()
        .map(|e| e["date"].as_u64().unwrap())
        .collect();

    let first = api.log("?limit=2").await;
    assert_eq!(items(&first).len(), 2);
    let next = first["_links"]["next"]["href"]
        .as_str()
        .expect("a next page");
    let query = next.strip_prefix("/api/v2/auditlog").unwrap();
    let second = api.log(query).await;
    let paged: Vec<&Value> = items(&first).iter().chain(items(&second)).collect();
    assert_eq!(paged, items(&all).iter().collect::<Vec<_>>());
    assert!(second["_links"].get("next").is_none());

    let window = api
        .log(&format!("?before={}&after={}", dates[0], dates[3]))
        .await;
    assert_eq!(items(&window).len(), 2, "strictly between");

    let production = api.log("?spec=proj/*:env/production:aiconfig/*").await;
    let comments: Vec<&Value> = items(&production).iter().map(|e| &e["comment"]).collect();
    assert_eq!(comments, [&json!("ship basic")]);
    let config_level = api.log("?spec=proj/default:aiconfig/chat").await;
    assert_eq!(items(&config_level).len(), 2);

    let searched = api.log("?q=DEVELOPER").await;
    assert_eq!(
        items(&searched).len(),
        2,
        "q matches the token name, any case"
    );

    for bad in ["?limit=0", "?limit=21", "?spec=proj"] {
        let (status, body) = api
            .send(ADMIN, Method::GET, &format!("/auditlog{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn refused_and_failed_writes_leave_no_entry() {
    let api = Api::start().await;
    rollout(&api).await;
    let before = items(&api.log("").await).len();
    let body = json!({"environmentKey": "production", "instructions": [{"kind": "clearTargets"}]});
    let (status, _) = api
        .send(DEVELOPER, Method::PATCH, TARGETING, Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json!({"environmentKey": "test", "instructions": [{"kind": "noSuchKind"}]});
    let (status, _) = api.send(ADMIN, Method::PATCH, TARGETING, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let config = json!({"key": "chat", "name": "Again"});
    let path = "/projects/default/ai-configs";
    let (status, _) = api.send(ADMIN, Method::POST, path, Some(config)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(items(&api.log("").await).len(), before);
}

fn now_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.unwrap().as_millis() as u64
}
