//! Durable state with the real binary: everything acknowledged through the REST and admin
//! APIs survives `kill -9` and a restart with the same `--state`, as the REST API and an SDK
//! stream (`GET /all`) both see it, and versions keep rising afterwards. A torn last journal
//! line is dropped; damage before it stops start-up with exit 2, naming file and line.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use futures::StreamExt;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_mock-ld");
const TOKEN: &str = "api-default-admin";
const CONFIG: &str = "/projects/shop/ai-configs/assistant";

/// A directory for one test's state and logs, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mock-ld-durable-{name}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    fn journal(&self) -> PathBuf {
        self.state().join("journal.jsonl")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.0).ok();
    }
}

/// A running `mock-ld --state`, and the REST and SDK calls made to it.
struct Server {
    child: Child,
    /// Kept open: the binary prints its start-up lines after the first, and a closed pipe
    /// would fail them.
    _stdout: BufReader<ChildStdout>,
    rest: Rest,
}

impl std::ops::Deref for Server {
    type Target = Rest;

    fn deref(&self) -> &Rest {
        &self.rest
    }
}

/// Calls to a mock-ld at `url`.
struct Rest {
    url: String,
    http: Client,
}

impl Server {
    fn start(scratch: &Scratch, run: usize) -> Server {
        let log = File::create(scratch.0.join(format!("run-{run}.log"))).unwrap();
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--state"])
            .arg(scratch.state())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("mock-ld listening on ")
            .unwrap_or_else(|| panic!("first line {first:?}; see {}", scratch.0.display()))
            .to_owned();
        Server {
            child,
            _stdout: stdout,
            rest: Rest::new(url),
        }
    }

