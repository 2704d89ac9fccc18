//! Scenario files: any text loads, or is refused at a line and column
//! (`src/scenario/properties.rs`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = aiconfig_harness::scenario::parse(Path::new("f.toml"), text) {
        assert!(
            error.position.is_some_and(|(l, c)| l >= 1 && c >= 1),
            "not located: {error}"
        );
    }
});
