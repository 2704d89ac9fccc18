//! Properties of semantic patches, for AI Config targeting ([`targeting`]) and segments
//! ([`segment`]):
//! - a generated list of valid instructions applies, and leaves data SDKs can evaluate that
//!   agrees with a small model of what the instructions said;
//! - applying is deterministic, up to the fresh ids new rules and clauses get;
//! - one invalid instruction anywhere in a valid list refuses the patch, naming its index
//!   and kind;
//! - instruction-shaped JSON with wrong fields and values is applied or refused, never a
//!   panic, and a refusal names an instruction of the list.
//!
//! Generators draw abstract edits ("remove the 2nd rule the model can name"), and the models
//! turn them into instructions that are valid in the state the earlier ones left.

mod rules;
mod segment;
mod targeting;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::{parse, InstructionError};
use crate::model::Clause;
use crate::properties::{json_value, short_string};

/// The kinds `I` accepts, read from serde's "unknown variant" message so that the list can
/// never fall behind the enum.
fn kinds<I: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    let error = parse::<I>(&[json!({"kind": "?"})]).unwrap_err();
    let (_, list) = error
        .message
        .split_once("expected one of ")
        .expect("serde lists the variants");
    list.split(", ")
        .map(|kind| kind.trim_matches('`').to_owned())
        .collect()
}

/// Field names that some instruction takes.
const FIELDS: &[&str] = &[
    "ruleId",
    "ruleIds",
    "beforeRuleId",
    "clauseId",
    "clauseIds",
    "clause",
    "clauses",
    "values",
    "value",
    "contextKind",
    "description",
    "variationId",
    "variation",
    "rolloutWeights",
    "rolloutWeight",
    "rolloutContextKind",
    "rolloutBucketBy",
    "percentageRolloutConfig",
    "rollout",
    "weight",
    "bucketBy",
    "targets",
    "rules",
    "trackEvents",
    "onVariationValue",
    "offVariationValue",
    "guardedRolloutConfig",
];

/// An instruction of a real kind (or sometimes not) with fields that instructions take,
/// holding arbitrary values or plausible ones (ids that exist, a valid clause).
fn instruction_shaped(kinds: Vec<String>, plausible: Vec<Value>) -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => prop::sample::select(kinds).prop_map(Value::from),
        1 => json_value(1),
    ];
    let value = prop_oneof![json_value(3), prop::sample::select(plausible)];
    let field = (prop::sample::select(FIELDS), value);
    (
        prop::option::weighted(0.95, kind),
        prop::collection::vec(field, 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut object: Map<String, Value> = fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            if let Some(kind) = kind {
                object.insert("kind".into(), kind);
            }
            Value::Object(object)
        })
}

/// A change to one field of one instruction of a list: the field removed, or set to an
/// arbitrary or plausible value.
#[derive(Clone, Debug)]
struct Mutation {
    at: prop::sample::Index,
    field: &'static str,
    value: Option<Value>,
}

fn mutation(plausible: Vec<Value>) -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![1 => Just("kind"), 8 => prop::sample::select(FIELDS)];
    let value = prop_oneof![json_value(2), prop::sample::select(plausible)];
    (any::<prop::sample::Index>(), field, prop::option::of(value))
        .prop_map(|(at, field, value)| Mutation { at, field, value })
}

fn mutate(instructions: &mut [Value], mutation: &Mutation) {
    let at = mutation.at.index(instructions.len());
    let Some(object) = instructions[at].as_object_mut() else {
        return;
    };
    match &mutation.value {
        Some(value) => object.insert(mutation.field.to_owned(), value.clone()),
        None => object.remove(mutation.field),
    };
}

/// What a refusal must say of `instructions`: an index within the list (0 for an empty
/// one) and that instruction's kind, or `no kind` where it has no string `kind`.
fn check_refusal(instructions: &[Value], error: &InstructionError) -> Result<(), TestCaseError> {
    if instructions.is_empty() {
        prop_assert_eq!((error.index, error.kind.as_str()), (0, "none"));
        return Ok(());
    }
    prop_assert!(error.index < instructions.len(), "{}", error);
    let expected = match instructions[error.index].get("kind") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => "no kind",
    };
    prop_assert_eq!(error.kind.as_str(), expected, "{}", error);
    prop_assert!(!error.message.is_empty());
    Ok(())
}

/// A clause as clients send it, valid: an operator with an attribute, or `segmentMatch`.
fn clause() -> impl Strategy<Value = Value> {
    let ops: Vec<&str> = super::OPERATORS
        .iter()
        .copied()
        .filter(|op| *op != "segmentMatch")
        .collect();
    let context_kind = prop::option::of(prop::sample::select(vec!["", "user", "organization"]));
    prop_oneof![
        3 => (
            context_kind,
            "[a-c]{1,2}",
            prop::sample::select(ops),
            prop::collection::vec(json_value(1), 0..3),
            any::<bool>(),
        )
            .prop_map(|(kind, attribute, op, values, negate)| {
                let mut clause = json!({"attribute": attribute, "op": op, "values": values, "negate": negate});
                if let Some(kind) = kind {
                    clause["contextKind"] = kind.into();
                }
                clause
            }),
        1 => prop::collection::vec(short_string(), 0..3)
            .prop_map(|keys| json!({"op": "segmentMatch", "values": keys})),
    ]
}

/// A clause as SDKs read it: a known operator, an attribute and a kind unless it is a
/// `segmentMatch` (whose values are segment keys), and an id instructions can name.
fn check_clause(clause: &Clause) -> Result<(), TestCaseError> {
    prop_assert!(
        super::OPERATORS.contains(&clause.op.as_str()),
        "{:?}",
        clause
    );
    prop_assert!(clause.id.as_ref().is_some_and(|id| !id.is_empty()));
    if clause.op == "segmentMatch" {
        prop_assert!(clause.context_kind.is_none(), "{:?}", clause);
        prop_assert!(clause.values.iter().all(Value::is_string), "{:?}", clause);
    } else {
        prop_assert!(!clause.attribute.is_empty(), "{:?}", clause);
        prop_assert!(
            clause.context_kind.as_ref().is_some_and(|k| !k.is_empty()),
            "{:?}",
            clause
        );
    }
    Ok(())
}

/// `id` if it is one the patch made (a UUID), else the placeholder `fresh`: two applications
/// of one patch differ in nothing else.
fn stable_id(id: &str) -> String {
    if uuid::Uuid::parse_str(id).is_ok() {
        "fresh".to_owned()
    } else {
        id.to_owned()
    }
}
