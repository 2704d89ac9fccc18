//! Reading a scenario file, with errors that say where and what.

use std::path::Path;

use super::error::ScenarioError;
use super::{Overrides, Scenario};

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_with(path, &Overrides::default())
}

/// Reads a scenario file, sets the command line's values in place of its own, and checks it.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_owned(),
        position: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_with(path, &text, overrides)
}

/// Parses and checks scenario text; `file` is only used in error messages.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    parse_with(file, text, &Overrides::default())
}

/// [`parse`] with the command line's values in place of the text's.
pub fn parse_with(
    file: &Path,
    text: &str,
    overrides: &Overrides,
) -> Result<Scenario, ScenarioError> {
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| ScenarioError::at(file, text, e.span(), "", e.message().to_owned()))?;
    let mut scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let field = if field == "." { String::new() } else { field };
        ScenarioError::at(file, text, inner.span(), &field, inner.message().to_owned())
    })?;
    overrides.apply(&mut scenario);
    if let Some(handler) = &mut scenario.load.handler {
        *handler = handler_beside(file, handler);
    }
    let (checks, warnings) =
        super::validate::check(&scenario, file, text, overrides.external_target)
            .map_err(|e| overrides.locate(e))?;
    scenario.checks = checks;
    scenario.warnings = warnings
        .into_iter()
        .map(|w| overrides.locate(w).to_string())
        .collect();
    Ok(scenario)
}

/// A handler naming a file (`dir/app.py:handle`, `app.mjs#handle`) names it relative to
/// the scenario's directory, as a user reading the file would; a module name
/// (`app.handlers:handle`) is left to Python's import path.
fn handler_beside(scenario: &Path, handler: &str) -> String {
    let Some((module, name, separator)) = handler
        .rsplit_once('#')
        .map(|(m, n)| (m, n, '#'))
        .or_else(|| handler.rsplit_once(':').map(|(m, n)| (m, n, ':')))
    else {
        return handler.to_owned();
    };
    let is_file = module.contains('/')
        || [".py", ".mjs", ".js", ".cjs"]
            .iter()
            .any(|ext| module.ends_with(ext));
    let path = Path::new(module);
    if !is_file || path.is_absolute() {
        return handler.to_owned();
    }
    let dir = scenario.parent().unwrap_or(Path::new(""));
    let joined = std::path::absolute(dir.join(path)).unwrap_or_else(|_| dir.join(path));
    format!("{}{separator}{name}", joined.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(Path::new("s.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_scenario_has_defaults() {
        let s = parse(
            Path::new("s.toml"),
            "name = \"x\"\n[population]\ncount = 10\n",
        )
        .unwrap();
        assert_eq!(s.iterations(), 10);
        assert_eq!(s.load.concurrency, 16);
        assert_eq!(s.load.events.capacity, 100_000);
        assert_eq!(s.environment, "test");
        assert!(s.llm.stream);
    }

    #[test]
    fn unknown_keys_name_file_line_column_and_field() {
        let e = error("name = \"x\"\n[population]\ncount = 10\n[load]\nconcurency = 3\n");
        assert!(e.starts_with("s.toml:5:1: "), "{e}");
        assert!(e.contains("unknown field `concurency`"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_field_path() {
        let e = error("name = \"x\"\n[population]\ncount = \"many\"\n");
        assert!(e.starts_with("s.toml:3:9: field `population.count`"), "{e}");
    }

    #[test]
    fn bad_durations_are_errors() {
        let e = error("name = \"x\"\n[population]\ncount = 1\n[load]\nduration = \"soon\"\n");
        assert!(e.contains("load.duration"), "{e}");
    }

    #[test]
    fn a_handler_file_is_found_beside_the_scenario() {
        let file = Path::new("/repo/scenarios/s.toml");
        assert_eq!(
            handler_beside(file, "handlers/app.py:handle"),
            "/repo/scenarios/handlers/app.py:handle"
        );
        assert_eq!(
            handler_beside(file, "app.mjs#handle"),
            "/repo/scenarios/app.mjs#handle"
        );
        assert_eq!(
            handler_beside(file, "app.handlers:handle"),
            "app.handlers:handle"
        );
        assert_eq!(handler_beside(file, "/abs/app.py:h"), "/abs/app.py:h");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = error("name = \"x\"\n[population\n");
        assert!(e.starts_with("s.toml:2:"), "{e}");
    }
}
