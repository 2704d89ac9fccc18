//! The fault timeline (`results.faults`): one table and one line on refused events, which
//! the terminal, `summary.md` and `report.html` each render, and the bands the HTML
//! timeline shades.

use super::table::Table;
use crate::results::RunResults;

pub const TITLE: &str = "Faults";

/// Kind, scope, window on→off, requests affected and payloads/events refused, per fault;
/// `None` when the scenario had none.
pub fn table(r: &RunResults) -> Option<Table> {
    if r.faults.is_empty() {
        return None;
    }
    let mut t = Table::new([
        "kind",
        "scope",
        "on → off",
        "requests",
        "payloads refused",
        "events refused",
        "note",
    ]);
    for w in &r.faults {
        t.push([
            w.fault.kind.name().to_owned(),
            w.scope(),
            w.window(),
            w.counts.requests.to_string(),
            w.counts.payloads.to_string(),
            w.counts.events.to_string(),
            w.error
                .clone()
                .or_else(|| w.description.clone())
                .unwrap_or_default(),
        ]);
    }
    Some(t)
}

/// What mock-ld's events intake refused in the scenario's environment over the run, and
/// how much of it the SDKs delivered on a later try.
pub fn refused_line(r: &RunResults) -> Option<String> {
    let e = r.refused_events.as_ref()?;
    Some(format!(
        "events refused in {}/{}: {} payloads ({} events); sent again and taken: {} payloads ({} events)",
        e.project,
        e.environment,
        e.refused_payloads,
        e.refused_events,
        e.retried_payloads,
        e.retried_events
    ))
}

/// Each fault that was on: (from s, to s, kind), for shading a timeline. A fault never
/// switched off is shaded to the end of the run.
pub fn bands(r: &RunResults) -> Vec<(f64, f64, String)> {
    r.faults
        .iter()
        .filter_map(|w| {
            let on = w.on_ms?;
            let off = w.off_ms.unwrap_or(r.duration_ms);
            Some((on / 1000.0, off / 1000.0, w.fault.kind.name().to_owned()))
        })
        .collect()
}
