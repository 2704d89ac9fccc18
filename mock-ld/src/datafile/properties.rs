//! Properties of data files ([`super::parse`]):
//! - generated data files (flags in full, AI Configs, `flagValues`, segments) written as
//!   JSON or YAML load back equal, and become flags and segments under their map keys;
//! - a valid file with one value changed or removed loads, or is refused at a line and
//!   column, naming a field on the path of the change;
//! - any text (and YAML made of its punctuation) loads or is refused at a line and column,
//!   never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{parse, DataFileError};
use crate::model::{
    Clause, ClientSideAvailability, Flag, FlagRule, Prerequisite, Rollout, Segment, SegmentRule,
    SegmentTarget, Target, VariationOrRollout, WeightedVariation,
};
use crate::properties::{config, json_value, short_string};

fn key() -> impl Strategy<Value = String> {
    "[a-c]{1,2}"
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(short_string())
}

fn clause() -> impl Strategy<Value = Clause> {
    (
        optional_text(),
        short_string(),
        prop::sample::select(crate::api::semantic_patch::OPERATORS),
        prop::collection::vec(json_value(1), 0..3),
        any::<bool>(),
        optional_text(),
    )
        .prop_map(|(context_kind, attribute, op, values, negate, id)| Clause {
            context_kind,
            attribute,
            op: op.to_owned(),
            values,
            negate,
            id,
        })
}

fn rollout() -> impl Strategy<Value = Rollout> {
    let weighted =
        (any::<i64>(), any::<i64>(), any::<bool>()).prop_map(|(variation, weight, untracked)| {
            WeightedVariation {
                variation,
                weight,
                untracked,
            }
        });
    (
        prop::collection::vec(weighted, 0..3),
        optional_text(),
        optional_text(),
        prop::option::of(Just("experiment".to_owned())),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(variations, bucket_by, context_kind, kind, seed)| Rollout {
                variations,
                bucket_by,
                context_kind,
                kind,
                seed,
            },
        )
}

/// What a rule or the fallthrough serves, well formed or not (data files pass it through).
fn serve() -> impl Strategy<Value = VariationOrRollout> {
    (prop::option::of(any::<i64>()), prop::option::of(rollout()))
        .prop_map(|(variation, rollout)| VariationOrRollout { variation, rollout })
}

fn target(with_kind: bool) -> impl Strategy<Value = Target> {
    (
        prop::collection::vec(short_string(), 0..3),
        any::<i64>(),
        key(),
    )
        .prop_map(move |(values, variation, kind)| Target {
            values,
            variation,
            context_kind: with_kind.then_some(kind),
        })
}

/// A variation: any JSON, or an AI Config's (`_ldMeta`, a model, messages).
fn variation() -> impl Strategy<Value = Value> {
    let ai_config = (any::<bool>(), key(), any::<u32>(), short_string(), short_string())
        .prop_map(|(enabled, variation_key, version, model, content)| {
            json!({
                "_ldMeta": {"enabled": enabled, "variationKey": variation_key, "version": version, "mode": "completion"},
                "model": {"name": model, "parameters": {"temperature": 0.5, "maxTokens": 512}},
                "messages": [{"role": "system", "content": content}],
            })
        });
    prop_oneof![json_value(2), ai_config]
}

fn flag() -> impl Strategy<Value = Flag> {
    let rule = (
        short_string(),
        serve(),
        prop::collection::vec(clause(), 0..3),
        any::<bool>(),
        optional_text(),
    )
        .prop_map(|(id, serve, clauses, track_events, description)| FlagRule {
            id,
            variation: serve.variation,
            rollout: serve.rollout,
            clauses,
            track_events,
            description,
        });
    let prerequisite =
        (key(), any::<i64>()).prop_map(|(key, variation)| Prerequisite { key, variation });
    let identity = (
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(variation(), 0..3),
        short_string(),
    );
    let targeting = (
        prop::collection::vec(prerequisite, 0..2),
        prop::collection::vec(target(false), 0..2),
        prop::collection::vec(target(true), 0..2),
        prop::collection::vec(rule, 0..3),
        serve(),
        prop::option::of(any::<i64>()),
    );
    let events = (
        any::<[bool; 5]>(),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u32>()),
        // `null` would load as no migration at all.
        prop::option::of(json_value(1).prop_map(|stage| json!({"stage": stage}))),
    );
    (identity, targeting, events).prop_map(
        |((version, on, variations, salt), targeting, events)| {
            let (prerequisites, targets, context_targets, rules, fallthrough, off_variation) =
                targeting;
            let (
                [mobile, environment_id, track_events, fallthrough_events, exclude],
                debug,
                sampling,
                migration,
            ) = events;
            Flag {
                key: String::new(),
                version,
                on,
                prerequisites,
                targets,
                context_targets,
                rules,
                fallthrough,
                off_variation,
                variations,
                client_side_availability: ClientSideAvailability {
                    using_mobile_key: mobile,
                    using_environment_id: environment_id,
                },
                salt,
                track_events,
                track_events_fallthrough: fallthrough_events,
                debug_events_until_date: debug,
                exclude_from_summaries: exclude,
                sampling_ratio: sampling,
                migration,
            }
        },
    )
}

