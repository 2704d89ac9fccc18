//! The load generator measured as carefully as the system: how late it ran its own work,
//! how much CPU it took, and how hard the machine was pressed while it ran. When any of
//! these passes its bound the run says the load generator was overloaded, and latency
//! checks and latency baseline comparisons are inconclusive rather than passed or failed:
//! a busy CI runner is not a regression.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::latency::LatencySummary;

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarnessHealth {
    /// How late a task on the load's runtime woke for a timer due every
    /// `probeIntervalMs`, corrected for coordinated omission (a stall of 1 s counts as the
    /// 100 ticks it swallowed, late by 1 s, 0.99 s, ...), as jHiccup measures a JVM.
    pub lag_probe: LatencySummary,
    /// The same probe in every worker process of the Python or Node SDK (their event
    /// loops), merged: a worker whose loop is late delays its requests' timings as the
    /// harness's would. `None` with the Rust SDK, which has no worker processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_lag_probe: Option<LatencySummary>,
    pub probe_interval_ms: f64,
    /// Open model: how late each request started after it was due, counting only the
    /// harness's own delay (its timer and runtime), not a wait for a free `max_in_flight`
    /// slot or for the request before it, which are the system's and are in the corrected
    /// latency already. `None` in the closed model, which has no schedule.
    pub schedule_lag: Option<LatencySummary>,
    /// CPU time of the harness process during the load (user and system, every thread,
    /// an embedded mock-ld included), and of its worker processes (Python, Node).
    pub cpu_seconds: Option<f64>,
    /// `cpuSeconds` over the load's wall time on every core: near 1 the process could not
    /// have gone faster.
    pub cpu_share: Option<f64>,
    /// Cores the process may run on.
    pub cores: usize,
    /// Worker processes of the Python or Node SDK the run started (0 with the Rust SDK).
    /// With the harness beside them (and its embedded mock-ld), more busy processes than
    /// `cores` compete for the CPU; the lag probes tell whether that delayed anything.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub worker_processes: usize,
    /// The machine's pressure stall information over the load; `None` where
    /// `/proc/pressure` is absent (kernels before 4.20, or PSI turned off).
    pub pressure: Option<Pressure>,
    /// The bounds the figures above were judged against.
    pub bounds: OverloadBounds,
    /// Each bound passed, as a phrase with its figure and n (`lag p99 34.2 ms > 20 ms
    /// (n = 6,012)`); empty when the load generator kept up.
    pub overloaded: Vec<String>,
}

/// Share of the load's wall time in which at least one task waited for the resource
/// (`some`), and in which every non-idle task did (`full`), from the `total` stall
/// microseconds in `/proc/pressure/*`. The machine's, not the process's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pressure {
    pub cpu_some: f64,
    pub memory_some: f64,
    pub memory_full: f64,
    pub io_some: f64,
    pub io_full: f64,
}

/// When the load generator counts as overloaded (a scenario's `[load.overload]`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverloadBounds {
    /// p99 of the lag probe, of the open model's schedule lag and of the simulated
    /// provider's lateness (`simulated.lateness`), in ms.
    pub lag_p99_ms: f64,
    /// `cpuShare` at most.
    pub cpu_share: f64,
    /// `pressure.cpuSome` at most.
    pub cpu_pressure: f64,
    /// `pressure.memorySome` at most.
    pub memory_pressure: f64,
    /// `pressure.ioSome` at most.
    pub io_pressure: f64,
}

/// The defaults judge the harness by its own lateness, not by how busy the machine is: on a
/// CI runner whose cores are all taken, CPU pressure is near 100 % while a harness that
/// still wakes on time measures correctly, and the lag probe and the simulator's lateness
/// show the moment it does not. The harness's CPU share and the machine's CPU and I/O
/// pressure are therefore reported but judged only when a scenario sets a bound below 1
/// (a closed model that saturates the CPU on purpose, as a throughput run does, is not
/// overloaded unless it runs late). Memory pressure is judged only past half the time: a
/// machine stalled on memory that long stalls every thread of the process for seconds at a
/// time, while a CI host reclaiming page cache during parallel builds showed 10 % with 22 GB
/// available and a harness that woke on time.
impl Default for OverloadBounds {
    fn default() -> Self {
        OverloadBounds {
            lag_p99_ms: 20.0,
            cpu_share: 1.0,
            cpu_pressure: 1.0,
            memory_pressure: 0.5,
            io_pressure: 1.0,
        }
    }
}

impl HarnessHealth {
    /// Whether latencies measured in this run can be trusted to be the system's.
    pub fn is_overloaded(&self) -> bool {
        !self.overloaded.is_empty()
    }

    /// `the load generator was overloaded (lag p99 34.2 ms > 20 ms (n = 6,012); ...)`, or
    /// `None` when it was not.
    pub fn overload_note(&self) -> Option<String> {
        self.is_overloaded().then(|| {
            format!(
                "the load generator was overloaded ({})",
                self.overloaded.join("; ")
            )
        })
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