    /// `kill -9`: no shutdown, no snapshot; only the journal speaks for what happened.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Rest {
    fn new(url: String) -> Self {
        Rest {
            url,
            http: Client::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A REST call that must succeed; its answer.
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(method, &format!("/api/v2{path}"), body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    async fn get(&self, path: &str) -> Value {
        self.api(Method::GET, path, None).await
    }

    /// The data of the `put` an SDK stream with `sdk_key` starts with.
    async fn put(&self, sdk_key: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/all", self.url))
            .header("Authorization", sdk_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.bytes_stream();
        let mut text = String::new();
        while !text.contains("\n\n") {
            let chunk = body.next().await.expect("the put frame").unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let data = text
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap();
        assert!(text.starts_with("event: put\n"), "{text}");
        serde_json::from_str::<Value>(data).unwrap()["data"].clone()
    }

    async fn target(&self, instructions: Value) -> Value {
        let body =
            json!({"environmentKey": "test", "comment": "rollout", "instructions": instructions});
        self.api(Method::PATCH, &format!("{CONFIG}/targeting"), Some(body))
            .await
    }
}

/// Builds a project through the REST API (and one flag through the admin API); returns the
/// `test` environment's SDK key.
async fn build(server: &Rest) -> String {
    let project = server
        .api(
            Method::POST,
            "/projects",
            Some(json!({"key": "shop", "name": "Shop"})),
        )
        .await;
    let sdk_key = project["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "test")
        .unwrap()["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = json!({"key": "OpenAI.gpt-4o", "id": "gpt-4o", "name": "GPT-4o",
                       "provider": "OpenAI", "costPerInputToken": 2.5e-6});
    server
        .api(Method::POST, "/projects/shop/ai-model-configs", Some(model))
        .await;
    let config = json!({"key": "assistant", "name": "Assistant", "mode": "completion"});
    server
        .api(Method::POST, "/projects/shop/ai-configs", Some(config))
        .await;
    for (key, model) in [("basic", "gpt-4o-mini"), ("premium", "gpt-4o")] {
        let variation = json!({"key": key, "name": key, "modelConfigKey": format!("OpenAI.{model}"),
                               "model": {"modelName": model},
                               "messages": [{"role": "system", "content": "Help."}]});
        server
            .api(
                Method::POST,
                &format!("{CONFIG}/variations"),
                Some(variation),
            )
            .await;
    }
    let update = json!({"messages": [{"role": "system", "content": "Help kindly."}]});
    server
        .api(
            Method::PATCH,
            &format!("{CONFIG}/variations/premium"),
            Some(update),
        )
        .await;
    for key in ["beta", "temp"] {
        let segment = json!({"key": key, "name": key});
        server
            .api(Method::POST, "/segments/shop/test", Some(segment))
            .await;
    }
    let include = json!({"environmentKey": "test", "instructions": [
        {"kind": "addIncludedTargets", "contextKind": "user", "values": ["u1", "u2"]}]});
    server
        .api(Method::PATCH, "/segments/shop/test/beta", Some(include))
        .await;
    server
        .api(Method::DELETE, "/segments/shop/test/temp", None)
        .await;
    let ids = variation_ids(server).await;
    server.target(json!([
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["basic"]},
        {"kind": "addTargets", "variationId": ids["premium"], "contextKind": "user", "values": ["qa-1"]},
        {"kind": "addRule", "variationId": ids["premium"], "clauses": [
            {"contextKind": "user", "attribute": "segmentMatch", "op": "segmentMatch", "values": ["beta"]}]},
    ]))
    .await;
    let flag = json!({"on": true, "variations": [true, false], "fallthrough": {"variation": 0}});
    let (status, _) = server
        .send(
            Method::PUT,
            "/admin/environments/test/flags/kill-switch?project=shop",
            Some(flag),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    sdk_key
}

async fn variation_ids(server: &Rest) -> serde_json::Map<String, Value> {
    let targeting = server.get(&format!("{CONFIG}/targeting")).await;
    targeting["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["key"].as_str().unwrap().to_owned(), v["_id"].clone()))
        .collect()
}

/// Everything a script or an SDK can read back about the project.
async fn observe(server: &Rest, sdk_key: &str) -> Value {
    let mut seen = json!({
        "project": server.get("/projects/shop?expand=environments").await,
        "config": server.get(CONFIG).await,
        "premium": server.get(&format!("{CONFIG}/variations/premium")).await,
        "targeting": server.get(&format!("{CONFIG}/targeting")).await,
        "models": server.get("/projects/shop/ai-configs/model-configs").await,
        "segments": server.get("/segments/shop/test").await,
        "audit": server.get("/auditlog?limit=20").await,
        "put": server.put(sdk_key).await,
    });
    // The listing's own links are not state.
    seen["audit"]["_links"] = Value::Null;
    seen
}

fn flag_version(seen: &Value, key: &str) -> u64 {
    seen["put"]["flags"][key]["version"].as_u64().unwrap()
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    let scratch = Scratch::new("kill");
    let server = Server::start(&scratch, 1);
    let sdk_key = build(&server).await;
    let before = observe(&server, &sdk_key).await;
    assert_eq!(before["premium"]["items"][0]["version"], 2);
    assert_eq!(
        before["put"]["segments"]["beta"]["included"],
        json!(["u1", "u2"])
    );
    assert!(before["put"]["flags"]["kill-switch"].is_object());
    assert_eq!(
        before["audit"]["items"].as_array().unwrap().len(),
        11,
        "the admin PUT has none"
    );
    server.kill();

    let server = Server::start(&scratch, 2);
    let after = observe(&server, &sdk_key).await;
    assert_eq!(
        after["put"], before["put"],
        "SDKs get the same flags and versions"
    );
    assert_eq!(after, before, "the REST API answers as before the crash");

    // Versions go on rising: a change after the restart supersedes what SDKs saw before.
    let ids = variation_ids(&server).await;
    server
        .target(
            json!([{"kind": "updateFallthroughVariationOrRollout", "variationId": ids["premium"]}]),
        )
        .await;
    let segment = json!({"key": "temp", "name": "temp again"});
    server
        .api(Method::POST, "/segments/shop/test", Some(segment))
        .await;
    let put = server.put(&sdk_key).await;
    let version = |seen: &Value, key: &str| seen["flags"][key]["version"].as_u64().unwrap();
    assert!(version(&put, "assistant") > flag_version(&before, "assistant"));
    let temp = put["segments"]["temp"]["version"].as_u64().unwrap();
    assert!(
        temp > 2,
        "above the deleted segment's tombstone, got {temp}"
    );
    server.kill();

    // ... and once more, now from the snapshot written at the second start.
    let server = Server::start(&scratch, 3);
    assert_eq!(server.put(&sdk_key).await, put);
    server.kill();
}

#[tokio::test]
async fn a_torn_last_line_is_dropped_and_earlier_damage_stops_start_up() {
    let scratch = Scratch::new("torn");
    let server = Server::start(&scratch, 1);
    let sdk_key = build(&server).await;
    let before = observe(&server, &sdk_key).await;
    server.kill();

    // A write cut short by the crash: never acknowledged, so dropped.
    append(
        &scratch.journal(),
        br#"{"seq":99,"change":{"project":"shop","sta"#,
    );
    let server = Server::start(&scratch, 2);
    assert_eq!(observe(&server, &sdk_key).await, before);
    let ids = variation_ids(&server).await;
    server
        .target(json!([{"kind": "addTargets", "variationId": ids["basic"], "contextKind": "user", "values": ["qa-2"]}]))
        .await;
    server.kill();

    // Damage before the last line: mock-ld will not guess what is missing.
    let journal = fs::read(scratch.journal()).unwrap();
    assert!(
        !journal.is_empty(),
        "the change after the restart is journaled"
    );
    let mut damaged = b"{\"seq\": garbage}\n".to_vec();
    damaged.extend_from_slice(&journal);
    fs::write(scratch.journal(), damaged).unwrap();
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--state"])
        .arg(scratch.state())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = format!("{}:1: corrupt journal line", scratch.journal().display());
    assert!(stderr.contains(&place), "{stderr}");
}

#[tokio::test]
async fn a_clean_shutdown_leaves_a_snapshot_and_an_empty_journal() {
    let scratch = Scratch::new("shutdown");
    let config = || mock_ld::Config {
        state_dir: Some(scratch.state()),
        ..mock_ld::Config::default()
    };
    let mock = mock_ld::MockLd::start(config()).await.unwrap();
    let server = Rest::new(mock.base_url());
    let body = json!({"key": "beta", "name": "Beta", "comment": "testers"});
    server
        .api(Method::POST, "/segments/default/test", Some(body))
        .await;
    assert!(fs::metadata(scratch.journal()).unwrap().len() > 0);
    let before = server.put("sdk-default-test").await;
    mock.shutdown().await;
    assert_eq!(fs::metadata(scratch.journal()).unwrap().len(), 0);

    let mock = mock_ld::MockLd::start(config()).await.unwrap();
    let server = Rest::new(mock.base_url());
    assert_eq!(server.put("sdk-default-test").await, before);
    let log = server.get("/auditlog").await;
    assert_eq!(log["items"][0]["comment"], "testers");
    mock.shutdown().await;
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// Received events, as an SDK posts them (gzip and pretty-printed JSON among them), survive
/// `kill -9`: the same counts, the same listed events, the same delivery latencies, and a
/// payload id taken before is still a duplicate after. A torn last line is dropped.
#[tokio::test]
async fn received_events_survive_kill_9() {
    let scratch = Scratch::new("events");
    let server = Server::start(&scratch, 1);
    let post = |server: &Server, id: &str, body: Vec<u8>, gzip: bool| {
        let mut request = server
            .http
            .post(format!("{}/bulk", server.url))
            .header("Authorization", "sdk-default-test")
            .header("X-LaunchDarkly-Payload-ID", id)
            .header("Content-Type", "application/json")
            .body(body);
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        request.send()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let events = |key: &str, n: usize| -> Value {
        (0..n)
            .map(|i| json!({"kind": "custom", "key": key, "creationDate": now - i as u64, "context": {"key": format!("u{i}")}, "metricValue": 2.5}))
            .collect()
    };
    let pretty = serde_json::to_vec_pretty(&events("pretty", 3)).unwrap();
    assert_eq!(
        post(&server, "p1", pretty, false).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&events("zipped", 4)).unwrap())
        .unwrap();
    assert_eq!(
        post(&server, "p2", gz.finish().unwrap(), true)
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    async fn stats(server: &Rest) -> Value {
        server
            .send(Method::GET, "/admin/events/stats?env=test", None)
            .await
            .1
    }
    async fn listed(server: &Rest) -> Value {
        server
            .send(Method::GET, "/admin/events?env=test", None)
            .await
            .1
    }
    let before = (stats(&server).await, listed(&server).await);
    assert_eq!(before.0["byCustomKey"], json!({"pretty": 3, "zipped": 4}));
    assert!(
        before.0["journal"]["bytes"].as_u64().unwrap() > 0,
        "{}",
        before.0
    );
    server.kill();

    let server = Server::start(&scratch, 2);
    let mut after = (stats(&server).await, listed(&server).await);
    // It says how many it read back: the 7 received (index events of each are its own).
    let replayed = after.0["journal"]["replayedEvents"].take();
    let received: u64 = before.0["byKind"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(received >= 7, "{}", before.0);
    assert_eq!(replayed, json!(received), "{}", after.0);
    after.0["journal"]["replayedEvents"] = json!(0);
    assert_eq!(after.0, before.0, "the same counts and delivery latencies");
    assert_eq!(after.1, before.1, "the same events listed");
    // The SDK's retry of a payload taken before the crash is still a duplicate.
    let again = serde_json::to_vec(&events("pretty", 3)).unwrap();
    assert_eq!(
        post(&server, "p1", again, false).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(stats(&server).await["duplicatePayloads"], 1);
    server.kill();

    // A crash mid-write leaves a torn line: dropped, and the next payload starts a line.
    append(
        &scratch.state().join("events.jsonl"),
        b"{\"project\": \"default\", \"env",
    );
    let server = Server::start(&scratch, 3);
    assert_eq!(
        stats(&server).await["byCustomKey"],
        json!({"pretty": 3, "zipped": 4})
    );
    let more = serde_json::to_vec(&events("later", 1)).unwrap();
    assert_eq!(
        post(&server, "p3", more, false).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    server.kill();
    let server = Server::start(&scratch, 4);
    assert_eq!(
        stats(&server).await["byCustomKey"],
        json!({"pretty": 3, "zipped": 4, "later": 1})
    );
    server.kill();
}

/// Events refused under a fault survive `kill -9`: `/admin/faults` shows the same
/// `refusedEvents` after a restart, and the SDK's retry of a payload refused before it
/// (the same payload id) counts as retried. A torn last line of `refused.jsonl` is dropped.
#[tokio::test]
async fn refused_events_survive_kill_9() {
    let scratch = Scratch::new("refused");
    let server = Server::start(&scratch, 1);
    let post = |server: &Server, id: &str, n: usize| {
        let events: Value = (0..n)
            .map(|i| json!({"kind": "custom", "key": "tokens", "creationDate": 1, "context": {"key": format!("u{i}")}}))
            .collect();
        server
            .http
            .post(format!("{}/bulk", server.url))
            .header("Authorization", "sdk-default-test")
            .header("X-LaunchDarkly-Payload-ID", id)
            .json(&events)
            .send()
    };
    async fn refused(server: &Rest) -> Value {
        let (status, faults) = server.send(Method::GET, "/admin/faults", None).await;
        assert_eq!(status, StatusCode::OK, "{faults}");
        faults["refusedEvents"].clone()
    }
    let fault = json!({"kind": "eventsError"});
    let (status, on) = server
        .send(Method::POST, "/admin/faults", Some(fault))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{on}");
    for (id, n) in [("p1", 3), ("p2", 2), ("p1", 3)] {
        let status = post(&server, id, n).await.unwrap().status();
        assert!(status.is_server_error(), "{id}: {status}");
    }
    let off = format!("/admin/faults/{}", on["id"]);
    assert_eq!(
        server.send(Method::DELETE, &off, None).await.0,
        StatusCode::OK
    );
    let before = refused(&server).await;
    // p1's second try refused too: lost, until a later try is taken after all.
    let totals = |retried: (u64, u64, u64), lost: (u64, u64, u64)| {
        json!([{
            "project": "default", "environment": "test",
            "refusedAttempts": 3, "refusedPayloads": 2,
            "refusedEvents": 5, "refusedCustomEvents": 5,
            "retriedPayloads": retried.0, "retriedEvents": retried.1,
            "retriedCustomEvents": retried.2,
            "lostPayloads": lost.0, "lostEvents": lost.1, "lostCustomEvents": lost.2,
        }])
    };
    assert_eq!(before, totals((0, 0, 0), (1, 3, 3)));
    server.kill();

    let server = Server::start(&scratch, 2);
    assert_eq!(
        refused(&server).await,
        before,
        "the same totals after kill -9"
    );
    // p1, refused before the restart, is taken now: a retry, no longer lost.
    assert_eq!(
        post(&server, "p1", 3).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(refused(&server).await, totals((1, 3, 3), (0, 0, 0)));
    server.kill();

    // A crash mid-write leaves a torn line: dropped, the totals as acknowledged before.
    append(
        &scratch.state().join("refused.jsonl"),
        b"{\"op\": \"refused\", \"proj",
    );
    let server = Server::start(&scratch, 3);
    assert_eq!(refused(&server).await, totals((1, 3, 3), (0, 0, 0)));
    // p1 again is a duplicate of a payload taken, no second retry.
    assert_eq!(
        post(&server, "p1", 3).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(refused(&server).await, totals((1, 3, 3), (0, 0, 0)));
    server.kill();
}