fn segment() -> impl Strategy<Value = Segment> {
    let keys = || prop::collection::vec(short_string(), 0..3);
    let target = move || {
        (key(), keys()).prop_map(|(context_kind, values)| SegmentTarget {
            context_kind,
            values,
        })
    };
    let rule = (
        optional_text(),
        prop::collection::vec(clause(), 0..2),
        prop::option::of(any::<i64>()),
        optional_text(),
        optional_text(),
        optional_text(),
    )
        .prop_map(
            |(id, clauses, weight, bucket_by, rollout_context_kind, description)| SegmentRule {
                id,
                clauses,
                weight,
                bucket_by,
                rollout_context_kind,
                description,
            },
        );
    (
        (
            any::<u64>(),
            keys(),
            keys(),
            prop::collection::vec(target(), 0..2),
            prop::collection::vec(target(), 0..2),
        ),
        (
            prop::collection::vec(rule, 0..2),
            short_string(),
            any::<bool>(),
            optional_text(),
            prop::option::of(any::<i64>()),
        ),
    )
        .prop_map(
            |((version, included, excluded, included_contexts, excluded_contexts), rest)| {
                let (rules, salt, unbounded, unbounded_context_kind, generation) = rest;
                Segment {
                    key: String::new(),
                    version,
                    included,
                    excluded,
                    included_contexts,
                    excluded_contexts,
                    rules,
                    salt,
                    unbounded,
                    unbounded_context_kind,
                    generation,
                }
            },
        )
}

/// A data file's content, each item's `key` already its map key (as a file written from
/// LaunchDarkly's data would have it).
#[derive(Clone, Debug)]
struct Content {
    flags: BTreeMap<String, Flag>,
    flag_values: BTreeMap<String, Value>,
    segments: BTreeMap<String, Segment>,
}

fn content() -> impl Strategy<Value = Content> {
    (
        prop::collection::btree_map(short_string(), flag(), 0..3),
        prop::collection::btree_map(short_string(), json_value(2), 0..3),
        prop::collection::btree_map(short_string(), segment(), 0..3),
    )
        .prop_map(|(mut flags, flag_values, mut segments)| {
            for (key, flag) in &mut flags {
                flag.key.clone_from(key);
            }
            for (key, segment) in &mut segments {
                segment.key.clone_from(key);
            }
            Content {
                flags,
                flag_values,
                segments,
            }
        })
}

impl Content {
    fn document(&self) -> Value {
        json!({"flags": self.flags, "flagValues": self.flag_values, "segments": self.segments})
    }
}

/// The document as a file of either format: its name and text.
fn write(document: &Value, yaml: bool) -> (&'static str, String) {
    if yaml {
        ("data.yaml", yaml_serde::to_string(document).unwrap())
    } else {
        ("data.json", serde_json::to_string_pretty(document).unwrap())
    }
}

/// A refusal must say where: a line and column from 1, and the file.
fn check_located(error: &DataFileError, file: &str) -> Result<(), TestCaseError> {
    let position = error.position;
    prop_assert!(
        position.is_some_and(|(line, column)| line >= 1 && column >= 1),
        "not located: {}",
        error
    );
    prop_assert!(
        error.to_string().starts_with(&format!("{file}:")),
        "{}",
        error
    );
    prop_assert!(!error.message.is_empty());
    Ok(())
}

/// One step into a document.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The path to every value below the root of `value`.
fn paths(value: &Value, path: &[Seg], out: &mut Vec<Vec<Seg>>) {
    let mut child = |seg: Seg, value: &Value| {
        let path = [path, &[seg]].concat();
        paths(value, &path, out);
        out.push(path);
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| child(Seg::Key(k.clone()), v)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| child(Seg::Index(i), v)),
        _ => {}
    }
}

