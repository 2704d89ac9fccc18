//! mock-ld's byte bounds against the inputs that broke them, each run on the `mock-ld`
//! binary as a child under `prlimit --as=2GiB --cpu=300`: a regression fails the test (the
//! child cannot allocate, or is killed) instead of exhausting the machine. Memory is read
//! from the child's `/proc/PID/status` (`VmHWM`, the peak resident set).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_mock-ld");
const ADMIN: &str = "api-default-admin";
const KEY: &str = "sdk-default-test";
/// The child's address space: 2 GiB.
const ADDRESS_SPACE: u64 = 2 << 30;

/// The binary, running under the limits, killed on drop.
struct Mock {
    child: Child,
    url: String,
    http: Client,
}

impl Mock {
    fn start(flags: &[&str]) -> Self {
        let mut child = Command::new("prlimit")
            .arg(format!("--as={ADDRESS_SPACE}"))
            .args(["--cpu=300", "--", BIN, "--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("prlimit (util-linux) runs mock-ld");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a first line").expect("utf-8");
        // The rest is read so the child never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let url = first
            .strip_prefix("mock-ld listening on ")
            .unwrap_or_else(|| panic!("{first}"))
            .to_owned();
        let http = Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Mock { child, url, http }
    }

    /// The child's peak resident set, in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the child is alive");
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .expect("VmHWM");
        let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
        kb * 1024
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}/api/v2{path}", self.url))
            .header("Authorization", ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Authorization", ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    async fn bulk(&self, body: Vec<u8>, gzipped: bool) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/bulk", self.url))
            .header("Authorization", KEY)
            .header("Content-Type", "application/json");
        if gzipped {
            request = request.header("Content-Encoding", "gzip");
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MIB: u64 = 1 << 20;

/// `addRule` patches to one segment held every before and after in the audit log: 1.7 GB
/// after 1,000, 14.7 GB after 3,000. The log keeps patches now. Each patch costs time in
/// proportion to the segment (the handler rebuilds its JSON), so a debug build does 600
/// in about 40 s, where the old log had passed 600 MB; the release binary's figure for
/// 3,000 (72 MiB) is in the README.
#[tokio::test]
async fn hundreds_of_rules_added_to_one_segment_keep_memory_bounded() {
    const PATCHES: usize = 600;
    const BOUND: u64 = 128 * MIB;
    let mock = Mock::start(&[]);
    let started = Instant::now();
    let (status, body) = mock
        .api(
            reqwest::Method::POST,
            "/segments/default/test",
            json!({"key": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for i in 0..PATCHES {
        let clause = json!({"contextKind": "user", "attribute": "plan", "op": "in",
            "values": [format!("plan-{i}-{}", "x".repeat(300))]});
        let patch = json!({"environmentKey": "test", "comment": format!("rule {i}"),
            "instructions": [{"kind": "addRule", "clauses": [clause]}]});
        let (status, body) = mock
            .api(reqwest::Method::PATCH, "/segments/default/test/beta", patch)
            .await;
        assert_eq!(status, StatusCode::OK, "patch {i}: {body}");
    }
    let peak = mock.peak_rss();
    eprintln!(
        "{PATCHES} addRule patches in {:.1} s; peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak / MIB
    );
    assert!(peak < BOUND, "peak RSS {} MiB", peak / MIB);

    // Every entry is still there, and its before and after are rebuilt exactly.
    let newest = mock.get("/api/v2/auditlog?limit=1").await;
    let newest_date = newest["items"][0]["date"].as_u64().unwrap();
    let entry = &newest["items"][0];
    assert_eq!(entry["comment"], format!("rule {}", PATCHES - 1));
    let older = mock
        .get(&format!(
            "/api/v2/auditlog?limit=1&before={}",
            newest_date - 2_000
        ))
        .await;
    let id = older["items"][0]["_id"].as_str().unwrap();
    let detail = mock.get(&format!("/api/v2/auditlog/{id}")).await;
    let before = detail["delta"]["before"]["rules"].as_array().unwrap().len();
    let after = detail["delta"]["after"]["rules"].as_array().unwrap().len();
    assert_eq!(after, before + 1);
    assert_eq!(detail["comment"], format!("rule {}", after - 1));
}

/// A body that says little and inflates to 4 GiB: concatenated gzip members of 16 MiB of
/// zeros each, the member compressed once, chunk by chunk. About 4 MB on the wire.
fn gzip_bomb() -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; MIB as usize];
    for _ in 0..16 {
        encoder.write_all(&zeros).unwrap();
    }
    let member = encoder.finish().unwrap();
    member.repeat(256)
}

/// A 1.5 MB gzip body that inflated to 1.5 GB was answered 202 after 8.3 s, peaking at
/// 3.4 GB. Decompression now stops past 100 MiB and the post gets 400 (never 413).
#[tokio::test]
async fn a_gzip_bomb_is_refused_without_inflating_it() {
    const BOUND: u64 = 600 * MIB;
    let mock = Mock::start(&[]);
    let bomb = gzip_bomb();
    assert!(bomb.len() < 8 * MIB as usize, "{} bytes", bomb.len());
    for _ in 0..2 {
        let started = Instant::now();
        let (status, body) = mock.bulk(bomb.clone(), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("--max-inflated-bytes"), "{message}");
        eprintln!("bomb refused in {:.1} s", started.elapsed().as_secs_f64());
    }
    // Unannounced gzip is recognised by its magic number and bounded the same way.
    let (status, _) = mock.bulk(bomb, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stats = mock.get("/admin/events/stats").await;
    assert_eq!(stats["rejectedPayloads"], 3);
    let peak = mock.peak_rss();
    eprintln!("peak RSS after three bombs {} MiB", peak / MIB);
    assert!(peak < BOUND, "peak RSS {} MiB", peak / MIB);
}

/// What SDKs send at the top of the range still gets in: 100,000 events, about 50 MB, as
/// is and gzipped. Past the bounds, the intake answers 400 and counts the payload.
#[tokio::test]
async fn large_sdk_payloads_pass_and_larger_ones_get_400_never_413() {
    let mock = Mock::start(&["--max-api-body-bytes", "1MiB"]);
    let event = json!({"kind": "custom", "key": "k", "creationDate": 1,
        "data": {"pad": "x".repeat(450)}, "context": {"kind": "user", "key": "u"}});
    let body = format!("[{}]", vec![event.to_string(); 100_000].join(",")).into_bytes();
    assert!(body.len() > 50_000_000, "{}", body.len());
    let (status, _) = mock.bulk(body.clone(), false).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&body).unwrap();
    let (status, _) = mock.bulk(encoder.finish().unwrap(), true).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let stats = mock.get("/admin/events/stats").await;
    assert_eq!(stats["events"], 200_000);

    let mut over = body;
    over.resize(101 * MIB as usize, b' ');
    let (status, error) = mock.bulk(over, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("--max-event-body-bytes"));
    let stats = mock.get("/admin/events/stats").await;
    assert_eq!(stats["rejectedPayloads"], 1);

    // REST and admin callers get 413 with a {code, message} body.
    let big = json!({"key": "beta", "name": "x".repeat(2 * MIB as usize)});
    let (status, error) = mock
        .api(reqwest::Method::POST, "/segments/default/test", big.clone())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "payload_too_large");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("--max-api-body-bytes"));
    let response = mock
        .http
        .put(format!("{}/admin/environments/test/flags/f", mock.url))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "payload_too_large");
}

