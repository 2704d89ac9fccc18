//! Issue 3's speed figures, printed (no timing assertions):
//! 1. propagation: from a targeting PATCH being sent through the REST API to the moment
//!    every one of 50 connected real Rust SDK clients evaluates the new variation,
//!    p50 / p99 / max over 100 changes;
//! 2. PATCH throughput while 1,000 SDK streams are connected (each PATCH is pushed to all
//!    of them before its response).
//!
//! `cargo bench --bench rest_propagation`; `cargo test --benches` runs a tiny version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiconfig_harness::ld_client::{start_client, SdkOptions};
use futures::StreamExt;
use launchdarkly_server_sdk::{Client, ContextBuilder};
use mock_ld::{MockLd, MockLdHandle};
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONFIG: &str = "bench-config";
const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

struct Rest {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> Value {
        let response = self
            .http
            .request(
                method,
                format!("{}/api/v2/projects/default{path}", self.base),
            )
            .header("Authorization", &self.token)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("REST call");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// An AI Config with two variations; returns their `_id`s.
    async fn create_config(&self) -> [String; 2] {
        let post = reqwest::Method::POST;
        self.send(
            post.clone(),
            "/ai-configs",
            "application/json",
            json!({"key": CONFIG, "name": CONFIG}),
        )
        .await;
        for key in ["a", "b"] {
            let body = json!({"key": key, "name": key, "model": {"modelName": "gpt-4o"}, "messages": [{"role": "system", "content": "Hi."}]});
            self.send(
                post.clone(),
                &format!("/ai-configs/{CONFIG}/variations"),
                "application/json",
                body,
            )
            .await;
        }
        let targeting = self
            .send(
                reqwest::Method::GET,
                &format!("/ai-configs/{CONFIG}/targeting"),
                "application/json",
                Value::Null,
            )
            .await;
        let id = |key: &str| {
            let variations = targeting["variations"].as_array().expect("variations");
            let v = variations
                .iter()
                .find(|v| v["key"] == key)
                .expect("variation by key");
            v["_id"].as_str().expect("an _id").to_owned()
        };
        [id("a"), id("b")]
    }

    async fn serve(&self, variation_id: &str) {
        let body = json!({"environmentKey": "test", "instructions": [
            {"kind": "updateFallthroughVariationOrRollout", "variationId": variation_id}]});
        self.send(
            reqwest::Method::PATCH,
            &format!("/ai-configs/{CONFIG}/targeting"),
            SEMANTIC_PATCH,
            body,
        )
        .await;
    }
}

async fn setup() -> (MockLdHandle, Rest, [String; 2]) {
    let mock = MockLd::start(mock_ld::Config::default())
        .await
        .expect("mock-ld starts");
    let rest = Rest {
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        base: mock.base_url(),
        token: mock.config().api_token.clone(),
    };
    let ids = rest.create_config().await;
    rest.serve(&ids[0]).await;
    (mock, rest, ids)
}

fn variation_key(client: &Client) -> Option<String> {
    let context = ContextBuilder::new("probe").build().ok()?;
    let value = client.json_variation(&context, CONFIG, json!({}));
    value["_ldMeta"]["variationKey"].as_str().map(str::to_owned)
}

/// Spins on a blocking thread until every client serves `key`: tokio's timer has
/// millisecond resolution, coarser than what is measured.
fn wait_all(clients: &[Arc<Client>], key: &str, started: Instant) -> Duration {
    let mut pending: Vec<&Arc<Client>> = clients.iter().collect();
    while !pending.is_empty() && started.elapsed() < Duration::from_secs(10) {
        pending.retain(|c| variation_key(c).as_deref() != Some(key));
        std::hint::spin_loop();
    }
    assert!(
        pending.is_empty(),
        "{} clients never saw {key}",
        pending.len()
    );
    started.elapsed()
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

async fn propagation(clients: usize, changes: usize) {
    let (mock, rest, ids) = setup().await;
    let options = SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events: None,
    };
    let starts = (0..clients).map(|_| start_client(&options, Duration::from_secs(10)));
    let clients: Arc<Vec<Arc<Client>>> = Arc::new(
        futures::future::try_join_all(starts)
            .await
            .expect("clients start")
            .into_iter()
            .map(Arc::new)
            .collect(),
    );
    let mut samples = Vec::with_capacity(changes);
    for change in 0..changes {
        let (id, key) = if change % 2 == 0 {
            (&ids[1], "b")
        } else {
            (&ids[0], "a")
        };
        let started = Instant::now();
        rest.serve(id).await;
        let all = clients.clone();
        samples.push(
            tokio::task::spawn_blocking(move || wait_all(&all, key, started))
                .await
                .expect("waiter"),
        );
    }
    samples.sort();
    println!(
        "propagation: REST PATCH to all {} Rust SDK clients serving it, over {changes} changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        clients.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0)
    );
    let clients = Arc::try_unwrap(clients).unwrap_or_default();
    tokio::task::spawn_blocking(move || clients.iter().for_each(|c| c.close()))
        .await
        .ok();
    mock.shutdown().await;
}

/// Opens `count` raw `/all` streams that read and discard everything they are sent.
async fn open_streams(mock: &MockLdHandle, count: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut readers = Vec::with_capacity(count);
    for _ in 0..count {
        let response = http
            .get(format!("{}/all", mock.base_url()))
            .header("Authorization", &mock.config().sdk_key)
            .send()
            .await
            .expect("stream opens");
        let mut body = response.bytes_stream();
        readers.push(tokio::spawn(
            async move { while body.next().await.is_some() {} },
        ));
    }
    readers
}

async fn throughput(streams: usize, seconds: u64) {
    let (mock, rest, ids) = setup().await;
    let readers = open_streams(&mock, streams).await;
    let env = mock
        .store()
        .environment("default", "test")
        .expect("test env");
    let started = Instant::now();
    let mut patches = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        rest.serve(&ids[(patches % 2) as usize]).await;
        patches += 1;
    }
    let rate = patches as f64 / started.elapsed().as_secs_f64();
    println!("throughput: {patches} targeting PATCHes in {seconds} s with {} streams connected: {rate:.0} PATCH/s, one at a time", env.stream_count());
    readers.iter().for_each(|r| r.abort());
    mock.shutdown().await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and only checks that
    // the bench works.
    let full = std::env::args().any(|a| a == "--bench");
    if full {
        propagation(50, 100).await;
        throughput(1_000, 5).await;
    } else {
        propagation(3, 4).await;
        throughput(10, 1).await;
    }
}
