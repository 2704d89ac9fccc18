//! The embedded default job: mock-ld in-process with the demo AI Config, the real Rust SDK
//! evaluating it for thousands of synthetic contexts, and a check that the premium 60/40
//! rollout and the SDK's events arrived as configured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::{Client, Context, ContextBuilder, FlagValue, Reason};
use mock_ld::events::log::Filter;
use mock_ld::isolated::IsolatedMockLd;
use mock_ld::MockLdHandle;
use serde_json::json;

use crate::ld_client::{start_client, EventOptions, SdkOptions};
use crate::split::{chi_square, GoodnessOfFit};

/// The demo's seed data, also usable as `mock-ld --data scenarios/demo-data.yaml`.
pub const DEMO_DATA: &str = include_str!("../scenarios/demo-data.yaml");
pub const CONFIG_KEY: &str = "support-assistant";
/// A rollout that fits worse than this is reported as a failed check.
pub const MIN_P_VALUE: f64 = 0.001;

/// What the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    pub contexts: usize,
    pub eval_time: Duration,
    /// Variation index → contexts served it, per rule id (`fallthrough`, `target`).
    pub served: BTreeMap<String, BTreeMap<isize, u64>>,
    pub premium_fit: Option<GoodnessOfFit>,
    /// Per variation index, what mock-ld's summary counters say the SDK evaluated.
    pub received: BTreeMap<String, u64>,
    pub flush_latency: Option<Duration>,
    pub propagation: Option<Duration>,
}

impl DemoReport {
    /// The premium split fits 60/40 and every evaluation was counted by mock-ld.
    pub fn passed(&self) -> bool {
        self.premium_fit
            .as_ref()
            .is_some_and(|f| f.p_value >= MIN_P_VALUE)
            && self.received_total() == self.contexts as u64
            && self.propagation.is_some()
    }

    fn received_total(&self) -> u64 {
        self.received.values().sum()
    }
}