/// `/bulk` took a lone surrogate, `1e999` and nesting 200 deep, then `/admin/events`
/// panicked on them until `/admin/reset`. They are stored in a form every reader parses.
#[tokio::test]
async fn odd_events_the_sdks_may_send_are_listed() {
    let mock = Mock::start(&[]);
    let deep = format!("{}\"bottom\"{}", "[".repeat(200), "]".repeat(200));
    // Python's json.dumps writes a lone surrogate as this escape.
    let body = format!(
        r#"[{{"kind":"custom","key":"surrogate","data":{{"s":"a\ud800b"}}}},
            {{"kind":"custom","key":"huge","metricValue":1e999}},
            {{"kind":"custom","key":"deep","data":{deep}}},
            {{"kind":"custom","key":"plain","metricValue":2}}]"#
    );
    let (status, _) = mock.bulk(body.into_bytes(), false).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for _ in 0..2 {
        let listed = mock.get("/admin/events").await;
        assert_eq!(listed["totalCount"], 4);
        let events: Vec<&Value> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| &item["event"])
            .collect();
        assert_eq!(events[0]["data"]["s"], "a\u{fffd}b");
        assert_eq!(events[1]["metricValue"], "1e999");
        assert!(events[2]["data"].is_array());
        assert_eq!(events[3]["metricValue"], 2);
        let by_key = mock.get("/admin/events?key=deep").await;
        assert_eq!(by_key["totalCount"], 1);
    }
    let stats = mock.get("/admin/events/stats").await;
    assert_eq!(stats["byCustomKey"]["huge"], 1);
    assert_eq!(stats["customMetricSums"]["plain"], 2.0);
}

