//! Measuring the measurer (`results::harness`): a lag probe on the load's runtime, the
//! machine's pressure stall information over the load, and the judgement of both, with the
//! open model's schedule lag and the simulator's lateness, against the scenario's bounds.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Latency, Metrics};
use crate::results::harness::{HarnessHealth, Pressure};
use crate::results::simulated::SimulatedInfo;
use crate::results::LatencySummary;
use crate::scenario::bounds::count;
use crate::scenario::{LoadModel, Scenario, SdkKind};

/// How often the probe asks to be woken. Tokio's timer has millisecond resolution, so an
/// idle runtime shows up to about 1 ms of lag; 10 ms keeps the probe's own cost (100
/// wake-ups a second) far below anything it could report.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// A task on the load's runtime that sleeps to a tick every [`PROBE_INTERVAL`] and records
/// how late it woke. Ticks a stall swallowed are recorded as they would have been, late by
/// less and less, so a 1 s stall weighs as 100 late ticks, not one.
pub struct LagProbe {
    stop: CancellationToken,
    task: JoinHandle<Latency>,
}

impl LagProbe {
    pub fn start() -> LagProbe {
        let stop = CancellationToken::new();
        let task = tokio::spawn(probe(stop.clone()));
        LagProbe { stop, task }
    }

    pub async fn stop(self) -> LatencySummary {
        self.stop.cancel();
        self.task.await.unwrap_or_default().summary()
    }
}

async fn probe(stop: CancellationToken) -> Latency {
    let mut lag = Latency::default();
    let mut due = Instant::now() + PROBE_INTERVAL;
    loop {
        tokio::select! {
            () = stop.cancelled() => return lag,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let woke = Instant::now();
        // Every tick due by now, each late by what it waited.
        while due <= woke {
            lag.record(woke - due);
            due += PROBE_INTERVAL;
        }
    }
}

/// Cumulative stall microseconds of `/proc/pressure/{cpu,memory,io}` (`some` and `full`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StallTotals {
    cpu_some: u64,
    memory_some: u64,
    memory_full: u64,
    io_some: u64,
    io_full: u64,
}

impl StallTotals {
    /// Now, or `None` where the kernel has no pressure stall information.
    pub fn read() -> Option<StallTotals> {
        let read = |resource: &str| std::fs::read_to_string(format!("/proc/pressure/{resource}"));
        let (cpu, memory, io) = (read("cpu").ok()?, read("memory").ok()?, read("io").ok()?);
        Some(StallTotals {
            cpu_some: total(&cpu, "some")?,
            memory_some: total(&memory, "some")?,
            memory_full: total(&memory, "full")?,
            io_some: total(&io, "some")?,
            io_full: total(&io, "full")?,
        })
    }

    /// The share of `elapsed` stalled between `self` and `later`.
    pub fn until(&self, later: &StallTotals, elapsed: Duration) -> Pressure {
        let wall = elapsed.as_micros().max(1) as f64;
        let share = |a: u64, b: u64| (b.saturating_sub(a) as f64 / wall).min(1.0);
        Pressure {
            cpu_some: share(self.cpu_some, later.cpu_some),
            memory_some: share(self.memory_some, later.memory_some),
            memory_full: share(self.memory_full, later.memory_full),
            io_some: share(self.io_some, later.io_some),
            io_full: share(self.io_full, later.io_full),
        }
    }
}

/// `total=` of the line starting with `kind` (`some avg10=0.00 avg60=0.00 avg300=0.00
/// total=123`).
fn total(text: &str, kind: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(kind))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Judges `health`'s figures against its bounds; `simulator` is the simulated provider's
/// lateness (first token and last chunk), where there is one.
pub fn judge(health: &mut HarnessHealth, simulator: &[(&str, &LatencySummary)]) {
    let b = health.bounds;
    let mut over = Vec::new();
    let mut lag = |what: &str, s: &LatencySummary| {
        if s.count > 0 && s.p99_ms > b.lag_p99_ms {
            over.push(format!(
                "{what} p99 {:.1} ms > {} ms (n = {})",
                s.p99_ms,
                b.lag_p99_ms,
                count(s.count)
            ));
        }
    };
    lag("lag probe", &health.lag_probe);
    if let Some(s) = &health.worker_lag_probe {
        lag("worker lag probe", s);
    }
    if let Some(s) = &health.schedule_lag {
        lag("schedule lag", s);
    }
    for (what, s) in simulator {
        lag(what, s);
    }
    if let Some(share) = health
        .cpu_share
        .filter(|&s| judged(b.cpu_share) && s > b.cpu_share)
    {
        over.push(format!(
            "harness CPU {} > {} of {} cores",
            percent(share),
            percent(b.cpu_share),
            health.cores
        ));
    }
    if let Some(p) = health.pressure {
        for (what, value, bound) in [
            ("CPU pressure", p.cpu_some, b.cpu_pressure),
            ("memory pressure", p.memory_some, b.memory_pressure),
            ("I/O pressure", p.io_some, b.io_pressure),
        ] {
            if judged(bound) && value > bound {
                over.push(format!(
                    "{what} {} > {} of the time",
                    percent(value),
                    percent(bound)
                ));
            }
        }
    }
    health.overloaded = over;
}

