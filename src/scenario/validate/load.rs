//! The load: counts, rates and durations within their bounds, and the open model's schedule
//! within the requests a run can make.

use std::time::Duration;

use super::numbers::{at_most, human, in_range, number};
use super::{Checker, Seg};
use crate::scenario::bounds::{self, count, need};
use crate::scenario::error::ScenarioError;
use crate::scenario::{LoadModel, Scenario, SdkKind};

pub(super) fn check_load(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    check_sizes(s, c)?;
    check_events(s, c)?;
    check_rates(s, c)?;
    check_shape(s, c)?;
    check_sdk(s, c)?;
    check_init_timeout(s, c)?;
    check_overload(s, c)
}

/// `init_timeout`: above 0, and no longer than a run may wait for anything.
fn check_init_timeout(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let timeout = s.load.init_timeout;
    if timeout.is_zero() {
        return Err(c.error(
            &at("init_timeout"),
            "init_timeout is how long each SDK client may take to initialize: above 0",
        ));
    }
    at_most(
        c,
        &at("init_timeout"),
        timeout,
        bounds::MAX_INIT_TIMEOUT,
        "",
    )
}

/// `sdk`, `workers`, `handler` and `parity_sample`: the worker settings only with a
/// worker SDK, within bounds, and a handler in its language's form.
fn check_sdk(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    if load.sdk == SdkKind::Rust {
        for (key, set) in [
            ("workers", load.workers.is_some()),
            ("handler", load.handler.is_some()),
        ] {
            if set {
                return Err(c.error(
                    &at(key),
                    format!(
                        "{key} needs sdk = \"python\" or \"node\" (the Rust SDK runs in-process)"
                    ),
                ));
            }
        }
        return Ok(());
    }
    if let Some(n) = load.workers {
        if n == 0 {
            return Err(c.error(&at("workers"), "workers must be at least 1"));
        }
        in_range(
            c,
            &at("workers"),
            ("workers", n as u64),
            bounds::MAX_WORKERS,
            Some((bounds::BYTES_PER_WORKER, "per worker process")),
        )?;
    }
    if let Some(handler) = &load.handler {
        let (separator, form) = match load.sdk {
            SdkKind::Python => (':', "module:function or file.py:function"),
            _ => ('#', "file.mjs#export"),
        };
        let ok = handler
            .rsplit_once(separator)
            .is_some_and(|(module, name)| !module.is_empty() && !name.is_empty());
        if !ok {
            return Err(c.error(
                &at("handler"),
                format!("handler {handler:?} is not of the form {form}"),
            ));
        }
        // A file handler was made absolute beside the scenario (`parse::handler_beside`).
        let module = handler.rsplit_once(separator).map_or("", |(m, _)| m);
        if std::path::Path::new(module).is_absolute() && !std::path::Path::new(module).is_file() {
            return Err(c.error(
                &at("handler"),
                format!("handler file {module} does not exist"),
            ));
        }
    }
    at_most_count(
        c,
        "parity_sample",
        load.parity_sample,
        bounds::MAX_PARITY_SAMPLE,
    )
}

fn at_most_count(c: &Checker<'_>, key: &str, n: u64, most: u64) -> Result<(), ScenarioError> {
    if n > most {
        return Err(c.error(
            &at(key),
            format!("{key} {} is more than {}", count(n), count(most)),
        ));
    }
    Ok(())
}

/// `[load.overload]`: a lag above 0, shares of time from 0 to 1.
fn check_overload(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let o = &s.load.overload;
    let at = |key| [Seg::Key("load"), Seg::Key("overload"), Seg::Key(key)];
    if let Some(lag) = o.lag_p99 {
        if lag.is_zero() {
            return Err(c.error(&at("lag_p99"), "lag_p99 must be above 0"));
        }
        at_most(c, &at("lag_p99"), lag, bounds::MAX_DURATION, "")?;
    }
    for (key, share) in [
        ("cpu_share", o.cpu_share),
        ("cpu_pressure", o.cpu_pressure),
        ("memory_pressure", o.memory_pressure),
        ("io_pressure", o.io_pressure),
    ] {
        if let Some(x) = share.filter(|x| !(0.0..=1.0).contains(x)) {
            return Err(c.error(
                &at(key),
                format!("{key} {} is not a share of time from 0 to 1", number(x)),
            ));
        }
    }
    Ok(())
}

fn at(key: &str) -> [Seg<'_>; 2] {
    [Seg::Key("load"), Seg::Key(key)]
}

/// The population, virtual users, SDK clients and requests in flight: what memory grows with.
fn check_sizes(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    if s.population.count == 0 {
        return Err(c.error(
            &[Seg::Key("population"), Seg::Key("count")],
            "a population needs at least one context",
        ));
    }
    in_range(
        c,
        &[Seg::Key("population"), Seg::Key("count")],
        ("a population of", s.population.count),
        bounds::MAX_POPULATION,
        None,
    )
    .map_err(|e| ScenarioError {
        message: format!(
            "{} contexts (more than a run can request: at most {} requests)",
            e.message,
            count(bounds::MAX_REQUESTS)
        ),
        ..e
    })?;
    in_range(
        c,
        &at("concurrency"),
        ("concurrency", load.concurrency as u64),
        bounds::MAX_CONCURRENCY,
        Some((
            bounds::BYTES_PER_VIRTUAL_USER,
            "per virtual user (a task and its connection); for more load, use the open model",
        )),
    )?;
    let clients = load.sdk_clients as u64;
    in_range(
        c,
        &at("sdk_clients"),
        ("sdk_clients", clients),
        bounds::MAX_SDK_CLIENTS,
        Some((
            bounds::BYTES_PER_SDK_CLIENT,
            "and six threads per client, besides its event buffers",
        )),
    )?;
    in_range(
        c,
        &at("max_in_flight"),
        ("max_in_flight", load.max_in_flight as u64),
        bounds::MAX_IN_FLIGHT,
        Some((
            bounds::BYTES_PER_REQUEST_IN_FLIGHT,
            "per request in flight, when full",
        )),
    )?;
    Ok(())
}

