//! `docs/results.schema.json` is generated from the results types, never written by hand:
//! this fails when the committed copy differs. `UPDATE_SCHEMA=1 cargo test --test schema`
//! rewrites it.

use std::path::Path;

#[test]
fn the_committed_schema_is_the_one_generated_from_the_results_types() {
    let generated = aiconfig_harness::results::json_schema();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results.schema.json");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the schema of the results types: run `UPDATE_SCHEMA=1 cargo test --test schema` and commit it",
        path.display()
    );
}

#[test]
fn the_schema_names_its_version_and_the_verdict() {
    let schema: serde_json::Value =
        serde_json::from_str(&aiconfig_harness::results::json_schema()).unwrap();
    assert_eq!(schema["title"], "RunResults");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["schemaVersion", "status", "checks", "verdict"] {
        assert!(
            required.contains(&field),
            "{field} not required: {required:?}"
        );
    }
}
