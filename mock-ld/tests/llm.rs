//! The simulated LLM provider over real HTTP on 127.0.0.1:0: what an OpenAI client sees.
//! Timing checks are lower bounds and orderings only, never upper bounds that could flake.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mock_ld::llm::{Dist, Profile, PLAN_LATENCY_HEADER, PLAN_TTFT_HEADER, TIME_SCALE_HEADER};
use mock_ld::{Config, MockLd, MockLdHandle};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn start() -> MockLdHandle {
    MockLd::start(Config::default())
        .await
        .expect("mock-ld starts")
}

/// A profile without randomness: every draw is the median.
fn fixed(latency_ms: f64, ttft_ms: f64, output_tokens: f64) -> Profile {
    Profile {
        latency_ms: Dist::new(latency_ms, latency_ms),
        ttft_ms: Dist::new(ttft_ms, ttft_ms),
        output_tokens: Dist::new(output_tokens, output_tokens),
        ..Profile::default()
    }
}

/// 8 + 12 characters: 2 + 3 prompt tokens.
fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello world!"},
        ],
        "temperature": 0.7,
        "user": "user-1",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn post(mock: &MockLdHandle, body: &Value) -> reqwest::Response {
    Client::new()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("sk-anything")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Every SSE frame of a response, each with the time its bytes arrived.
async fn frames(response: reqwest::Response) -> Vec<(Instant, String)> {
    let mut body = response.bytes_stream();
    let (mut frames, mut buffer) = (Vec::new(), String::new());
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("a chunk within 10 s")
    {
        let arrived = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            frames.push((arrived, buffer[..end].to_owned()));
            buffer.drain(..end + 2);
        }
    }
    assert_eq!(buffer, "", "the stream ends on a frame boundary");
    frames
}

