//! `--llm-profiles FILE`: a JSON or YAML map from model name to [`Profile`], with errors
//! that name file, line, column and field as `--data` errors do.

use std::collections::BTreeMap;
use std::path::Path;

use super::profile::Profile;
use crate::datafile::{self, DataFileError};

pub type Profiles = BTreeMap<String, Profile>;

/// JSON when the extension says so or the text starts with `{`, else YAML (as data files).
pub fn load_profiles(path: &Path) -> Result<Profiles, DataFileError> {
    datafile::load_as(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::profile::Dist;

    fn parse_profiles(path: &Path, text: &str) -> Result<Profiles, DataFileError> {
        datafile::parse_as(path, text)
    }

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