/// Why the demo could not run at all (as opposed to a failed check).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("mock-ld: {0}")]
    MockLd(#[from] mock_ld::StartError),
    #[error("embedded demo data: {0}")]
    Data(#[from] mock_ld::datafile::DataFileError),
    #[error(transparent)]
    Sdk(#[from] crate::ld_client::SdkError),
}

/// Runs the demo over `contexts` synthetic users.
pub async fn run(contexts: usize) -> Result<DemoReport, DemoError> {
    let mock = start_mock().await?;
    let options = SdkOptions {
        base_url: mock.base_url(),
        stream_url: None,
        events_url: None,
        sdk_key: mock.config().sdk_key.clone(),
        events: Some(EventOptions {
            capacity: contexts * 2 + 1_000,
            ..EventOptions::default()
        }),
    };
    let client = Arc::new(start_client(&options, Duration::from_secs(10)).await?);
    let started = Instant::now();
    let served = evaluate_all(&client, contexts);
    let eval_time = started.elapsed();
    let premium = &served.get("premium-rollout").cloned().unwrap_or_default();
    let premium_fit = chi_square(
        &[
            premium.get(&2).copied().unwrap_or(0),
            premium.get(&3).copied().unwrap_or(0),
        ],
        &[60.0, 40.0],
    );
    let (received, flush_latency) = flush_and_count(&client, &mock, contexts as u64).await;
    let propagation = measure_propagation(&client, &mock).await;
    tokio::task::spawn_blocking(move || client.close())
        .await
        .ok();
    mock.shutdown().await;
    Ok(DemoReport {
        contexts,
        eval_time,
        served,
        premium_fit,
        received,
        flush_latency,
        propagation,
    })
}

/// On its own runtime, as `run` embeds it: the demo's evaluations block their thread.
async fn start_mock() -> Result<IsolatedMockLd, DemoError> {
    let mock = IsolatedMockLd::start(mock_ld::Config::default()).await?;
    let data = mock_ld::datafile::parse("scenarios/demo-data.yaml".as_ref(), DEMO_DATA)?;
    let env = mock
        .store()
        .environment("default", "test")
        .expect("default project has test");
    let (flags, segments) = data.into_items();
    flags.into_iter().for_each(|f| drop(env.upsert_flag(f)));
    segments
        .into_iter()
        .for_each(|s| drop(env.upsert_segment(s)));
    Ok(mock)
}

/// Synthetic user `i`: a third premium, the rest free or pro, a few QA and beta testers.
pub fn demo_context(i: usize) -> Context {
    let key = match i {
        0 => "qa-alice".to_owned(),
        1 => "beta-1".to_owned(),
        _ => format!("user-{i}"),
    };
    let tier = ["free", "pro", "premium"][i % 3];
    ContextBuilder::new(key)
        .set_string("tier", tier)
        .build()
        .expect("demo contexts are valid")
}

fn evaluate_all(client: &Client, contexts: usize) -> BTreeMap<String, BTreeMap<isize, u64>> {
    let default = FlagValue::Json(json!({"_ldMeta": {"enabled": false}}));
    let mut served: BTreeMap<String, BTreeMap<isize, u64>> = BTreeMap::new();
    for i in 0..contexts {
        let detail = client.variation_detail(&demo_context(i), CONFIG_KEY, default.clone());
        let rule = match detail.reason {
            Reason::RuleMatch { rule_id, .. } => rule_id,
            Reason::TargetMatch => "target".to_owned(),
            Reason::Fallthrough { .. } => "fallthrough".to_owned(),
            other => format!("{other:?}"),
        };
        let index = detail.variation_index.unwrap_or(-1);
        *served.entry(rule).or_default().entry(index).or_default() += 1;
    }
    served
}

/// Flushes the SDK and waits until mock-ld's summary counters account for every
/// evaluation; returns those counters and how long the wait took.
async fn flush_and_count(
    client: &Client,
    mock: &MockLdHandle,
    expected: u64,
) -> (BTreeMap<String, u64>, Option<Duration>) {
    let filter = Filter {
        env: Some("test".into()),
        ..Filter::default()
    };
    let started = Instant::now();
    client.flush();
    loop {
        let stats = mock.events().stats(&filter);
        let counts = stats
            .flag_variations
            .get(CONFIG_KEY)
            .cloned()
            .unwrap_or_default();
        if counts.values().sum::<u64>() >= expected {
            return (counts, Some(started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(15) {
            return (counts, None);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Turns the premium rollout into a single variation through mock-ld and times how long
/// until the SDK serves it.
async fn measure_propagation(client: &Arc<Client>, mock: &MockLdHandle) -> Option<Duration> {
    let env = mock.store().environment("default", "test")?;
    let mut flag = env.flag(CONFIG_KEY)?;
    let rule = flag.rules.iter_mut().find(|r| r.id == "premium-rollout")?;
    rule.rollout = None;
    rule.variation = Some(3);
    let premium = ContextBuilder::new("propagation-probe")
        .set_string("tier", "premium")
        .build()
        .ok()?;
    let client = client.clone();
    let started = Instant::now();
    env.upsert_flag(flag);
    // Poll on a blocking thread: tokio's timer has millisecond resolution, which would
    // dominate a sub-millisecond propagation time.
    tokio::task::spawn_blocking(move || {
        let default = FlagValue::Json(json!({}));
        while started.elapsed() < Duration::from_secs(5) {
            if client
                .variation_detail(&premium, CONFIG_KEY, default.clone())
                .variation_index
                == Some(3)
            {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        None
    })
    .await
    .ok()?
}

/// The report as plain text, for a terminal or a CI log.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    let rate = report.contexts as f64 / report.eval_time.as_secs_f64().max(1e-9);
    out += &format!(
        "Evaluated AI Config `{CONFIG_KEY}` for {} contexts with the real Rust SDK in {:.1} ms ({rate:.0} evaluations/s)\n\n",
        report.contexts,
        report.eval_time.as_secs_f64() * 1e3
    );
    out += "rule              variation  contexts\n";
    for (rule, by_variation) in &report.served {
        for (variation, n) in by_variation {
            out += &format!("{rule:<17} {variation:>9}  {n:>8}\n");
        }
    }
    out += &match &report.premium_fit {
        Some(fit) => format!(
            "\npremium 60/40 rollout: chi-square {:.3} (df {}), p = {:.4} ({})\n",
            fit.statistic,
            fit.degrees_of_freedom,
            fit.p_value,
            if fit.p_value >= MIN_P_VALUE {
                "fits"
            } else {
                "DOES NOT FIT"
            }
        ),
        None => "\npremium 60/40 rollout: no premium contexts were bucketed\n".to_owned(),
    };
    out += &format!(
        "events: mock-ld counted {} of {} evaluations in summary events{}\n",
        report.received_total(),
        report.contexts,
        report
            .flush_latency
            .map_or(" (timed out)".to_owned(), |d| format!(
                ", {:.1} ms after flush",
                d.as_secs_f64() * 1e3
            )),
    );
    out += &match report.propagation {
        Some(d) => format!(
            "targeting change reached the SDK in {:.2} ms\n",
            d.as_secs_f64() * 1e3
        ),
        None => "targeting change did NOT reach the SDK within 5 s\n".to_owned(),
    };
    out
}