/// The SDK's event buffers, the flush interval and the stall limit.
fn check_events(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    let clients = load.sdk_clients as u64;
    let events = [Seg::Key("load"), Seg::Key("events")];
    let capacity = load.events.capacity as u64;
    let capacity_path = [events[0], events[1], Seg::Key("capacity")];
    in_range(
        c,
        &capacity_path,
        ("capacity", capacity),
        bounds::MAX_EVENTS_CAPACITY,
        Some((
            bounds::BYTES_PER_EVENT_SLOT * clients,
            "per slot for all SDK clients: the SDK allocates its buffers at full capacity",
        )),
    )?;
    let flush = [events[0], events[1], Seg::Key("flush_interval")];
    if load.events.flush_interval.is_zero() {
        return Err(c.error(&flush, "flush_interval must be above 0"));
    }
    at_most(
        c,
        &flush,
        load.events.flush_interval,
        bounds::MAX_FLUSH_INTERVAL,
        "",
    )?;
    if let Some(stall) = load.stall_after {
        at_most(c, &at("stall_after"), stall, bounds::MAX_DURATION, "")?;
    }
    Ok(())
}

/// Iterations, the open model's rate, duration and stages.
fn check_rates(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    if let Some(n) = load.iterations {
        in_range(
            c,
            &at("iterations"),
            ("iterations", n),
            bounds::MAX_REQUESTS,
            None,
        )?;
    }
    if let Some(rate) = load.rate {
        if !(rate.is_finite() && rate > 0.0 && rate <= bounds::MAX_RATE) {
            return Err(c.error(
                &at("rate"),
                format!(
                    "rate {} is not a number of requests per second above 0 and at most {}",
                    number(rate),
                    count(bounds::MAX_RATE as u64)
                ),
            ));
        }
    }
    if let Some(duration) = load.duration {
        if duration.is_zero() {
            return Err(c.error(&at("duration"), "duration must be above 0"));
        }
        open_duration(c, &at("duration"), duration)?;
    }
    for (i, stage) in load.stages.iter().enumerate() {
        let path = |k| {
            [
                Seg::Key("load"),
                Seg::Key("stages"),
                Seg::Index(i),
                Seg::Key(k),
            ]
        };
        if !(stage.target.is_finite() && stage.target >= 0.0 && stage.target <= bounds::MAX_RATE) {
            return Err(c.error(
                &path("target"),
                format!(
                    "stage targets are requests per second, at least 0 and at most {}",
                    count(bounds::MAX_RATE as u64)
                ),
            ));
        }
        if stage.duration.is_zero() {
            return Err(c.error(&path("duration"), "a stage lasts more than 0s"));
        }
    }
    let stages: Duration = load.stages.iter().map(|st| st.duration).sum();
    open_duration(c, &at("stages"), stages)?;
    Ok(())
}

/// The load model's shape: the open model's schedule within the requests a run can make,
/// the closed model's requests within them too.
fn check_shape(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    if load.concurrency == 0 || load.sdk_clients == 0 || load.max_in_flight == 0 {
        return Err(c.error(
            &at("concurrency"),
            "concurrency, sdk_clients and max_in_flight must be at least 1",
        ));
    }
    if load.model == LoadModel::Open {
        let rate_ok = load.rate.is_some_and(|r| r > 0.0) && load.duration.is_some();
        if !rate_ok && load.stages.is_empty() {
            return Err(c.error(
                &at("model"),
                "the open model needs `rate` with `duration`, or `stages`",
            ));
        }
        // What `runner::schedule` integrates: the stages' trapezoids, or rate × duration.
        let total = if load.stages.is_empty() {
            load.rate.unwrap_or(0.0) * load.duration.unwrap_or_default().as_secs_f64()
        } else {
            let mut from = 0.0;
            load.stages
                .iter()
                .map(|st| {
                    let part = st.duration.as_secs_f64() * (from + st.target) / 2.0;
                    from = st.target;
                    part
                })
                .sum()
        };
        if total > bounds::MAX_REQUESTS as f64 {
            let field = if !load.stages.is_empty() {
                "stages"
            } else if s.overrides.contains_key("load.duration")
                && !s.overrides.contains_key("load.rate")
            {
                "duration"
            } else {
                "rate"
            };
            return Err(c.error(
                &at(field),
                format!(
                    "the schedule makes {} requests: at most {} (about a quarter of an hour at the harness's ~110,000 evaluations/s)",
                    count(total as u64),
                    count(bounds::MAX_REQUESTS),
                ),
            ));
        }
    } else if load.iterations.is_none() && s.population.count > bounds::MAX_REQUESTS {
        return Err(c.error(
            &[Seg::Key("population"), Seg::Key("count")],
            "one request per context is more than a run makes: set `load.iterations`",
        ));
    }
    Ok(())
}

/// An open-model load's length: its per-second timeline costs memory.
pub(super) fn open_duration(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    d: Duration,
) -> Result<(), ScenarioError> {
    if d <= bounds::MAX_OPEN_DURATION {
        return Ok(());
    }
    Err(c.error(
        path,
        format!(
            "a load of {} would need about {} for its per-second timeline and the events it stores (about {} per second); at most {}",
            human(d),
            need(d.as_secs_f64(), bounds::BYTES_PER_OPEN_SECOND),
            bounds::bytes(bounds::BYTES_PER_OPEN_SECOND as f64),
            human(bounds::MAX_OPEN_DURATION)
        ),
    ))
}
