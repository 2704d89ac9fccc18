//! What the property tests of mock-ld's parsers share: how many cases they run, and
//! arbitrary JSON values to put where a parser expects something else.
//!
//! The properties themselves sit beside what they test: `api::semantic_patch::properties`,
//! `events::properties`, `datafile::properties`.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// `cases` cases per property, so that `cargo test` stays quick; `PROPTEST_CASES=N` runs N
/// instead (proptest reads the variable only when the count is not set in code).
pub fn config(cases: u32) -> ProptestConfig {
    let from_env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            from_env.cases
        } else {
            cases
        },
        // A failure is shrunk for at most this many steps: enough for a small example,
        // bounded so that a failing run still ends in seconds.
        max_shrink_iters: 2_000,
        // A failure becomes a unit test beside the code it found wrong, not a seed file
        // that goes stale when a generator changes.
        failure_persistence: None,
        ..from_env
    }
}

/// Any JSON value, at most `depth` levels deep and a few dozen nodes in all, with the
/// numbers that trip parsers (`-1`, `u64::MAX`, `1e300`, fractions).
pub fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(|x| json!(x)),
        short_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((short_string(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A short string: mostly from a tiny alphabet (so that keys collide), sometimes any text.
pub fn short_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c]{0,2}",
        1 => "\\PC{0,6}",
    ]
}
