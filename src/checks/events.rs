//! Event completeness: the rollout plan's "100 % of AI calls tracked". Every tracker event
//! the AI layer handed to an SDK must have reached mock-ld, key by key; every AI call must
//! show up as a success or error event; every evaluation must be in a summary counter; and
//! no payload may have been rejected. Needs mock-ld's event log, so against LaunchDarkly or
//! a Relay Proxy it is inconclusive.

use crate::results::checks::{
    CheckOutcome, Details, EvaluationCount, EventDetails, KeyCount, Status,
};
use crate::results::{EventResults, RunResults};

/// The events that close an AI call: exactly one of them per call.
const OUTCOME_KEYS: [&str; 2] = ["$ld:ai:generation:success", "$ld:ai:generation:error"];

pub fn outcome(name: String, results: &RunResults) -> CheckOutcome {
    let ai_calls = results
        .configs
        .values()
        .flat_map(|c| c.variations.values())
        .map(|v| v.ai_calls)
        .sum();
    let Some(events) = &results.events else {
        return no_event_log(name, ai_calls);
    };
    let details = details(events, ai_calls);
    let (status, summary) = verdict(&details);
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::EventsComplete(details),
    }
}

fn no_event_log(name: String, ai_calls: u64) -> CheckOutcome {
    let note = "the target has no mock-ld event log to verify against".to_owned();
    let details = EventDetails {
        ai_calls,
        note: Some(note.clone()),
        ..EventDetails::default()
    };
    CheckOutcome {
        name,
        status: Status::Inconclusive,
        summary: note,
        details: Details::EventsComplete(details),
    }
}

fn verdict(d: &EventDetails) -> (Status, String) {
    let uncounted: u64 = d
        .evaluations
        .iter()
        .map(|e| e.evaluations.saturating_sub(e.counted))
        .sum();
    let complete = d.lost_events == 0
        && uncounted == 0
        && d.ai_calls_tracked >= d.ai_calls
        && d.rejected_payloads == 0;
    let tracked: u64 = d.by_key.iter().map(|k| k.tracked).sum();
    let mut summary = format!(
        "{} of {} AI calls tracked; {} of {tracked} tracker events received ({} lost); {uncounted} evaluations missing from summary counters; {} payloads, {} duplicate, {} rejected",
        d.ai_calls_tracked.min(d.ai_calls),
        d.ai_calls,
        tracked - d.lost_events,
        d.lost_events,
        d.payloads,
        d.duplicate_payloads,
        d.rejected_payloads
    );
    if let Some(worst) = d
        .by_key
        .iter()
        .max_by_key(|k| k.lost)
        .filter(|k| k.lost > 0)
    {
        summary += &format!(
            "; most lost: {} ({} of {})",
            worst.key, worst.lost, worst.tracked
        );
    }
    (if complete { Status::Pass } else { Status::Fail }, summary)
}

/// Tracker events the SDKs were handed that mock-ld never received.
pub fn lost(events: &EventResults) -> u64 {
    events
        .tracked
        .iter()
        .map(|(key, &tracked)| {
            tracked.saturating_sub(events.received.get(key).copied().unwrap_or(0))
        })
        .sum()
}

fn details(events: &EventResults, ai_calls: u64) -> EventDetails {
    let received = |key: &str| events.received.get(key).copied().unwrap_or(0);
    let by_key: Vec<KeyCount> = events
        .tracked
        .iter()
        .map(|(key, &tracked)| KeyCount {
            key: key.clone(),
            tracked,
            received: received(key),
            lost: tracked.saturating_sub(received(key)),
        })
        .collect();
    let evaluations = events
        .evaluations
        .iter()
        .map(|(config, &(evaluations, counted))| EvaluationCount {
            config: config.clone(),
            evaluations,
            counted,
        })
        .collect();
    EventDetails {
        ai_calls,
        ai_calls_tracked: OUTCOME_KEYS.iter().map(|k| received(k)).sum(),
        lost_events: by_key.iter().map(|k| k.lost).sum(),
        by_key,
        evaluations,
        payloads: events.payloads,
        duplicate_payloads: events.duplicate_payloads,
        rejected_payloads: events.rejected_payloads,
        note: None,
    }
}
