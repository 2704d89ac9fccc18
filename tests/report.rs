//! The reports of a real run (embedded mock-ld, the real Rust SDK, a 60/40 rollout, a timed
//! change, a start-up fault, every kind of check): results.json against `docs/results.schema.json`, and
//! `report.html` opened in headless Chromium with its charts.
//!
//! Chromium is Debian's `chromium` (`scripts/install-test-deps` installs it). Without it the
//! browser test skips with a message, except under CI (`CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiconfig_harness::report;
use aiconfig_harness::results;
use aiconfig_harness::runner::{self, RunOptions, Target};
use aiconfig_harness::scenario;

const SCENARIO: &str = r#"
name = "report-test <&>"
description = "A 60/40 rollout, a timed change and every check; the name needs escaping"
seed = 3

[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "large"
model = { name = "gpt-4o" }
messages = [{ role = "system", content = "You help." }]
[[ai_configs.variations]]
key = "small"
model = { name = "gpt-4o-mini" }
messages = [{ role = "system", content = "You help briefly." }]
[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
rollout = { large = 60, small = 40 }

[population]
count = 1200

[load]
concurrency = 32
sdk_clients = 2

[llm]
time_scale = 0.02

[llm.models.gpt-4o]
latency = { median = "1s", p99 = "3s" }
ttft = { median = "250ms", p99 = "800ms" }
error_rate = 0.01
[llm.models.gpt-4o-mini]
latency = { median = "500ms", p99 = "1.5s" }
ttft = { median = "120ms", p99 = "400ms" }

[[actions]]
at = "300ms"
config = "assistant"
description = "everyone on small"
targeting = [{ kind = "updateFallthroughVariationOrRollout", variation = "small" }]

# A start-up fault (on before the SDK clients start): every SDK endpoint 100 ms slow, so
# the clients initialize late but within the wait; the Resilience section and the
# timeline's shaded band show it.
[[faults]]
at = "0s"
duration = "1s"
kind = "sdkSlow"
latency = "100ms"

[[checks]]
kind = "rollout_split"
[[checks]]
kind = "events_complete"
[[checks]]
kind = "threshold"
metric = "llm.p99"
max = "10s"

# This test judges check logic; whether the harness kept up is tests/starvation.rs's.
[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0
"#;

/// Runs the scenario and writes results.json and the reports into a fresh directory.
async fn run_and_report(tag: &str) -> PathBuf {
    let scenario =
        scenario::parse(Path::new("report-test.toml"), SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions::quiet(Target::Embedded);
    let results = runner::run(&scenario, options)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let dir = std::env::temp_dir().join(format!("aiconfig-report-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    let read = results::load(&dir.join("results.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read, results, "results.json reads back to what was written");
    report::write(&read, &dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_json_matches_the_documented_schema() {
    let dir = run_and_report("schema").await;
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/results.schema.json").unwrap())
            .unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let validator =
        jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("the schema itself: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&results)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "results.json does not match docs/results.schema.json:\n{}",
        errors.join("\n")
    );
    // Every kind of outcome the schema details was exercised.
    let kinds: Vec<&str> = results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "rollout_exact",
        "rollout_srm",
        "events_complete",
        "threshold",
        "actions_applied",
    ] {
        assert!(kinds.contains(&kind), "no {kind} outcome in {kinds:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_junit_list_every_check() {
    let dir = run_and_report("text").await;
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.starts_with("## ✅ report-test &lt;&amp;&gt;: PASSED "),
        "{summary}"
    );
    for part in [
        "### Checks",
        "| ✅ |",
        "### LLM calls per variation",
        "### Latency, all variations",
        "### Timed changes",
    ] {
        assert!(summary.contains(part), "no {part} in\n{summary}");
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let outcomes = results::load(&dir.join("results.json")).unwrap().checks;
    assert_eq!(
        junit.matches("<testcase ").count(),
        outcomes.len(),
        "{junit}"
    );
    assert!(
        junit.contains("<testsuite name=\"report-test &lt;&amp;&gt;\""),
        "{junit}"
    );
    assert!(!junit.contains("<&>"));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_with_its_charts_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = run_and_report("html").await;
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing to fetch: no scripts, stylesheets, images, fonts or URLs in styles (the SVG
    // namespace is a name, not a request).
    for fetch in [
        "<script", "<link", "<img", "src=", "href=", "url(", "@import",
    ] {
        assert!(!html.contains(fetch), "the report contains {fetch}");
    }
    assert!(html.contains("report-test &lt;&amp;&gt;") && !html.contains("report-test <&>"));

    let dom = browse(&chromium, &dir, &["--dump-dom".to_owned()], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for heading in [
        "LLM observability",
        "Alert rules evaluated",
        "Cost tracking",
        "Performance baselines",
        "Rollout validation",
        "Propagation of timed changes",
        "Load generator",
        "lag probe (every 10 ms",
        "Resilience",
        "SDK start-up: 2 SDK clients: 2 initialized within 15.0 s",
        "sdkSlow",
        "Simulated: LLM, TTFT and end-to-end latencies come from mock-ld",
    ] {
        assert!(
            dom.contains(heading),
            "no section {heading:?} in the rendered DOM"
        );
    }
    // Timeline, LLM by variation, cost per model and per variation, stages, the split.
    let charts = dom.matches("<svg").count();
    assert!(charts >= 6, "{charts} charts rendered");
    assert!(dom.contains("p99.9") && dom.contains("expected") && dom.contains("observed"));

    let png = dir.join("report.png");
    let shot = browse(
        &chromium,
        &dir,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,2400".to_owned(),
        ],
        &page,
    );
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let (width, height, pixels) = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((width, height), (1200, 2400));
    assert_non_trivial(&pixels);
    std::fs::remove_dir_all(dir).ok();
}

/// Debian's Chromium, or `None` (and a message) outside CI when it is not installed.
fn chromium() -> Option<PathBuf> {
    let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if path.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing under CI: scripts/install-test-deps installs it"
        );
        eprintln!("SKIPPED the_html_report_renders_with_its_charts_in_chromium: no /usr/bin/chromium (apt-get install chromium, or run scripts/install-test-deps)");
    }
    path
}

fn browse(chromium: &Path, dir: &Path, args: &[String], page: &Path) -> std::process::Output {
    let profile = dir.join("chromium-profile");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A screenshot of a blank or broken page is one colour; a report has text, tables and
/// coloured lines on white.
fn assert_non_trivial(pixels: &[[u8; 3]]) {
    let background = [250u8, 251, 252];
    let inked = pixels
        .iter()
        .filter(|p| **p != background && **p != [255, 255, 255])
        .count();
    let share = inked as f64 / pixels.len() as f64;
    assert!(
        share > 0.02,
        "only {:.2} % of the screenshot is drawn",
        share * 100.0
    );
    let mut colours: Vec<[u8; 3]> = pixels.to_vec();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "only {} colours in the screenshot",
        colours.len()
    );
}

/// Width, height and RGB pixels of an 8-bit RGB or RGBA PNG, as Chromium writes them.
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut idat, mut header) = (8, Vec::new(), None);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let (kind, data) = (&bytes[pos + 4..pos + 8], &bytes[pos + 8..pos + 8 + len]);
        match kind {
            b"IHDR" => {
                header = Some((
                    u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize,
                    u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize,
                    data[8],
                    data[9],
                ))
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let (width, height, depth, colour) = header.expect("IHDR");
    assert_eq!(depth, 8, "8-bit channels");
    let channels = match colour {
        2 => 3,
        6 => 4,
        other => panic!("PNG colour type {other}"),
    };
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut raw).unwrap();
    let rows = unfilter(&raw, width * channels, height, channels);
    let pixels = rows.chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (width, height, pixels)
}

/// Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth).
fn unfilter(raw: &[u8], stride: usize, height: usize, bpp: usize) -> Vec<u8> {
    let mut out = vec![0u8; stride * height];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= bpp {
                out[y * stride + x - bpp]
            } else {
                0
            };
            let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 };
            let c = if x >= bpp && y > 0 {
                out[(y - 1) * stride + x - bpp]
            } else {
                0
            };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => paeth(a, b, c),
                other => panic!("PNG filter {other}"),
            };
            out[y * stride + x] = line[x].wrapping_add(predictor);
        }
    }
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
