//! Analytics events as the SDKs send them to `/bulk` and `/diagnostic`, parsed into typed
//! records (`shared/spec/ld-sdk-protocol.md` §6.2).
//!
//! Parsing borrows from the request body: every event is first split out as raw JSON (which
//! is what `/admin/events` returns, byte for byte), then read into a flat struct that skips
//! the bulky fields (`context`, `value`, `data`) without allocating.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The body of a `/bulk` or `/diagnostic` post: an array of events, or one event (the form
/// diagnostic posts take).
pub fn split_payload(body: &[u8]) -> Result<Vec<&RawValue>, serde_json::Error> {
    // `RawValue` cannot sit inside an untagged enum, so look at the first byte instead.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        serde_json::from_slice(body)
    } else {
        Ok(vec![serde_json::from_slice(body)?])
    }
}

/// One event's typed record. A kind no SDK sends today is kept as [`Event::Other`], never
/// rejected: a newer SDK must not lose its events to an older mock.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    Index,
    Identify,
    Feature(Evaluation<'a>),
    Debug(Evaluation<'a>),
    Custom(Custom<'a>),
    Summary(Summary<'a>),
    DiagnosticInit,
    Diagnostic { dropped_events: u64 },
    MigrationOp,
    Other(Cow<'a, str>),
}

/// A `feature` or `debug` event: one evaluation, sent in full when the flag is tracked.
#[derive(Debug, PartialEq)]
pub struct Evaluation<'a> {
    pub key: Cow<'a, str>,
    /// `None` when the SDK served the default (Rust writes an explicit null).
    pub variation: Option<i64>,
    pub version: Option<u64>,
}

/// A `custom` event: `track` calls, including every AI tracker metric.
#[derive(Debug, PartialEq)]
pub struct Custom<'a> {
    pub key: Cow<'a, str>,
    pub metric_value: Option<f64>,
}

/// A `summary` event: per flag, how often each variation was served.
#[derive(Debug, PartialEq)]
pub struct Summary<'a> {
    pub features: HashMap<Cow<'a, str>, SummaryFlag>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct SummaryFlag {
    #[serde(default)]
    pub counters: Vec<Counter>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct Counter {
    #[serde(default)]
    pub variation: Option<i64>,
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub count: u64,
    /// Set when the flag was not found.
    #[serde(default)]
    pub unknown: bool,
}

/// Every field the records need, from any kind; the rest of the event is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(default)]
    variation: Option<i64>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default, deserialize_with = "finite_number")]
    metric_value: Option<f64>,
    #[serde(borrow, default)]
    features: Option<HashMap<Cow<'a, str>, SummaryFlag>>,
    #[serde(default)]
    dropped_events: Option<u64>,
    #[serde(default, deserialize_with = "finite_number")]
    creation_date: Option<f64>,
    /// A summary's: when the newest evaluation it counts was made.
    #[serde(default, deserialize_with = "finite_number")]
    end_date: Option<f64>,
}

/// A number, or none for anything else: a `metricValue` beyond f64 arrives as its text
/// (see [`super::servable`]), and the event still counts under its key.
fn finite_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.as_ref().and_then(serde_json::Value::as_f64))
}

/// Why an event could not be read as its kind.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not a JSON object with a string \"kind\": {0}")]
    Shape(#[from] serde_json::Error),
    #[error("a {kind} event needs a string \"key\"")]
    MissingKey { kind: String },
}

impl<'a> Event<'a> {
    pub fn parse(raw: &'a RawValue) -> Result<Self, EventError> {
        Event::parse_dated(raw).0
    }

