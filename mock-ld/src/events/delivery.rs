//! Event delivery latency: for every event received, its receipt time minus the time it was
//! made, as an HDR histogram per kind (per environment, like every count of
//! [`super::log::Stats`]).
//!
//! - **When an event was made**: its `creationDate` (ms since the epoch). A `summary` has
//!   none; it counts from its `endDate`, the newest evaluation it summarizes, since the
//!   summary is complete from then and the SDK holds it until its next flush. Its older
//!   evaluations waited longer (from `startDate`); that is the flush interval, not delivery.
//! - **When it was received**: when mock-ld had read the whole request body, before
//!   decompressing and parsing it, so mock-ld's own parsing is not charged to the SDK.
//! - **Counted apart, never in a histogram**: events without a usable date (`undated`:
//!   missing, not a number, negative), dated after their receipt (`future`: the sender's
//!   clock is ahead of mock-ld's) and dated more than an hour before it (`tooOld`, beyond
//!   the histograms' range: a clock far behind, or a replay). Events that are not of their
//!   kind's shape (`malformedEvents`) are in none of these.
//! - **Kinds**: each kind LaunchDarkly's SDKs send has a histogram of its own; every other
//!   kind shares `(other)`. A histogram of an hour of microseconds takes up to 188 KB, so
//!   one per distinct kind a client makes up (up to `--max-stat-keys`) could take gigabytes;
//!   this way an environment's histograms take at most [`KINDS`] × 188 KB.
//!
//! Values are microseconds (the unit of every latency histogram the harness keeps, so they
//! merge and compare with them), at the milliseconds' resolution of the dates.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The kinds with a histogram of their own; the last takes every other kind.
pub const KINDS: [&str; 10] = [
    "index",
    "identify",
    "feature",
    "debug",
    "custom",
    "summary",
    "diagnostic-init",
    "diagnostic",
    "migration_op",
    OTHER,
];

/// The histogram of kinds no SDK sends today.
pub const OTHER: &str = "(other)";

/// The histograms' range: an hour of microseconds.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// One kind's delivery latencies and the events counted apart.
#[derive(Clone, Debug)]
struct Slot {
    micros: Histogram<u64>,
    undated: u64,
    future: u64,
    too_old: u64,
}

impl Default for Slot {
    fn default() -> Self {
        let mut micros = Histogram::new(3).expect("3 significant digits are valid");
        // Allocated as far as the largest latency seen: most stay within seconds.
        micros.auto(true);
        Slot {
            micros,
            undated: 0,
            future: 0,
            too_old: 0,
        }
    }
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.micros.is_empty() && self.undated == 0 && self.future == 0 && self.too_old == 0
    }
}

/// One environment's delivery latencies, by kind. The slots are allocated on the first
/// event of their kind.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    slots: [Option<Box<Slot>>; KINDS.len()],
}

impl Delivery {
    /// Records one event of `kind`, made at `date` (ms since the epoch, if it says) and
    /// received at `received_at` (ms since the epoch).
    pub fn record(&mut self, kind: &str, date: Option<f64>, received_at: u64) {
        let index = KINDS[..KINDS.len() - 1]
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(KINDS.len() - 1);
        let slot = self.slots[index].get_or_insert_with(Box::default);
        let Some(date) = date.filter(|d| *d >= 0.0) else {
            slot.undated += 1;
            return;
        };
        let waited_ms = received_at as f64 - date.floor();
        if waited_ms < 0.0 {
            slot.future += 1;
        } else if waited_ms * 1000.0 > MAX_MICROS as f64 {
            slot.too_old += 1;
        } else {
            let micros = waited_ms as u64 * 1000;
            slot.micros
                .record(micros)
                .expect("the histogram grows to an hour");
        }
    }

    /// Adds `other`'s latencies and counts to these.
    pub fn merge(&mut self, other: &Delivery) {
        for (mine, theirs) in self.slots.iter_mut().zip(&other.slots) {
            let Some(theirs) = theirs else { continue };
            let mine = mine.get_or_insert_with(Box::default);
            mine.micros
                .add(&theirs.micros)
                .expect("histograms grow to fit what is added");
            mine.undated += theirs.undated;
            mine.future += theirs.future;
            mine.too_old += theirs.too_old;
        }
    }

