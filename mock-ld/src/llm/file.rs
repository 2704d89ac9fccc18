//! `--llm-profiles FILE`: a JSON or YAML map from model name to [`Profile`], with errors
//! that name file, line, column and field as `--data` errors do.

use std::collections::BTreeMap;
use std::path::Path;

use super::profile::Profile;
use crate::datafile::DataFileError;

pub type Profiles = BTreeMap<String, Profile>;

pub fn load_profiles(path: &Path) -> Result<Profiles, DataFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataFileError {
        path: path.to_owned(),
        position: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_profiles(path, &text)
}

/// JSON when the extension says so or the text starts with `{`, else YAML (as data files).
pub fn parse_profiles(path: &Path, text: &str) -> Result<Profiles, DataFileError> {
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
            let position = Some((e.inner().line(), e.inner().column()));
            error(position, e.path().to_string(), e.inner().to_string())
        })
    } else {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let position = e.inner().location().map(|l| (l.line(), l.column()));
            error(position, e.path().to_string(), e.inner().to_string())
        })
    }
}

/// The error already leads with the position and the field, which the parsers repeat:
/// JSON appends " at line L column C", YAML prefixes "FIELD: ".
pub(super) fn tidy(message: &str, field: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    let message = message
        .strip_prefix(field)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::profile::Dist;

    #[test]
    fn yaml_and_json_profiles_load() {
        let yaml = "gpt-4o:\n  latencyMs: {median: 900, p99: 3000}\n  errorRate: 0.02\ndefault:\n  timeScale: 0.1\n";
        let profiles = parse_profiles(Path::new("p.yaml"), yaml).unwrap();
        assert_eq!(profiles["gpt-4o"].latency_ms, Dist::new(900.0, 3000.0));
        assert_eq!(profiles["default"].time_scale, 0.1);
        let json = r#"{"m": {"outputTokens": {"median": 10, "p99": 20}}}"#;
        assert_eq!(
            parse_profiles(Path::new("p"), json).unwrap()["m"].output_tokens,
            Dist::new(10.0, 20.0)
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let yaml = "gpt-4o:\n  latencyMs: {median: 900, p99: 3000}\n  errorRate: 2\n";
        let err = parse_profiles(Path::new("p.yaml"), yaml)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:3:14: "), "{err}");
        assert!(
            !err.contains("errorRate: gpt-4o"),
            "the field is named once: {err}"
        );
        assert!(
            err.contains("field `gpt-4o.errorRate`") && err.contains("from 0 to 1"),
            "{err}"
        );
        let json = "{\n  \"m\": {\"ttftMs\": {\"median\": 5}}\n}";
        let err = parse_profiles(Path::new("p.json"), json)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.json:2:")
                && err.contains("m.ttftMs")
                && err.contains("missing field `p99`"),
            "{err}"
        );
    }
}
