//! The scenario's `[[restarts]]` as they happened: when the embedded mock-ld stopped and
//! started again, what it held of the received events across the restart (from its
//! journal), and how long the SDKs' streams took to come back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `[[restarts]]` entry of the scenario, as run.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartWindow {
    #[serde(default)]
    pub description: Option<String>,
    /// When the scenario asked for it, ms after the load started, and how long mock-ld was
    /// to stay down.
    pub planned_at_ms: f64,
    pub planned_down_ms: f64,
    /// When mock-ld was stopped, ms after the load started; absent when the load ended
    /// first.
    #[serde(default)]
    pub stopped_ms: Option<f64>,
    /// When it listened again; absent when it could not start (see `error`).
    #[serde(default)]
    pub started_ms: Option<f64>,
    /// Events mock-ld had taken in the scenario's environment (every kind), read in-process
    /// once it had stopped and no request was being handled: exactly the events of the
    /// payloads it recorded and journaled (each answered 202, unless the stop cut the
    /// answer off). Absent when something of it still ran after the stop's wait.
    #[serde(default)]
    pub events_before: Option<u64>,
    /// Events of the environment it read back from its journal when it started again
    /// (none sent since): exactly `eventsBefore` when nothing it took was lost.
    #[serde(default)]
    pub events_after: Option<u64>,
    /// SDK streams open in the scenario's environment just before it stopped.
    #[serde(default)]
    pub streams_before: Option<u64>,
    /// How long after it started again as many were open: the SDKs' reconnect, backoff
    /// included; absent when they were not back before the load ended.
    #[serde(default)]
    pub streams_back_ms: Option<f64>,
    /// Why it did not happen as planned.
    #[serde(default)]
    pub error: Option<String>,
}

impl RestartWindow {
    /// The events read back after the start against those taken before the stop: `Equal`
    /// when exactly those were kept; `None` when either count could not be read.
    pub fn read_back(&self) -> Option<std::cmp::Ordering> {
        Some(self.events_after?.cmp(&self.events_before?))
    }

    /// Whether exactly the events taken before the stop were read back after the start;
    /// `None` when either count could not be read.
    pub fn events_kept(&self) -> Option<bool> {
        Some(self.read_back()?.is_eq())
    }

    /// `4.0–6.1 s`, or the planned window with what became of it.
    pub fn window(&self) -> String {
        let s = |ms: f64| format!("{:.1}", ms / 1000.0);
        match (self.stopped_ms, self.started_ms) {
            (Some(stop), Some(start)) => format!("{}–{} s", s(stop), s(start)),
            (Some(stop), None) => format!("{}– s (not started again)", s(stop)),
            _ => format!(
                "planned {}–{} s, not stopped",
                s(self.planned_at_ms),
                s(self.planned_at_ms + self.planned_down_ms)
            ),
        }
    }
}
