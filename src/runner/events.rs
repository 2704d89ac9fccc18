//! Flush latency and event completeness. During the load a [`FlushSampler`] flushes every
//! SDK client each `flush_interval` and times each flush until mock-ld holds what had been
//! handed over before it; after the load [`flush_and_verify`] flushes once more and waits
//! until mock-ld holds every tracked event, which both is the last flush sample and tells
//! whether any event was lost. mock-ld's delivery latency per event kind is read last.
//!
//! Every count is this run's: mock-ld counts per environment for as long as it runs, and a
//! mock-ld shared by earlier runs (a CI service container) holds their events too, which
//! would make up for events this run lost. [`EventStats::from_now`] reads the counts once
//! before the SDKs start, and every read after it is the difference ([`Stats::since`]),
//! delivery histograms included; an embedded mock-ld starts empty, so there it changes
//! nothing. Another run sending to the same environment *during* this one cannot be told
//! apart and is counted as this run's.
//!
//! Events lost during the load never arrive, so no later flush could see mock-ld reach the
//! count handed over before it. Two rules keep the samples after a loss honest:
//! - Events mock-ld's fault layer lost for good (with faults in the scenario: a payload
//!   whose second try was refused too, `lostCustomEvents` in `/admin/faults`; the SDKs make
//!   no third) are accounted for: a sample waits for what was handed over, received or
//!   lost. A payload refused once is not lost yet (its retry comes a second later, or after
//!   a held request), so the sample that flushed it waits for that retry: its time is the
//!   SDK's delivery, refusals included, not mock-ld's first answer. Refusals are read only
//!   while the received events fall short. Measured (`run` of 40 requests/s for 11 s,
//!   flushes every 500 ms, load average 4): with an `eventsError` over 1.5 s that lost 147
//!   events, 18 samples, p50 32 ms, max 1.02 s (a flush whose retry was refused a second
//!   later), 1 given up; without the fault, 22 samples, p50 14 ms, max 55 ms. Without this
//!   rule, the samples after such a loss wait for later events to make it up (0.44 to
//!   0.75 s each, measured).
//! - Losses nothing counts (sent while a `[[restarts]]` stop had mock-ld down, dropped by an
//!   SDK) are learnt from a sample that gives up ([`Shortfall`]): its wait ran out, or
//!   nothing new arrived for [`QUIET_WAIT`] after the flush; what it still missed is taken
//!   as lost and left out of every later target. Limit: events that were only late,
//!   arriving after their sample gave up (a delivery slower than `QUIET_WAIT`, such as an
//!   `sdkSlow` of 3 s or more), count toward a later target and can end that later sample
//!   before its own events arrived, a sample too early. So can a payload held by an
//!   `eventsTimeout` past `QUIET_WAIT` and then refused again: taken as lost by the sample
//!   that gave up on it, and counted lost by mock-ld too. `flushesUnconfirmed` says how many
//!   samples gave up, and so whether this can have happened. A wait that could read no
//!   count at all (mock-ld down) learns nothing and leaves the targets alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::Client;
use mock_ld::events::delivery::KindDelivery;
use mock_ld::faults::registry::RefusedEvents;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{growing, Latency, LatencySummary, Metrics};
use crate::results::{DeliveryResults, EventResults};
use mock_ld::hdr::encode;

/// How long to wait for events after a flush before calling them lost.
const FLUSH_WAIT: Duration = Duration::from_secs(20);
/// A flush arrives as one payload within a few hundred milliseconds; when nothing new has
/// arrived for this long, the rest was dropped.
const QUIET_WAIT: Duration = Duration::from_secs(3);
/// Between two reads of mock-ld's counts while waiting: each read costs mock-ld a copy of
/// its counts, and the embedded one shares the harness's cores.
const POLL: Duration = Duration::from_millis(5);

