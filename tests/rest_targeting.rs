//! An admin script's targeting, made through mock-ld's REST API v2, served by the real Rust
//! SDK: individual targets, segment members, a multi-context rule (user role admin and
//! organization plan enterprise), a 60/40 rollout for premium users over 20,000 contexts, a
//! country rule, and finally `replaceRules []` sending everyone but the targets back to the
//! fallthrough.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aiconfig_harness::ld_client::{start_client, SdkOptions};
use aiconfig_harness::split::chi_square;
use launchdarkly_server_sdk::{Client, Context, ContextBuilder, FlagValue, MultiContextBuilder};
use mock_ld::{MockLd, MockLdHandle};
use serde_json::{json, Value};

const CONFIG: &str = "support-assistant";
const PREMIUM_CONTEXTS: usize = 20_000;

/// The REST API as a script calls it: raw token, semantic-patch content type.
struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method.clone(), format!("{}/api/v2{path}", self.base))
            .header("Authorization", "api-default-admin")
            .header(
                "Content-Type",
                "application/json; domain-model=launchdarkly.semanticpatch",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::PATCH, path, body).await
    }

    async fn targeting(&self, instructions: Value) -> Value {
        let path = format!("/projects/default/ai-configs/{CONFIG}/targeting");
        let body = json!({"environmentKey": "test", "comment": "rollout plan", "instructions": instructions});
        self.patch(&path, body).await
    }
}

