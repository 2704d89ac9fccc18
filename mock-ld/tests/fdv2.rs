//! FDv2 (`/sdk/stream`, `/sdk/poll`) over real HTTP on 127.0.0.1:0, as an FDv2 SDK sees it:
//! a full transfer, the changes since a basis, live changes on FDv2 and FDv1 streams alike,
//! stale and unknown bases, a stream too slow to keep up, `goodbye` at shutdown, 401 for an
//! unknown SDK key, and the FDv1 fallback directive with `--fdv2 off`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use mock_ld::model::Flag;
use mock_ld::store::Environment;
use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sse_stream::{Sse, SseByteStream};

const KEY: &str = "sdk-default-test";

async fn start(config: Config) -> MockLdHandle {
    MockLd::start(config).await.expect("mock-ld starts")
}

fn test_env(mock: &MockLdHandle) -> Arc<Environment> {
    mock.store().environment("default", "test").unwrap()
}

fn flag(key: &str, value: Value) -> Flag {
    serde_json::from_value(json!({
        "key": key, "on": true, "variations": [value], "fallthrough": {"variation": 0},
    }))
    .unwrap()
}

type Events = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// An FDv2 or FDv1 stream's events, heartbeat comments skipped.
struct Sse2 {
    events: Events,
}

impl Sse2 {
    async fn open(mock: &MockLdHandle, path: &str) -> Self {
        let response = get(mock, path, KEY).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse2 {
            events: Box::pin(SseByteStream::new(response.bytes_stream())),
        }
    }

    /// The next event's name and data, or `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), self.events.next())
                .await
                .expect("an event within 5 s")?
                .expect("well-formed SSE");
            if let (Some(name), Some(data)) = (event.event, event.data) {
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }

    async fn expect(&mut self, name: &str) -> Value {
        let (got, data) = self.next().await.expect("the stream goes on");
        assert_eq!(got, name, "{data}");
        data
    }

    /// A payload: objects until `payload-transferred`; returns them and its data.
    async fn payload(&mut self) -> (Vec<(String, Value)>, Value) {
        let mut objects = Vec::new();
        loop {
            let (name, data) = self.next().await.expect("the payload completes");
            if name == "payload-transferred" {
                return (objects, data);
            }
            objects.push((name, data));
        }
    }
}

async fn get(mock: &MockLdHandle, path: &str, key: &str) -> Response {
    Client::new()
        .get(format!("{}{path}", mock.base_url()))
        .header("Authorization", key)
        .send()
        .await
        .unwrap()
}

fn intent(data: &Value) -> (&str, &str, u64) {
    let payloads = data["payloads"].as_array().unwrap();
    assert_eq!(payloads.len(), 1, "exactly one payload, as Python requires");
    let p = &payloads[0];
    (
        p["intentCode"].as_str().unwrap(),
        p["reason"].as_str().unwrap(),
        p["target"].as_u64().unwrap(),
    )
}

