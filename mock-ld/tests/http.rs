//! mock-ld over real HTTP on 127.0.0.1:0: what an SDK or a script sees on the wire.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "sdk-default-test";

async fn start() -> MockLdHandle {
    MockLd::start(Config::default())
        .await
        .expect("mock-ld starts")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Reads SSE frames (separated by a blank line) from a streaming response.
struct Frames {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Frames {
    fn new(response: reqwest::Response) -> Self {
        Frames {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next frame, or `None` when the stream ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("a frame within 5 s")?
                .expect("stream chunk");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn frame_data(frame: &str) -> Value {
    let data = frame
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line");
    serde_json::from_str(data).unwrap()
}

#[tokio::test]
async fn stream_sends_put_then_patch_and_delete_for_admin_changes() {
    let mock = start().await;
    let http = Client::new();
    let response = http
        .get(format!("{}/all", mock.base_url()))
        .header("Authorization", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        response.headers().get("content-length").is_none(),
        "the stream must be chunked"
    );
    let mut frames = Frames::new(response);

    let put = frames.next().await.unwrap();
    assert!(put.starts_with("event: put\n"), "{put}");
    assert_eq!(
        frame_data(&put),
        json!({"path": "/", "data": {"flags": {}, "segments": {}}})
    );

    let admin = format!("{}/admin/environments/test/flags/cfg", mock.base_url());
    let stored: Value = http
        .put(&admin)
        .json(&json!({"on": true, "variations": [1, 2]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["version"], 1);
    let patch = frames.next().await.unwrap();
    assert!(patch.starts_with("event: patch\n"), "{patch}");
    let data = frame_data(&patch);
    assert_eq!(data["path"], "/flags/cfg");
    assert_eq!(data["data"]["version"], 1);
    assert_eq!(
        data["data"]["rules"],
        json!([]),
        "served in full canonical form"
    );

    assert_eq!(
        http.delete(&admin).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let delete = frames.next().await.unwrap();
    assert_eq!(
        frame_data(&delete),
        json!({"path": "/flags/cfg", "version": 2})
    );
}

#[tokio::test]
async fn unknown_sdk_keys_get_401_on_stream_and_poll() {
    let mock = start().await;
    let http = Client::new();
    for path in ["/all", "/sdk/latest-all"] {
        let url = format!("{}{path}", mock.base_url());
        let status = http
            .get(&url)
            .header("Authorization", "sdk-wrong")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let status = http.get(&url).send().await.unwrap().status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} without a key");
    }
    // Relay's `api_key` scheme selects the same environment.
    let status = http
        .get(format!("{}/sdk/latest-all", mock.base_url()))
        .header("Authorization", format!("api_key {KEY}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn polling_answers_304_until_the_data_changes() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/sdk/latest-all", mock.base_url());
    let first = http
        .get(&url)
        .header("Authorization", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"flags": {}, "segments": {}})
    );

    let again = http
        .get(&url)
        .header("Authorization", KEY)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    mock.store()
        .environment("default", "test")
        .unwrap()
        .upsert_segment(mock_ld::model::Segment {
            key: "beta".into(),
            included: vec!["u1".into()],
            ..Default::default()
        });
    let changed = http
        .get(&url)
        .header("Authorization", KEY)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["segments"]["beta"]["included"], json!(["u1"]));
    assert_eq!(body["segments"]["beta"]["version"], 1);
}

#[tokio::test]
async fn bulk_accepts_gzip_and_plain_json_and_deduplicates_retries() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/bulk", mock.base_url());
    let events = json!([
        {"kind": "custom", "key": "$ld:ai:generation:success", "metricValue": 1, "creationDate": 1, "context": {"kind": "user", "key": "u"}},
        {"kind": "summary", "startDate": 1, "endDate": 2, "features": {"cfg": {"counters": [{"variation": 1, "count": 3, "version": 1, "value": 2}]}}}
    ]);
    let body = serde_json::to_vec(&events).unwrap();
    let post = |body: Vec<u8>, gzipped: bool, id: &'static str| {
        let mut request = http
            .post(&url)
            .header("Authorization", KEY)
            .header("X-LaunchDarkly-Payload-ID", id)
            .body(body);
        if gzipped {
            request = request.header("Content-Encoding", "gzip");
        }
        request.send()
    };
    let response = post(gzip(&body), true, "p-1").await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(
        response.headers().contains_key("date"),
        "SDKs read server time from Date"
    );
    assert_eq!(
        post(body.clone(), false, "p-2").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(body, false, "p-2").await.unwrap().status(),
        StatusCode::ACCEPTED
    );

    let stats: Value = http
        .get(format!("{}/admin/events/stats?env=test", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["payloads"], 2);
    assert_eq!(stats["duplicatePayloads"], 1);
    assert_eq!(stats["byKind"]["custom"], 2);
    assert_eq!(stats["byCustomKey"]["$ld:ai:generation:success"], 2);
    assert_eq!(stats["flagVariations"]["cfg"]["1"], 6);

    let listed: Value = http
        .get(format!(
            "{}/admin/events?env=test&kind=custom&key=$ld:ai:generation:success",
            mock.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["totalCount"], 2);
    assert_eq!(listed["items"][0]["payloadId"], "p-1");
    assert_eq!(
        listed["items"][0]["event"], events[0],
        "stored exactly as sent"
    );
    assert!(listed["items"][0]["receivedAt"].as_u64().unwrap() > 1_600_000_000_000);

    assert_eq!(
        http.post(format!("{}/admin/reset", mock.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let stats: Value = http
        .get(format!("{}/admin/events/stats", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["events"], 0);
}

/// Events made a known time before they are posted: their delivery latency is at least
/// that; events without a date or dated ahead are counted apart.
#[tokio::test]
async fn event_stats_give_the_delivery_latency_per_kind_with_its_n() {
    let mock = start().await;
    let http = Client::new();
    let made = mock_ld::events::now_millis() - 1500;
    let ahead = made + 86_400_000;
    let events = json!([
        {"kind": "custom", "key": "k", "creationDate": made, "context": {"kind": "user", "key": "u"}},
        {"kind": "custom", "key": "k", "creationDate": made, "context": {"kind": "user", "key": "u"}},
        {"kind": "custom", "key": "k", "context": {"kind": "user", "key": "u"}},
        {"kind": "index", "creationDate": ahead, "context": {"kind": "user", "key": "u"}},
        {"kind": "summary", "startDate": 1, "endDate": made, "features": {}},
        {"kind": "made-up", "creationDate": made}
    ]);
    let response = http
        .post(format!("{}/bulk", mock.base_url()))
        .header("Authorization", KEY)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let stats = |query: &'static str| {
        let url = format!("{}/admin/events/stats?{query}", mock.base_url());
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let all = stats("env=test").await;
    let delivery = &all["delivery"];
    let custom = &delivery["custom"];
    assert_eq!(
        (custom["count"].as_u64(), custom["undated"].as_u64()),
        (Some(2), Some(1))
    );
    for kind in ["custom", "summary", "(other)"] {
        let d = &delivery[kind];
        let p50 = d["p50Ms"].as_f64().unwrap();
        assert!(p50 >= 1499.0 && p50.is_finite(), "{kind}: {d}");
        assert!(d["p99Ms"].as_f64().unwrap() >= p50, "{kind}: {d}");
        assert!(!d["hdr"].as_str().unwrap().is_empty(), "{kind}: {d}");
    }
    assert_eq!(delivery["index"]["count"], 0);
    assert_eq!(delivery["index"]["future"], 1);
    assert_eq!(all["byKind"]["custom"], 3);
    let counts_only = stats("env=test&delivery=false").await;
    assert!(counts_only.get("delivery").is_none(), "{counts_only}");
    assert_eq!(counts_only["byKind"], all["byKind"]);
    let other_env = stats("env=production").await;
    assert_eq!(other_env["delivery"], json!({}));
}

#[tokio::test]
async fn bulk_never_answers_with_a_status_that_disables_sdk_events() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/bulk", mock.base_url());
    // 40,000 events, about 6 MB: far above axum's default 2 MB body limit.
    let event = json!({"kind": "custom", "key": "k", "data": {"pad": "x".repeat(100)}, "context": {"kind": "user", "key": "u"}});
    let big = serde_json::to_vec(&vec![event; 40_000]).unwrap();
    assert!(big.len() > 5_000_000);
    let status = http
        .post(&url)
        .header("Authorization", KEY)
        .body(big)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::ACCEPTED, "no 413 for a large payload");
    // An unknown key is accepted too: a 401 would stop that SDK's events for good.
    let status = http
        .post(&url)
        .header("Authorization", "sdk-unknown")
        .body("[]")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::ACCEPTED);
    let diag = json!({"kind": "diagnostic-init", "id": {"diagnosticId": "d", "sdkKeySuffix": "x"}, "creationDate": 1});
    let status = http
        .post(format!("{}/diagnostic", mock.base_url()))
        .header("Authorization", KEY)
        .json(&diag)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::ACCEPTED);

    let response = http
        .post(&url)
        .header("Authorization", KEY)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON event"),
        "{error}"
    );

    let stats = mock.events().stats(&Default::default());
    assert_eq!(stats.events, 40_001);
    assert_eq!(stats.rejected_payloads, 1);
    assert_eq!(stats.by_kind["diagnostic-init"], 1);
    let unknown = mock.events().stats(&mock_ld::events::log::Filter {
        env: Some("(unknown)".into()),
        ..Default::default()
    });
    assert_eq!(unknown.payloads, 1);
}

#[tokio::test]
async fn admin_put_errors_name_the_field() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/admin/environments/test/flags/cfg", mock.base_url());
    let response = http
        .put(&url)
        .body(r#"{"on": true, "rules": [{"clauses": [], "variation": "x"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("rules[0].variation"), "{message}");
    assert!(message.contains("line 1 column"), "{message}");

    let response = http
        .put(&url)
        .json(&json!({"key": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let missing_env = format!("{}/admin/environments/nope/flags/cfg", mock.base_url());
    assert_eq!(
        http.get(&missing_env).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_segments_are_put_read_and_deleted_by_the_path_key() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/admin/environments/test/segments/beta", mock.base_url());
    let put = http
        .put(&url)
        .json(&json!({"included": ["u1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let read: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&read["key"], &read["included"]),
        (&json!("beta"), &json!(["u1"]))
    );
    let deleted = http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = http.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let error: Value = gone.json().await.unwrap();
    assert_eq!(error["message"], "no segment with key \"beta\"");
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let mock = start().await;
    let response = Client::new()
        .get(format!("{}/all", mock.base_url()))
        .header("Authorization", KEY)
        .send()
        .await
        .unwrap();
    let mut frames = Frames::new(response);
    assert!(frames.next().await.unwrap().starts_with("event: put"));
    tokio::time::timeout(Duration::from_secs(5), mock.shutdown())
        .await
        .expect("shutdown is not held by an open stream");
    assert_eq!(frames.next().await, None, "the stream ends cleanly");
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments() {
    let config = Config {
        heartbeat: Duration::from_millis(50),
        ..Config::default()
    };
    let mock = MockLd::start(config).await.unwrap();
    let response = Client::new()
        .get(format!("{}/all", mock.base_url()))
        .header("Authorization", KEY)
        .send()
        .await
        .unwrap();
    let mut frames = Frames::new(response);
    frames.next().await.unwrap();
    assert_eq!(frames.next().await.unwrap(), ":");
}

/// With an admin token, `/admin` and `/admin/llm` answer 401 without it (a `{code, message}`
/// body) and work with it, as is or as a bearer token; SDK and REST routes are unaffected.
#[tokio::test]
async fn the_control_api_needs_the_admin_token_when_there_is_one() {
    let mock = MockLd::start(Config {
        admin_token: Some("admin-secret-token".into()),
        ..Config::default()
    })
    .await
    .unwrap();
    let http = Client::new();
    let base = mock.base_url();
    for path in [
        "/admin/environments",
        "/admin/llm/models",
        "/admin/events/stats",
    ] {
        let refused = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = refused.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("--admin-token"));
        let wrong = http
            .get(format!("{base}{path}"))
            .header("Authorization", "api-default-admin")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        for given in ["admin-secret-token", "Bearer admin-secret-token"] {
            let allowed = http
                .get(format!("{base}{path}"))
                .header("Authorization", given)
                .send()
                .await
                .unwrap();
            assert!(allowed.status().is_success(), "{path} with {given}");
        }
    }
    let sdk = http
        .get(format!("{base}/sdk/latest-all"))
        .header("Authorization", "sdk-default-test")
        .send()
        .await
        .unwrap();
    assert_eq!(sdk.status(), StatusCode::OK);
    mock.shutdown().await;
}
