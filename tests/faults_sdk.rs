//! The real LaunchDarkly Rust SDK (3.2.0) under mock-ld's faults (`/admin/faults`), each
//! observed as the SDK behaves: no data at start (fallback values, then initialization once
//! the fault ends), a stream dropped, stalled or refused (a change made meanwhile arrives
//! after), a malformed event (skipped), events refused or their connection closed without
//! an answer (one retry a second later under the same payload id, then the payload is
//! dropped: the SDK's `sender.rs` sends each payload at most twice), events held (the SDK
//! waits, then its retry is stored), a throttled link or a slow one (initialization waits
//! for the payload), and polling refused (no data, the fallback). Waits are bounded; no
//! timing is asserted but the order of what happened, and least times (size / rate, the
//! added latency).

use std::time::{Duration, Instant};

use aiconfig_harness::ld_client::{build_client, start_client, EventOptions, SdkOptions};
use launchdarkly_sdk_transport::HyperTransport;
use launchdarkly_server_sdk::{
    Client, ConfigBuilder, ContextBuilder, FlagValue, NullEventProcessorBuilder,
    PollingDataSourceBuilder, ServiceEndpointsBuilder,
};
use mock_ld::model::Flag;
use mock_ld::{MockLd, MockLdHandle};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FLAG: &str = "support-assistant";

/// Everyone gets variation `fallthrough` of three.
fn flag(version: u64, fallthrough: usize) -> Flag {
    serde_json::from_value(json!({
        "key": FLAG, "version": version, "on": true, "salt": "f",
        "variations": [{"v": 0}, {"v": 1}, {"v": 2}],
        "fallthrough": {"variation": fallthrough}, "offVariation": 0
    }))
    .unwrap()
}

async fn mock() -> MockLdHandle {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    set_flag(&mock, 1, 1);
    mock
}

fn set_flag(mock: &MockLdHandle, version: u64, fallthrough: usize) {
    let env = mock.store().environment("default", "test").unwrap();
    env.upsert_flag(flag(version, fallthrough));
}

fn options(mock: &MockLdHandle, events: Option<EventOptions>) -> SdkOptions {
    SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events,
    }
}

/// The variation the client serves, `None` when it falls back to the default.
fn served(client: &Client) -> Option<isize> {
    let context = ContextBuilder::new("user-1").build().unwrap();
    client
        .variation_detail(&context, FLAG, FlagValue::Json(json!({"v": "fallback"})))
        .variation_index
}

