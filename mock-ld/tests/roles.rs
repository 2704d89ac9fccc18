//! Tokens and roles over real HTTP, with the example roles file (`mock-ld/examples/roles.yaml`):
//! 401 for an unknown token, 403 `{code: "forbidden"}` naming the action and the resource for
//! a write the token's role does not allow (and nothing changes), reads for every token.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "api-default-admin";
const DEVELOPER: &str = "api-developer";
const RELEASE_MANAGER: &str = "api-release-manager";
const AUDITOR: &str = "api-auditor";
const CI: &str = "api-ci";

fn example_roles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/roles.yaml")
}

struct Api {
    mock: MockLdHandle,
    http: Client,
}

impl Api {
    async fn start() -> Self {
        let config = Config {
            roles: Some(example_roles()),
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

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(token, Method::POST, path, Some(body)).await
    }

    /// A targeting patch turning `env`'s fallthrough to the config's variation `basic`.
    async fn serve_basic(&self, token: &str, env: &str) -> (StatusCode, Value) {
        let (_, targeting) = self
            .send(
                ADMIN,
                Method::GET,
                "/projects/default/ai-configs/chat/targeting",
                None,
            )
            .await;
        let basic = &targeting["variations"][1]["_id"];
        let body = json!({"environmentKey": env, "comment": "go", "instructions": [
            {"kind": "updateFallthroughVariationOrRollout", "variationId": basic}]});
        let path = "/projects/default/ai-configs/chat/targeting";
        self.send(token, Method::PATCH, path, Some(body)).await
    }

    fn flag_version(&self, env: &str) -> u64 {
        let env = self.mock.store().environment("default", env).unwrap();
        env.flag("chat").unwrap().version
    }
}

fn assert_forbidden(response: &(StatusCode, Value), action: &str, resource: &str) {
    let (status, body) = response;
    assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(action) && message.contains(resource),
        "{message:?} should name {action} and {resource}"
    );
}

