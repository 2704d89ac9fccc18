//! The fault timeline as it happened: each `[[faults]]` entry's planned window, when mock-ld
//! actually switched it on and off, what it refused meanwhile, and the events payloads mock-ld
//! refused in the scenario's environment over the run. The fault itself and its counts are
//! mock-ld's own types (`mock_ld::faults`), not copies.

use mock_ld::faults::registry::{CountsRead, RefusedEvents};

use super::EventResults;
use mock_ld::faults::FaultSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `[[faults]]` entry of the scenario, as run.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultWindow {
    /// The fault as sent to `POST /admin/faults`, with mock-ld's defaults filled in
    /// (status, `retryAfter`, project and environment or model).
    pub fault: FaultSpec,
    #[serde(default)]
    pub description: Option<String>,
    /// When the scenario asked for it, ms after the load started, and for how long.
    pub planned_at_ms: f64,
    pub planned_duration_ms: f64,
    /// When mock-ld's answer to switching it on arrived, ms after the load started; absent
    /// when it never went on (the load ended first, or mock-ld refused it).
    #[serde(default)]
    pub on_ms: Option<f64>,
    /// When mock-ld's answer to switching it off arrived; absent while it was never on or
    /// could not be switched off (see `error`).
    #[serde(default)]
    pub off_ms: Option<f64>,
    /// mock-ld's id for it.
    #[serde(default)]
    pub id: Option<u64>,
    /// What it answered, held or refused while on, as mock-ld counted (from its final
    /// record, or its record when switched on if switching off failed).
    #[serde(default)]
    pub counts: CountsRead,
    /// Why it was not applied as planned: mock-ld refused it, switching it off failed, or
    /// the load ended before it was due.
    #[serde(default)]
    pub error: Option<String>,
    /// Faults that end the environment's streams (`streamRefused`, `streamDropped`,
    /// `sdkUnavailable`): the SDK streams open there just before it went on, as mock-ld
    /// counted them, every SDK's (Python and Node workers' too).
    #[serde(default)]
    pub streams_before: Option<u64>,
    /// How long after it went off as many streams were open again: the SDKs' reconnect
    /// (their backoff included); absent when they were not back before the load ended
    /// (or within a minute).
    #[serde(default)]
    pub streams_back_ms: Option<f64>,
    /// A start-up fault (`at = "0s"` of a kind the SDKs' initialization meets): switched on
    /// before the SDK clients started, so `onMs` is negative (before the load) and its
    /// duration counts from then.
    #[serde(default)]
    pub at_startup: bool,
    /// What the application served while it was on and just after, from the per-second
    /// timeline; `None` when it never went on.
    #[serde(default)]
    pub served: Option<WindowServed>,
}

/// Evaluations (AI Config steps) and how many of them served the fallback: the SDK default
/// the AI layer gets when the SDK cannot evaluate (not initialized), the "(default)"
/// variation of the results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    pub evaluations: u64,
    pub fallback: u64,
}

impl Served {
    /// "120 of 250 (48.0 %)".
    pub fn describe(&self) -> String {
        match self.evaluations {
            0 => "no evaluations".to_owned(),
            n => format!(
                "{} of {n} ({:.1} %)",
                self.fallback,
                self.fallback as f64 * 100.0 / n as f64
            ),
        }
    }
}

/// A fault window's evaluations, in whole seconds of the timeline (requests by the second
/// they were scheduled to start): the seconds it overlapped, and the `afterSeconds` after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowServed {
    /// Seconds `fromSecond` up to (not including) `toSecond` of the load.
    pub from_second: u64,
    pub to_second: u64,
    pub during: Served,
    pub after_seconds: u64,
    pub after: Served,
}

impl FaultWindow {
    /// "1.2 s after off", "not back before the load ended", or "" for a fault that leaves streams alone.
    pub fn streams_back(&self) -> String {
        match (self.streams_before, self.streams_back_ms, self.off_ms) {
            (None, ..) => String::new(),
            (Some(_), Some(ms), _) => format!("{:.1} s after off", ms / 1000.0),
            (Some(_), None, Some(_)) => "not back before the load ended".to_owned(),
            (Some(_), None, None) => String::new(),
        }
    }

    /// Where it acts: `default/test` for an SDK fault, `model gpt-4o` or `every model`.
    pub fn scope(&self) -> String {
        match (
            &self.fault.project,
            &self.fault.environment,
            &self.fault.model,
        ) {
            (Some(p), Some(e), _) => format!("{p}/{e}"),
            (_, _, Some(model)) => format!("model {model}"),
            _ if self.fault.kind.is_llm() => "every model".to_owned(),
            _ => String::new(),
        }
    }

    /// The longest an SDK stream-ending fault kept the streams away after it went off:
    /// `Ok(Some(ms))` when they came back, `Err(off_ms)` when they were not back before the
    /// load ended, `Ok(None)` for a fault that ends no streams or never went off.
    pub fn recovery(&self) -> Result<Option<f64>, f64> {
        match (self.streams_before, self.off_ms, self.streams_back_ms) {
            (Some(_), Some(_), Some(ms)) => Ok(Some(ms)),
            (Some(_), Some(off), None) => Err(off),
            _ => Ok(None),
        }
    }