/// Waits until `done` holds (at most `limit`); whether it did, and how long it took.
async fn until(limit: Duration, done: impl Fn() -> bool) -> (bool, Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return (true, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (done(), started.elapsed())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn fault_on(mock: &MockLdHandle, spec: Value) -> Value {
    let response = http()
        .post(format!("{}/admin/faults", mock.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn fault_off(mock: &MockLdHandle, on: &Value) -> Value {
    http()
        .delete(format!("{}/admin/faults/{}", mock.base_url(), on["id"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn faults(mock: &MockLdHandle) -> Value {
    http()
        .get(format!("{}/admin/faults", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_at_start_serves_the_fallback_then_initializes() {
    let mock = mock().await;
    let fault = fault_on(&mock, json!({"kind": "sdkUnavailable"})).await;
    let client = build_client(&options(&mock, None)).unwrap();
    client.start_with_default_executor();
    // 503 is recoverable: the SDK keeps retrying, and does not initialize meanwhile.
    assert_eq!(
        client.wait_for_initialization(Duration::from_secs(2)).await,
        None
    );
    assert_eq!(served(&client), None, "not initialized: the fallback value");
    let off = fault_off(&mock, &fault).await;
    assert!(off["counts"]["requests"].as_u64().unwrap() >= 1, "{off}");
    let (initialized, after) = until(Duration::from_secs(30), || client.initialized()).await;
    assert!(initialized, "the SDK initialized once the fault ended");
    assert_eq!(served(&client), Some(1));
    println!(
        "sdkUnavailable: {} stream attempts refused in 2 s; initialized {after:?} after the fault ended",
        off["counts"]["requests"]
    );
    client.close();
}

/// A client started normally, then `spec` switched on; a change made during the fault;
/// the fault switched off after `hold`. The change must arrive after the fault ends.
async fn change_during(spec: Value, hold: Duration) -> (Value, Duration, Option<isize>) {
    let mock = mock().await;
    let client = start_client(&options(&mock, None), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(served(&client), Some(1));
    let fault = fault_on(&mock, spec).await;
    set_flag(&mock, 2, 2);
    tokio::time::sleep(hold).await;
    let during = served(&client);
    let off = fault_off(&mock, &fault).await;
    let (arrived, after) = until(Duration::from_secs(30), || served(&client) == Some(2)).await;
    assert!(
        arrived,
        "{}: the change made during the fault arrived",
        off["kind"]
    );
    client.close();
    (off, after, during)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_delivers_nothing_until_the_fault_ends() {
    let (off, after, during) =
        change_during(json!({"kind": "streamStalled"}), Duration::from_secs(1)).await;
    assert_eq!(
        during,
        Some(1),
        "nothing arrived through the stalled stream"
    );
    assert_eq!(off["counts"]["requests"], 1, "one stream stalled: {off}");
    println!("streamStalled: change seen {after:?} after the fault ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_is_reopened_and_catches_up() {
    let (off, after, during) =
        change_during(json!({"kind": "streamDropped"}), Duration::from_secs(2)).await;
    assert!(off["counts"]["requests"].as_u64().unwrap() >= 1, "{off}");
    println!(
        "streamDropped: {} streams ended in 2 s (each reopened stream gets its payload, then ends); served {during:?} at the fault's end; the change seen {after:?} after it",
        off["counts"]["requests"]
    );
}

/// LaunchDarkly's SDK specification restarts a stream on invalid data; the Rust SDK 3.2.0
/// logs "error processing update" and reads on (`data_source.rs`): one malformed event,
/// no reconnect, and the next change arrives through the same stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_skipped_by_the_rust_sdk() {
    let (off, _, during) =
        change_during(json!({"kind": "streamMalformed"}), Duration::from_secs(2)).await;
    assert_eq!(off["counts"]["requests"], 1, "no second stream: {off}");
    assert_eq!(during, Some(2), "the change came through the same stream");
}

/// Streams refused with the fault's status (503 is recoverable to the SDK: `data_source.rs`
/// reconnects with backoff from `initial_reconnect_delay`, 1 s): the open stream ends, the
/// reopens are refused, the SDK serves what it had, and the change made meanwhile arrives
/// once a stream opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_keeps_the_data_and_catches_up_after() {
    let (off, after, during) = change_during(
        json!({"kind": "streamRefused", "status": 503}),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(during, Some(1), "the data it had, kept through the fault");
    assert!(
        off["counts"]["requests"].as_u64().unwrap() >= 1,
        "stream opens refused: {off}"
    );
    println!(
        "streamRefused: {} streams ended or refused in 2 s; the change seen {after:?} after the fault ended",
        off["counts"]["requests"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_retried_once_then_lost() {
    events_retried_once_then_lost(json!({"kind": "eventsError", "status": 503})).await;
}

/// A connection closed without an answer is a transport error to the SDK: `sender.rs`
/// retries it once a second later, like a 5xx, then drops the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_events_connections_are_retried_once_then_lost() {
    events_retried_once_then_lost(json!({"kind": "eventsClosed"})).await;
}

/// A client whose events flush only when asked, `spec` switched on, and five custom
/// events `during-fault` tracked and flushed under it.
async fn events_during(mock: &MockLdHandle, spec: Value) -> (Client, Value) {
    let events = EventOptions {
        capacity: 1_000,
        flush_interval: Duration::from_secs(60),
    };
    let client = start_client(&options(mock, Some(events)), Duration::from_secs(10))
        .await
        .unwrap();
    let fault = fault_on(mock, spec).await;
    let context = ContextBuilder::new("user-1").build().unwrap();
    for _ in 0..5 {
        client.track_event(context.clone(), "during-fault");
    }
    client.flush();
    (client, fault)
}

/// The events payload attempts mock-ld refused or held in the test environment.
async fn refused_attempts(mock: &MockLdHandle) -> Option<u64> {
    faults(mock).await["refusedEvents"][0]["refusedAttempts"].as_u64()
}

/// Waits (at most 15 s) until mock-ld has counted `n` attempts.
async fn until_attempts(mock: &MockLdHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while refused_attempts(mock).await != Some(n) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Events tracked while `spec` refuses them: sent twice under one payload id, then
/// dropped for good; the ones tracked after the fault arrive.
async fn events_retried_once_then_lost(spec: Value) {
    let mock = mock().await;
    let (client, fault) = events_during(&mock, spec).await;
    // The first attempt at once, the retry a second later.
    until_attempts(&mock, 2).await;
    // Past the retry: a third attempt would have come by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = faults(&mock).await["refusedEvents"][0].clone();
    assert_eq!(
        refused["refusedAttempts"], 2,
        "one payload, sent twice: {refused}"
    );
    assert_eq!(refused["refusedPayloads"], 1, "{refused}");
    assert!(
        refused["refusedEvents"].as_u64().unwrap() >= 5,
        "the 5 custom events and the index event: {refused}"
    );
    let off = fault_off(&mock, &fault).await;
    assert_eq!(off["counts"]["payloads"], 2, "both attempts: {off}");

    let context = ContextBuilder::new("user-1").build().unwrap();
    for _ in 0..3 {
        client.track_event(context.clone(), "after-fault");
    }
    assert!(client.flush_blocking(Duration::from_secs(10)).await);
    let filter = mock_ld::events::log::Filter {
        env: Some("test".into()),
        ..Default::default()
    };
    let stats = mock.events().stats(&filter);
    assert_eq!(stats.by_custom_key.get("after-fault"), Some(&3));
    assert_eq!(
        stats.by_custom_key.get("during-fault"),
        None,
        "the SDK dropped them: never resent"
    );
    let refused = faults(&mock).await["refusedEvents"][0].clone();
    assert_eq!(refused["retriedPayloads"], 0, "{refused}");
    client.close();
}

/// Over a link throttled to `rate` bytes a second, the SDK's first payload (its stream's
/// `put`, larger than the polling answer of the same data) takes at least size / rate to
/// arrive, and the SDK initializes once it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_link_delays_initialization_by_the_payloads_size() {
    let mock = mock().await;
    let env = mock.store().environment("default", "test").unwrap();
    for i in 0..30 {
        let mut extra = flag(1, 0);
        extra.key = format!("extra-{i}");
        env.upsert_flag(extra);
    }
    let size = http()
        .get(format!("{}/sdk/latest-all", mock.base_url()))
        .header("Authorization", mock.config().sdk_key.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    // About a second and a half for the payload.
    let rate = (size as u64 * 2 / 3).max(1);
    let fault = fault_on(
        &mock,
        json!({"kind": "sdkThrottled", "bytesPerSecond": rate}),
    )
    .await;
    let started = Instant::now();
    let client = start_client(&options(&mock, None), Duration::from_secs(10))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(served(&client), Some(1));
    let least = Duration::from_secs_f64(size as f64 / rate as f64);
    assert!(took >= least, "initialized after {took:?}, under {least:?}");
    let off = fault_off(&mock, &fault).await;
    assert_eq!(off["counts"]["requests"], 1, "one stream throttled: {off}");
    println!("sdkThrottled: {size} bytes at {rate} B/s; initialized after {took:?}");
    client.close();
}

/// Every SDK endpoint answers `latencyMs` later: the stream's first payload comes no sooner,
/// so initialization takes at least the latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_delays_initialization_by_the_latency() {
    let mock = mock().await;
    let latency = Duration::from_millis(1500);
    let fault = fault_on(
        &mock,
        json!({"kind": "sdkSlow", "latencyMs": latency.as_millis() as u64}),
    )
    .await;
    let started = Instant::now();
    let client = start_client(&options(&mock, None), Duration::from_secs(10))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(served(&client), Some(1));
    assert!(
        took >= latency,
        "initialized after {took:?}, under {latency:?}"
    );
    let off = fault_off(&mock, &fault).await;
    assert_eq!(off["counts"]["requests"], 1, "one stream slowed: {off}");
    println!("sdkSlow: {latency:?} added; initialized after {took:?}");
    client.close();
}

/// `/bulk` held while the fault is on. The harness's transport has no timeouts (the
/// transport crate's `HyperTransportBuilder`: "There is no read timeout by default") and
/// the SDK's `sender.rs` sets none, so the SDK waits for the answer however long the hold;
/// the 503 at the fault's end is recoverable, and its one retry a second later, under the
/// same payload id, is stored: nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_events_are_waited_for_then_retried_and_stored() {
    let mock = mock().await;
    let (client, fault) = events_during(&mock, json!({"kind": "eventsTimeout"})).await;
    until_attempts(&mock, 1).await;
    // Held a second and a half: past the SDK's retry delay, and still one attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        refused_attempts(&mock).await,
        Some(1),
        "the SDK waits on the held request"
    );
    let off = fault_off(&mock, &fault).await;
    assert_eq!(off["counts"]["payloads"], 1, "one payload held: {off}");

    let filter = mock_ld::events::log::Filter {
        env: Some("test".into()),
        ..Default::default()
    };
    let (stored, after) = until(Duration::from_secs(15), || {
        mock.events()
            .stats(&filter)
            .by_custom_key
            .get("during-fault")
            == Some(&5)
    })
    .await;
    assert!(stored, "the retry after the hold was stored");
    let refused = faults(&mock).await["refusedEvents"][0].clone();
    assert_eq!(
        refused["retriedPayloads"], 1,
        "the same payload id: {refused}"
    );
    println!("eventsTimeout: the held payload stored {after:?} after the fault ended: {refused}");
    client.close();
}

/// `/sdk/latest-all` refused. The SDK's polling interval is at least 30 s
/// (`data_source_builders.rs`: `MINIMUM_POLL_INTERVAL`), too long to wait for a second
/// poll here: the fault is seen over plain HTTP, and by one SDK in polling mode whose
/// first poll is refused: a 503 is temporary to it (`feature_requester.rs`), so it neither
/// initializes nor gives up, and serves the fallback until its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_polling_leaves_a_polling_sdk_on_the_fallback() {
    let mock = mock().await;
    let fault = fault_on(&mock, json!({"kind": "pollingError", "status": 503})).await;
    let poll = || async {
        http()
            .get(format!("{}/sdk/latest-all", mock.base_url()))
            .header("Authorization", mock.config().sdk_key.clone())
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(poll().await, StatusCode::SERVICE_UNAVAILABLE);
    let client = polling_client(&mock);
    client.start_with_default_executor();
    assert_eq!(
        client.wait_for_initialization(Duration::from_secs(2)).await,
        None,
        "neither initialized nor failed"
    );
    assert_eq!(served(&client), None, "not initialized: the fallback value");
    let off = fault_off(&mock, &fault).await;
    assert_eq!(
        off["counts"]["requests"], 2,
        "the plain poll and the SDK's first: {off}"
    );
    assert_eq!(poll().await, StatusCode::OK, "served again after the fault");
    client.close();
}

/// A client polling mock-ld (every 30 s, the SDK's least), without events.
fn polling_client(mock: &MockLdHandle) -> Client {
    let mut endpoints = ServiceEndpointsBuilder::new();
    endpoints
        .polling_base_url(&mock.base_url())
        .streaming_base_url(&mock.base_url())
        .events_base_url(&mock.base_url());
    let mut polling = PollingDataSourceBuilder::<HyperTransport>::new();
    polling.transport(
        HyperTransport::builder()
            .disable_proxy()
            .build_http()
            .unwrap(),
    );
    let config = ConfigBuilder::new(&mock.config().sdk_key)
        .service_endpoints(&endpoints)
        .data_source(&polling)
        .event_processor(&NullEventProcessorBuilder::new())
        .build()
        .unwrap();
    Client::build(config).unwrap()
}
