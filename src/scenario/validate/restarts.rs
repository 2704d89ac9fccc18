//! `[[restarts]]`: within their bounds, inside the load, one at a time, and apart from the
//! faults mock-ld would forget when it restarts (its faults live in memory only).

use std::time::Duration;

use super::faults::known_length;
use super::numbers::{at_most, human};
use super::{Checker, Seg};
use crate::scenario::bounds;
use crate::scenario::error::ScenarioError;
use crate::scenario::{Restart, Scenario};

pub(super) fn check_restarts(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    if s.restarts.len() > bounds::MAX_RESTARTS {
        return Err(c.error(
            &[Seg::Key("restarts"), Seg::Index(bounds::MAX_RESTARTS)],
            format!(
                "{} restarts: at most {} in a scenario",
                s.restarts.len(),
                bounds::MAX_RESTARTS
            ),
        ));
    }
    for (i, restart) in s.restarts.iter().enumerate() {
        check_restart(s, restart, i, c)?;
    }
    Ok(())
}

fn check_restart(
    s: &Scenario,
    restart: &Restart,
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let path = |k| [Seg::Key("restarts"), Seg::Index(i), Seg::Key(k)];
    at_most(c, &path("at"), restart.at, bounds::MAX_DURATION, "")?;
    if restart.down.is_zero() {
        return Err(c.error(
            &path("down"),
            "down is how long mock-ld stays stopped: above 0",
        ));
    }
    at_most(c, &path("down"), restart.down, bounds::MAX_DURATION, "")?;
    if let Some(length) = known_length(&s.load) {
        if restart.at >= length {
            return Err(c.error(
                &path("at"),
                format!(
                    "the load lasts {}: a restart at {} never happens",
                    human(length),
                    human(restart.at)
                ),
            ));
        }
    }
    let window = (restart.at, restart.at + restart.down);
    if let Some(j) = (0..i).find(|&j| overlaps(window, span(&s.restarts[j]))) {
        return Err(c.error(
            &path("at"),
            format!("mock-ld is still down from restarts[{j}] then: one restart at a time"),
        ));
    }
    check_apart_from_faults(s, window, i, c)
}

/// mock-ld forgets its faults when it stops, and a fault cannot be switched while it is
/// down: an SDK or events fault on at any moment of a restart would not be the scenario's.
/// Provider faults act on the simulated provider, which is not restarted.
fn check_apart_from_faults(
    s: &Scenario,
    window: (Duration, Duration),
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let clash = s
        .faults
        .iter()
        .position(|f| !f.kind.is_llm() && overlaps(window, (f.at, f.at + f.duration)));
    match clash {
        None => Ok(()),
        Some(j) => Err(c.error(
            &[Seg::Key("restarts"), Seg::Index(i), Seg::Key("at")],
            format!(
                "faults[{j}] ({}) is on during this restart, and mock-ld forgets its faults when it stops: move one of them",
                s.faults[j].kind.name()
            ),
        )),
    }
}

fn span(r: &Restart) -> (Duration, Duration) {
    (r.at, r.at + r.down)
}

/// Whether two half-open windows `[start, end)` share a moment.
fn overlaps(a: (Duration, Duration), b: (Duration, Duration)) -> bool {
    a.0 < b.1 && b.0 < a.1
}
