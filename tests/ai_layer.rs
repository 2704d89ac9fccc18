//! The AI Config layer (`aiconfig_harness::ai`) with the real Rust SDK against in-process
//! mock-ld: the configs it reads, the prompts it renders, and the events mock-ld receives
//! (usage, `sdk:info`, tracker events with Python 1.2.0's `data` and at-most-once rules,
//! summary counters with Python's defaults).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiconfig_harness::ai::{
    AiAgentConfigDefault, AiClient, AiCompletionConfigDefault, AiError, FeedbackKind, LdMessage,
    ModelConfig, ProviderConfig, TokenUsage, Variables, AI_SDK_VERSION,
};
use aiconfig_harness::ld_client::{start_client, EventOptions, SdkOptions};
use launchdarkly_server_sdk::{Client, Context, ContextBuilder};
use mock_ld::events::log::Filter;
use mock_ld::model::Flag;
use mock_ld::{MockLd, MockLdHandle};
use serde_json::{json, Value};

const COMPLETION: &str = "support-assistant";
const AGENT: &str = "research-agent";
const JUDGED: &str = "judged-assistant";
const JUDGE: &str = "relevance-judge";
const BROKEN: &str = "broken";
const BAD_TEMPLATE: &str = "bad-template";

fn flag(key: &str, variation: Value) -> Flag {
    serde_json::from_value(json!({
        "key": key, "on": true, "salt": key, "variations": [variation],
        "fallthrough": {"variation": 0}, "offVariation": 0
    }))
    .unwrap()
}

fn completion_variation(content: &str) -> Value {
    json!({
        "_ldMeta": {"enabled": true, "variationKey": "premium-a", "version": 3, "mode": "completion"},
        "model": {"name": "gpt-4o", "parameters": {"temperature": 0.2, "maxTokens": 256}},
        "provider": {"name": "openai"},
        "messages": [
            {"role": "system", "content": content},
            {"role": "user", "content": "{{question}}"}
        ]
    })
}

fn agent_variation() -> Value {
    json!({
        "_ldMeta": {"enabled": true, "variationKey": "agent-v1", "version": 2, "mode": "agent"},
        "instructions": "Research {{topic}} for {{ldctx.name}}.",
        "tools": {"web-search": {"description": "Searches the web", "type": "function"}}
    })
}

struct Setup {
    mock: MockLdHandle,
    client: Arc<Client>,
    ai: AiClient,
}

async fn setup() -> Setup {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    let env = mock.store().environment("default", "test").unwrap();
    let prompt = "You help {{ldctx.key}} ({{ldctx.tier}}) with <{{product}}>.";
    env.upsert_flag(flag(COMPLETION, completion_variation(prompt)));
    env.upsert_flag(flag(AGENT, agent_variation()));
    let mut judged = completion_variation("Answer.");
    judged["judgeConfiguration"] = json!({"judges": [{"key": JUDGE, "samplingRate": 0.5}]});
    env.upsert_flag(flag(JUDGED, judged));
    // Variations Python's AI SDK raises on: no `model.name`, an unclosed section.
    let no_model_name = json!({"_ldMeta": {"enabled": true}, "model": {"parameters": {}}});
    env.upsert_flag(flag(BROKEN, no_model_name));
    env.upsert_flag(flag(
        BAD_TEMPLATE,
        completion_variation("{{#open}} never closed"),
    ));
    let options = SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events: Some(EventOptions::default()),
    };
    let client = Arc::new(
        start_client(&options, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let ai = AiClient::new(client.clone());
    Setup { mock, client, ai }
}

fn user(key: &str) -> Context {
    ContextBuilder::new(key)
        .set_string("tier", "premium")
        .name("Ada")
        .build()
        .unwrap()
}

fn vars(value: Value) -> Variables {
    value.as_object().unwrap().clone()
}

/// Flushes, then waits until mock-ld holds `count` custom events; returns them all.
async fn custom_events(setup: &Setup, count: usize) -> Vec<Value> {
    setup.client.flush();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = events_of(&setup.mock, "custom");
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn events_of(mock: &MockLdHandle, kind: &str) -> Vec<Value> {
    let filter = Filter {
        kind: Some(kind.into()),
        ..Filter::default()
    };
    let listed: Value =
        serde_json::from_slice(&mock.events().query_json(&filter).unwrap()).unwrap();
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].clone())
        .collect()
}

fn with_key<'a>(events: &'a [Value], key: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["key"] == key).collect()
}

