//! Seed data in the format of LaunchDarkly's SDK file data sources: a JSON or YAML document
//! with optional `flags` (full or minimal flags by key), `flagValues` (key → value, served to
//! everyone) and `segments`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::model::{Flag, Segment};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataFile {
    #[serde(default)]
    pub flags: BTreeMap<String, Flag>,
    #[serde(default)]
    pub flag_values: BTreeMap<String, Value>,
    #[serde(default)]
    pub segments: BTreeMap<String, Segment>,
}

impl DataFile {
    /// Every flag the file defines, `flagValues` turned into flags; keys come from the map.
    pub fn into_items(self) -> (Vec<Flag>, Vec<Segment>) {
        let mut flags: Vec<Flag> = self
            .flags
            .into_iter()
            .map(|(key, mut flag)| {
                flag.key = key;
                flag
            })
            .collect();
        flags.extend(
            self.flag_values
                .into_iter()
                .map(|(key, value)| Flag::from_value(&key, value)),
        );
        let segments = self
            .segments
            .into_iter()
            .map(|(key, mut segment)| {
                segment.key = key;
                segment
            })
            .collect();
        (flags, segments)
    }
}

/// A data file that could not be used, with the place and the field that are wrong.
#[derive(Debug)]
pub struct DataFileError {
    pub path: PathBuf,
    /// 1-based line and column, when the parser knows them.
    pub position: Option<(usize, usize)>,
    /// The field, as a path like `flags.my-flag.rules[0].variation`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for DataFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.field.is_empty() && self.field != "." {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataFileError {}

impl DataFileError {
    /// An error found after parsing, which knows the field but not the position.
    pub fn at(path: &Path, field: String, message: String) -> Self {
        DataFileError {
            path: path.to_owned(),
            position: None,
            field,
            message,
        }
    }
}

pub fn load(path: &Path) -> Result<DataFile, DataFileError> {
    load_as(path)
}

pub fn parse(path: &Path, text: &str) -> Result<DataFile, DataFileError> {
    parse_as(path, text)
}

/// Reads and parses a JSON or YAML input file (`--data`, `--llm-profiles`, `--roles`).
pub fn load_as<T: DeserializeOwned>(path: &Path) -> Result<T, DataFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataFileError::at(path, String::new(), format!("cannot read: {e}")))?;
    parse_as(path, &text)
}

/// Parses as JSON when the file says so (by extension, or by starting with `{`), else YAML.
/// Errors name the line, column and field path.
pub fn parse_as<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, DataFileError> {
    let is_json = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let error = |position, field: String, message: String| DataFileError {
        path: path.to_owned(),
        position,
        message: tidy(&message, &field),
        field,
    };
    if is_json {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner();
            // serde_json's columns count from 1, but it says 0 at the start of a line (the
            // end of an empty file), and line 0 when it knows no position.
            let position = (inner.line() > 0).then(|| (inner.line(), inner.column().max(1)));
            error(position, e.path().to_string(), inner.to_string())
        })
    } else {
        let de = yaml_serde::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let (position, message) = match e.inner().location() {
                Some(l) => (Some((l.line(), l.column())), e.inner().to_string()),
                None => after_first_document(text, e.inner()),
            };
            error(position, e.path().to_string(), message)
        })
    }
}

/// yaml_serde refuses whatever follows the first document without saying where, and calls
/// even a syntax error there "more than one document". Read on its own, the second
/// document says what is wrong there, or at least where it starts.
fn after_first_document(text: &str, error: &yaml_serde::Error) -> (Option<(usize, usize)>, String) {
    let at = |e: &yaml_serde::Error| e.location().map(|l| (l.line(), l.column()));
    // `nth`, never a loop: the iterator repeats a syntax error forever.
    let second = || yaml_serde::Deserializer::from_str(text).nth(1);
    match second().map(serde::de::IgnoredAny::deserialize) {
        Some(Err(syntax)) if syntax.location().is_some() => (at(&syntax), syntax.to_string()),
        Some(Ok(_)) => {
            let start = second().and_then(|doc| NoNode::deserialize(doc).err());
            (start.as_ref().and_then(at), error.to_string())
        }
        _ => (None, error.to_string()),
    }
}

