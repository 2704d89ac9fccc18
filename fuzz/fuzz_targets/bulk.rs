//! `/bulk`: any body, plain or gzipped, is stored or refused with a 400 and counted, and what
//! is stored lists as JSON serde_json parses (`mock-ld/src/events/properties.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_ld::events::log::{EventLog, Filter, Outcome, Source};
use mock_ld::events::{ingest, now_millis, Received};

fuzz_target!(|data: &[u8]| {
    // The first byte says whether the body claims to be gzipped.
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let log = EventLog::with_limits(1_000, 1 << 20);
    let source = Source {
        project: "default".into(),
        env: "test".into(),
    };
    let received = Received {
        body,
        gzipped: flags & 1 == 1,
        inflated_limit: 1 << 20,
        received_at: now_millis(),
    };
    let stats = match ingest(&log, source, None, received) {
        Ok(outcome) => {
            let stats = log.stats(&Filter::default());
            assert_eq!(
                outcome,
                Outcome::Stored {
                    events: stats.events as usize
                }
            );
            stats
        }
        Err(error) => {
            assert_eq!(error.status.as_u16(), 400);
            let stats = log.stats(&Filter::default());
            assert_eq!((stats.rejected_payloads, stats.events), (1, 0));
            stats
        }
    };
    let listing = log.query_json(&Filter::default()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&listing).expect("the listing parses");
    serde_json::to_vec(&stats).unwrap();
});
