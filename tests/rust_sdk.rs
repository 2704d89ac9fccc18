//! The real LaunchDarkly Rust SDK (3.2.0) against mock-ld on 127.0.0.1:0: initialization,
//! a 60/40 AI Config rollout over 12,000 premium contexts, event counts, AI tracker events,
//! live targeting changes, polling, and a wrong SDK key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiconfig_harness::ld_client::{build_client, start_client, EventOptions, SdkOptions};
use aiconfig_harness::split::chi_square;
use launchdarkly_sdk_transport::HyperTransport;
use launchdarkly_server_sdk::{
    Client, ConfigBuilder, ContextBuilder, FlagValue, NullEventProcessorBuilder,
    PollingDataSourceBuilder, ServiceEndpointsBuilder,
};
use mock_ld::events::log::{Filter, Stats};
use mock_ld::model::Flag;
use mock_ld::{MockLd, MockLdHandle};
use serde_json::{json, Value};

const FLAG: &str = "support-assistant";

fn ai_variation(key: &str, model: &str, provider: &str) -> Value {
    json!({
        "_ldMeta": {"enabled": true, "variationKey": key, "version": 1, "mode": "completion"},
        "model": {"name": model, "parameters": {"temperature": 0.2}},
        "provider": {"name": provider},
        "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}]
    })
}

/// Premium users split 60/40 between variations 1 and 2; everyone else gets 0.
fn ai_config_flag() -> Flag {
    serde_json::from_value(json!({
        "key": FLAG,
        "on": true,
        "salt": "d1e4",
        "variations": [
            ai_variation("basic", "gpt-4o-mini", "openai"),
            ai_variation("premium-a", "gpt-4o", "openai"),
            ai_variation("premium-b", "claude-3-5-sonnet", "anthropic")
        ],
        "rules": [{
            "id": "premium",
            "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]}],
            "rollout": {"variations": [{"variation": 1, "weight": 60000}, {"variation": 2, "weight": 40000}]}
        }],
        "fallthrough": {"variation": 0},
        "offVariation": 0
    }))
    .unwrap()
}

