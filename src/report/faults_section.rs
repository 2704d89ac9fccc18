//! The fault timeline (`results.faults`, `results.restarts`): one table of faults and lines
//! on restarts and refused events, which the terminal, `summary.md` and `report.html` each
//! render, and the bands the HTML timeline shades.

use super::table::Table;
use crate::results::restarts::RestartWindow;
use crate::results::RunResults;

pub const TITLE: &str = "Faults";

/// Whether the run had faults or restarts to show.
pub fn shown(r: &RunResults) -> bool {
    !r.faults.is_empty() || !r.restarts.is_empty()
}

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

/// Each restart of mock-ld; what its events intake refused in the scenario's environment
/// over the run and how much of it the SDKs delivered on a later try; and the tracker
/// events accounted for.
pub fn lines(r: &RunResults) -> Vec<String> {
    let next = r.restarts.iter().skip(1).map(Some).chain([None]);
    let mut lines: Vec<String> = r.restarts.iter().zip(next).map(restart_line).collect();
    // Only faults refuse; a run with restarts alone has its accounting to show.
    if let Some(e) = r.refused_events.as_ref().filter(|_| !r.faults.is_empty()) {
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

/// "mock-ld restarted 3.1–5.3 s: 827 events received before, 958 read back from its
/// journal (none lost); streams back 0.7 s after the start". The streams are waited for
/// until the `next` restart stops mock-ld again, or the load ends.
fn restart_line((w, next): (&RestartWindow, Option<&RestartWindow>)) -> String {
    let mut line = format!("mock-ld restarted {}", w.window());
    if let (Some(before), Some(after)) = (w.events_before, w.events_after) {
        let kept = match w.events_kept() {
            Some(true) => "none lost",
            _ => "EVENTS LOST",
        };
        line += &format!(
            ": {before} events received before, {after} read back from its journal ({kept})"
        );
    }
    match (w.streams_before, w.streams_back_ms, w.started_ms) {
        (Some(_), Some(ms), _) => {
            line += &format!("; streams back {:.1} s after the start", ms / 1000.0)
        }
        (Some(_), None, Some(_)) => match next.and_then(|n| n.stopped_ms) {
            Some(_) => line += "; streams not back before the next restart",
            None => line += "; streams not back before the load ended",
        },
        _ => {}
    }
    if let Some(e) = w.error.as_ref().or(w.description.as_ref()) {
        line += &format!(" ({e})");
    }
    line
}

/// Each fault that was on and each restart's down time: (from s, to s, label), for shading
/// a timeline. A fault never switched off is shaded to the end of the run.
pub fn bands(r: &RunResults) -> Vec<(f64, f64, String)> {
    let faults = r.faults.iter().filter_map(|w| {
        let on = w.on_ms?;
        let off = w.off_ms.unwrap_or(r.duration_ms);
        Some((on / 1000.0, off / 1000.0, w.fault.kind.name().to_owned()))
    });
    let restarts = r.restarts.iter().filter_map(|w| {
        let stop = w.stopped_ms?;
        let start = w.started_ms.unwrap_or(r.duration_ms);
        Some((stop / 1000.0, start / 1000.0, "mock-ld down".to_owned()))
    });
    faults.chain(restarts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(restarts: Vec<RestartWindow>) -> RunResults {
        let text = "name = \"t\"\n[population]\ncount = 1\n[[ai_configs]]\nkey = \"a\"\n[[ai_configs.variations]]\nkey = \"v\"\nmodel = { name = \"m\" }\n";
        let s = crate::scenario::parse("t.toml".as_ref(), text).unwrap();
        let mut r = crate::runner::setup_failed(&s, "none");
        r.restarts = restarts;
        r
    }

    #[test]
    fn streams_cut_off_by_the_next_restart_are_not_said_cut_off_by_the_load_end() {
        let window = |at: f64| RestartWindow {
            stopped_ms: Some(at),
            started_ms: Some(at + 1000.0),
            streams_before: Some(1),
            ..RestartWindow::default()
        };
        let lines = lines(&results(vec![window(1000.0), window(2000.0)]));
        assert!(
            lines[0].ends_with("streams not back before the next restart"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with("streams not back before the load ended"),
            "{lines:?}"
        );
    }
}
