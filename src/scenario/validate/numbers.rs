//! Bounded numbers and durations, and how their errors say so.

use std::time::Duration;

use super::{Checker, Seg};
use crate::scenario::bounds::{self, count, need};
use crate::scenario::error::ScenarioError;

/// `duration` is at most `max`; `why` is appended to the message.
pub(super) fn at_most(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    duration: Duration,
    max: Duration,
    why: &str,
) -> Result<(), ScenarioError> {
    if duration <= max {
        return Ok(());
    }
    Err(c.error(
        path,
        format!(
            "{} is too long: at most {}{why}",
            human(duration),
            human(max)
        ),
    ))
}

/// A number as written: `1e300` rather than its 301 digits.
pub(super) fn number(x: f64) -> String {
    if x.is_finite() && x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

pub(super) fn human(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// A count field within `1..=max`; `memory` is the bytes one unit needs, when memory is
/// why there is a bound, and what that unit is.
pub(super) fn in_range(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    (what, n): (&str, u64),
    max: u64,
    memory: Option<(u64, &str)>,
) -> Result<(), ScenarioError> {
    if n == 0 {
        return Err(c.error(path, format!("{what} must be at least 1")));
    }
    if n <= max {
        return Ok(());
    }
    let message = match memory {
        Some((per, unit)) => format!(
            "{what} {} would need about {} (about {} {unit}); at most {}",
            count(n),
            need(n as f64, per),
            bounds::bytes(per as f64),
            count(max)
        ),
        None => format!("{what} {}: at most {}", count(n), count(max)),
    };
    Err(c.error(path, message))
}