async fn mock_with_flag() -> MockLdHandle {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    mock.store()
        .environment("default", "test")
        .unwrap()
        .upsert_flag(ai_config_flag());
    mock
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

fn context(key: &str, tier: &str) -> launchdarkly_server_sdk::Context {
    ContextBuilder::new(key)
        .set_string("tier", tier)
        .build()
        .unwrap()
}

fn variation_of(client: &Client, key: &str, tier: &str) -> Option<isize> {
    client
        .variation_detail(&context(key, tier), FLAG, FlagValue::Json(json!({})))
        .variation_index
}

/// Waits until mock-ld has received what `done` looks for, then returns the stats.
async fn stats_when(mock: &MockLdHandle, done: impl Fn(&Stats) -> bool) -> Stats {
    let filter = Filter {
        env: Some("test".into()),
        ..Filter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = mock.events().stats(&filter);
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_rollout_splits_60_40_and_every_evaluation_is_counted() {
    let mock = mock_with_flag().await;
    let client = start_client(
        &options(&mock, Some(EventOptions::default())),
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    let mut evaluated: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..14_000 {
        let tier = if i < 12_000 { "premium" } else { "free" };
        let index = variation_of(&client, &format!("user-{i}"), tier).expect("a variation");
        *evaluated.entry(index.to_string()).or_default() += 1;
    }
    assert_eq!(evaluated["0"], 2_000, "non-premium users fall through");
    let fit = chi_square(&[evaluated["1"], evaluated["2"]], &[60.0, 40.0]).unwrap();
    println!(
        "rust sdk premium split: {} / {}, chi-square {:.3}, p = {:.4}",
        evaluated["1"], evaluated["2"], fit.statistic, fit.p_value
    );
    assert!(
        fit.p_value > 0.001,
        "60/40 rollout does not fit: {evaluated:?} {fit:?}"
    );

    client.flush();
    let stats = stats_when(&mock, |s| {
        s.flag_variations
            .get(FLAG)
            .is_some_and(|v| v.values().sum::<u64>() >= 14_000)
    })
    .await;
    assert_eq!(
        stats.flag_variations[FLAG], evaluated,
        "mock-ld counts exactly what the SDK evaluated"
    );
    assert_eq!(stats.rejected_payloads, 0);
    assert_eq!(
        stats.by_kind["index"], 14_000,
        "one index event per new context"
    );
    tokio::task::spawn_blocking(move || client.close())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_tracker_events_arrive_with_their_keys_and_data() {
    let mock = mock_with_flag().await;
    let client = start_client(
        &options(&mock, Some(EventOptions::default())),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // The fields LaunchDarkly's AI SDKs put in `data` (ld-sdk-protocol.md §7.3).
    let data = json!({"runId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "configKey": FLAG, "variationKey": "premium-a", "version": 1, "modelName": "gpt-4o", "providerName": "openai"});
    let metrics = [
        ("$ld:ai:duration:total", 812.0),
        ("$ld:ai:tokens:ttf", 95.0),
        ("$ld:ai:tokens:total", 420.0),
        ("$ld:ai:tokens:input", 300.0),
        ("$ld:ai:tokens:output", 120.0),
        ("$ld:ai:generation:success", 1.0),
    ];
    for user in 0..50 {
        for (key, value) in metrics {
            client.track_metric(
                context(&format!("user-{user}"), "premium"),
                key,
                value,
                &data,
            );
        }
    }
    client.track_metric(
        context("user-error", "premium"),
        "$ld:ai:generation:error",
        1.0,
        &data,
    );
    client.flush();
    let stats = stats_when(&mock, |s| s.by_kind.get("custom") == Some(&301)).await;
    for (key, value) in metrics {
        assert_eq!(stats.by_custom_key[key], 50, "{key}");
        assert_eq!(stats.custom_metric_sums[key], value * 50.0, "{key}");
    }
    assert_eq!(stats.by_custom_key["$ld:ai:generation:error"], 1);

    let listed: Value = serde_json::from_slice(
        &mock
            .events()
            .query_json(&Filter {
                kind: Some("custom".into()),
                key: Some("$ld:ai:tokens:total".into()),
                ..Filter::default()
            })
            .unwrap(),
    )
    .unwrap();
    let event = &listed["items"][0]["event"];
    assert_eq!(event["data"], data, "data arrives exactly as tracked");
    assert_eq!(event["metricValue"], 420.0);
    assert_eq!(
        event["context"]["key"], "user-0",
        "the SDK inlines the context"
    );
    tokio::task::spawn_blocking(move || client.close())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeting_change_reaches_the_streaming_sdk() {
    let mock = mock_with_flag().await;
    let client = Arc::new(
        start_client(&options(&mock, None), Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert_eq!(variation_of(&client, "qa-1", "free"), Some(0));

    let mut flag = ai_config_flag();
    flag.targets =
        vec![serde_json::from_value(json!({"values": ["qa-1"], "variation": 2})).unwrap()];
    let started = Instant::now();
    mock.store()
        .environment("default", "test")
        .unwrap()
        .upsert_flag(flag);
    let probe = client.clone();
    let elapsed = tokio::task::spawn_blocking(move || {
        while started.elapsed() < Duration::from_secs(5) {
            if variation_of(&probe, "qa-1", "free") == Some(2) {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        None
    })
    .await
    .unwrap()
    .expect("the change reaches the SDK within 5 s");
    println!(
        "rust sdk: individual target reached the SDK in {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );

    mock.store()
        .environment("default", "test")
        .unwrap()
        .delete_flag(FLAG);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        variation_of(&client, "qa-1", "free"),
        None,
        "a deleted flag is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polling_data_source_initializes_from_latest_all() {
    let mock = mock_with_flag().await;
    let transport = HyperTransport::builder()
        .disable_proxy()
        .build_http()
        .unwrap();
    let mut endpoints = ServiceEndpointsBuilder::new();
    endpoints.relay_proxy(&mock.base_url());
    let mut polling = PollingDataSourceBuilder::new();
    polling.transport(transport);
    let config = ConfigBuilder::new("sdk-default-test")
        .service_endpoints(&endpoints)
        .data_source(&polling)
        .event_processor(&NullEventProcessorBuilder::new())
        .build()
        .unwrap();
    let client = Client::build(config).unwrap();
    client.start_with_default_executor();
    assert_eq!(
        client.wait_for_initialization(Duration::from_secs(5)).await,
        Some(true)
    );
    assert_eq!(variation_of(&client, "u", "free"), Some(0));
    tokio::task::spawn_blocking(move || client.close())
        .await
        .unwrap();
}

/// LaunchDarkly has a host per service (the EU instance too): flags stream from one,
/// events go to another, and nothing is asked of the polling base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_and_events_urls_can_be_separate_hosts() {
    let flags = mock_with_flag().await;
    let events = mock_with_flag().await;
    let separate = SdkOptions {
        // Nothing listens on the discard port: polling is never used while streaming.
        base_url: "http://127.0.0.1:9".into(),
        stream_url: Some(flags.base_url()),
        events_url: Some(events.base_url()),
        ..options(&flags, Some(EventOptions::default()))
    };
    let client = start_client(&separate, Duration::from_secs(5))
        .await
        .expect("initializes from the streaming host alone");
    assert!(variation_of(&client, "user-1", "premium").is_some());
    client.track_metric(
        context("user-1", "premium"),
        "separate-hosts",
        1.0,
        json!({}),
    );
    client.flush();
    let stats = stats_when(&events, |s| s.by_custom_key.contains_key("separate-hosts")).await;
    assert_eq!(stats.by_custom_key.get("separate-hosts"), Some(&1));
    let filter = Filter::default();
    assert_eq!(
        flags.events().stats(&filter).events,
        0,
        "no event went to the streaming host"
    );
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sdk_key_fails_initialization_promptly() {
    let mock = mock_with_flag().await;
    let wrong = SdkOptions {
        sdk_key: "sdk-wrong".into(),
        ..options(&mock, None)
    };
    let started = Instant::now();
    let error = start_client(&wrong, Duration::from_secs(10))
        .await
        .err()
        .expect("init fails");
    assert!(
        error.to_string().contains("failed to initialize"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "401 is final, not retried"
    );
    // The client itself is fine to build; only its data source gives up.
    assert!(build_client(&wrong).is_ok());
}