/// The AI Config with five variations; returns their `_id`s by key.
async fn create_config(rest: &Rest) -> BTreeMap<String, String> {
    rest.post(
        "/projects/default/ai-configs",
        json!({"key": CONFIG, "name": "Support assistant", "mode": "completion"}),
    )
    .await;
    let models = [
        ("standard", "OpenAI.gpt-4o-mini"),
        ("premium-a", "OpenAI.gpt-4o"),
        ("premium-b", "Anthropic.claude-3-5-sonnet"),
        ("enterprise", "OpenAI.o1"),
        ("eu", "Mistral.mistral-large"),
    ];
    let mut ids = BTreeMap::new();
    for (key, model) in models {
        let body = json!({
            "key": key, "name": key, "modelConfigKey": model,
            "model": {"parameters": {"temperature": 0.2}},
            "messages": [{"role": "system", "content": "You help {{ldctx.key}}."}]
        });
        let path = format!("/projects/default/ai-configs/{CONFIG}/variations");
        let created = rest.post(&path, body).await;
        ids.insert(key.to_owned(), created["_id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn create_segment(rest: &Rest) {
    rest.post(
        "/segments/default/test",
        json!({"key": "beta-testers", "name": "Beta testers"}),
    )
    .await;
    rest.patch(
        "/segments/default/test/beta-testers",
        json!({"environmentKey": "test", "instructions": [
            {"kind": "addIncludedTargets", "contextKind": "user", "values": ["beta-1", "beta-2"]}]}),
    )
    .await;
}

/// Targets, then rules in order: segment, multi-context, premium rollout, country.
async fn set_targeting(rest: &Rest, ids: &BTreeMap<String, String>) {
    let premium =
        json!({"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"]});
    rest.targeting(json!([
        {"kind": "updateFallthroughVariationOrRollout", "variationId": ids["standard"]},
        {"kind": "addTargets", "values": ["qa-1", "qa-2"], "variationId": ids["premium-b"]},
        {"kind": "addRule", "description": "beta testers", "variationId": ids["premium-a"],
         "clauses": [{"op": "segmentMatch", "values": ["beta-testers"]}]},
        {"kind": "addRule", "description": "enterprise admins", "variationId": ids["enterprise"],
         "clauses": [{"contextKind": "user", "attribute": "role", "op": "in", "values": ["admin"]},
                     {"contextKind": "organization", "attribute": "plan", "op": "in", "values": ["enterprise"]}]},
        {"kind": "addRule", "description": "premium 60/40", "clauses": [premium],
         "rolloutWeights": {ids["premium-a"].clone(): 60000, ids["premium-b"].clone(): 40000},
         "rolloutContextKind": "user"},
        {"kind": "addRule", "description": "EU", "variationId": ids["eu"],
         "clauses": [{"contextKind": "user", "attribute": "country", "op": "in", "values": ["FR", "DE"]}]},
    ]))
    .await;
}

fn user(key: &str, attributes: &[(&str, &str)]) -> Context {
    let mut builder = ContextBuilder::new(key);
    for (name, value) in attributes {
        builder.set_string(name, *value);
    }
    builder.build().unwrap()
}

fn admin_of(plan: &str) -> Context {
    let org = ContextBuilder::new("org-1")
        .kind("organization")
        .set_string("plan", plan)
        .build()
        .unwrap();
    MultiContextBuilder::new()
        .add_context(user("alice", &[("role", "admin")]))
        .add_context(org)
        .build()
        .unwrap()
}

/// The variation key the SDK serves `context`, read from the AI Config object itself.
fn served(client: &Client, context: &Context) -> String {
    let detail = client.variation_detail(context, CONFIG, FlagValue::Json(json!({})));
    match detail.value {
        Some(FlagValue::Json(value)) => value["_ldMeta"]["variationKey"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        other => panic!("not an AI Config object: {other:?}"),
    }
}

/// Waits until the SDK serves `context` the variation `key`; returns how long it took.
async fn until_served(client: &Client, context: &Context, key: &str) -> Duration {
    let start = Instant::now();
    while served(client, context) != key {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {}",
            served(client, context)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

async fn start() -> (MockLdHandle, Rest) {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    let rest = Rest {
        http: reqwest::Client::new(),
        base: mock.base_url(),
    };
    (mock, rest)
}

fn check_premium_split(client: &Client) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..PREMIUM_CONTEXTS {
        let context = user(&format!("premium-{i}"), &[("tier", "premium")]);
        *counts.entry(served(client, &context)).or_default() += 1;
    }
    let (a, b) = (counts["premium-a"], counts["premium-b"]);
    assert_eq!(
        a + b,
        PREMIUM_CONTEXTS as u64,
        "only the rollout's variations: {counts:?}"
    );
    let fit = chi_square(&[a, b], &[60.0, 40.0]).unwrap();
    println!(
        "REST-configured premium rollout over {PREMIUM_CONTEXTS} contexts: premium-a {a} / premium-b {b}, chi-square {:.3}, p = {:.4}",
        fit.statistic, fit.p_value
    );
    assert!(fit.p_value > 0.001, "60/40 does not fit: {a}/{b}, {fit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_targeting_is_what_the_rust_sdk_serves() {
    let (mock, rest) = start().await;
    let ids = create_config(&rest).await;
    create_segment(&rest).await;
    set_targeting(&rest, &ids).await;

    let options = SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events: None,
    };
    let client = start_client(&options, Duration::from_secs(5))
        .await
        .unwrap();
    let qa = user("qa-1", &[("tier", "premium")]);
    let beta = user("beta-2", &[("country", "FR")]);
    let french = user("u-fr", &[("country", "FR")]);
    let nobody = user("u-plain", &[]);
    assert_eq!(
        served(&client, &qa),
        "premium-b",
        "individual target beats rules"
    );
    assert_eq!(served(&client, &beta), "premium-a", "segment member");
    assert_eq!(served(&client, &admin_of("enterprise")), "enterprise");
    assert_eq!(
        served(&client, &admin_of("free")),
        "standard",
        "both contexts must match"
    );
    assert_eq!(served(&client, &french), "eu", "country rule");
    assert_eq!(served(&client, &nobody), "standard", "fallthrough");
    check_premium_split(&client);

    rest.targeting(json!([{"kind": "replaceRules", "rules": []}]))
        .await;
    let reverted = until_served(
        &client,
        &user("premium-0", &[("tier", "premium")]),
        "standard",
    )
    .await;
    println!("replaceRules [] reached the Rust SDK in {reverted:?}");
    for context in [&beta, &admin_of("enterprise"), &french, &nobody] {
        assert_eq!(served(&client, context), "standard");
    }
    assert_eq!(served(&client, &qa), "premium-b", "targets are not rules");
    tokio::task::spawn_blocking(move || client.close())
        .await
        .unwrap();
}