/// A share bound of 1 (or more) is off: a share measured a hair past 1 (CPU time counted
/// a tick late) must not make a run overloaded that the user asked not to judge.
fn judged(bound: f64) -> bool {
    bound < 1.0
}

fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// The load generator's own measurements over the load: its CPU time, the machine's
/// pressure stall totals and the lag probe, from the load's start.
pub struct OwnFigures {
    cpu_start: Option<Duration>,
    stalls_start: Option<StallTotals>,
    probe: LagProbe,
}

impl OwnFigures {
    pub fn start() -> Self {
        OwnFigures {
            cpu_start: crate::process::cpu_time(),
            stalls_start: StallTotals::read(),
            probe: LagProbe::start(),
        }
    }

    /// The figures over the `elapsed` load (the CPU time of its `worker_processes`
    /// included), judged with the simulator's lateness against the scenario's bounds.
    pub async fn finish(
        self,
        scenario: &Scenario,
        metrics: &Metrics,
        simulated: Option<&SimulatedInfo>,
        (elapsed, worker_processes): (Duration, usize),
    ) -> HarnessHealth {
        let cpu = crate::process::cpu_time()
            .zip(self.cpu_start)
            .map(|(end, start)| end.saturating_sub(start))
            .map(|own| own + Duration::from_secs_f64(metrics.worker_cpu_seconds));
        let pressure = self
            .stalls_start
            .zip(StallTotals::read())
            .map(|(start, end)| start.until(&end, elapsed));
        let own = Own {
            lag_probe: self.probe.stop().await,
            cpu,
            pressure,
            elapsed,
            worker_processes,
        };
        harness_health(scenario, metrics, simulated, own)
    }
}

/// What [`OwnFigures`] measured.
struct Own {
    lag_probe: LatencySummary,
    cpu: Option<Duration>,
    pressure: Option<Pressure>,
    elapsed: Duration,
    worker_processes: usize,
}

