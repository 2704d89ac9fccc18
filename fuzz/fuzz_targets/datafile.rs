//! Data files: any text, read as JSON or as YAML, loads or is refused at a line and column
//! (`mock-ld/src/datafile/properties.rs`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the format.
    let Some((&format, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let file = if format & 1 == 1 { "f.json" } else { "f.yaml" };
    if let Err(error) = mock_ld::datafile::parse(Path::new(file), text) {
        assert!(
            error.position.is_some_and(|(l, c)| l >= 1 && c >= 1),
            "not located: {error}"
        );
    }
});
