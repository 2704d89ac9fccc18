//! Every scenario shipped in `scenarios/` loads, validates and has checks.

use std::path::Path;

use aiconfig_harness::scenario;

#[test]
fn every_shipped_scenario_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.ai_configs.is_empty(), "{}: no AI Config", path.display());
            assert!(
                !s.effective_steps().is_empty(),
                "{}: no steps",
                path.display()
            );
            assert!(
                !s.checks.is_empty(),
                "{}: no checks: say what the scenario is for (see tests/scenario_checks.rs)",
                path.display()
            );
            loaded.push(s.name);
        }
    }
    loaded.sort();
    let expected = [
        "agent-with-tools",
        "b2b-multi-context",
        "events-degraded",
        "geo-targeting",
        "ld-outage",
        "ld-restart",
        "mid-run-prompt-change",
        "model-ab-test",
        "provider-rate-limit",
        "quickstart",
        "scale-1m",
        "summarize-translate-chain",
        "tier-based-models",
    ];
    assert_eq!(loaded, expected);
}

#[test]
fn the_embedded_default_is_the_quickstart_file() {
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml"),
    )
    .unwrap();
    assert_eq!(aiconfig_harness::scenario::QUICKSTART, file);
}
