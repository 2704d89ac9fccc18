//! Semantic patches: any bytes that are a JSON array of instructions, applied to an AI
//! Config's targeting and to a segment, are applied or refused naming an instruction of the
//! list (`mock-ld/src/api/semantic_patch/properties` checks the same with generated input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_ld::api::semantic_patch::{self, segment, targeting, VariationRef};
use mock_ld::model::{Flag, Segment};
use serde_json::{json, Value};

fn variations() -> Vec<VariationRef> {
    ["disabled", "basic", "premium"]
        .iter()
        .map(|key| VariationRef {
            id: format!("id-{key}"),
            key: (*key).to_owned(),
            name: key.to_uppercase(),
            value: json!({ "_ldMeta": { "variationKey": key } }),
        })
        .collect()
}

fn check(instructions: &[Value], error: semantic_patch::InstructionError) {
    assert!(
        error.index < instructions.len().max(1),
        "{error} names no instruction"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(instructions) = serde_json::from_slice::<Vec<Value>>(data) else {
        return;
    };
    let variations = variations();
    let mut draft = targeting::Draft {
        flag: Flag {
            variations: variations.iter().map(|v| v.value.clone()).collect(),
            ..Flag::default()
        },
        defaults: targeting::Defaults {
            on: "id-disabled".into(),
            off: "id-disabled".into(),
        },
        variations: &variations,
        settings: None,
    };
    let result = semantic_patch::parse::<targeting::Instruction>(&instructions)
        .and_then(|steps| semantic_patch::apply(steps, &mut draft, targeting::apply));
    if let Err(error) = result {
        check(&instructions, error);
    }
    let mut draft = segment::Draft {
        segment: Segment::default(),
        name: "Beta".into(),
        tags: Vec::new(),
    };
    let result = semantic_patch::parse::<segment::Instruction>(&instructions)
        .and_then(|steps| semantic_patch::apply(steps, &mut draft, segment::apply));
    if let Err(error) = result {
        check(&instructions, error);
    }
});
