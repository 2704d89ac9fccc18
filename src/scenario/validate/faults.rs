//! `[[faults]]`: within their bounds, in whole seconds and milliseconds where mock-ld counts
//! so, aimed at what exists, and what mock-ld's own check (`FaultSpec::check`) would refuse
//! refused here first, at the key it names.

use std::time::Duration;

use super::numbers::{at_most, human};
use super::{Checker, Seg};
use crate::scenario::bounds;
use crate::scenario::error::ScenarioError;
use crate::scenario::{Load, LoadModel, Scenario, TimedFault};

pub(super) fn check_faults(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    if s.faults.len() > bounds::MAX_FAULTS {
        return Err(c.error(
            &[Seg::Key("faults"), Seg::Index(bounds::MAX_FAULTS)],
            format!(
                "{} faults: at most {} in a scenario",
                s.faults.len(),
                bounds::MAX_FAULTS
            ),
        ));
    }
    for (i, fault) in s.faults.iter().enumerate() {
        check_fault(s, fault, i, c)?;
    }
    Ok(())
}

fn check_fault(
    s: &Scenario,
    fault: &TimedFault,
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let path = |k| [Seg::Key("faults"), Seg::Index(i), Seg::Key(k)];
    at_most(c, &path("at"), fault.at, bounds::MAX_DURATION, "")?;
    if fault.duration.is_zero() {
        return Err(c.error(
            &path("duration"),
            "duration is how long the fault stays on: above 0",
        ));
    }
    at_most(
        c,
        &path("duration"),
        fault.duration,
        bounds::MAX_DURATION,
        "",
    )?;
    whole(
        c,
        &path("retry_after"),
        fault.retry_after,
        Duration::from_secs(1),
        "seconds (it is sent as Retry-After)",
    )?;
    whole(
        c,
        &path("latency"),
        fault.latency,
        Duration::from_millis(1),
        "milliseconds",
    )?;
    fault
        .spec(&s.project, &s.environment)
        .check()
        .map_err(|message| c.error(&path(key_of(&message)), message))?;
    if fault.kind.is_llm() {
        check_llm_fault(s, fault, i, c)?;
    }
    check_within_load(&s.load, fault, i, c)
}

/// A duration that is a whole number of `unit`s.
fn whole(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    value: Option<Duration>,
    unit: Duration,
    units: &str,
) -> Result<(), ScenarioError> {
    match value {
        Some(d) if d.as_nanos() % unit.as_nanos() != 0 => Err(c.error(
            path,
            format!("{} is not a whole number of {units}", human(d)),
        )),
        _ => Ok(()),
    }
}

/// The scenario key of the field `FaultSpec::check`'s message starts with (`retryAfter
/// 99999: …`, `status: …`); the kind when it names none.
fn key_of(message: &str) -> &'static str {
    let first = message.split([':', ' ']).next().unwrap_or_default();
    match first {
        "status" => "status",
        "retryAfter" => "retry_after",
        "latencyMs" => "latency",
        "bytesPerSecond" => "bytes_per_second",
        "environment" => "environment",
        "model" => "model",
        _ => "kind",
    }
}

/// A provider fault acts on mock-ld's simulator, on a model the scenario calls.
fn check_llm_fault(
    s: &Scenario,
    fault: &TimedFault,
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let path = |k| [Seg::Key("faults"), Seg::Index(i), Seg::Key(k)];
    if s.llm.url.is_some() {
        return Err(c.error(
            &path("kind"),
            format!(
                "{} is a fault of mock-ld's simulated provider, but [llm] url calls another",
                fault.kind.name()
            ),
        ));
    }
    let Some(model) = &fault.model else {
        return Ok(());
    };
    let known = s.llm.models.contains_key(model)
        || s.ai_configs
            .iter()
            .flat_map(|a| &a.variations)
            .any(|v| &v.model.name == model);
    if known {
        return Ok(());
    }
    Err(c.error(
        &path("model"),
        format!("model {model:?} is neither in [llm.models] nor the model of a variation"),
    ))
}

/// The open model's load lasts a known time: a fault that starts after it never applies
/// (an error), one that outlasts it is switched off when it ends (a warning).
fn check_within_load(
    load: &Load,
    fault: &TimedFault,
    i: usize,
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let Some(length) = known_length(load) else {
        return Ok(());
    };
    let path = |k| [Seg::Key("faults"), Seg::Index(i), Seg::Key(k)];
    if fault.at >= length {
        return Err(c.error(
            &path("at"),
            format!(
                "the load lasts {}: a fault at {} never applies",
                human(length),
                human(fault.at)
            ),
        ));
    }
    if fault.at + fault.duration > length {
        c.warnings.borrow_mut().push(c.error(
            &path("duration"),
            format!(
                "the load lasts {}: the fault is switched off when it ends, {} after it started",
                human(length),
                human(length - fault.at)
            ),
        ));
    }
    Ok(())
}

/// How long an open-model load runs; a closed model's depends on the system under test.
pub(super) fn known_length(load: &Load) -> Option<Duration> {
    if load.model != LoadModel::Open {
        return None;
    }
    if !load.stages.is_empty() {
        return Some(load.stages.iter().map(|s| s.duration).sum());
    }
    load.duration
}
