//! How the SDK clients started: how long each took to initialize within the application's
//! wait (`load.init_timeout`), which timed out (only with a start-up fault planned; without
//! one a timeout is a run error), and when those initialized after the load had started.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::latency::{empty_histogram, LatencySummary, MAX_MICROS};

/// The run's SDK clients at start-up: the Rust SDK's clients, or one per worker process
/// (each runs one client and reports its own start).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkStart {
    pub clients: u64,
    /// How long the application waited for each (`load.init_timeout`).
    pub timeout_ms: f64,
    /// A start-up fault was planned: a timeout let the load start uninitialized.
    pub startup_fault: bool,
    pub initialized_within_timeout: u64,
    pub timed_out: u64,
    /// Initialization time of the clients that initialized within the wait (n = them).
    pub init: LatencySummary,
    /// Of the clients that timed out, when each initialized, in ms after the load started
    /// (0: between the timeout and the load's start); n = those that did before the run
    /// ended.
    pub initialized_later: LatencySummary,
    /// Timed out and still not initialized when the run ended.
    pub never_initialized: u64,
}

/// One client's start, as the runner or a worker measured it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientStart {
    /// The wait: its initialization time, or the timeout when it timed out.
    pub waited_ms: f64,
    pub initialized: bool,
    /// A client that timed out: ms after the load started when it initialized (at least
    /// 0), or `None` if it had not when the run ended.
    pub later_ms: Option<f64>,
}

impl SdkStart {
    pub fn of(timeout_ms: f64, startup_fault: bool, clients: &[ClientStart]) -> Self {
        let mut init = empty_histogram();
        let mut later = empty_histogram();
        let micros = |ms: f64| ((ms * 1e3) as u64).clamp(1, MAX_MICROS);
        for c in clients {
            let (histogram, ms) = match (c.initialized, c.later_ms) {
                (true, _) => (&mut init, c.waited_ms),
                (false, Some(ms)) => (&mut later, ms),
                (false, None) => continue,
            };
            histogram.record(micros(ms)).expect("clamped into range");
        }
        let within = clients.iter().filter(|c| c.initialized).count() as u64;
        SdkStart {
            clients: clients.len() as u64,
            timeout_ms,
            startup_fault,
            initialized_within_timeout: within,
            timed_out: clients.len() as u64 - within,
            init: LatencySummary::of(&init),
            initialized_later: LatencySummary::of(&later),
            never_initialized: clients
                .iter()
                .filter(|c| !c.initialized && c.later_ms.is_none())
                .count() as u64,
        }
    }

    /// "2 SDK clients: 0 initialized within 2.0 s, 2 timed out (then initialized 4.1–4.3 s
    /// into the load)": the one wording every report uses.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} SDK client{}: {} initialized within {:.1} s",
            self.clients,
            if self.clients == 1 { "" } else { "s" },
            self.initialized_within_timeout,
            self.timeout_ms / 1000.0
        );
        if self.init.count > 0 {
            text += &format!(" (in {:.0}–{:.0} ms)", self.init.min_ms, self.init.max_ms);
        }
        if self.timed_out > 0 {
            text += &format!(", {} timed out and served the fallback", self.timed_out);
            let l = &self.initialized_later;
            if l.count == 1 {
                text += &format!("; it initialized {:.1} s into the load", l.max_ms / 1000.0);
            } else if l.count > 1 {
                text += &format!(
                    "; {} initialized {:.1}–{:.1} s into the load",
                    l.count,
                    l.min_ms / 1000.0,
                    l.max_ms / 1000.0
                );
            }
            if self.never_initialized > 0 {
                text += &format!(
                    "; {} never initialized before the run ended",
                    self.never_initialized
                );
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_out_clients_are_counted_apart_from_the_init_times() {
        let start = SdkStart::of(
            2000.0,
            true,
            &[
                ClientStart {
                    waited_ms: 12.0,
                    initialized: true,
                    later_ms: None,
                },
                ClientStart {
                    waited_ms: 2000.0,
                    initialized: false,
                    later_ms: Some(4100.0),
                },
                ClientStart {
                    waited_ms: 2000.0,
                    initialized: false,
                    later_ms: None,
                },
            ],
        );
        assert_eq!(start.clients, 3);
        assert_eq!(start.initialized_within_timeout, 1);
        assert_eq!(start.timed_out, 2);
        assert_eq!(start.init.count, 1);
        assert_eq!(start.initialized_later.count, 1);
        assert_eq!(start.never_initialized, 1);
        let text = start.describe();
        assert!(text.contains("2 timed out"), "{text}");
        assert!(text.contains("1 never initialized"), "{text}");
    }
}