/// A path as error fields write it: `flags.f.rules[0].variation`.
fn field(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) if out.is_empty() => out.push_str(key),
            Seg::Key(key) => out.push_str(&format!(".{key}")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether the field `inner` is `outer` or lies below it.
fn within(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// `document` with the value at `path` replaced by `with`, or removed.
fn changed(document: &Value, path: &[Seg], with: Option<Value>) -> Value {
    let mut document = document.clone();
    let (last, parent) = path.split_last().expect("below the root");
    let mut at = &mut document;
    for seg in parent {
        at = match seg {
            Seg::Key(key) => &mut at[key.as_str()],
            Seg::Index(i) => &mut at[*i],
        };
    }
    match (at, last, with) {
        (Value::Object(map), Seg::Key(key), Some(value)) => {
            map.insert(key.clone(), value);
        }
        (Value::Object(map), Seg::Key(key), None) => {
            map.remove(key);
        }
        (Value::Array(items), Seg::Index(i), Some(value)) => items[*i] = value,
        (Value::Array(items), Seg::Index(i), None) => {
            items.remove(*i);
        }
        _ => unreachable!("paths come from the document"),
    }
    document
}

/// Text made of YAML's punctuation, keys and values, one short line at a time.
fn yaml_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "flags",
        "flagValues",
        "segments",
        "on",
        "variations",
        "rules",
        "clauses",
        "key",
        ":",
        ": ",
        "- ",
        "-",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "!!str ",
        "!!binary ",
        "? ",
        "|",
        ">",
        "'",
        "\"",
        "#",
        "~",
        "null",
        "yes",
        "1e999",
        "0x1F",
        "-1",
        "18446744073709551616",
        "\t",
        "  ",
        "    ",
        "\\u0000",
        "é",
        "\u{feff}",
        "---",
        "...",
        "%YAML 1.2",
    ]);
    prop::collection::vec(prop::collection::vec(token, 0..8), 0..10).prop_map(|lines| {
        lines
            .into_iter()
            .map(|tokens| tokens.concat())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_written_data_file_loads_back_equal(content in content(), yaml in any::<bool>()) {
        let (file, text) = write(&content.document(), yaml);
        let data = parse(Path::new(file), &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&data.flags, &content.flags);
        prop_assert_eq!(&data.flag_values, &content.flag_values);
        prop_assert_eq!(&data.segments, &content.segments);
        let (flags, segments) = data.into_items();
        prop_assert_eq!(flags.len(), content.flags.len() + content.flag_values.len());
        for (key, value) in &content.flag_values {
            let served = flags.iter().any(|f| {
                f.key == *key && f.on && f.variations == [value.clone()]
                    && f.fallthrough.variation == Some(0)
            });
            prop_assert!(served, "flagValues.{} is not a flag serving it", key);
        }
        let keys: Vec<&str> = segments.iter().map(|s| s.key.as_str()).collect();
        prop_assert_eq!(keys, content.segments.keys().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn a_changed_value_loads_or_is_refused_on_its_path(
        content in content(),
        yaml in any::<bool>(),
        at in any::<prop::sample::Index>(),
        with in prop::option::of(json_value(2)),
    ) {
        let document = content.document();
        let mut all = Vec::new();
        paths(&document, &[], &mut all);
        let path = &all[at.index(all.len())];
        let (file, text) = write(&changed(&document, path, with), yaml);
        if let Err(error) = parse(Path::new(file), &text) {
            check_located(&error, file)?;
            // A wrong value is named, or something inside it; a missing one, by its parent.
            let path = field(path);
            let near = within(&error.field, &path) || within(&path, &error.field);
            prop_assert!(near, "{} changed, but the error names {:?}: {}", path, error.field, error);
        }
    }

    #[test]
    fn any_text_loads_or_is_refused_at_a_line_and_column(
        text in prop_oneof!["\\PC{0,80}", "[{}\\[\\]\":,0-9a-z \n]{0,60}", yaml_soup()],
        yaml in any::<bool>(),
    ) {
        let file = if yaml { "data.yaml" } else { "data.json" };
        if let Err(error) = parse(Path::new(file), &text) {
            check_located(&error, file)?;
        }
    }
}
