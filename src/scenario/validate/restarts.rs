//! `[[restarts]]`: within their bounds, inside the load, in order and one at a time, apart
//! from the faults mock-ld would forget when it restarts (its faults live in memory only)
//! and from the changes its REST API could not take while down.

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
    if c.external_target && !s.restarts.is_empty() {
        // The runner refuses them too (`Restarts::check`); here the error is located.
        return Err(c.error(
            &[Seg::Key("restarts"), Seg::Index(0)],
            "a restart stops and starts the embedded mock-ld; against --ld-url, remove [[restarts]] (or restart that target yourself)",
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
        if restart.at + restart.down > length {
            c.warnings.borrow_mut().push(c.error(
                &path("down"),
                format!(
                    "the load lasts {}: mock-ld is started again when it ends, {} after it stopped",
                    human(length),
                    human(length - restart.at)
                ),
            ));
        }
    }
    if let Some(previous) = i.checked_sub(1).map(|j| &s.restarts[j]) {
        if restart.at < previous.at {
            return Err(c.error(
                &path("at"),
                format!(
                    "restarts run in the order written: this one at {} comes before restarts[{}]'s at {}",
                    human(restart.at),
                    i - 1,
                    human(previous.at)
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
    check_apart_from_faults(s, window, i, c)?;
    check_apart_from_changes(s, window, i, c)
}

/// A change is made through mock-ld's REST API, which is down with it: a change due then
/// would fail because of the scenario, not the system. `llm` actions go to the provider,
/// which is not restarted.
fn check_apart_from_changes(
    s: &Scenario,
    window: (Duration, Duration),
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let due =
        |a: &crate::scenario::Action| a.changes_flags() && window.0 <= a.at && a.at < window.1;
    match s.actions.iter().position(due) {
        None => Ok(()),
        Some(j) => Err(c.error(
            &[Seg::Key("actions"), Seg::Index(j), Seg::Key("at")],
            format!(
                "mock-ld is down then (restarts[{i}], {}–{}), and its REST API with it: the change would fail; move one of them",
                human(window.0),
                human(window.1)
            ),
        )),
    }
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
