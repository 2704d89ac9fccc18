//! What users got while LaunchDarkly or the provider misbehaved: the fault timeline
//! (`results.faults`) as a table with the fallback served during and after each window,
//! and lines on the SDKs' start-up, mock-ld's restarts (`results.restarts`), refused events
//! and changes made during a fault. The
//! terminal, `summary.md` and `report.html` each render these same rows and lines, and the
//! HTML timeline shades [`bands`].

use super::table::Table;
use crate::results::faults::FaultWindow;
use crate::results::restarts::RestartWindow;
use crate::results::RunResults;

pub const TITLE: &str = "Resilience";

/// Whether the section has anything to show: faults, restarts, or SDK clients that timed
/// out.
pub fn shown(r: &RunResults) -> bool {
    !r.faults.is_empty()
        || !r.restarts.is_empty()
        || r.sdk_start.as_ref().is_some_and(|s| s.timed_out > 0)
}

/// Kind, scope, window on→off, requests affected and payloads/events refused, streams
/// back and fallback served, per fault; `None` when the scenario had none.
pub fn table(r: &RunResults) -> Option<Table> {
    if r.faults.is_empty() {
        return None;
    }
    let after = r
        .faults
        .iter()
        .find_map(|w| w.served.map(|s| s.after_seconds))
        .unwrap_or_default();
    let mut t = Table::new([
        "kind",
        "scope",
        "on → off",
        "requests",
        "payloads refused",
        "events refused",
        "streams back",
        "fallback served",
        format!("fallback {after} s after").as_str(),
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
            w.served.map_or_else(String::new, |s| s.during.describe()),
            w.served.map_or_else(String::new, |s| s.after.describe()),
            w.error
                .clone()
                .or_else(|| w.description.clone())
                .unwrap_or_default(),
        ]);
    }
    Some(t)
}

/// The SDKs' start-up, each restart of mock-ld, what its events intake refused in the
/// scenario's environment over the run (and how much of it the SDKs delivered on a later
/// try), the tracker events accounted for, and the propagation of changes made while a
/// fault was on.
pub fn lines(r: &RunResults) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(s) = &r.sdk_start {
        lines.push(format!("SDK start-up: {}", s.describe()));
    }
    let next = r.restarts.iter().skip(1).map(Some).chain([None]);
    lines.extend(r.restarts.iter().zip(next).map(restart_line));
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
        lines.push(format!("tracker events: {}", a.describe()));
    }
    lines.extend(changes_during_faults(r));
    lines
}

/// Each timed change made while a fault was on, or before the streams it ended were back:
/// how long it took to reach the SDK clients (the action's propagation).
fn changes_during_faults(r: &RunResults) -> Vec<String> {
    let mut lines = Vec::new();
    for a in r.actions.iter().filter(|a| a.kind == "flag") {
        let Some(w) = r.faults.iter().find(|w| affects(w, a.at_ms)) else {
            continue;
        };
        let p = &a.propagation;
        let reached = match (a.error.as_ref(), p.count) {
            (Some(e), _) => format!("not applied: {e}"),
            (None, 0) => "reached no SDK client".to_owned(),
            (None, 1) => format!(
                "reached the SDK client {:.1} s after it was made",
                p.max_ms / 1000.0
            ),
            (None, n) => format!(
                "reached {n} SDK clients {:.1}–{:.1} s after it was made",
                p.min_ms / 1000.0,
                p.max_ms / 1000.0
            ),
        };
        let missed = match a.clients_missed {
            0 => String::new(),
            n => format!("; {n} never saw it"),
        };
        lines.push(format!(
            "change to {} at {:.1} s, during {} ({}): {reached}{missed}",
            a.config,
            a.at_ms / 1000.0,
            w.fault.kind.name(),
            w.window()
        ));
    }
    lines
}

/// Whether a change made at `at_ms` met the fault: while it was on, or before the streams
/// it ended were back.
fn affects(w: &FaultWindow, at_ms: f64) -> bool {
    let Some(on) = w.on_ms else { return false };
    let off = w.off_ms.unwrap_or(f64::INFINITY);
    let back = match w.recovery() {
        Ok(Some(ms)) => off + ms,
        Err(_) => f64::INFINITY,
        Ok(None) => off,
    };
    (on..back).contains(&at_ms)
}

/// "mock-ld restarted 3.1–5.3 s: 827 events taken before, 827 read back from its
/// journal (none lost); streams back 0.7 s after the start". The streams are waited for
/// until the `next` restart stops mock-ld again, or the load ends.
fn restart_line((w, next): (&RestartWindow, Option<&RestartWindow>)) -> String {
    let mut line = format!("mock-ld restarted {}", w.window());
    if let (Some(before), Some(after), Some(read_back)) =
        (w.events_before, w.events_after, w.read_back())
    {
        let kept = match read_back {
            std::cmp::Ordering::Equal => "none lost",
            std::cmp::Ordering::Less => "EVENTS LOST",
            std::cmp::Ordering::Greater => "MORE READ BACK THAN TAKEN",
        };
        line +=
            &format!(": {before} events taken before, {after} read back from its journal ({kept})");
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
        // A start-up fault went on before the load: shaded from its start.
        let on = w.on_ms?.max(0.0);
        let off = w.off_ms.unwrap_or(r.duration_ms).max(on);
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