    /// The event, and when it was made in milliseconds since the epoch, as far as it says
    /// (see [`super::delivery`]): its `creationDate`, or a summary's `endDate` (a summary
    /// has no `creationDate`; it is complete at its newest evaluation, so that is when its
    /// delivery starts). The date is read even when the event is not of its kind's shape.
    pub fn parse_dated(raw: &'a RawValue) -> (Result<Self, EventError>, Option<f64>) {
        let f: Fields<'a> = match serde_json::from_str(raw.get()) {
            Ok(f) => f,
            Err(e) => return (Err(e.into()), None),
        };
        let date = if f.kind == "summary" {
            f.end_date
        } else {
            f.creation_date
        };
        (Event::of_fields(f), date)
    }

    fn of_fields(f: Fields<'a>) -> Result<Self, EventError> {
        let key = |f: &Fields<'a>| {
            f.key.clone().ok_or_else(|| EventError::MissingKey {
                kind: f.kind.to_string(),
            })
        };
        Ok(match &*f.kind {
            "index" => Event::Index,
            "identify" => Event::Identify,
            "feature" | "debug" => {
                let eval = Evaluation {
                    key: key(&f)?,
                    variation: f.variation,
                    version: f.version,
                };
                if f.kind == "feature" {
                    Event::Feature(eval)
                } else {
                    Event::Debug(eval)
                }
            }
            "custom" => Event::Custom(Custom {
                key: key(&f)?,
                metric_value: f.metric_value,
            }),
            "summary" => Event::Summary(Summary {
                features: f.features.unwrap_or_default(),
            }),
            "diagnostic-init" => Event::DiagnosticInit,
            "diagnostic" => Event::Diagnostic {
                dropped_events: f.dropped_events.unwrap_or(0),
            },
            "migration_op" => Event::MigrationOp,
            _ => Event::Other(f.kind),
        })
    }

    /// Its `kind` as sent.
    pub fn kind(&self) -> &str {
        match self {
            Event::Index => "index",
            Event::Identify => "identify",
            Event::Feature(_) => "feature",
            Event::Debug(_) => "debug",
            Event::Custom(_) => "custom",
            Event::Summary(_) => "summary",
            Event::DiagnosticInit => "diagnostic-init",
            Event::Diagnostic { .. } => "diagnostic",
            Event::MigrationOp => "migration_op",
            Event::Other(kind) => kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(body: &str) -> Vec<Event<'_>> {
        split_payload(body.as_bytes())
            .unwrap()
            .into_iter()
            .map(|raw| Event::parse(raw).unwrap())
            .collect()
    }

    #[test]
    fn every_kind_the_sdks_send_is_typed() {
        let body = r#"[
          {"kind":"index","creationDate":1,"context":{"kind":"user","key":"u"}},
          {"kind":"identify","creationDate":1,"key":"u","context":{"kind":"user","key":"u"}},
          {"kind":"feature","creationDate":1,"key":"f","value":{"a":1},"default":null,"variation":null,"version":null,"context":{"kind":"user","key":"u"}},
          {"kind":"debug","creationDate":1,"key":"f","value":1,"variation":2,"version":7,"context":{"kind":"user","key":"u"}},
          {"kind":"custom","creationDate":1,"key":"$ld:ai:tokens:total","data":{"runId":"x"},"metricValue":42,"context":{"kind":"user","key":"u"}},
          {"kind":"summary","startDate":1,"endDate":2,"features":{"f":{"default":null,"contextKinds":["user"],"counters":[{"value":1,"count":3,"variation":1,"version":7},{"value":null,"count":1,"unknown":true}]}}},
          {"kind":"diagnostic","id":{},"droppedEvents":5},
          {"kind":"future-kind","anything":[1,2]}
        ]"#;
        let events = parse_all(body);
        assert_eq!(events[0], Event::Index);
        assert_eq!(events[1], Event::Identify);
        assert_eq!(
            events[2],
            Event::Feature(Evaluation {
                key: "f".into(),
                variation: None,
                version: None
            })
        );
        assert_eq!(
            events[3],
            Event::Debug(Evaluation {
                key: "f".into(),
                variation: Some(2),
                version: Some(7)
            })
        );
        assert_eq!(
            events[4],
            Event::Custom(Custom {
                key: "$ld:ai:tokens:total".into(),
                metric_value: Some(42.0)
            })
        );
        let Event::Summary(summary) = &events[5] else {
            panic!("not a summary: {:?}", events[5])
        };
        let counters = &summary.features["f"].counters;
        assert_eq!((counters[0].variation, counters[0].count), (Some(1), 3));
        assert!(counters[1].unknown);
        assert_eq!(events[6], Event::Diagnostic { dropped_events: 5 });
        assert_eq!(events[7], Event::Other("future-kind".into()));
    }

    #[test]
    fn a_single_object_is_a_payload_of_one() {
        assert_eq!(
            parse_all(r#"{"kind":"diagnostic-init","id":{}}"#),
            vec![Event::DiagnosticInit]
        );
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let raw = split_payload(br#"[{"kind":"custom"},{"nokind":1}]"#).unwrap();
        assert!(Event::parse(raw[0])
            .unwrap_err()
            .to_string()
            .contains("custom event needs"));
        assert!(Event::parse(raw[1])
            .unwrap_err()
            .to_string()
            .contains("kind"));
        assert!(split_payload(b"not json").is_err());
    }
}