fn basis_query(state: &Value) -> String {
    format!(
        "basis={}",
        url_encode(state.as_str().expect("state is a string"))
    )
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn stream_sends_a_full_transfer_then_every_change_live_as_all_does() {
    let mock = start(Config::default()).await;
    let env = test_env(&mock);
    env.upsert_flag(flag("a", json!("one")));

    let mut fdv2 = Sse2::open(&mock, "/sdk/stream").await;
    let mut fdv1 = Sse2::open(&mock, "/all").await;
    assert_eq!(
        intent(&fdv2.expect("server-intent").await),
        ("xfer-full", "payload-missing", 1)
    );
    let (objects, done) = fdv2.payload().await;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].0, "put-object");
    assert_eq!(objects[0].1["kind"], "flag");
    assert_eq!(objects[0].1["key"], "a");
    assert_eq!(objects[0].1["version"], 1);
    assert_eq!(objects[0].1["object"]["variations"], json!(["one"]));
    assert_eq!(done["version"], 1);
    fdv1.expect("put").await;
    let envs: Value = Client::new()
        .get(format!("{}/admin/environments", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let test = envs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "test")
        .unwrap();
    assert_eq!(
        (&test["streams"], &test["fdv2Streams"]),
        (&json!(2), &json!(1))
    );

    // A change through the admin API reaches both streams.
    let http = Client::new();
    let admin = format!("{}/admin/environments/test/flags/a", mock.base_url());
    let put = http
        .put(&admin)
        .json(&json!({"on": true, "variations": ["two"], "fallthrough": {"variation": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let (objects, changed) = fdv2.payload().await;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1["version"], 2);
    assert_eq!(objects[0].1["object"]["variations"], json!(["two"]));
    assert_eq!(changed["version"], 2);
    assert_ne!(changed["state"], done["state"]);
    assert_eq!(fdv1.expect("patch").await["data"]["version"], 2);

    // A delete leaves a tombstone version on both.
    assert!(http
        .delete(&admin)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let (objects, deleted) = fdv2.payload().await;
    assert_eq!(objects[0].0, "delete-object");
    assert_eq!(
        objects[0].1,
        json!({"kind": "flag", "key": "a", "version": 3})
    );
    assert_eq!(deleted["version"], 3);
    assert_eq!(fdv1.expect("delete").await["version"], 3);
}

#[tokio::test]
async fn a_known_basis_gets_only_the_changes_since_or_nothing() {
    let mock = start(Config::default()).await;
    let env = test_env(&mock);
    env.upsert_flag(flag("a", json!(1)));
    env.upsert_flag(flag("b", json!(1)));
    let mut first = Sse2::open(&mock, "/sdk/stream").await;
    first.expect("server-intent").await;
    let (_, basis) = first.payload().await;

    env.upsert_flag(flag("a", json!(2)));
    env.upsert_flag(flag("a", json!(3)));
    env.delete_flag("b");
    let path = format!("/sdk/stream?{}", basis_query(&basis["state"]));
    let mut resumed = Sse2::open(&mock, &path).await;
    assert_eq!(
        intent(&resumed.expect("server-intent").await),
        ("xfer-changes", "stale", 5)
    );
    let (objects, done) = resumed.payload().await;
    let keys: Vec<_> = objects
        .iter()
        .map(|(name, data)| {
            (
                name.as_str(),
                data["key"].as_str().unwrap(),
                data["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [("put-object", "a", 3), ("delete-object", "b", 2)]);
    assert_eq!(done["version"], 5);

    // Current: a `none` intent and nothing else until the next change.
    let path = format!("/sdk/stream?{}", basis_query(&done["state"]));
    let mut current = Sse2::open(&mock, &path).await;
    assert_eq!(
        intent(&current.expect("server-intent").await),
        ("none", "up-to-date", 5)
    );
    env.upsert_flag(flag("c", json!(1)));
    let (objects, done) = current.payload().await;
    assert_eq!(objects[0].1["key"], "c");
    assert_eq!(done["version"], 6);
}

#[tokio::test]
async fn unknown_stale_or_foreign_bases_get_a_full_transfer() {
    let mock = start(Config::default()).await;
    let env = test_env(&mock);
    env.upsert_flag(flag("a", json!(1)));
    let other = start(Config::default()).await;
    let foreign = other
        .store()
        .environment("default", "test")
        .unwrap()
        .fdv2_selector();
    let ahead = mock_ld::sdk::fdv2::selector::Selector {
        version: 99,
        ..env.fdv2_selector()
    };
    for (basis, reason) in [
        ("poll-basis-state".to_owned(), "payload-missing"),
        (foreign.to_string(), "cant-catchup"),
        (ahead.to_string(), "cant-catchup"),
    ] {
        let path = format!("/sdk/stream?basis={}", url_encode(&basis));
        let mut stream = Sse2::open(&mock, &path).await;
        assert_eq!(
            intent(&stream.expect("server-intent").await),
            ("xfer-full", reason, 1),
            "{basis}"
        );
        let (objects, _) = stream.payload().await;
        assert_eq!(objects.len(), 1, "{basis}");
    }
}

#[tokio::test]
async fn poll_answers_a_payload_with_an_etag_and_304_when_unchanged() {
    let mock = start(Config::default()).await;
    let env = test_env(&mock);
    env.upsert_flag(flag("a", json!(1)));
    let response = get(&mock, "/sdk/poll", KEY).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    let names: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["server-intent", "put-object", "payload-transferred"]
    );
    assert_eq!(
        intent(&events[0]["data"]),
        ("xfer-full", "payload-missing", 1)
    );
    assert_eq!(events[1]["data"]["object"]["key"], "a");
    let state = events[2]["data"]["state"].clone();

    let unchanged = Client::new()
        .get(format!(
            "{}/sdk/poll?{}",
            mock.base_url(),
            basis_query(&state)
        ))
        .header("Authorization", KEY)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    env.upsert_flag(flag("b", json!(1)));
    let path = format!("/sdk/poll?{}", basis_query(&state));
    let changed = get(&mock, &path, KEY).await;
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    let body: Value = changed.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(intent(&events[0]["data"]), ("xfer-changes", "stale", 2));
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["data"]["key"], "b");

    let current = events[2]["data"]["state"].clone();
    let path = format!("/sdk/poll?{}", basis_query(&current));
    let body: Value = get(&mock, &path, KEY).await.json().await.unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        intent(&body["events"][0]["data"]),
        ("none", "up-to-date", 2)
    );
}

#[tokio::test]
async fn an_unknown_sdk_key_gets_401() {
    let mock = start(Config::default()).await;
    for path in ["/sdk/stream", "/sdk/poll"] {
        let response = get(&mock, path, "sdk-unknown").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
}

#[tokio::test]
async fn a_stream_that_falls_behind_gets_a_fresh_full_transfer() {
    let mock = start(Config::default()).await;
    let env = test_env(&mock);
    let mut stream = Sse2::open(&mock, "/sdk/stream").await;
    stream.expect("server-intent").await;
    stream.payload().await;
    // Far more than the backlog and the socket buffers hold while the client reads nothing.
    let big = "x".repeat(2 * 1024);
    let changes = 3000;
    for i in 0..changes {
        env.upsert_flag(flag(&format!("f{}", i % 10), json!(big)));
    }
    let mut resynced = None;
    while let Some((name, data)) = stream.next().await {
        if name == "server-intent" {
            resynced = Some(intent(&data).1.to_owned());
        }
        if name == "payload-transferred" && data["version"] == changes {
            break;
        }
    }
    assert_eq!(resynced.as_deref(), Some("cant-catchup"));
}

#[tokio::test]
async fn shutdown_says_goodbye_and_ends_the_stream() {
    let mock = start(Config::default()).await;
    let mut stream = Sse2::open(&mock, "/sdk/stream").await;
    stream.expect("server-intent").await;
    stream.payload().await;
    let stopping = tokio::spawn(mock.shutdown());
    assert_eq!(
        stream.expect("goodbye").await,
        json!({"reason": "shutdown"})
    );
    assert!(stream.next().await.is_none());
    stopping.await.unwrap();
}

#[tokio::test]
async fn fdv2_off_tells_sdks_to_fall_back_to_fdv1() {
    let mock = start(Config {
        fdv2: false,
        ..Config::default()
    })
    .await;
    for path in ["/sdk/stream", "/sdk/poll"] {
        let response = get(&mock, path, KEY).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.headers()["x-ld-fd-fallback"], "true");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
    // The SDK key is still checked first, and FDv1 still serves.
    assert_eq!(
        get(&mock, "/sdk/poll", "sdk-unknown").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&mock, "/sdk/latest-all", KEY).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeat_comments() {
    let mock = start(Config {
        heartbeat: Duration::from_millis(50),
        ..Config::default()
    })
    .await;
    let mut response = get(&mock, "/sdk/stream", KEY).await;
    let mut seen = String::new();
    while !seen.contains("\n\n:\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a heartbeat within 5 s")
            .unwrap()
            .expect("the stream goes on");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.starts_with("event: server-intent\n"), "{seen}");
    assert!(seen.contains("event: payload-transferred\n"), "{seen}");
}