async fn close(setup: Setup) {
    let client = setup.client.clone();
    drop(setup.ai);
    tokio::task::spawn_blocking(move || client.close())
        .await
        .unwrap();
    setup.mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_config_reads_the_variation_and_renders_its_prompts_like_python() {
    let setup = setup().await;
    let variables = vars(json!({"product": "R&D \"Pro\"", "question": "Why? {{not a tag}}"}));
    let (config, _) = setup
        .ai
        .completion_config(
            COMPLETION,
            &user("u-1"),
            &AiCompletionConfigDefault::default(),
            Some(&variables),
        )
        .unwrap();
    assert!(config.enabled);
    assert_eq!(&*config.key, COMPLETION);
    let model = config.model.as_deref().unwrap();
    assert_eq!(model.name, "gpt-4o");
    assert_eq!(
        model.parameters,
        Some(json!({"temperature": 0.2, "maxTokens": 256}))
    );
    assert_eq!(config.provider.as_deref().unwrap().name, "openai");
    assert_eq!(
        config.messages.as_deref().unwrap(),
        [
            // chevron escapes `& < > "` in `{{...}}` and leaves a variable's own braces alone.
            LdMessage::new(
                "system",
                "You help u-1 (premium) with <R&amp;D &quot;Pro&quot;>."
            ),
            LdMessage::new("user", "Why? {{not a tag}}"),
        ]
    );
    assert!(config.tools.is_none() && config.judge_configuration.is_none());
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_info_and_usage_events_are_python_s_with_this_layer_s_identity() {
    let setup = setup().await;
    let default = AiCompletionConfigDefault::default();
    setup
        .ai
        .completion_config(COMPLETION, &user("u-1"), &default, None)
        .unwrap();
    let agent_default = AiAgentConfigDefault::default();
    setup
        .ai
        .agent_config(AGENT, &user("u-2"), &agent_default, None)
        .unwrap();
    let events = custom_events(&setup, 3).await;

    let info = with_key(&events, "$ld:ai:sdk:info");
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0]["context"],
        json!({"kind": "ld_ai", "key": "ld-internal-tracking", "anonymous": true})
    );
    assert_eq!(
        info[0]["data"],
        json!({"aiSdkName": "aiconfig-harness", "aiSdkVersion": AI_SDK_VERSION, "aiSdkLanguage": "rust"})
    );
    assert_eq!(info[0]["metricValue"], 1.0);
    for (usage, key, user) in [
        ("$ld:ai:usage:completion-config", COMPLETION, "u-1"),
        ("$ld:ai:usage:agent-config", AGENT, "u-2"),
    ] {
        let usage = with_key(&events, usage);
        assert_eq!(usage.len(), 1);
        assert_eq!(
            usage[0]["data"], key,
            "data is the config key as a JSON string"
        );
        assert_eq!(usage[0]["metricValue"], 1.0);
        assert_eq!(usage[0]["context"]["key"], user);
    }
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_events_carry_python_1_2_data_and_at_most_once_rules() {
    let setup = setup().await;
    let (_, tracker) = setup
        .ai
        .completion_config(
            COMPLETION,
            &user("u-1"),
            &AiCompletionConfigDefault::default(),
            None,
        )
        .unwrap();
    assert!(tracker.track_duration(812));
    assert!(!tracker.track_duration(900), "duration once");
    assert!(tracker.track_time_to_first_token(95));
    assert!(tracker.track_tokens(TokenUsage {
        total: 420,
        input: 300,
        output: 0
    }));
    assert!(
        !tracker.track_tokens(TokenUsage {
            total: 1,
            input: 1,
            output: 1
        }),
        "tokens once"
    );
    assert!(tracker.track_success());
    assert!(!tracker.track_error(), "success and error share one slot");
    assert!(tracker.track_feedback(FeedbackKind::Negative));
    assert!(
        !tracker.track_feedback(FeedbackKind::Positive),
        "feedback once"
    );
    assert!(tracker.track_tool_call("web-search") && tracker.track_tool_call("web-search"));
    let second = tracker.new_run();
    assert!(second.track_error(), "a new run starts afresh");
    assert_ne!(second.run_id(), tracker.run_id());

    // sdk:info + usage + duration, ttf, tokens total and input (output 0 is not sent),
    // success, negative feedback, two tool calls, the second run's error.
    let events = custom_events(&setup, 11).await;
    let tracked: Vec<&Value> = events
        .iter()
        .filter(|e| !e["data"]["runId"].is_null())
        .collect();
    let keys: Vec<&str> = tracked.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "$ld:ai:duration:total",
            "$ld:ai:tokens:ttf",
            "$ld:ai:tokens:total",
            "$ld:ai:tokens:input",
            "$ld:ai:generation:success",
            "$ld:ai:feedback:user:negative",
            "$ld:ai:tool_call",
            "$ld:ai:tool_call",
            "$ld:ai:generation:error",
        ]
    );
    let values: Vec<f64> = tracked
        .iter()
        .map(|e| e["metricValue"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [812.0, 95.0, 420.0, 300.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let run = tracker.run_id().to_string();
    let expected = json!({"runId": run, "configKey": COMPLETION, "version": 3,
        "modelName": "gpt-4o", "providerName": "openai", "variationKey": "premium-a"});
    assert_eq!(tracked[0]["data"], expected);
    assert_eq!(tracked[6]["data"]["toolKey"], "web-search");
    assert_eq!(tracked[8]["data"]["runId"], second.run_id().to_string());
    assert!(tracked.iter().all(|e| e["context"]["key"] == "u-1"));
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_flag_serves_the_default_converted_like_python() {
    let setup = setup().await;
    let (config, tracker) = setup
        .ai
        .completion_config(
            "no-such-config",
            &user("u-x"),
            &AiCompletionConfigDefault::default(),
            None,
        )
        .unwrap();
    assert!(!config.enabled && config.model.is_none() && config.messages.is_none());
    tracker.track_error();
    let custom = custom_events(&setup, 3).await;
    let error = with_key(&custom, "$ld:ai:generation:error");
    let data = &error[0]["data"];
    assert_eq!(
        *data,
        json!({"runId": data["runId"], "configKey": "no-such-config", "version": 1, "modelName": "", "providerName": ""}),
        "no variationKey when it is empty"
    );
    let summary = &events_of(&setup.mock, "summary")[0]["features"]["no-such-config"];
    assert_eq!(
        summary["default"],
        json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null, "messages": null})
    );
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_config_interpolates_instructions_and_falls_back_to_the_default() {
    let setup = setup().await;
    let default = AiAgentConfigDefault {
        enabled: false,
        model: Some(ModelConfig::new("fallback-model")),
        provider: Some(ProviderConfig {
            name: "fallback-provider".into(),
        }),
        instructions: Some("Unused {{topic}}".into()),
        ..AiAgentConfigDefault::default()
    };
    let variables = vars(json!({"topic": "tides"}));
    let (agent, tracker) = setup
        .ai
        .agent_config(AGENT, &user("u-3"), &default, Some(&variables))
        .unwrap();
    assert!(agent.enabled);
    assert_eq!(
        agent.instructions.as_deref(),
        Some("Research tides for Ada.")
    );
    assert_eq!(
        agent.model.as_deref().unwrap().name,
        "fallback-model",
        "no model served: the default's"
    );
    assert_eq!(agent.provider.as_deref().unwrap().name, "fallback-provider");
    let tools = agent.tools.as_deref().unwrap();
    assert_eq!(
        tools["web-search"].description,
        Some(json!("Searches the web"))
    );
    tracker.track_success();
    let events = custom_events(&setup, 3).await;
    let data = &with_key(&events, "$ld:ai:generation:success")[0]["data"];
    assert_eq!(
        (&data["modelName"], &data["providerName"], &data["version"]),
        (&json!(""), &json!(""), &json!(2)),
        "the tracker reports what was served, as Python's does"
    );

    let (missing, _) = setup
        .ai
        .agent_config("no-such-agent", &user("u-3"), &default, Some(&variables))
        .unwrap();
    assert_eq!(
        missing.instructions.as_deref(),
        Some("Unused tides"),
        "a missing flag serves the default, interpolated"
    );
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_are_evaluated_as_python_evaluates_them() {
    let setup = setup().await;
    let (config, _) = setup
        .ai
        .completion_config(
            JUDGED,
            &user("u-4"),
            &AiCompletionConfigDefault::default(),
            None,
        )
        .unwrap();
    assert_eq!(
        config.judge_configuration.as_deref().unwrap().judges[0].key,
        JUDGE
    );
    custom_events(&setup, 2).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let judge = loop {
        let summaries = events_of(&setup.mock, "summary");
        let judge = summaries
            .iter()
            .find_map(|s| s["features"].get(JUDGE).cloned());
        if judge.is_some() || Instant::now() > deadline {
            break judge.expect("the judge flag was evaluated");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        judge["default"],
        json!({"_ldMeta": {"enabled": false}, "model": null, "provider": null, "messages": null, "evaluationMetricKey": null})
    );
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_prompt_is_served_even_with_the_same_version() {
    let setup = setup().await;
    let default = AiCompletionConfigDefault::default();
    let first = setup
        .ai
        .completion_config(COMPLETION, &user("u-5"), &default, None)
        .unwrap()
        .0;
    assert!(first.messages.as_deref().unwrap()[0]
        .content
        .starts_with("You help u-5"));
    let env = setup.mock.store().environment("default", "test").unwrap();
    env.upsert_flag(flag(
        COMPLETION,
        completion_variation("Edited for {{ldctx.key}}."),
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (config, _) = setup
            .ai
            .completion_config(COMPLETION, &user("u-5"), &default, None)
            .unwrap();
        if &*config.messages.as_deref().unwrap()[0].content == "Edited for u-5." {
            break;
        }
        assert!(Instant::now() < deadline, "the edit never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    close(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variation_python_cannot_read_is_an_error_after_the_usage_event() {
    let setup = setup().await;
    let default = AiCompletionConfigDefault::default();
    let error = setup
        .ai
        .completion_config(BROKEN, &user("u-6"), &default, None)
        .unwrap_err();
    assert!(
        matches!(&error, AiError::Variation { key, .. } if key == BROKEN),
        "{error}"
    );
    assert!(
        error.to_string().contains("`model` has no `name`"),
        "{error}"
    );
    let error = setup
        .ai
        .completion_config(BAD_TEMPLATE, &user("u-6"), &default, None)
        .unwrap_err();
    assert!(matches!(error, AiError::Template { .. }), "{error}");
    let events = custom_events(&setup, 3).await;
    assert_eq!(with_key(&events, "$ld:ai:usage:completion-config").len(), 2);
    close(setup).await;
}
