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
        "streams back",
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
            w.streams_back(),
            w.error
                .clone()
                .or_else(|| w.description.clone())
                .unwrap_or_default(),
        ]);
    }
    Some(t)
}

/// What mock-ld's events intake refused in the scenario's environment over the run, how
/// much of it the SDKs delivered on a later try, and the tracker events accounted for.
pub fn refused_lines(r: &RunResults) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(e) = &r.refused_events {
        lines.push(format!(
            "events refused in {}/{}: {} payloads ({} events, {} custom) in {} attempts; sent again and taken: {} payloads ({} events)",
            e.project,
            e.environment,
            e.refused_payloads,
            e.refused_events,
            e.refused_custom_events,
            e.refused_attempts,
            e.retried_payloads,
            e.retried_events
        ));
    }
    if let Some(a) = &r.event_accounting {
        lines.push(format!(
            "tracker events: {} tracked = {} received + {} refused by faults, not sent again + {} never received (dropped by the SDK or sent while mock-ld could not take them)",
            a.tracked, a.received, a.refused, a.never_received
        ));
    }
    lines
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
