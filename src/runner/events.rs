//! After the load: flush every SDK client and wait until mock-ld holds every event, which
//! both measures flush latency and tells whether any event was lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::Client;
use serde::Deserialize;

use crate::metrics::{Latency, Metrics};
use crate::results::EventResults;

/// How long to wait for events after a flush before calling them lost.
const FLUSH_WAIT: Duration = Duration::from_secs(20);
/// A flush arrives as one payload within a few hundred milliseconds; when nothing new has
/// arrived for this long, the rest was dropped.
const QUIET_WAIT: Duration = Duration::from_secs(3);

/// The part of mock-ld's `/admin/events/stats` answer this needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    payloads: u64,
    duplicate_payloads: u64,
    rejected_payloads: u64,
    by_custom_key: BTreeMap<String, u64>,
    flag_variations: BTreeMap<String, BTreeMap<String, u64>>,
    /// What mock-ld counted without its key (its `--max-stat-keys` was reached).
    #[serde(default)]
    overflow: Overflow,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Overflow {
    custom_events: u64,
    flag_evaluations: u64,
}

/// Flushes every client at once and times how long until mock-ld has received everything
/// tracked. `stats_url` is mock-ld's `/admin/events/stats?env=…`.
pub async fn flush_and_verify(
    http: &reqwest::Client,
    stats_url: &str,
    clients: &[Arc<Client>],
    metrics: &Metrics,
) -> EventResults {
    let mut flush_latency = Latency::default();
    let started = Instant::now();
    for client in clients {
        client.flush();
    }
    let (stats, complete) =
        match wait_for_events(http, stats_url, &metrics.tracked_events, started).await {
            Ok(stats) => {
                flush_latency.record(started.elapsed());
                (stats, true)
            }
            Err(stats) => (stats, false),
        };
    let evaluations = metrics
        .variations
        .iter()
        .map(|(config, variations)| {
            let made: u64 = variations.values().map(|v| v.evaluations).sum();
            let counted: u64 = stats
                .flag_variations
                .get(config)
                .map_or(0, |v| v.values().sum());
            (config.clone(), (made, counted))
        })
        .collect();
    EventResults {
        tracked: metrics
            .tracked_events
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
        received: stats.by_custom_key,
        uncounted_by_key: stats.overflow.custom_events + stats.overflow.flag_evaluations,
        evaluations,
        payloads: stats.payloads,
        duplicate_payloads: stats.duplicate_payloads,
        rejected_payloads: stats.rejected_payloads,
        flush_latency: flush_latency.summary(),
        complete,
    }
}

/// Polls until every tracked key has arrived at least as often as tracked. `Err` with the
/// last stats when nothing more arrives for a while (events were dropped) or the wait ends.
async fn wait_for_events(
    http: &reqwest::Client,
    url: &str,
    tracked: &BTreeMap<&'static str, u64>,
    started: Instant,
) -> Result<Stats, Stats> {
    let mut latest = Stats::default();
    let mut last_change = Instant::now();
    while started.elapsed() < FLUSH_WAIT && last_change.elapsed() < QUIET_WAIT {
        if let Ok(response) = http.get(url).send().await {
            if let Ok(stats) = response.json::<Stats>().await {
                if stats.by_custom_key != latest.by_custom_key {
                    last_change = Instant::now();
                }
                latest = stats;
            }
        }
        let arrived = tracked
            .iter()
            .all(|(key, n)| latest.by_custom_key.get(*key).copied().unwrap_or(0) >= *n);
        if arrived {
            return Ok(latest);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(latest)
}