    /// `2.0–7.0 s`, or the planned window with what became of it.
    pub fn window(&self) -> String {
        let s = |ms: f64| format!("{:.1}", ms / 1000.0);
        match (self.on_ms, self.off_ms) {
            (Some(on), Some(off)) => format!("{}–{} s", s(on), s(off)),
            (Some(on), None) => format!("{}– s (not switched off)", s(on)),
            _ => format!(
                "planned {}–{} s, not on",
                s(self.planned_at_ms),
                s(self.planned_at_ms + self.planned_duration_ms)
            ),
        }
    }
}

/// No refusals in the scenario's environment: what mock-ld lists for one it has not seen.
pub fn empty_refusals(project: &str, environment: &str) -> RefusedEvents {
    RefusedEvents {
        project: project.to_owned(),
        environment: environment.to_owned(),
        ..RefusedEvents::default()
    }
}

/// Refused and retried events payloads in one environment over the run: mock-ld's totals
/// at the end minus those before the load (a mock-ld shared by earlier runs keeps counting),
/// or the totals at the end whole if they were reset meanwhile ([`RefusedEvents::since`]).
pub fn refused_since(before: Option<&RefusedEvents>, after: &RefusedEvents) -> RefusedEvents {
    after.since(&before.cloned().unwrap_or_default())
}

/// The run's tracker events accounted for when faults were on: every event the AI layer
/// handed to an SDK was received by mock-ld, refused by its fault layer and never sent
/// again (each SDK sends a refused payload once more, a second later, then drops it), or
/// never received at all (dropped by the SDK, or sent while mock-ld could not take it).
/// `tracked = received + refused + neverReceived`, custom events only, as mock-ld counts
/// them: the SDKs' own index, feature and summary events are not the application's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventAccounting {
    pub tracked: u64,
    pub received: u64,
    /// Refused by mock-ld's fault layer and not taken on a later try.
    pub refused: u64,
    /// The rest: `tracked - received - refused`, never below 0.
    pub never_received: u64,
    /// By how much `received + refused` exceeds `tracked`: 0 when the sum holds. More means
    /// an event was counted twice (a refused payload taken on its retry but not known as
    /// one: sent without a payload id, or past mock-ld's bound of refused ids), so the three
    /// parts do not add up and say so.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub over_counted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EventAccounting {
    pub fn of(events: &EventResults, refused: &RefusedEvents) -> Self {
        let tracked: u64 = events.tracked.values().sum();
        let received: u64 = events.received.values().sum();
        let refused = refused
            .refused_custom_events
            .saturating_sub(refused.retried_custom_events);
        EventAccounting {
            tracked,
            received,
            refused,
            never_received: tracked.saturating_sub(received).saturating_sub(refused),
            over_counted: (received + refused).saturating_sub(tracked),
        }
    }

    /// One line for every channel: the sum, or why it does not hold.
    pub fn describe(&self) -> String {
        let sum = format!(
            "{} received + {} refused by faults, not sent again + {} never received",
            self.received, self.refused, self.never_received
        );
        if self.over_counted == 0 {
            format!(
                "{} tracked = {sum} (dropped by the SDK or sent while mock-ld could not take them)",
                self.tracked
            )
        } else {
            format!(
                "{} tracked, but {sum}: {} more than tracked, counted twice (a refused payload's retry not known as one: without a payload id, or past mock-ld's bound of refused ids)",
                self.tracked, self.over_counted
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounting(tracked: u64, received: u64, refused: u64, retried: u64) -> EventAccounting {
        let events = EventResults {
            tracked: [("$ld:ai:generation:success".to_owned(), tracked)].into(),
            received: [("$ld:ai:generation:success".to_owned(), received)].into(),
            ..EventResults::default()
        };
        let refusals = RefusedEvents {
            refused_custom_events: refused,
            retried_custom_events: retried,
            ..RefusedEvents::default()
        };
        EventAccounting::of(&events, &refusals)
    }

    #[test]
    fn the_three_parts_add_up_to_what_was_tracked() {
        // 30 refused, 10 of them taken on their retry (so among the 80 received).
        let a = accounting(100, 80, 30, 10);
        assert_eq!((a.refused, a.never_received, a.over_counted), (20, 0, 0));
        assert_eq!(
            a.describe(),
            "100 tracked = 80 received + 20 refused by faults, not sent again + 0 never received (dropped by the SDK or sent while mock-ld could not take them)"
        );
        let a = accounting(100, 70, 20, 0);
        assert_eq!((a.never_received, a.over_counted), (10, 0));
    }

    /// A retry taken but not known as one is both received and refused: the line says the
    /// sum does not hold instead of printing one that is false.
    #[test]
    fn events_counted_twice_are_shown_not_hidden() {
        let a = accounting(100, 90, 20, 0);
        assert_eq!((a.never_received, a.over_counted), (0, 10));
        let line = a.describe();
        assert!(line.starts_with("100 tracked, but 90 received"), "{line}");
        assert!(
            line.contains("10 more than tracked, counted twice"),
            "{line}"
        );
    }
}