/// The AI Config `chat` with one variation `basic`, made by `token`.
async fn chat_config(api: &Api, token: &str) {
    let (status, body) = api
        .post(
            token,
            "/projects/default/ai-configs",
            json!({"key": "chat", "name": "Chat"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let variation = json!({"key": "basic", "name": "Basic", "model": {"modelName": "gpt-4o-mini"}});
    let (status, body) = api
        .post(
            token,
            "/projects/default/ai-configs/chat/variations",
            variation,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn unknown_tokens_get_401_and_every_valid_token_reads() {
    let api = Api::start().await;
    for token in ["api-nobody", "", "Bearer api-developerX"] {
        let (status, body) = api.send(token, Method::GET, "/projects", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(body["code"], "unauthorized");
    }
    for token in [ADMIN, DEVELOPER, RELEASE_MANAGER, AUDITOR, CI] {
        for path in ["/projects", "/projects/default/ai-configs", "/auditlog"] {
            let (status, body) = api.send(token, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "{token} GET {path}: {body}");
        }
    }
    let bearer = format!("Bearer {AUDITOR}");
    let (status, _) = api.send(&bearer, Method::GET, "/projects", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_reader_gets_403_on_every_write() {
    let api = Api::start().await;
    let response = api
        .post(
            AUDITOR,
            "/projects/default/ai-configs",
            json!({"key": "chat", "name": "Chat"}),
        )
        .await;
    assert_forbidden(&response, "createAIConfig", "proj/default:aiconfig/chat");
    let response = api
        .post(
            AUDITOR,
            "/segments/default/test",
            json!({"key": "beta", "name": "Beta"}),
        )
        .await;
    assert_forbidden(
        &response,
        "createSegment",
        "proj/default:env/test:segment/beta",
    );
    let response = api
        .post(AUDITOR, "/projects", json!({"key": "shop", "name": "Shop"}))
        .await;
    assert_forbidden(&response, "createProject", "proj/shop");
    chat_config(&api, ADMIN).await;
    let version = api.flag_version("test");
    let response = api.serve_basic(AUDITOR, "test").await;
    let resource = "proj/default:env/test:aiconfig/chat";
    assert_forbidden(&response, "updateAIConfigTargeting", resource);
    let response = api
        .send(
            AUDITOR,
            Method::DELETE,
            "/projects/default/ai-configs/chat",
            None,
        )
        .await;
    assert_forbidden(&response, "deleteAIConfig", "proj/default:aiconfig/chat");
    assert_eq!(
        api.flag_version("test"),
        version,
        "a refused write changes nothing"
    );
}

#[tokio::test]
async fn a_developer_writes_in_test_and_reads_production() {
    let api = Api::start().await;
    chat_config(&api, DEVELOPER).await;
    let (status, body) = api.serve_basic(DEVELOPER, "test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .post(
            DEVELOPER,
            "/segments/default/test",
            json!({"key": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let version = api.flag_version("production");
    let response = api.serve_basic(DEVELOPER, "production").await;
    let resource = "proj/default:env/production:aiconfig/chat";
    assert_forbidden(&response, "updateAIConfigTargeting", resource);
    assert!(response.1["message"]
        .as_str()
        .unwrap()
        .contains("deny statement"));
    assert_eq!(api.flag_version("production"), version);
    let response = api
        .post(
            DEVELOPER,
            "/segments/default/production",
            json!({"key": "beta", "name": "Beta"}),
        )
        .await;
    assert_forbidden(
        &response,
        "createSegment",
        "proj/default:env/production:segment/beta",
    );
    let response = api
        .send(
            DEVELOPER,
            Method::DELETE,
            "/projects/default/ai-configs/chat",
            None,
        )
        .await;
    assert_forbidden(&response, "deleteAIConfig", "proj/default:aiconfig/chat");
    let response = api
        .post(
            DEVELOPER,
            "/projects/default/environments",
            json!({"key": "qa", "name": "QA"}),
        )
        .await;
    assert_forbidden(&response, "createEnvironment", "proj/default:env/qa");
}

#[tokio::test]
async fn a_release_manager_changes_production_targeting_only() {
    let api = Api::start().await;
    let response = api
        .post(
            RELEASE_MANAGER,
            "/projects/default/ai-configs",
            json!({"key": "chat", "name": "C"}),
        )
        .await;
    assert_forbidden(&response, "createAIConfig", "proj/default:aiconfig/chat");
    chat_config(&api, DEVELOPER).await;
    let version = api.flag_version("production");
    let (status, body) = api.serve_basic(RELEASE_MANAGER, "production").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(api.flag_version("production") > version);
    let response = api.serve_basic(RELEASE_MANAGER, "test").await;
    let resource = "proj/default:env/test:aiconfig/chat";
    assert_forbidden(&response, "updateAIConfigTargeting", resource);
    assert!(response.1["message"]
        .as_str()
        .unwrap()
        .contains("no statement"));
}

#[tokio::test]
async fn a_writer_writes_everything_but_projects_and_environments() {
    let api = Api::start().await;
    chat_config(&api, CI).await;
    for env in ["test", "production"] {
        let (status, body) = api.serve_basic(CI, env).await;
        assert_eq!(status, StatusCode::OK, "{env}: {body}");
    }
    let model = json!({"key": "OpenAI.gpt-4o", "id": "gpt-4o", "name": "GPT-4o"});
    let (status, body) = api
        .post(CI, "/projects/default/ai-model-configs", model)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = api
        .post(CI, "/projects", json!({"key": "shop", "name": "Shop"}))
        .await;
    assert_forbidden(&response, "createProject", "proj/shop");
    let response = api
        .send(
            CI,
            Method::DELETE,
            "/projects/default/environments/test",
            None,
        )
        .await;
    assert_forbidden(&response, "deleteEnvironment", "proj/default:env/test");
    let (status, _) = api
        .send(
            CI,
            Method::DELETE,
            "/projects/default/ai-configs/chat",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_admin_token_does_everything() {
    let api = Api::start().await;
    let (status, body) = api
        .post(ADMIN, "/projects", json!({"key": "shop", "name": "Shop"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .post(
            ADMIN,
            "/projects/shop/environments",
            json!({"key": "qa", "name": "QA"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    chat_config(&api, ADMIN).await;
    let (status, body) = api.serve_basic(ADMIN, "production").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for path in ["/projects/shop/environments/qa", "/projects/shop"] {
        let (status, _) = api.send(ADMIN, Method::DELETE, path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
    }
}

#[test]
fn the_binary_lists_the_tokens_and_refuses_a_bad_roles_file() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-ld"))
        .args(["--listen", "127.0.0.1:0", "--roles"])
        .arg(example_roles())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|line| !line.contains("LLM provider"))
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    for expected in [
        "  API token: api-…dmin (api-token, admin)",
        "  API token: api-…oper (developer, custom roles developer)",
        "  API token: **** (auditor, reader)",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected:?} in {lines:#?}"
        );
    }

    let dir = std::env::temp_dir().join(format!("mock-ld-roles-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("roles.yaml");
    let text = "tokens:\n  - name: dev\n    token: api-dev\n    policy:\n      - effect: allow\n        actions: [\"*\"]\n        resources: [\"proj/*:env\"]\n";
    std::fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mock-ld"))
        .args(["--listen", "127.0.0.1:0", "--roles"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = format!("--roles {}:7:", file.display());
    assert!(stderr.contains(&place), "{stderr}");
    assert!(
        stderr.contains("field `tokens[0].policy[0].resources[0]`"),
        "{stderr}"
    );
}
