//! FDv2 selectors: the `state` string of a `payload-transferred` event, which an SDK sends
//! back as `?basis=` when it reconnects or polls.
//!
//! mock-ld's state is `(p:PAYLOAD:VERSION)` as ldcli's dev server writes it: `PAYLOAD`
//! names one environment in one mock-ld process (a fresh id per [`crate::store::Environment`],
//! so a basis from before a restart or from a re-created environment is never mistaken for
//! a current one) and `VERSION` is that environment's change counter. SDKs treat the state
//! as opaque.

use std::fmt;

/// A point in one environment's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// Which environment instance's history `version` counts in.
    pub payload_id: String,
    /// How many changes that environment had seen.
    pub version: u64,
}

impl Selector {
    /// A payload id unique to this process and environment.
    pub fn fresh_payload_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
    }

    /// The selector a `basis` query names; `None` for anything mock-ld did not write,
    /// which then gets a full transfer.
    pub fn parse(basis: &str) -> Option<Selector> {
        let inner = basis.strip_prefix("(p:")?.strip_suffix(')')?;
        let (payload_id, version) = inner.rsplit_once(':')?;
        if payload_id.is_empty() {
            return None;
        }
        Some(Selector {
            payload_id: payload_id.to_owned(),
            version: version.parse().ok()?,
        })
    }
}

/// The `state` string.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(p:{}:{})", self.payload_id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_foreign_ones_are_refused() {
        let selector = Selector {
            payload_id: "a1b2".into(),
            version: 42,
        };
        assert_eq!(selector.to_string(), "(p:a1b2:42)");
        assert_eq!(Selector::parse("(p:a1b2:42)"), Some(selector));
        // ldcli's payload ids (project keys) may hold a colon; the version is after the last.
        assert_eq!(
            Selector::parse("(p:x:y:7)").map(|s| (s.payload_id, s.version)),
            Some(("x:y".into(), 7))
        );
        for foreign in [
            "",
            "poll-basis-state",
            "(p::3)",
            "(p:a:-1)",
            "(p:a:1",
            "p:a:1)",
            "(p:a)",
        ] {
            assert_eq!(Selector::parse(foreign), None, "{foreign:?}");
        }
        assert_ne!(Selector::fresh_payload_id(), Selector::fresh_payload_id());
        assert!(!Selector::fresh_payload_id().contains(':'));
    }
}