/// A fuzz naming a new custom event key, flag and event kind in every event grew
/// `/admin/events/stats` by a few hundred bytes an event, for ever. Each map now holds at
/// most `--max-stat-keys` keys; the rest is counted in `overflow`, so a reader can tell
/// that a missing key may have arrived. The same bound holds the simulated provider's
/// per-model counts, the rest under `(other)`.
#[tokio::test]
async fn distinct_keys_past_the_bound_are_counted_as_overflow() {
    const KEYS: usize = 100;
    const EVENTS: usize = 20_000;
    let mock = Mock::start(&["--max-stat-keys", &KEYS.to_string()]);
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| match i % 3 {
            0 => json!({"kind": "custom", "key": format!("fuzz-{i}"), "metricValue": 1,
                        "context": {"kind": "user", "key": format!("u{i}")}}),
            1 => json!({"kind": "feature", "key": format!("flag-{i}"), "variation": i % 7,
                        "version": 1, "context": {"kind": "user", "key": format!("u{i}")}}),
            _ => json!({"kind": format!("kind-{i}")}),
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    let (status, _) = mock.bulk(body, false).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let summary = json!([{"kind": "summary", "features": (0..2 * KEYS)
        .map(|i| (format!("flag-{i}"), json!({"counters": [{"variation": 0, "count": 2}]})))
        .collect::<serde_json::Map<_, _>>()}]);
    let (status, _) = mock
        .bulk(serde_json::to_vec(&summary).unwrap(), false)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let stats = mock.get("/admin/events/stats").await;
    let len = |field: &str| stats[field].as_object().unwrap().len();
    assert_eq!(stats["events"], EVENTS as u64 + 1);
    for field in [
        "byKind",
        "byCustomKey",
        "customMetricSums",
        "featureEventVariations",
    ] {
        assert_eq!(len(field), KEYS, "{field}");
    }
    assert_eq!(len("flagVariations"), KEYS);
    let custom = EVENTS.div_ceil(3) as u64;
    let overflow = &stats["overflow"];
    assert_eq!(overflow["customEvents"], custom - KEYS as u64);
    assert_eq!(overflow["customMetricSum"], (custom - KEYS as u64) as f64);
    assert_eq!(
        overflow["featureEvents"],
        custom - KEYS as u64,
        "as many as custom"
    );
    assert_eq!(overflow["flagEvaluations"], 2 * KEYS as u64);
    let counted: u64 = stats["byKind"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        counted + overflow["kinds"].as_u64().unwrap(),
        EVENTS as u64 + 1
    );

    // The simulated provider: three models with room for one.
    let mock = Mock::start(&["--max-stat-keys", "1"]);
    for model in ["a", "b", "c"] {
        let response = mock
            .http
            .put(format!("{}/admin/llm/models/{model}", mock.url))
            .json(&json!({"timeScale": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = mock
            .http
            .post(format!("{}/v1/chat/completions", mock.url))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{model}");
    }
    let stats = mock.get("/admin/llm/stats").await;
    assert_eq!(stats["a"]["requests"], 1);
    assert_eq!(stats["(other)"]["requests"], 2);
    assert_eq!(stats.as_object().unwrap().len(), 2);
}
