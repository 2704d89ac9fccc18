//! Properties of `/bulk` intake and storage ([`super::ingest`] into an [`EventLog`]):
//! - posts of generated events (odd kinds and fields, lone surrogate escapes, numbers beyond
//!   f64, nesting past every reader's limit, gzipped or not, retried) are stored or refused
//!   as the model says; the counts add up (payloads, duplicates and refusals are the posts;
//!   stored events are counted, listed or evicted); and `/admin/events` lists, in order,
//!   the newest of them, equal to what was sent up to the documented rewrites
//!   ([`super::servable`]);
//! - any body at all is stored or refused with a 400 and counted, and what is stored lists
//!   as JSON that serde_json (and so every reader with its limits) parses.

use std::io::Write;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::log::{EventLog, Filter, Outcome, Source, Stats};
use super::servable::MAX_DEPTH;
use super::{ingest, now_millis, Received};
use crate::properties::config;

/// One character of a JSON string as written.
#[derive(Clone, Debug)]
enum Piece {
    /// As itself (escaped where JSON requires).
    Char(char),
    /// As `\uXXXX` escapes (a pair beyond the BMP).
    Escaped(char),
    /// One `\uXXXX` escape of any UTF-16 code unit, lone surrogates included.
    Unit(u16),
}

/// JSON as written, which is more than `serde_json::Value` can hold.
#[derive(Clone, Debug)]
enum Json {
    Null,
    Bool(bool),
    /// A number's text.
    Number(String),
    Str(Vec<Piece>),
    Array(Vec<Json>),
    Object(Vec<(Vec<Piece>, Json)>),
    /// The value inside this many arrays.
    Deep(usize, Box<Json>),
}

impl Json {
    fn text(s: &str) -> Json {
        Json::Str(text(s))
    }

    fn render(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(text) => out.push_str(text),
            Json::Str(pieces) => render_str(pieces, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.render(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render_str(name, out);
                    out.push_str(": ");
                    value.render(out);
                }
                out.push('}');
            }
            Json::Deep(depth, inner) => {
                out.push_str(&"[".repeat(*depth));
                inner.render(out);
                out.push_str(&"]".repeat(*depth));
            }
        }
    }

    fn rendered(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }

    /// What `/admin/events` lists for this value, `level` containers deep counting itself:
    /// lone surrogates become U+FFFD, numbers beyond f64 their text, and a container deeper
    /// than [`MAX_DEPTH`] its raw JSON text.
    fn listed(&self, level: usize) -> Value {
        if let Json::Deep(0, inner) = self {
            return inner.listed(level);
        }
        let container = matches!(self, Json::Array(_) | Json::Object(_) | Json::Deep(..));
        if container && level > MAX_DEPTH {
            return Value::String(self.rendered());
        }
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            // Beyond f64: its text.
            Json::Number(text) => match serde_json::from_str(text) {
                Ok(number) if text.parse::<f64>().is_ok_and(f64::is_finite) => number,
                _ => Value::String(text.clone()),
            },
            Json::Str(pieces) => Value::String(decoded(pieces)),
            Json::Array(items) => items.iter().map(|i| i.listed(level + 1)).collect(),
            Json::Object(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(decoded(name), value.listed(level + 1));
                }
                Value::Object(map)
            }
            Json::Deep(depth, inner) => {
                let rest = Json::Deep(depth - 1, inner.clone());
                Value::Array(vec![rest.listed(level + 1)])
            }
        }
    }
}

fn render_str(pieces: &[Piece], out: &mut String) {
    out.push('"');
    for piece in pieces {
        match piece {
            Piece::Char('"') => out.push_str("\\\""),
            Piece::Char('\\') => out.push_str("\\\\"),
            Piece::Char(c) if (*c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", *c as u32)),
            Piece::Char(c) => out.push(*c),
            Piece::Escaped(c) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            Piece::Unit(unit) => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
}

/// The string a reader gets: the UTF-16 code units decoded, each unpaired surrogate
/// replaced by U+FFFD (as Go's `encoding/json` decodes it).
fn decoded(pieces: &[Piece]) -> String {
    let mut units = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Char(c) | Piece::Escaped(c) => units.extend(c.encode_utf16(&mut [0; 2]).iter()),
            Piece::Unit(unit) => units.push(*unit),
        }
    }
    String::from_utf16_lossy(&units)
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        6 => any::<char>().prop_map(Piece::Char),
        1 => any::<char>().prop_map(Piece::Escaped),
        2 => prop_oneof![0xD800u16..=0xDFFF, any::<u16>()].prop_map(Piece::Unit),
    ];
    prop::collection::vec(piece, 0..6)
}