fn data(frame: &str) -> Value {
    serde_json::from_str(frame.strip_prefix("data: ").expect(frame)).unwrap()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_completion_has_every_field_openai_documents() {
    let mock = start().await;
    mock.llm().set_profile("gpt-4o", fixed(20.0, 5.0, 12.0));
    let started = Instant::now();
    let response = post(&mock, &chat("gpt-4o", json!({}))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(20));

    assert_eq!(
        keys(&body),
        [
            "choices",
            "created",
            "id",
            "model",
            "object",
            "service_tier",
            "system_fingerprint",
            "usage"
        ]
    );
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert!(body["system_fingerprint"].is_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(body["created"].as_u64().unwrap().abs_diff(now) <= 5);

    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    let choice = &choices[0];
    assert_eq!(
        keys(choice),
        ["finish_reason", "index", "logprobs", "message"]
    );
    assert_eq!(
        (&choice["index"], &choice["finish_reason"]),
        (&json!(0), &json!("stop"))
    );
    assert!(choice["logprobs"].is_null());
    let message = &choice["message"];
    assert_eq!(keys(message), ["annotations", "content", "refusal", "role"]);
    assert_eq!(message["role"], "assistant");
    assert!(message["refusal"].is_null());
    let content = message["content"].as_str().unwrap();
    assert_eq!(
        content.split(' ').count(),
        12,
        "one word per token: {content}"
    );

    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 5);
    assert_eq!(usage["completion_tokens"], 12);
    assert_eq!(usage["total_tokens"], 17);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn a_stream_sends_the_first_token_after_ttft_and_the_rest_until_done() {
    let mock = start().await;
    mock.llm()
        .set_profile("gpt-stream", fixed(150.0, 30.0, 20.0));
    let started = Instant::now();
    let body = chat(
        "gpt-stream",
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let response = post(&mock, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let frames = frames(response).await;

    let (done_at, done) = frames.last().unwrap();
    assert_eq!(done, "data: [DONE]");
    let chunks: Vec<(Instant, Value)> = frames[..frames.len() - 1]
        .iter()
        .map(|(at, frame)| (*at, data(frame)))
        .collect();
    let (first_at, first) = &chunks[0];
    assert!(
        *first_at - started >= Duration::from_millis(30),
        "not before the TTFT"
    );
    assert!(first_at < done_at, "the first token arrives before the end");
    assert!(
        *done_at - started >= Duration::from_millis(150),
        "not before the latency"
    );
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");

    let id = &first["id"];
    for (_, chunk) in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!((&chunk["id"], &chunk["model"]), (id, &json!("gpt-stream")));
        assert!(chunk["created"].is_u64() && chunk["system_fingerprint"].is_string());
    }
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    let (finish, content) = rest.split_last().unwrap();
    assert!(content.len() >= 2, "tokens come in several chunks");
    let text: String = content
        .iter()
        .map(|(_, c)| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text.split(' ').count(), 20);
    for (_, chunk) in rest {
        assert!(chunk["usage"].is_null() && chunk.get("usage").is_some());
        assert!(chunk["choices"][0]["logprobs"].is_null());
    }
    assert!(content
        .iter()
        .all(|(_, c)| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(finish.1["choices"][0]["delta"], json!({}));
    assert_eq!(finish.1["choices"][0]["finish_reason"], "stop");

    assert_eq!(usage_chunk.1["choices"], json!([]));
    let usage = &usage_chunk.1["usage"];
    assert_eq!(
        (&usage["prompt_tokens"], &usage["completion_tokens"]),
        (&json!(5), &json!(20))
    );
    assert_eq!(usage["total_tokens"], 25);
}

#[tokio::test]
async fn a_stream_without_include_usage_has_no_usage_field() {
    let mock = start().await;
    mock.llm().set_profile("m", fixed(10.0, 2.0, 3.0));
    let frames = frames(post(&mock, &chat("m", json!({"stream": true}))).await).await;
    assert_eq!(frames.last().unwrap().1, "data: [DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, f)| data(f))
        .collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn max_tokens_cuts_the_output_with_finish_reason_length() {
    let mock = start().await;
    mock.llm().set_profile("m", fixed(5.0, 1.0, 50.0));
    let body: Value = post(&mock, &chat("m", json!({"max_completion_tokens": 7})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 7);
}

#[tokio::test]
async fn injected_errors_have_openais_shape_and_the_profiles_status() {
    let mock = start().await;
    let limited = Profile {
        error_rate: 1.0,
        error_status: 429,
        ..fixed(100.0, 10.0, 5.0)
    };
    mock.llm().set_profile("limited", limited);
    mock.llm().set_profile(
        "broken",
        Profile {
            error_rate: 1.0,
            ..fixed(10.0, 1.0, 5.0)
        },
    );

    let started = Instant::now();
    let response = post(&mock, &chat("limited", json!({"stream": true}))).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        started.elapsed() >= Duration::from_millis(20),
        "a fifth of the latency"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(keys(&body), ["error"]);
    assert_eq!(keys(&body["error"]), ["code", "message", "param", "type"]);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["param"].is_null());

    let response = post(&mock, &chat("broken", json!({}))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"]["message"].is_string() && body["error"]["code"].is_null());
}

#[tokio::test]
async fn a_bad_request_gets_openais_400() {
    let mock = start().await;
    let response = post(&mock, &json!({"model": "m", "messages": "hi"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "messages");
}

#[tokio::test]
async fn stats_count_what_was_served_and_reset_clears_them() {
    let mock = start().await;
    mock.llm().set_profile("a", fixed(5.0, 1.0, 4.0));
    mock.llm().set_profile(
        "b",
        Profile {
            error_rate: 1.0,
            ..fixed(5.0, 1.0, 4.0)
        },
    );
    let mut completion_tokens = 0;
    for stream in [false, false, true] {
        let response = post(
            &mock,
            &chat(
                "a",
                json!({"stream": stream, "stream_options": {"include_usage": true}}),
            ),
        )
        .await;
        let usage = if stream {
            let frames = frames(response).await;
            data(&frames[frames.len() - 2].1)["usage"].clone()
        } else {
            response.json::<Value>().await.unwrap()["usage"].clone()
        };
        completion_tokens += usage["completion_tokens"].as_u64().unwrap();
    }
    post(&mock, &chat("b", json!({}))).await;

    let http = Client::new();
    let stats_url = format!("{}/admin/llm/stats", mock.base_url());
    let stats: Value = http
        .get(&stats_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({
            "a": {"requests": 3, "errors": 0, "streamed": 1, "promptTokens": 15, "completionTokens": completion_tokens},
            "b": {"requests": 1, "errors": 1, "streamed": 0, "promptTokens": 0, "completionTokens": 0},
        })
    );
    let reset = http
        .post(format!("{}/admin/reset", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let stats: Value = http
        .get(&stats_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({}));
}

#[tokio::test]
async fn profiles_are_set_over_http_and_bad_ones_name_the_field() {
    let mock = start().await;
    let http = Client::new();
    let url = format!("{}/admin/llm/models/meta-llama/Llama-3-8B", mock.base_url());
    let profile =
        json!({"latencyMs": {"median": 5, "p99": 9}, "errorRate": 0.25, "timeScale": 0.5});
    let response = http.put(&url).json(&profile).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let models: Value = http
        .get(format!("{}/admin/llm/models", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys(&models), ["default", "meta-llama/Llama-3-8B"]);
    let stored = &models["meta-llama/Llama-3-8B"];
    assert_eq!(
        (&stored["latencyMs"]["p99"], &stored["errorRate"]),
        (&json!(9.0), &json!(0.25))
    );
    assert_eq!(
        stored["errorStatus"], 500,
        "missing fields take their defaults"
    );

    let bad = json!({"ttftMs": {"median": 50, "p99": 10}});
    let response = http.put(&url).json(&bad).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = response.json::<Value>().await.unwrap()["message"].to_string();
    assert!(
        message.contains("field `ttftMs`") && message.contains("p99 (10)"),
        "{message}"
    );
}

#[tokio::test]
async fn the_same_seed_gives_the_same_answer() {
    let mock = start().await;
    mock.llm().set_profile(
        "m",
        Profile {
            time_scale: 0.0,
            ..Profile::default()
        },
    );
    let http = Client::new();
    let usage = |seed: &'static str| {
        let request = http
            .post(format!("{}/v1/chat/completions", mock.base_url()))
            .header("X-Mock-Seed", seed)
            .json(&chat("m", json!({})));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["usage"].clone() }
    };
    assert_eq!(usage("42").await, usage("42").await);
    let seeded: Value = post(&mock, &chat("m", json!({"seed": 42})))
        .await
        .json()
        .await
        .unwrap();
    let again: Value = post(&mock, &chat("m", json!({"seed": 42})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seeded["usage"], again["usage"]);
    assert_ne!(seeded["id"], again["id"], "ids stay unique");
}

/// The plan a response's headers tell, as strings: latency, time to first token, scale.
fn plan_headers(response: &reqwest::Response) -> [Option<String>; 3] {
    [PLAN_LATENCY_HEADER, PLAN_TTFT_HEADER, TIME_SCALE_HEADER].map(|name| {
        let value = response.headers().get(name)?;
        Some(value.to_str().unwrap().to_owned())
    })
}

/// Posts `body` with `X-Mock-Seed: seed`, reads the whole answer, and returns its status
/// and plan headers.
async fn seeded(mock: &MockLdHandle, seed: u64, body: &Value) -> (u16, [Option<String>; 3]) {
    let response = Client::new()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .header("X-Mock-Seed", seed)
        .json(body)
        .send()
        .await
        .unwrap();
    let answer = (response.status().as_u16(), plan_headers(&response));
    response.bytes().await.unwrap();
    answer
}

#[tokio::test]
async fn responses_tell_their_plan_and_every_answer_counts_its_lateness() {
    let mock = start().await;
    let scale = 0.05;
    let fixed_scaled = Profile {
        time_scale: scale,
        ..fixed(100.0, 40.0, 5.0)
    };
    mock.llm().set_profile("fixed", fixed_scaled);
    let random = Profile {
        time_scale: scale,
        error_rate: 0.3,
        ..Profile::default()
    };
    mock.llm().set_profile("random", random);
    let streamed = json!({"stream": true});

    // A fixed profile's plan is its median times the scale, to the microsecond.
    let whole = seeded(&mock, 1, &chat("fixed", json!({}))).await;
    assert_eq!(
        whole,
        (200, [Some("5.000".into()), None, Some("0.05".into())])
    );
    let stream = seeded(&mock, 1, &chat("fixed", streamed.clone())).await;
    let told = [
        Some("5.000".into()),
        Some("2.000".into()),
        Some("0.05".into()),
    ];
    assert_eq!(stream, (200, told));

    // A random profile: the same seed tells the same plan, whatever the order.
    let mut answers = Vec::new();
    for seed in 0..12 {
        let body = chat(
            "random",
            if seed % 2 == 0 {
                streamed.clone()
            } else {
                json!({})
            },
        );
        answers.push(seeded(&mock, seed, &body).await);
    }
    for seed in (0..12).rev() {
        let body = chat(
            "random",
            if seed % 2 == 0 {
                streamed.clone()
            } else {
                json!({})
            },
        );
        assert_eq!(seeded(&mock, seed, &body).await, answers[seed as usize]);
    }
    let failed = answers.iter().filter(|(status, _)| *status == 500).count();
    assert!(
        failed > 0 && failed < 12,
        "some errors, some replies: {failed}"
    );
    for (seed, (status, [latency, ttft, time_scale])) in answers.iter().enumerate() {
        assert!(latency.as_deref().unwrap().parse::<f64>().unwrap() > 0.0);
        let streamed_reply = *status == 200 && seed % 2 == 0;
        assert_eq!(ttft.is_some(), streamed_reply, "a streamed reply's only");
        assert_eq!(time_scale.as_deref(), Some("0.05"));
    }
    let latencies: std::collections::BTreeSet<_> = answers.iter().map(|a| &a.1[0]).collect();
    assert!(
        latencies.len() > 6,
        "seeds draw different plans: {latencies:?}"
    );

    // Every answer, whole, streamed or failed, counted its first token and last chunk.
    let http = Client::new();
    let url = format!("{}/admin/llm/lateness", mock.base_url());
    let lateness: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(keys(&lateness), ["firstToken", "lastChunk"]);
    for mark in ["firstToken", "lastChunk"] {
        assert_eq!(lateness[mark]["count"], 26, "{mark}: {lateness}");
        assert!(lateness[mark]["p99Ms"].as_f64().unwrap() >= 0.0);
        assert!(!lateness[mark]["hdr"].as_str().unwrap().is_empty());
    }
    http.post(format!("{}/admin/reset", mock.base_url()))
        .send()
        .await
        .unwrap();
    let lateness: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(lateness["firstToken"]["count"], 0);
}

/// Sleeping must not hold a thread: 1,000 concurrent 200 ms completions on two worker
/// threads would take 100 s if it did.
#[tokio::test]
async fn concurrent_completions_wait_side_by_side() {
    let mock = start().await;
    mock.llm().set_profile("m", fixed(200.0, 50.0, 5.0));
    let http = Client::new();
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let started = Instant::now();
    let requests = (0..1000).map(|_| {
        let request = http.post(&url).json(&chat("m", json!({})));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_is_not_held_by_a_slow_completion() {
    let mock = start().await;
    mock.llm()
        .set_profile("slow", fixed(60_000.0, 30_000.0, 5.0));
    let base = mock.base_url();
    let pending = tokio::spawn(async move {
        Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .json(&chat("slow", json!({"stream": true})))
            .send()
            .await
    });
    while mock.llm().stats().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), mock.shutdown())
        .await
        .expect("shutdown does not wait out the simulated latency");
    drop(pending);
}

#[tokio::test]
async fn the_binary_loads_a_profiles_file_and_prints_the_provider_url() {
    let dir = std::env::temp_dir().join(format!("mock-ld-llm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("profiles.yaml");
    std::fs::write(&file, "gpt-4o:\n  latencyMs: {median: 900, p99: 3000}\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-ld"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--llm-seed",
            "7",
            "--llm-profiles",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .map(Result::unwrap)
        .find(|l| l.starts_with("  LLM provider: "))
        .expect("the LLM provider line");
    let url = line
        .strip_prefix("  LLM provider: ")
        .and_then(|l| l.strip_suffix("/v1 (OpenAI-compatible)"))
        .expect(&line)
        .to_owned();
    let models: Value = Client::new()
        .get(format!("{url}/admin/llm/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(models["gpt-4o"]["latencyMs"]["median"], 900.0);

    std::fs::write(
        &file,
        "gpt-4o:\n  latencyMs: {median: 900, p99: 3000}\n  errorRate: 2\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mock-ld"))
        .args(["--listen", "127.0.0.1:0", "--llm-profiles"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3:14: ", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("field `gpt-4o.errorRate`"), "{stderr}");
}