/// The part of mock-ld's `/admin/events/stats` answer this needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    payloads: u64,
    duplicate_payloads: u64,
    rejected_payloads: u64,
    #[serde(default)]
    by_kind: BTreeMap<String, u64>,
    by_custom_key: BTreeMap<String, u64>,
    flag_variations: BTreeMap<String, BTreeMap<String, u64>>,
    /// What mock-ld counted without its key (its `--max-stat-keys` was reached).
    #[serde(default)]
    overflow: Overflow,
    /// Present unless asked for without (`delivery=false`).
    #[serde(default)]
    delivery: BTreeMap<String, KindDelivery>,
    /// With `--state`.
    #[serde(default)]
    journal: Option<Journal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Journal {
    replayed_events: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Overflow {
    custom_events: u64,
    flag_evaluations: u64,
}

impl Stats {
    /// What arrived since `before` was read: every count less `before`'s, key by key (keys
    /// left at 0 dropped, as mock-ld shows only keys it received), and each kind's delivery
    /// histogram less `before`'s. `journal` is what mock-ld replayed when it started, kept
    /// as is. A reset between the reads is [`Baseline`]'s to tell.
    fn since(self, before: &Stats) -> Stats {
        let none = BTreeMap::new();
        Stats {
            payloads: self.payloads.saturating_sub(before.payloads),
            duplicate_payloads: self
                .duplicate_payloads
                .saturating_sub(before.duplicate_payloads),
            rejected_payloads: self
                .rejected_payloads
                .saturating_sub(before.rejected_payloads),
            by_kind: less(self.by_kind, &before.by_kind),
            by_custom_key: less(self.by_custom_key, &before.by_custom_key),
            flag_variations: self
                .flag_variations
                .into_iter()
                .map(|(config, v)| {
                    let earlier = before.flag_variations.get(&config).unwrap_or(&none);
                    (config, less(v, earlier))
                })
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            overflow: Overflow {
                custom_events: self
                    .overflow
                    .custom_events
                    .saturating_sub(before.overflow.custom_events),
                flag_evaluations: self
                    .overflow
                    .flag_evaluations
                    .saturating_sub(before.overflow.flag_evaluations),
            },
            delivery: self
                .delivery
                .into_iter()
                .filter_map(|(kind, d)| {
                    let since = delivery_since(before.delivery.get(&kind), d)?;
                    Some((kind, since))
                })
                .collect(),
            journal: self.journal,
        }
    }
}

/// `after` less `before`, key by key, without the keys left at 0.
fn less(after: BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .map(|(key, n)| {
            let earlier = before.get(&key).copied().unwrap_or(0);
            (key, n.saturating_sub(earlier))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// One kind's delivery since `before`: the histogram less `before`'s (HDR `subtract`), its
/// percentiles and the events counted apart likewise; `after` whole when there was nothing
/// before or mock-ld's counts were reset since. `None` (and a warning) when a histogram does
/// not decode or subtract, rather than a cumulative one passed off as this run's; `None`
/// too when the kind received nothing since.
fn delivery_since(before: Option<&KindDelivery>, after: KindDelivery) -> Option<KindDelivery> {
    let Some(before) = before.filter(|b| b.count <= after.count) else {
        return Some(after);
    };
    let subtract = || -> Result<_, String> {
        let mut h = mock_ld::hdr::decode(&after.hdr)?;
        h.subtract(mock_ld::hdr::decode(&before.hdr)?)
            .map_err(|e| e.to_string())?;
        Ok(h)
    };
    let h = match subtract() {
        Ok(h) => growing(h),
        Err(e) => {
            tracing::warn!(error = %e, "mock-ld's delivery latency histogram does not subtract: left out");
            return None;
        }
    };
    let summary = LatencySummary::of(&h);
    let since = KindDelivery {
        count: summary.count,
        p50_ms: summary.p50_ms,
        p95_ms: summary.p95_ms,
        p99_ms: summary.p99_ms,
        max_ms: summary.max_ms,
        hdr: encode(&h),
        undated: after.undated.saturating_sub(before.undated),
        future: after.future.saturating_sub(before.future),
        too_old: after.too_old.saturating_sub(before.too_old),
    };
    let received = since.count + since.undated + since.future + since.too_old;
    (received > 0).then_some(since)
}

/// mock-ld's event counts for one environment: `/admin/events/stats?project=…&env=…`, since
/// [`EventStats::from_now`] (or all of them, without).
#[derive(Clone)]
pub struct EventStats {
    /// mock-ld's admin client.
    pub http: reqwest::Client,
    /// The stats URL with its project and environment query.
    pub url: String,
    /// The project and environment counted.
    scope: (String, String),
    /// Where the events mock-ld's fault layer refused in the environment are read, when a
    /// fault may refuse them ([`EventStats::with_refusals`]).
    refusals: Option<Refusals>,
    /// The counts before the run ([`EventStats::from_now`]), taken off every read.
    before: Arc<Baseline>,
}

/// mock-ld's refusals in one environment.
#[derive(Clone, Debug)]
struct Refusals {
    admin: super::mock_admin::MockAdmin,
    /// Lost for good before the load (a mock-ld shared by earlier runs keeps counting).
    before: u64,
}

impl EventStats {
    /// The counts of `project`/`environment` at mock-ld's admin API.
    pub fn new(admin: &super::mock_admin::MockAdmin, project: &str, environment: &str) -> Self {
        EventStats {
            http: admin.http.clone(),
            url: format!(
                "{}/events/stats?project={project}&env={environment}",
                admin.base
            ),
            scope: (project.to_owned(), environment.to_owned()),
            refusals: None,
            before: Arc::default(),
        }
    }

    /// Counts from now on: reads the environment's counts, delivery histograms included,
    /// and takes them off every later read. Read before the SDKs start, since a shared
    /// mock-ld's earlier events would otherwise make up for events this run loses. `Err`
    /// says why the counts could not be read.
    pub async fn from_now(mut self) -> Result<Self, String> {
        let read = async {
            let response = self.http.get(&self.url).send().await?.error_for_status()?;
            response.json::<Stats>().await
        };
        let before = read.await.map_err(|e| format!("GET {}: {e}", self.url))?;
        self.before = Arc::new(Baseline::new(before));
        Ok(self)
    }

    /// Counts the custom events mock-ld's fault layer lost for good (their payload's second
    /// try refused too: the SDKs make no third) as accounted for while a flush sample
    /// waits, so that it does not wait for events that will never come (with faults in the
    /// scenario). `before`: mock-ld's totals before the load.
    pub fn with_refusals(
        mut self,
        admin: &super::mock_admin::MockAdmin,
        before: Option<&RefusedEvents>,
    ) -> Self {
        self.refusals = Some(Refusals {
            admin: admin.clone(),
            before: before.map_or(0, |b| b.lost_custom_events),
        });
        self
    }

    /// Custom events accounted for: received, and with [`EventStats::with_refusals`] lost
    /// for good to the fault layer, read only when fewer than `target` were received (a
    /// poll that meets its target costs one read).
    async fn accounted_custom(&self, target: u64) -> Option<u64> {
        let received = self.counts().await?.by_kind.get("custom").copied();
        let received = received.unwrap_or(0);
        let Some(refusals) = self.refusals.as_ref().filter(|_| received < target) else {
            return Some(received);
        };
        let (project, environment) = &self.scope;
        let now = super::faults::refused_events(&refusals.admin, project, environment).await;
        let lost = now.ok()?.map_or(0, |now| now.lost_custom_events);
        Some(received + lost.saturating_sub(refusals.before))
    }

    /// The counts without the delivery histograms, which only the last read needs.
    async fn counts(&self) -> Option<Stats> {
        self.read("&delivery=false").await
    }

    /// Events received in the environment, every kind (the SDKs' own included).
    pub async fn received_events(&self) -> Option<u64> {
        Some(self.counts().await?.by_kind.values().sum())
    }

    /// Events mock-ld read back from its journal when it started (`--state` only).
    pub async fn replayed_events(&self) -> Option<u64> {
        Some(self.counts().await?.journal?.replayed_events)
    }

    /// The counts since [`EventStats::from_now`]: the one place they become this run's.
    async fn read(&self, query: &str) -> Option<Stats> {
        let response = self.http.get(format!("{}{query}", self.url)).send().await;
        let now = response.ok()?.json::<Stats>().await.ok()?;
        Some(self.before.apply(now))
    }
}

/// The counts before the run, taken off every later read ([`Stats::since`]) until mock-ld
/// shows fewer payloads than they hold: its counts were reset (or it restarted without
/// `--state`), and from then on all it holds is this run's, as the simulator's lateness is
/// taken (`simulated::since`). Sticky: the run's own payloads outgrowing the count before
/// does not bring the subtraction back.
#[derive(Debug, Default)]
struct Baseline {
    before: Stats,
    reset: AtomicBool,
}

impl Baseline {
    fn new(before: Stats) -> Self {
        Baseline {
            before,
            reset: AtomicBool::new(false),
        }
    }

    /// `now` as this run's counts.
    fn apply(&self, now: Stats) -> Stats {
        if now.payloads < self.before.payloads {
            self.reset.store(true, Ordering::Relaxed);
        }
        match self.reset.load(Ordering::Relaxed) {
            true => now,
            false => now.since(&self.before),
        }
    }
}

/// Flush latencies sampled during the load.
#[derive(Debug, Default)]
pub struct FlushSeries {
    pub latency: Latency,
    /// Flushes whose events had not arrived when the wait gave up.
    pub unconfirmed: u64,
}

/// Flushes every SDK client each `interval` during the load, one flush outstanding at a
/// time, and times each until mock-ld has received as many custom events as had been
/// handed to the SDKs before it. Custom events are the one kind the harness counts as it
/// hands them over (index and summary events are the SDK's own), and a flush sends every
/// event in an SDK's queue as one payload, so their arrival is the flush's. Events the
/// SDKs' own timer sent in between count too: the wait is for the events, not a payload.
pub struct FlushSampler {
    task: JoinHandle<FlushSeries>,
    stop: CancellationToken,
}

impl FlushSampler {
    pub fn start(
        stats: EventStats,
        clients: Vec<Arc<Client>>,
        handed: Arc<AtomicU64>,
        interval: Duration,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample_flushes(
            stats,
            clients,
            handed,
            interval,
            stop.clone(),
        ));
        FlushSampler { task, stop }
    }

    /// Stops sampling; a flush still outstanding is dropped, neither a sample nor
    /// unconfirmed (the final flush follows at once).
    pub async fn finish(self) -> FlushSeries {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn sample_flushes(
    stats: EventStats,
    clients: Vec<Arc<Client>>,
    handed: Arc<AtomicU64>,
    interval: Duration,
    stop: CancellationToken,
) -> FlushSeries {
    let mut series = FlushSeries::default();
    let mut shortfall = Shortfall::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return series,
            () = tokio::time::sleep(interval) => {}
        }
        let target = shortfall.target(handed.load(Ordering::Acquire));
        let started = Instant::now();
        clients.iter().for_each(|c| c.flush());
        tokio::select! {
            () = stop.cancelled() => return series,
            arrived = wait_for_custom(&stats, target, started) => match arrived {
                Ok(()) => series.latency.record(started.elapsed()),
                Err(received) => {
                    series.unconfirmed += 1;
                    // Nothing is learnt of a loss from a wait that read no count.
                    if let Some(received) = received {
                        shortfall.gave_up(target, received);
                    }
                }
            },
        }
    }
}

/// The custom events known lost during the load: what the samples that gave up still
/// missed. Left out of every later target, so that one loss does not leave every later
/// flush unconfirmed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Shortfall {
    lost: u64,
}

impl Shortfall {
    /// What a flush waits for: the custom events `handed` over before it, less those lost.
    fn target(self, handed: u64) -> u64 {
        handed.saturating_sub(self.lost)
    }

    /// A sample waiting for `target` gave up with `received` in: the rest is taken as lost.
    fn gave_up(&mut self, target: u64, received: u64) {
        self.lost += target.saturating_sub(received);
    }
}

/// Polls until mock-ld has accounted for `target` custom events (received, or lost for
/// good). `Err` with the last count (`None` when no read succeeded, as while a restart has
/// mock-ld down) when the wait runs out or nothing new arrives for [`QUIET_WAIT`] after the
/// flush (a flush's payload arrives within a few hundred milliseconds, an SDK's one retry
/// within seconds).
async fn wait_for_custom(
    stats: &EventStats,
    target: u64,
    started: Instant,
) -> Result<(), Option<u64>> {
    let (mut received, mut last_change) = (None, Instant::now());
    while started.elapsed() < FLUSH_WAIT && last_change.elapsed() < QUIET_WAIT {
        if let Some(now) = stats.accounted_custom(target).await {
            if received.is_some_and(|before| before != now) {
                last_change = Instant::now();
            }
            received = Some(now);
        }
        if received.is_some_and(|n| n >= target) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(received)
}

/// Flushes every SDK (`flush`) and times how long until mock-ld has received everything
/// tracked: the last sample of `series`. Then reads mock-ld's counts and delivery latency.
pub async fn flush_and_verify(
    stats: &EventStats,
    flush: impl std::future::Future<Output = ()>,
    metrics: &Metrics,
    mut series: FlushSeries,
) -> EventResults {
    let started = Instant::now();
    flush.await;
    let (counted, complete) = match wait_for_events(stats, &metrics.tracked_events, started).await {
        Ok(counted) => {
            series.latency.record(started.elapsed());
            (counted, true)
        }
        Err(counted) => {
            series.unconfirmed += 1;
            (counted, false)
        }
    };
    // Read again with the histograms: the counts and the histograms of one answer agree.
    let stats = stats.read("").await.unwrap_or(counted);
    event_results(stats, metrics, &series, complete)
}

fn event_results(
    stats: Stats,
    metrics: &Metrics,
    series: &FlushSeries,
    complete: bool,
) -> EventResults {
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
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        received: stats.by_custom_key,
        uncounted_by_key: stats.overflow.custom_events + stats.overflow.flag_evaluations,
        evaluations,
        payloads: stats.payloads,
        duplicate_payloads: stats.duplicate_payloads,
        rejected_payloads: stats.rejected_payloads,
        flush_latency: series.latency.summary(),
        flushes_unconfirmed: series.unconfirmed,
        complete,
        received_by_kind: stats.by_kind,
        delivery: stats
            .delivery
            .into_iter()
            .filter_map(|(kind, d)| Some((kind, delivery_results(d)?)))
            .collect(),
    }
}

/// One kind's delivery latency from mock-ld's answer, its percentiles computed the way
/// every latency of the results is; `None` (and a warning) for a histogram that does not
/// decode.
fn delivery_results(d: KindDelivery) -> Option<DeliveryResults> {
    let histogram = match mock_ld::hdr::decode(&d.hdr) {
        Ok(h) => growing(h),
        Err(e) => {
            tracing::warn!(error = %e, "mock-ld's delivery latency histogram does not decode");
            return None;
        }
    };
    Some(DeliveryResults {
        latency: LatencySummary::of(&histogram),
        undated: d.undated,
        future: d.future,
        too_old: d.too_old,
    })
}

/// Polls until every tracked key has arrived at least as often as tracked. `Err` with the
/// last stats when nothing more arrives for a while (events were dropped) or the wait ends.
async fn wait_for_events(
    stats: &EventStats,
    tracked: &BTreeMap<std::borrow::Cow<'static, str>, u64>,
    started: Instant,
) -> Result<Stats, Stats> {
    let mut latest = Stats::default();
    let mut last_change = Instant::now();
    while started.elapsed() < FLUSH_WAIT && last_change.elapsed() < QUIET_WAIT {
        if let Some(counted) = stats.counts().await {
            if counted.by_custom_key != latest.by_custom_key {
                last_change = Instant::now();
            }
            latest = counted;
        }
        let arrived = tracked
            .iter()
            .all(|(key, n)| latest.by_custom_key.get(&**key).copied().unwrap_or(0) >= *n);
        if arrived {
            return Ok(latest);
        }
        tokio::time::sleep(POLL).await;
    }
    Err(latest)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{delivery_since, Baseline, KindDelivery, Shortfall, Stats};

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    }

    fn delivery(micros: &[u64], undated: u64) -> KindDelivery {
        let mut h = mock_ld::hdr::empty_histogram();
        micros.iter().for_each(|m| h.record(*m).unwrap());
        KindDelivery {
            count: h.len(),
            hdr: mock_ld::hdr::encode(&h),
            undated,
            ..KindDelivery::default()
        }
    }

    /// What a shared mock-ld held before the run is taken off, key by key; keys only the
    /// earlier runs sent are gone.
    #[test]
    fn counts_since_an_earlier_read_are_the_difference() {
        let before = Stats {
            payloads: 10,
            by_custom_key: counts(&[("a", 5), ("old", 3)]),
            flag_variations: [("old-config".to_owned(), counts(&[("0", 4)]))].into(),
            delivery: [("custom".to_owned(), delivery(&[1_000, 2_000], 1))].into(),
            ..Stats::default()
        };
        let after = Stats {
            payloads: 14,
            by_custom_key: counts(&[("a", 9), ("old", 3), ("new", 2)]),
            flag_variations: [
                ("old-config".to_owned(), counts(&[("0", 4)])),
                ("config".to_owned(), counts(&[("1", 6)])),
            ]
            .into(),
            delivery: [("custom".to_owned(), delivery(&[1_000, 2_000, 500_000], 1))].into(),
            ..Stats::default()
        };
        let since = after.since(&before);
        assert_eq!(since.payloads, 4);
        assert_eq!(since.by_custom_key, counts(&[("a", 4), ("new", 2)]));
        assert_eq!(since.flag_variations.keys().collect::<Vec<_>>(), ["config"]);
        let custom = &since.delivery["custom"];
        assert_eq!((custom.count, custom.undated), (1, 0));
        assert!((custom.max_ms - 500.0).abs() < 1.0, "{custom:?}");
    }

    /// Fewer payloads than before: mock-ld's counts were reset, and all it holds is new.
    #[test]
    fn counts_after_a_reset_are_taken_whole() {
        let before = Stats {
            payloads: 10,
            by_custom_key: counts(&[("a", 5)]),
            ..Stats::default()
        };
        let after = Stats {
            payloads: 2,
            by_custom_key: counts(&[("a", 3)]),
            ..Stats::default()
        };
        let baseline = Baseline::new(before);
        assert_eq!(baseline.apply(after).by_custom_key, counts(&[("a", 3)]));
        // Once reset, whole for the rest of the run, past the payloads counted before too.
        let later = Stats {
            payloads: 12,
            by_custom_key: counts(&[("a", 13)]),
            ..Stats::default()
        };
        assert_eq!(baseline.apply(later).by_custom_key, counts(&[("a", 13)]));
        // A kind that received nothing since is left out; one not there before is whole.
        let d = delivery(&[1_000], 0);
        assert_eq!(delivery_since(Some(&d), d.clone()), None);
        assert_eq!(delivery_since(None, d.clone()), Some(d));
    }

    #[test]
    fn a_sample_that_gave_up_leaves_its_shortfall_out_of_later_targets() {
        let mut s = Shortfall::default();
        assert_eq!(s.target(10), 10);
        // 20 handed over, 14 in when the wait gave up: 6 lost.
        s.gave_up(s.target(20), 14);
        assert_eq!(s.target(30), 24);
        // Another loss adds to it, measured against the already reduced target.
        s.gave_up(s.target(40), 30);
        assert_eq!(s.lost, 10);
        assert_eq!(s.target(50), 40);
        // More in than the target (late arrivals): nothing lost, never an underflow.
        s.gave_up(s.target(50), 45);
        assert_eq!(s.lost, 10);
        assert_eq!(Shortfall { lost: 99 }.target(5), 0);
    }
}