    /// Every kind that received an event, as `/admin/events/stats` shows it.
    pub fn report(&self) -> BTreeMap<String, KindDelivery> {
        KINDS
            .iter()
            .zip(&self.slots)
            .filter_map(|(kind, slot)| {
                let slot = slot.as_deref().filter(|s| !s.is_empty())?;
                Some(((*kind).to_owned(), KindDelivery::of(slot)))
            })
            .collect()
    }
}

/// One kind's delivery latency in `/admin/events/stats`: percentiles with their n, the
/// histogram itself (for merging and comparing), and the events counted apart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindDelivery {
    /// Events in the histogram: the n of every percentile below.
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The histogram of microseconds ([`crate::hdr`]).
    pub hdr: String,
    /// Events without a usable date.
    pub undated: u64,
    /// Events dated after their receipt.
    pub future: u64,
    /// Events dated more than an hour before their receipt.
    pub too_old: u64,
}

impl KindDelivery {
    fn of(slot: &Slot) -> KindDelivery {
        let h = &slot.micros;
        let ms = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        KindDelivery {
            count: h.len(),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            },
            hdr: crate::hdr::encode(h),
            undated: slot.undated,
            future: slot.future,
            too_old: slot.too_old,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    /// Equal to HDR's 3 significant digits.
    fn close(ms: f64, expected: f64) -> bool {
        (ms - expected).abs() <= expected / 1000.0
    }

    #[test]
    fn each_event_is_its_receipt_minus_its_date_per_kind() {
        let mut d = Delivery::default();
        for waited in [0, 5, 10, 20, 1000] {
            d.record("custom", Some((NOW - waited) as f64), NOW);
        }
        d.record("summary", Some((NOW - 250) as f64), NOW);
        d.record("made-up", Some((NOW - 7) as f64), NOW);
        d.record("also-made-up", Some((NOW - 9) as f64), NOW);
        let report = d.report();
        assert_eq!(
            report.keys().collect::<Vec<_>>(),
            ["(other)", "custom", "summary"]
        );
        let custom = &report["custom"];
        assert_eq!(custom.count, 5);
        assert!(close(custom.p50_ms, 10.0), "{custom:?}");
        assert!(close(custom.max_ms, 1000.0), "{custom:?}");
        let h = crate::hdr::decode(&custom.hdr).unwrap();
        assert_eq!((h.len(), h.min()), (5, 0));
        assert!(h.equivalent(h.max(), 1_000_000));
        assert_eq!(report["summary"].count, 1);
        assert!(close(report["summary"].p50_ms, 250.0));
        assert_eq!(report["(other)"].count, 2);
    }

    #[test]
    fn undated_future_and_too_old_events_are_counted_apart() {
        let mut d = Delivery::default();
        d.record("feature", None, NOW);
        d.record("feature", Some(-5.0), NOW);
        d.record("feature", Some((NOW + 3) as f64), NOW);
        d.record("feature", Some((NOW - 3_600_001) as f64), NOW);
        d.record("feature", Some((NOW - 3_600_000) as f64), NOW);
        let f = &d.report()["feature"];
        assert_eq!((f.count, f.undated, f.future, f.too_old), (1, 2, 1, 1));
        assert!(close(f.max_ms, 3_600_000.0), "{f:?}");
    }

    #[test]
    fn merged_environments_add_up() {
        let mut a = Delivery::default();
        let mut b = Delivery::default();
        a.record("index", Some((NOW - 1) as f64), NOW);
        b.record("index", Some((NOW - 2) as f64), NOW);
        b.record("identify", None, NOW);
        a.merge(&b);
        let report = a.report();
        assert_eq!(report["index"].count, 2);
        assert_eq!(report["identify"].undated, 1);
        assert!(Delivery::default().report().is_empty());
    }
}
