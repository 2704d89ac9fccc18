//! Event completeness: the rollout plan's "100 % of AI calls tracked". Every tracker event
//! the AI layer handed to an SDK must have reached mock-ld, key by key; every AI call must
//! show up as a success or error event; every evaluation must be in a summary counter; and
//! no payload may have been rejected. Needs mock-ld's event log, so against LaunchDarkly or
//! a Relay Proxy it is inconclusive; so is a shortfall when mock-ld counted events without
//! their key (its `--max-stat-keys` bound reached), since the missing ones may be those.

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
    let status = if complete {
        Status::Pass
    } else if d.uncounted_by_key > 0 && d.rejected_payloads == 0 {
        summary += &format!(
            "; inconclusive: mock-ld counted {} events without their key (--max-stat-keys reached), so the shortfall may be among them",
            d.uncounted_by_key
        );
        Status::Inconclusive
    } else {
        Status::Fail
    };
    (status, summary)
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
        uncounted_by_key: events.uncounted_by_key,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(received: u64, uncounted_by_key: u64) -> EventResults {
        let key = "$ld:ai:generation:success".to_owned();
        EventResults {
            tracked: [(key.clone(), 10)].into(),
            received: [(key, received)].into(),
            evaluations: Default::default(),
            payloads: 1,
            duplicate_payloads: 0,
            rejected_payloads: 0,
            complete: received >= 10,
            uncounted_by_key,
            ..Default::default()
        }
    }

    #[test]
    fn a_shortfall_is_a_failure_unless_mock_ld_counted_events_without_their_key() {
        let verdict_of = |events: &EventResults| verdict(&details(events, 10)).0;
        assert_eq!(verdict_of(&results(10, 0)), Status::Pass);
        assert_eq!(verdict_of(&results(10, 5)), Status::Pass);
        assert_eq!(verdict_of(&results(7, 0)), Status::Fail);
        let (status, summary) = verdict(&details(&results(7, 5), 10));
        assert_eq!(status, Status::Inconclusive);
        assert!(summary.contains("--max-stat-keys"), "{summary}");
    }
}