/// The load generator's own figures over the load, judged against the scenario's bounds.
fn harness_health(
    scenario: &Scenario,
    metrics: &Metrics,
    simulated: Option<&SimulatedInfo>,
    own: Own,
) -> HarnessHealth {
    let Own {
        lag_probe,
        cpu,
        pressure,
        elapsed,
        worker_processes,
    } = own;
    let cores = cores();
    let wall = elapsed.as_secs_f64().max(1e-9) * cores as f64;
    let mut harness = HarnessHealth {
        lag_probe,
        worker_lag_probe: (scenario.load.sdk != SdkKind::Rust)
            .then(|| metrics.worker_lag_probe.summary()),
        probe_interval_ms: PROBE_INTERVAL.as_secs_f64() * 1e3,
        schedule_lag: (scenario.load.model == LoadModel::Open)
            .then(|| metrics.schedule_lag.summary()),
        cpu_seconds: cpu.map(|c| c.as_secs_f64()),
        cpu_share: cpu.map(|c| c.as_secs_f64() / wall),
        cores,
        worker_processes,
        pressure,
        bounds: scenario.load.overload.bounds(),
        overloaded: Vec::new(),
    };
    let lateness = simulated.map(|s| {
        [
            ("simulator first-token lateness", &s.lateness.first_token),
            ("simulator last-chunk lateness", &s.lateness.last_chunk),
        ]
    });
    judge(&mut harness, lateness.as_ref().map_or(&[], |l| &l[..]));
    harness
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::harness::OverloadBounds;

    fn lag(p99_ms: f64, count: u64) -> LatencySummary {
        LatencySummary {
            count,
            p99_ms,
            ..LatencySummary::default()
        }
    }

    fn healthy() -> HarnessHealth {
        HarnessHealth {
            lag_probe: lag(1.2, 6_000),
            worker_lag_probe: Some(lag(3.0, 5_000)),
            probe_interval_ms: 10.0,
            schedule_lag: Some(lag(0.8, 12_000)),
            cpu_seconds: Some(10.0),
            cpu_share: Some(0.5),
            cores: 2,
            worker_processes: 2,
            pressure: Some(Pressure {
                cpu_some: 0.1,
                ..Pressure::default()
            }),
            bounds: OverloadBounds::default(),
            overloaded: Vec::new(),
        }
    }

    #[test]
    fn within_every_bound_is_not_overloaded() {
        let mut h = healthy();
        judge(
            &mut h,
            &[("simulator first token lateness", &lag(2.0, 100))],
        );
        assert!(!h.is_overloaded(), "{:?}", h.overloaded);
        assert_eq!(h.overload_note(), None);
    }

    #[test]
    fn each_bound_passed_is_named_with_its_figure_and_n() {
        let mut h = healthy();
        h.lag_probe = lag(34.25, 6_012);
        h.bounds.cpu_share = 0.95;
        h.cpu_share = Some(0.99);
        h.pressure = Some(Pressure {
            memory_some: 0.62,
            ..Pressure::default()
        });
        judge(&mut h, &[("simulator last chunk lateness", &lag(25.0, 40))]);
        assert_eq!(
            h.overloaded,
            [
                "lag probe p99 34.2 ms > 20 ms (n = 6,012)",
                "simulator last chunk lateness p99 25.0 ms > 20 ms (n = 40)",
                "harness CPU 99.0 % > 95.0 % of 2 cores",
                "memory pressure 62.0 % > 50.0 % of the time",
            ]
        );
        assert!(h
            .overload_note()
            .unwrap()
            .starts_with("the load generator was overloaded (lag probe p99 34.2 ms"));
    }

    #[test]
    fn a_late_worker_event_loop_is_an_overload_too() {
        let mut h = healthy();
        h.worker_lag_probe = Some(lag(48.0, 2_100));
        judge(&mut h, &[]);
        assert_eq!(
            h.overloaded,
            ["worker lag probe p99 48.0 ms > 20 ms (n = 2,100)"]
        );
    }

    #[test]
    fn a_lag_without_samples_or_without_pressure_figures_is_not_judged() {
        let mut h = healthy();
        h.lag_probe = lag(500.0, 0);
        h.schedule_lag = None;
        h.pressure = None;
        h.cpu_share = None;
        judge(&mut h, &[]);
        assert!(!h.is_overloaded(), "{:?}", h.overloaded);
    }

    #[test]
    fn a_share_bound_of_1_is_off_even_for_a_share_a_hair_past_it() {
        let mut h = healthy();
        h.cpu_share = Some(1.002);
        h.pressure = Some(Pressure {
            cpu_some: 1.0,
            io_some: 1.0,
            ..Pressure::default()
        });
        judge(&mut h, &[]);
        assert!(!h.is_overloaded(), "{:?}", h.overloaded);
    }

    #[test]
    fn pressure_is_the_share_of_the_wall_time_stalled() {
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=2182992\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n";
        assert_eq!(total(text, "some"), Some(2_182_992));
        assert_eq!(total(text, "full"), Some(17));
        assert_eq!(total("garbage", "some"), None);
        let start = StallTotals::default();
        let later = StallTotals {
            cpu_some: 250_000,
            memory_some: 2_000_000,
            ..StallTotals::default()
        };
        let p = start.until(&later, Duration::from_secs(1));
        assert_eq!((p.cpu_some, p.memory_some, p.io_some), (0.25, 1.0, 0.0));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_probe_counts_every_tick_a_blocked_runtime_swallowed() {
        let probe = LagProbe::start();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Blocks the only thread: the ticks due meanwhile are late when it wakes.
        std::thread::sleep(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let lag = probe.stop().await;
        // Most of the 200 ms stall's 20 ticks, each late by up to 200 ms.
        assert!(lag.count >= 20, "{lag:?}");
        assert!(lag.max_ms >= 150.0, "{lag:?}");
    }
}