/// What no YAML node is: reading one fails at the node, which says where it starts.
struct NoNode;

impl<'de> Deserialize<'de> for NoNode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Refuse;
        impl serde::de::Visitor<'_> for Refuse {
            type Value = NoNode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("no second document")
            }
        }
        deserializer.deserialize_any(Refuse)
    }
}

/// The error already leads with the position and the field, which the parsers repeat:
/// JSON appends " at line L column C", YAML prefixes "FIELD: ".
pub fn tidy(message: &str, field: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    let message = message
        .strip_prefix(field)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    message.to_owned()
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_and_minimal_flags_load() {
        let text = "flagValues:\n  banner: \"hello\"\nflags:\n  ai-cfg:\n    on: true\n    variations: [{_ldMeta: {enabled: true}}]\nsegments:\n  beta:\n    included: [u1]\n";
        let (flags, segments) = parse(Path::new("seed.yaml"), text).unwrap().into_items();
        assert_eq!(flags.len(), 2);
        let banner = flags.iter().find(|f| f.key == "banner").unwrap();
        assert!(banner.on);
        assert_eq!(banner.variations, vec![Value::from("hello")]);
        assert_eq!(segments[0].key, "beta");
        assert_eq!(segments[0].included, vec!["u1".to_owned()]);
    }

    #[test]
    fn yaml_errors_name_file_line_column_and_field() {
        let text = "flags:\n  f:\n    on: true\n    rules:\n      - clauses: []\n        variation: \"one\"\n";
        let err = parse(Path::new("seed.yaml"), text).unwrap_err().to_string();
        assert!(err.starts_with("seed.yaml:6:20: "), "{err}");
        assert!(err.contains("field `flags.f.rules[0].variation`"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
        // A syntax error, and YAML 1.1's `yes` for a boolean.
        let err = parse(Path::new("s.yaml"), "flagValues:\n  a: [1, 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:"), "{err}");
        let err = parse(Path::new("s.yaml"), "flags:\n  f:\n    on: yes\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:3:9: field `flags.f.on`"), "{err}");
        // An untyped `yes` stays the string it is in YAML 1.2.
        let (flags, _) = parse(Path::new("s.yaml"), "flagValues:\n  a: yes\n")
            .unwrap()
            .into_items();
        assert_eq!(flags[0].variations, vec![Value::from("yes")]);
    }

    #[test]
    fn an_alias_bomb_is_refused_without_expanding_it() {
        let mut text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let text = format!(
            "flagValues:\n  bomb: {{{}}}\n",
            text.replace('\n', ", ").trim_end_matches(", ")
        );
        let started = std::time::Instant::now();
        let err = parse(Path::new("b.yaml"), &text).unwrap_err().to_string();
        assert!(err.starts_with("b.yaml:"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{err}"
        );
    }

    #[test]
    fn json_errors_name_file_line_column_and_field() {
        let text = "{\n  \"flags\": {\n    \"f\": {\"on\": \"yes\"}\n  }\n}";
        let err = parse(Path::new("seed.json"), text).unwrap_err().to_string();
        assert!(err.starts_with("seed.json:3:"), "{err}");
        assert!(err.contains("field `flags.f.on`"), "{err}");
    }

    #[test]
    fn what_follows_the_first_yaml_document_is_located() {
        // A syntax error after a complete first document, which yaml_serde alone reports
        // as "more than one document", without a place.
        let err = parse(Path::new("s.yaml"), "!!str }")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:1:7: "), "{err}");
        assert!(err.contains("document start"), "{err}");
        let err = parse(Path::new("s.yaml"), "flags: {}\n---\nflagValues: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:3:1: "), "{err}");
        assert!(err.contains("more than one document"), "{err}");
    }

    #[test]
    fn a_json_file_that_ends_too_soon_is_refused_at_a_column_from_1() {
        for (text, at) in [("", "e.json:1:1: "), ("{\n", "e.json:2:1: ")] {
            let err = parse(Path::new("e.json"), text).unwrap_err().to_string();
            assert!(err.starts_with(at), "{err}");
        }
    }

    #[test]
    fn unknown_top_level_keys_are_errors() {
        let err = parse(Path::new("x.json"), r#"{"flag": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `flag`"), "{err}");
    }
}
