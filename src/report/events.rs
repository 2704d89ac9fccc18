//! The event latencies every report shows, named the same in each: the flush series and
//! the delivery latency per event kind, and what their figures leave out.

use crate::results::{EventResults, LatencySummary};

/// `(name, latency)`: `event flush`, then `event delivery: KIND` for each kind received.
pub fn latencies(e: &EventResults) -> Vec<(String, &LatencySummary)> {
    let mut rows = vec![("event flush".to_owned(), &e.flush_latency)];
    rows.extend(
        e.delivery
            .iter()
            .map(|(kind, d)| (format!("event delivery: {kind}"), &d.latency)),
    );
    rows
}

/// What the event latencies leave out, as a sentence; `None` when nothing.
pub fn left_out(e: &EventResults) -> Option<String> {
    let mut parts = Vec::new();
    if e.flushes_unconfirmed > 0 {
        parts.push(format!(
            "{} flushes whose events did not all arrive (later flushes waited for the rest \
             less what these missed, so events that came late may have ended one early)",
            e.flushes_unconfirmed
        ));
    }
    for (kind, d) in &e.delivery {
        let apart = [
            (d.undated, "without a usable date"),
            (d.future, "dated after their receipt"),
            (d.too_old, "dated over an hour before it"),
        ];
        for (n, why) in apart.into_iter().filter(|(n, _)| *n > 0) {
            parts.push(format!("{n} {kind} events {why}"));
        }
    }
    (!parts.is_empty()).then(|| format!("Not in the event latencies: {}.", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::DeliveryResults;

    #[test]
    fn every_kind_is_a_row_and_what_is_left_out_is_said() {
        let mut e = EventResults::default();
        assert_eq!(left_out(&e), None);
        let delivery = |undated| DeliveryResults {
            latency: LatencySummary::default(),
            undated,
            future: 0,
            too_old: 0,
        };
        e.delivery.insert("custom".into(), delivery(0));
        e.delivery.insert("feature".into(), delivery(2));
        e.flushes_unconfirmed = 1;
        let names: Vec<String> = latencies(&e).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "event flush",
                "event delivery: custom",
                "event delivery: feature"
            ]
        );
        assert_eq!(
            left_out(&e).unwrap(),
            "Not in the event latencies: 1 flushes whose events did not all arrive (later flushes waited for the rest less what these missed, so events that came late may have ended one early); 2 feature events without a usable date."
        );
    }
}