/// Number texts: ordinary ones, and ones past f64 either way.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:e}")),
        (
            "-?",
            "0|[1-9][0-9]{0,3}",
            "(\\.[0-9]{1,3})?",
            "[eE][+-]?[0-9]{1,4}"
        )
            .prop_map(|(sign, int, fraction, exponent)| format!("{sign}{int}{fraction}{exponent}")),
        (290usize..420).prop_map(|digits| format!("9{}", "0".repeat(digits))),
        "1\\.797693134862315[0-9]e308",
    ]
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number().prop_map(Json::Number),
        pieces().prop_map(Json::Str),
    ];
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((pieces(), inner), 0..4).prop_map(Json::Object),
        ]
    });
    prop_oneof![
        6 => tree.clone(),
        1 => (MAX_DEPTH - 3..MAX_DEPTH + 160, tree).prop_map(|(d, j)| Json::Deep(d, Box::new(j))),
    ]
}

/// An event: an object with some of the fields the records read, each well typed or not,
/// or (rarely) any JSON at all.
fn event() -> impl Strategy<Value = Json> {
    let kinds = vec![
        "index",
        "identify",
        "feature",
        "debug",
        "custom",
        "summary",
        "diagnostic-init",
        "diagnostic",
        "migration_op",
        "future-kind",
        "",
    ];
    let kind = prop_oneof![
        4 => prop::sample::select(kinds).prop_map(Json::text),
        1 => json(),
    ];
    let key = prop_oneof![4 => pieces().prop_map(Json::Str), 1 => json()];
    let counter = (
        prop::option::of(typed((0..3i64).prop_map(|i| i.to_string()))),
        prop::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(|(variation, count, unknown)| {
            let mut fields = vec![(text("unknown"), Json::Bool(unknown))];
            if let Some(v) = variation {
                fields.push((text("variation"), Json::Number(v)));
            }
            if let Some(count) = count {
                fields.push((text("count"), Json::Number(count.to_string())));
            }
            Json::Object(fields)
        });
    let features = prop::collection::vec((pieces(), prop::collection::vec(counter, 0..3)), 0..3)
        .prop_map(|flags| {
            Json::Object(
                flags
                    .into_iter()
                    .map(|(flag, counters)| {
                        (
                            flag,
                            Json::Object(vec![(text("counters"), Json::Array(counters))]),
                        )
                    })
                    .collect(),
            )
        });
    let field = prop_oneof![
        kind.prop_map(|v| ("kind", v)),
        key.prop_map(|v| ("key", v)),
        typed(any::<i64>().prop_map(|i| i.to_string()))
            .prop_map(|v| ("variation", Json::Number(v))),
        typed(any::<u64>().prop_map(|n| n.to_string())).prop_map(|v| ("version", Json::Number(v))),
        number().prop_map(|v| ("metricValue", Json::Number(v))),
        typed(any::<u64>().prop_map(|n| n.to_string()))
            .prop_map(|v| ("droppedEvents", Json::Number(v))),
        features.prop_map(|v| ("features", v)),
        json().prop_map(|v| ("data", v)),
        json().prop_map(|v| ("context", v)),
    ];
    prop_oneof![
        12 => prop::collection::vec(field, 0..6).prop_map(|fields| {
            Json::Object(fields.into_iter().map(|(name, v)| (text(name), v)).collect())
        }),
        1 => json(),
    ]
}

/// Mostly numbers of the type a field takes (`well_typed`), sometimes any number.
fn typed(well_typed: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![3 => well_typed, 1 => number()]
}

fn text(s: &str) -> Vec<Piece> {
    s.chars().map(Piece::Char).collect()
}

/// One post to `/bulk`.
#[derive(Clone, Debug)]
struct Post {
    events: Vec<Json>,
    /// A bare object rather than an array (the form diagnostic posts take).
    single: bool,
    gzipped: bool,
    payload_id: Option<String>,
}

impl Post {
    /// The body before compression.
    fn text(&self) -> String {
        if self.single {
            self.events[0].rendered()
        } else {
            let items: Vec<String> = self.events.iter().map(Json::rendered).collect();
            format!("[{}]", items.join(",\n "))
        }
    }

    fn body(&self) -> Vec<u8> {
        let text = self.text();
        if self.gzipped {
            gzip(text.as_bytes())
        } else {
            text.into_bytes()
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn post() -> impl Strategy<Value = Post> {
    (
        prop::collection::vec(event(), 0..6),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["p1", "p2", "p3"])),
    )
        .prop_map(|(events, single, gzipped, id)| Post {
            // A bare array would be read as a payload of its items.
            single: single
                && events.len() == 1
                && !matches!(events[0], Json::Array(_) | Json::Deep(..)),
            events,
            gzipped,
            payload_id: id.map(str::to_owned),
        })
}

fn source() -> Source {
    Source {
        project: "default".into(),
        env: "test".into(),
    }
}

/// The listing as serde_json reads it, with its default recursion limit.
fn listing(log: &EventLog) -> Result<Vec<Value>, TestCaseError> {
    let json = log.query_json(&Filter::default()).unwrap();
    let json: Value = serde_json::from_slice(&json)
        .map_err(|e| TestCaseError::fail(format!("the listing does not parse: {e}")))?;
    let items = json["items"].as_array().unwrap();
    prop_assert_eq!(json["totalCount"].as_u64(), Some(items.len() as u64));
    Ok(items.iter().map(|item| item["event"].clone()).collect())
}

/// Counts that hold whatever was posted; serializing them (`/admin/events/stats`) works.
fn check_counts(stats: &Stats, listed: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(stats.by_kind.values().sum::<u64>(), stats.events);
    prop_assert_eq!(
        stats.by_kind.get("malformed").copied().unwrap_or(0),
        stats.malformed_events
    );
    prop_assert_eq!(stats.evicted_events, stats.events - listed as u64);
    prop_assert!(serde_json::to_vec(stats).is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn posted_events_are_counted_and_listed_as_sent(
        posts in prop::collection::vec(post(), 1..6),
        max_events in prop_oneof![1usize..8, Just(1_000)],
        inflated_limit in prop_oneof![Just(usize::MAX), 64usize..4096],
    ) {
        let log = EventLog::with_limits(max_events, usize::MAX);
        let (mut stored, mut duplicates, mut refused) = (0, 0, 0);
        let mut seen = Vec::new();
        let mut expected = Vec::new();
        for post in &posts {
            let body = post.body();
            let received = Received { body: &body, gzipped: post.gzipped, inflated_limit, received_at: now_millis() };
            let outcome = ingest(&log, source(), post.payload_id.clone(), received);
            if post.gzipped && post.text().len() > inflated_limit {
                let error = outcome.expect_err("over the inflated limit");
                prop_assert_eq!(error.status.as_u16(), 400);
                refused += 1;
            } else if post.payload_id.as_ref().is_some_and(|id| seen.contains(id)) {
                prop_assert_eq!(outcome.unwrap(), Outcome::Duplicate);
                duplicates += 1;
            } else {
                let outcome = outcome.map_err(|e| TestCaseError::fail(e.message))?;
                prop_assert_eq!(outcome, Outcome::Stored { events: post.events.len() });
                stored += 1;
                seen.extend(post.payload_id.clone());
                expected.extend(post.events.iter().map(|e| e.listed(1)));
            }
        }
        let stats = log.stats(&Filter::default());
        prop_assert_eq!(
            (stats.payloads, stats.duplicate_payloads, stats.rejected_payloads),
            (stored, duplicates, refused)
        );
        prop_assert_eq!(stats.events, expected.len() as u64);
        let listed = listing(&log)?;
        prop_assert_eq!(listed.len(), expected.len().min(max_events));
        prop_assert_eq!(&listed[..], &expected[expected.len() - listed.len()..]);
        check_counts(&stats, listed.len())?;
    }

    #[test]
    fn any_body_is_stored_or_refused_and_what_is_stored_lists(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            // A post cut short, or with one byte changed.
            (post(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(post, at, byte)| {
                let mut body = post.body();
                if !body.is_empty() {
                    let at = at.index(body.len());
                    if byte % 2 == 0 { body.truncate(at) } else { body[at] = byte }
                }
                body
            }),
        ],
        gzipped in any::<bool>(),
    ) {
        let log = EventLog::default();
        let received = Received { body: &body, gzipped, inflated_limit: 1 << 20, received_at: now_millis() };
        let stats = match ingest(&log, source(), None, received) {
            Ok(outcome) => {
                let stats = log.stats(&Filter::default());
                prop_assert_eq!(outcome, Outcome::Stored { events: stats.events as usize });
                prop_assert_eq!(stats.rejected_payloads, 0);
                stats
            }
            Err(error) => {
                prop_assert_eq!(error.status.as_u16(), 400);
                let stats = log.stats(&Filter::default());
                prop_assert_eq!((stats.rejected_payloads, stats.events), (1, 0));
                stats
            }
        };
        let listed = listing(&log)?;
        prop_assert_eq!(listed.len() as u64, stats.events);
        check_counts(&stats, listed.len())?;
    }
}
