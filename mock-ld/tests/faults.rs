//! `/admin/faults` over real HTTP on 127.0.0.1:0: the control API (its errors located), and
//! what each SDK-endpoint and provider fault answers, raw, as any client sees it. The real
//! SDKs under the same faults are in the harness's `tests/faults_sdk.rs`. Timing checks are
//! lower bounds of an injected delay only.

use std::time::{Duration, Instant};

use mock_ld::llm::PLAN_LATENCY_HEADER;
use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn start(config: Config) -> MockLdHandle {
    MockLd::start(config).await.expect("mock-ld starts")
}

fn http() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// Switches a fault on; its record.
async fn fault_on(mock: &MockLdHandle, spec: Value) -> Value {
    let response = http()
        .post(format!("{}/admin/faults", mock.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{spec}");
    response.json().await.unwrap()
}

/// Switches fault `id` off; its final record.
async fn fault_off(mock: &MockLdHandle, id: &Value) -> Value {
    let response = http()
        .delete(format!("{}/admin/faults/{id}", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `GET` of an `/admin` path, as JSON.
async fn admin_get(mock: &MockLdHandle, path: &str) -> Value {
    http()
        .get(format!("{}{path}", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sdk_get(mock: &MockLdHandle, path: &str, key: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", mock.base_url()))
        .header("Authorization", key)
        .send()
        .await
        .unwrap()
}

const TEST_KEY: &str = "sdk-default-test";
const PRODUCTION_KEY: &str = "sdk-default-production";

#[tokio::test]
async fn the_control_api_says_what_is_wrong() {
    let mock = start(Config::default()).await;
    let url = format!("{}/admin/faults", mock.base_url());
    for (body, status, says) in [
        (
            r#"{"kind": "eventsError", "status": 401}"#,
            400,
            "status 401: eventsError must be 429 or 5xx",
        ),
        (
            r#"{"kind": "streamStalled", "sttus": 1}"#,
            400,
            "unknown field `sttus`",
        ),
        (
            r#"{"kind": "llmTimeout", "environment": "test"}"#,
            400,
            "environment: llmTimeout",
        ),
        (r#"{"kind": "sdkSlow"}"#, 400, "latencyMs: sdkSlow needs it"),
        (
            r#"{"kind": "pollingError", "environment": "staging"}"#,
            404,
            "default/staging",
        ),
        (r#"{"kind": 3}"#, 400, "line 1 column 10: field `kind`"),
    ] {
        let response = http().post(&url).body(body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let response = http().delete(format!("{url}/99")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http().delete(format!("{url}/x")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Bounded: past 256 faults on, a conflict, not growth.
    for _ in 0..256 {
        fault_on(&mock, json!({"kind": "llmOutage", "model": "m"})).await;
    }
    let response = http()
        .post(&url)
        .json(&json!({"kind": "llmOutage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let cleared: Value = http()
        .delete(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["ended"].as_array().unwrap().len(), 256);
    let listed: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["active"], json!([]));
}

#[tokio::test]
async fn the_admin_token_guards_faults() {
    let mock = start(Config {
        admin_token: Some("secret".into()),
        ..Config::default()
    })
    .await;
    let url = format!("{}/admin/faults", mock.base_url());
    let spec = json!({"kind": "llmOutage"});
    let refused = http().post(&url).json(&spec).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let taken = http()
        .post(&url)
        .bearer_auth("secret")
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn sdk_endpoint_faults_refuse_their_environment_only() {
    let mock = start(Config::default()).await;
    let polling = fault_on(&mock, json!({"kind": "pollingError", "status": 500})).await;
    assert_eq!(
        polling["scope"],
        json!({"environment": {"project": "default", "environment": "test"}})
    );
    for path in ["/sdk/latest-all", "/sdk/latest-flags", "/sdk/poll"] {
        let response = sdk_get(&mock, path, TEST_KEY).await;
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("pollingError"),
            "{body}"
        );
        assert_eq!(
            sdk_get(&mock, path, PRODUCTION_KEY).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // Streams are not polling.
    assert_eq!(
        sdk_get(&mock, "/all", TEST_KEY).await.status(),
        StatusCode::OK
    );
    let off = fault_off(&mock, &polling["id"]).await;
    assert_eq!(off["counts"]["requests"], 3);
    assert!(off["ended"].as_u64().unwrap() >= off["started"].as_u64().unwrap());
    assert_eq!(
        sdk_get(&mock, "/sdk/latest-all", TEST_KEY).await.status(),
        StatusCode::OK
    );

    let refused = fault_on(&mock, json!({"kind": "streamRefused"})).await;
    for path in ["/all", "/sdk/stream"] {
        assert_eq!(
            sdk_get(&mock, path, TEST_KEY).await.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}"
        );
    }
    fault_off(&mock, &refused["id"]).await;

    let unavailable = fault_on(&mock, json!({"kind": "sdkUnavailable"})).await;
    for path in ["/all", "/sdk/stream", "/sdk/latest-all", "/sdk/poll"] {
        assert_eq!(
            sdk_get(&mock, path, TEST_KEY).await.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}"
        );
    }
    let events = http()
        .post(format!("{}/bulk", mock.base_url()))
        .header("Authorization", TEST_KEY)
        .header("X-LaunchDarkly-Payload-ID", "p-1")
        .json(&json!([{"kind": "custom", "key": "k", "creationDate": 1, "context": {"key": "u"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::SERVICE_UNAVAILABLE);
    let off = fault_off(&mock, &unavailable["id"]).await;
    assert_eq!(
        off["counts"],
        json!({"requests": 5, "payloads": 1, "events": 1})
    );

    // Added latency: a lower bound only.
    let slow = fault_on(&mock, json!({"kind": "sdkSlow", "latencyMs": 300})).await;
    let started = Instant::now();
    assert_eq!(
        sdk_get(&mock, "/sdk/latest-all", TEST_KEY).await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    fault_off(&mock, &slow["id"]).await;
}

#[tokio::test]
async fn refused_events_are_counted_and_a_retry_is_told_apart() {
    let mock = start(Config::default()).await;
    let post = |id: &'static str, events: usize| {
        let body: Vec<Value> = (0..events)
            .map(|i| json!({"kind": "custom", "key": format!("k{i}"), "creationDate": 1, "context": {"key": "u"}}))
            .collect();
        http()
            .post(format!("{}/bulk", mock.base_url()))
            .header("Authorization", TEST_KEY)
            .header("X-LaunchDarkly-Payload-ID", id)
            .json(&body)
            .send()
    };
    let fault = fault_on(
        &mock,
        json!({"kind": "eventsError", "status": 429, "retryAfter": 2}),
    )
    .await;
    let refused = post("a", 3).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(
        post("a", 3).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post("b", 2).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let off = fault_off(&mock, &fault["id"]).await;
    assert_eq!(
        off["counts"],
        json!({"requests": 3, "payloads": 3, "events": 8})
    );
    // "a" refused at its second try: lost, as far as an SDK goes (none tries a third time).
    let listed: Value = admin_get(&mock, "/admin/faults").await;
    let lost = &listed["refusedEvents"][0];
    assert_eq!(
        (&lost["lostPayloads"], &lost["lostCustomEvents"]),
        (&json!(1), &json!(3)),
        "{listed}"
    );
    // Another client sends "a" once more, and it is taken now: not lost after all.
    assert_eq!(post("a", 3).await.unwrap().status(), StatusCode::ACCEPTED);
    let listed: Value = admin_get(&mock, "/admin/faults").await;
    assert_eq!(
        listed["refusedEvents"],
        json!([{
            "project": "default", "environment": "test", "refusedAttempts": 3,
            "refusedPayloads": 2, "refusedEvents": 5, "refusedCustomEvents": 5,
            "retriedPayloads": 1, "retriedEvents": 3, "retriedCustomEvents": 3,
            "lostPayloads": 0, "lostEvents": 0, "lostCustomEvents": 0
        }])
    );
    let stats: Value = admin_get(&mock, "/admin/events/stats?env=test").await;
    assert_eq!(
        stats["events"], 3,
        "only the payload taken is stored: {stats}"
    );
    assert_eq!(stats["payloads"], 1, "{stats}");
}

#[tokio::test]
async fn a_held_payload_is_let_go_when_its_fault_ends() {
    let mock = start(Config::default()).await;
    let fault = fault_on(&mock, json!({"kind": "eventsTimeout"})).await;
    let sent = http()
        .post(format!("{}/bulk", mock.base_url()))
        .header("Authorization", TEST_KEY)
        .timeout(Duration::from_millis(400))
        .json(&json!([{"kind": "custom", "key": "k", "creationDate": 1, "context": {"key": "u"}}]))
        .send()
        .await;
    assert!(
        sent.is_err_and(|e| e.is_timeout()),
        "the client gave up first"
    );
    // A client that waits gets 503 as soon as the fault is switched off.
    let waiting = tokio::spawn({
        let url = format!("{}/bulk", mock.base_url());
        async move {
            http()
                .post(url)
                .header("Authorization", TEST_KEY)
                .json(&json!([]))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let off = fault_off(&mock, &fault["id"]).await;
    assert_eq!(waiting.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    // Each payload counted as it arrived, the one whose client gave up too.
    assert_eq!(
        off["counts"],
        json!({"requests": 2, "payloads": 2, "events": 1})
    );
}

async fn chat(
    mock: &MockLdHandle,
    model: &str,
    seed: u64,
    timeout: Option<Duration>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut request = http()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("sk-anything")
        .header("X-Mock-Seed", seed.to_string())
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]}));
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    request.send().await
}

fn planned_ms(response: &reqwest::Response) -> f64 {
    response.headers()[PLAN_LATENCY_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn provider_faults_answer_as_openai_would() {
    // Time scale 0: the plan's own waits are zero, so only the faults' show.
    let mock = start(Config::default()).await;
    let profile = json!({"timeScale": 0.001, "errorRate": 0});
    for model in ["gpt-4o", "gpt-4o-mini"] {
        let put = http()
            .put(format!("{}/admin/llm/models/{model}", mock.base_url()))
            .json(&profile)
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    }
    let limited = fault_on(
        &mock,
        json!({"kind": "llmRateLimited", "model": "gpt-4o", "retryAfter": 7}),
    )
    .await;
    let answer = chat(&mock, "gpt-4o", 1, None).await.unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.headers()["retry-after"], "7");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        chat(&mock, "gpt-4o-mini", 1, None).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        fault_off(&mock, &limited["id"]).await["counts"]["requests"],
        1
    );

    let error = fault_on(&mock, json!({"kind": "llmError", "status": 502})).await;
    assert_eq!(
        chat(&mock, "gpt-4o-mini", 1, None).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
    fault_off(&mock, &error["id"]).await;
    let outage = fault_on(&mock, json!({"kind": "llmOutage"})).await;
    assert_eq!(
        chat(&mock, "gpt-4o", 1, None).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fault_off(&mock, &outage["id"]).await;

    // A spike adds its real-time latency, scaled as the plan is, to the same draw.
    let plain = planned_ms(&chat(&mock, "gpt-4o", 42, None).await.unwrap());
    let spike = fault_on(&mock, json!({"kind": "llmLatencySpike", "latencyMs": 5000})).await;
    let spiked = planned_ms(&chat(&mock, "gpt-4o", 42, None).await.unwrap());
    assert!(
        (spiked - plain - 5.0).abs() < 0.01,
        "{plain} ms, then {spiked} ms"
    );
    fault_off(&mock, &spike["id"]).await;

    let timeout = fault_on(&mock, json!({"kind": "llmTimeout", "model": "gpt-4o"})).await;
    let gave_up = chat(&mock, "gpt-4o", 1, Some(Duration::from_millis(300))).await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert_eq!(
        fault_off(&mock, &timeout["id"]).await["counts"]["requests"],
        1
    );
}

/// A latency spike on a model whose time scale is as large as a profile accepts waits (a
/// day at most) instead of panicking: the client's own timeout ends the call.
#[tokio::test]
async fn a_latency_spike_at_any_time_scale_waits_instead_of_panicking() {
    let mock = start(Config::default()).await;
    let put = http()
        .put(format!("{}/admin/llm/models/huge", mock.base_url()))
        .json(&json!({"timeScale": 1e300}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let spike = fault_on(
        &mock,
        json!({"kind": "llmLatencySpike", "latencyMs": 1000, "model": "huge"}),
    )
    .await;
    let held = chat(&mock, "huge", 1, Some(Duration::from_millis(300))).await;
    assert!(held.is_err_and(|e| e.is_timeout()), "no answer: it waits");
    assert_eq!(
        fault_off(&mock, &spike["id"]).await["counts"]["requests"],
        1
    );
}

/// `eventsClosed`: the payload is read, then the connection closes without a status line;
/// the client sees a transport error, and the payload is counted like a refused one.
#[tokio::test]
async fn a_closed_events_connection_answers_nothing_and_is_counted() {
    let mock = start(Config::default()).await;
    let fault = fault_on(&mock, json!({"kind": "eventsClosed"})).await;
    let events = json!([
        {"kind": "custom", "key": "a", "creationDate": 1, "context": {"key": "u"}},
        {"kind": "custom", "key": "b", "creationDate": 1, "context": {"key": "u"}}
    ]);
    for _ in 0..2 {
        let sent = http()
            .post(format!("{}/bulk", mock.base_url()))
            .header("Authorization", TEST_KEY)
            .header("X-LaunchDarkly-Payload-ID", "closed-1")
            .json(&events)
            .send()
            .await;
        let error = sent.expect_err("no answer, not even a status line");
        assert!(!error.is_timeout() && !error.is_status(), "{error:?}");
    }
    // Other environments answer as usual.
    let other = http()
        .post(format!("{}/bulk", mock.base_url()))
        .header("Authorization", PRODUCTION_KEY)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    let off = fault_off(&mock, &fault["id"]).await;
    assert_eq!(
        off["counts"],
        json!({"requests": 2, "payloads": 2, "events": 4})
    );
    let refused = &admin_get(&mock, "/admin/faults").await["refusedEvents"][0];
    assert_eq!(
        (&refused["refusedAttempts"], &refused["refusedPayloads"]),
        (&json!(2), &json!(1)),
        "{refused}"
    );
    let stats = admin_get(&mock, "/admin/events/stats?env=test").await;
    assert_eq!(stats["events"], 0, "nothing stored: {stats}");
}

/// `sdkThrottled`: a polling answer of N bytes takes at least N / rate seconds, while
/// another environment's does not; an open stream slows when the fault comes on and is
/// let go when it ends.
#[tokio::test]
async fn a_throttled_answer_trickles_at_the_rate() {
    let mock = start(Config::default()).await;
    let env = mock.store().environment("default", "test").unwrap();
    for i in 0..20 {
        let flag = json!({"key": format!("flag-{i}"), "version": 1, "on": true,
            "variations": [true, false], "fallthrough": {"variation": 0}, "offVariation": 1});
        env.upsert_flag(serde_json::from_value(flag).unwrap());
    }
    let size = sdk_get(&mock, "/sdk/latest-all", TEST_KEY)
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    // A rate that makes the answer take about a second.
    let rate = size as u64;
    let fault = fault_on(
        &mock,
        json!({"kind": "sdkThrottled", "bytesPerSecond": rate}),
    )
    .await;
    assert_eq!(fault["bytesPerSecond"], rate, "{fault}");
    let started = Instant::now();
    let slow = sdk_get(&mock, "/sdk/latest-all", TEST_KEY).await;
    assert_eq!(slow.status(), StatusCode::OK);
    assert_eq!(slow.bytes().await.unwrap().len(), size);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sdk_get(&mock, "/sdk/latest-all", PRODUCTION_KEY)
            .await
            .status(),
        StatusCode::OK
    );

    // A stream opened under the fault gets its first bytes, not its whole payload; once
    // the fault is off the rest comes at once.
    let mut stream = sdk_get(&mock, "/all", TEST_KEY).await.bytes_stream();
    let first = futures::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert!(first.len() < size, "{} of {size} bytes", first.len());
    let off = fault_off(&mock, &fault["id"]).await;
    assert_eq!(off["counts"]["requests"], 2, "one poll, one stream: {off}");
    let mut read = first.len();
    while read < size {
        let chunk = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut stream),
        )
        .await
        .expect("the rest without the fault")
        .unwrap()
        .unwrap();
        read += chunk.len();
    }
}
