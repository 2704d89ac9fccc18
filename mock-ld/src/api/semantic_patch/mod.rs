//! Semantic patch: LaunchDarkly's instruction-based updates, `{environmentKey, instructions:
//! [{kind, …}], comment}`, for AI Config targeting and feature flags ([`targeting`], with the
//! flag-only instructions in [`flag`]) and segments ([`segment`]).
//!
//! A patch is atomic. Every instruction is parsed first, then each is applied in order to a
//! draft (a copy); the first failure names its index, its kind and the problem, and the caller
//! drops the draft. Instructions that are already satisfied (removing an absent target) are
//! no-ops, as in LaunchDarkly.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;

mod clauses;
pub mod flag;
pub use clauses::{check_ops, OPERATORS};
#[cfg(test)]
mod properties;
mod rules;
pub mod segment;
mod serve;
pub mod targeting;
mod targets;
#[cfg(test)]
mod tests;

pub use rules::fill_ids;
pub use serve::VariationRef;

/// The body of a semantic-patch request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchBody {
    pub environment_key: Option<String>,
    pub instructions: Option<Vec<Value>>,
    pub comment: Option<String>,
}

impl PatchBody {
    /// The instructions, which a semantic patch must have.
    pub fn take_instructions(&mut self) -> Result<Vec<Value>, AppError> {
        self.instructions.take().ok_or_else(|| {
            AppError::bad_request(
                "`instructions` is missing: this endpoint takes a semantic patch, \
                 {\"environmentKey\": …, \"instructions\": [{\"kind\": …}], \"comment\": …}",
            )
        })
    }
}

/// One parsed instruction and where it stood in the request.
#[derive(Debug)]
pub struct Step<I> {
    index: usize,
    kind: String,
    instruction: I,
}

impl<I> Step<I> {
    pub fn instruction(&self) -> &I {
        &self.instruction
    }
}

/// Why a patch was refused: `instructions[2] (addRule): rolloutWeights sum to 90000, not 100000`.
#[derive(Debug, PartialEq)]
pub struct InstructionError {
    pub index: usize,
    pub kind: String,
    pub message: String,
}

impl fmt::Display for InstructionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instructions[{}] ({}): {}",
            self.index, self.kind, self.message
        )
    }
}

impl From<InstructionError> for AppError {
    fn from(error: InstructionError) -> Self {
        AppError::bad_request(error.to_string())
    }
}

/// Parses every instruction. The first that does not parse (an unknown `kind`, a missing or
/// mistyped field) refuses the whole patch.
pub fn parse<I: DeserializeOwned>(raw: &[Value]) -> Result<Vec<Step<I>>, InstructionError> {
    if raw.is_empty() {
        return Err(InstructionError {
            index: 0,
            kind: "none".into(),
            message: "`instructions` is empty: there is nothing to do".into(),
        });
    }
    raw.iter()
        .enumerate()
        .map(|(index, value)| {
            let kind = match value.get("kind") {
                Some(Value::String(kind)) => kind.clone(),
                _ => "no kind".to_owned(),
            };
            match I::deserialize(value) {
                Ok(instruction) => Ok(Step {
                    index,
                    kind,
                    instruction,
                }),
                Err(error) => Err(InstructionError {
                    index,
                    kind,
                    message: error.to_string().replacen(
                        "unknown variant",
                        "unknown instruction kind",
                        1,
                    ),
                }),
            }
        })
        .collect()
}

/// Applies each step to `draft` in order and stops at the first failure.
pub fn apply<I, D>(
    steps: Vec<Step<I>>,
    draft: &mut D,
    mut apply_one: impl FnMut(&mut D, I) -> Result<(), String>,
) -> Result<(), InstructionError> {
    for step in steps {
        apply_one(draft, step.instruction).map_err(|message| InstructionError {
            index: step.index,
            kind: step.kind,
            message,
        })?;
    }
    Ok(())
}
