//! AI Configs, their variations and models, targeting instructions (kinds, clauses,
//! operators, attribute references) and segments.

use std::collections::HashSet;

use mock_ld::api::DISABLED_KEY;
use toml::Spanned;

use super::{Checker, Seg};
use crate::scenario::bounds::{self, count};
use crate::scenario::error::ScenarioError;
use crate::scenario::rules;
use crate::scenario::{Mode, Scenario};

/// Instruction kinds of LaunchDarkly's AI Config targeting semantic patch
/// (`shared/spec/ld-rest-api.md` §5.2–5.3).
pub const TARGETING_KINDS: &[&str] = &[
    "addRule",
    "removeRule",
    "replaceRules",
    "reorderRules",
    "updateRuleVariationOrRollout",
    "updateRuleDescription",
    "updateRuleTrackEvents",
    "addClauses",
    "removeClauses",
    "updateClause",
    "addValuesToClause",
    "removeValuesFromClause",
    "addTargets",
    "removeTargets",
    "replaceTargets",
    "clearTargets",
    "updateFallthroughVariationOrRollout",
    "updateOffVariation",
    "updateDefaultVariation",
    "updateTrackEvents",
    "updateTrackEventsFallthrough",
];

pub(super) fn check_configs(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let mut keys = HashSet::new();
    for (i, config) in s.ai_configs.iter().enumerate() {
        let at = |rest: &[Seg<'static>]| [&[Seg::Key("ai_configs"), Seg::Index(i)], rest].concat();
        if !keys.insert(config.key.as_str()) {
            return Err(c.error(
                &at(&[Seg::Key("key")]),
                format!("AI Config {:?} is defined twice", config.key),
            ));
        }
        check_key("AI Config", &config.key).map_err(|m| c.error(&at(&[Seg::Key("key")]), m))?;
        let mut variations = HashSet::new();
        for (v, variation) in config.variations.iter().enumerate() {
            let path = at(&[Seg::Key("variations"), Seg::Index(v)]);
            if !variations.insert(variation.key.as_str()) {
                return Err(c.error(
                    &path,
                    format!("variation {:?} is defined twice", variation.key),
                ));
            }
            let key_path = [path.as_slice(), &[Seg::Key("key")]].concat();
            check_key("variation", &variation.key).map_err(|m| c.error(&key_path, m))?;
            if variation.key == DISABLED_KEY {
                let why = "variation key \"disabled\" is the AI Config's own disabled variation";
                return Err(c.error(&key_path, why));
            }
            check_model_parameters(&variation.model, &path, c)?;
            if config.mode == Mode::Agent && variation.instructions.is_none() {
                return Err(c.error(&path, "an agent-mode variation needs `instructions`"));
            }
        }
        let field = |n: usize| format!("ai_configs[{i}].targeting[{n}]");
        for (n, instruction) in config.targeting.iter().enumerate() {
            let path = at(&[Seg::Key("targeting"), Seg::Index(n)]);
            check_targeting(s, instruction.get_ref(), &path, c)?;
            check_instruction(instruction, &variations)
                .map_err(|m| c.error_at(instruction.span(), field(n), m))?;
        }
    }
    Ok(())
}

/// Model parameters go to LaunchDarkly as JSON, which has no NaN or infinity, and
/// `max_tokens` to the LLM as a whole number of tokens.
pub(super) fn check_model_parameters(
    model: &crate::scenario::ModelSpec,
    path: &[Seg<'_>],
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    for (table_key, table) in [("parameters", &model.parameters), ("custom", &model.custom)] {
        for (key, value) in table {
            let at = || {
                [
                    path,
                    &[
                        Seg::Key("model"),
                        Seg::Key(table_key),
                        Seg::Key(key.as_str()),
                    ],
                ]
                .concat()
            };
            if value.as_float().is_some_and(|f| !f.is_finite()) {
                return Err(c.error(&at(), "JSON has no NaN or infinity: a finite number"));
            }
            if table_key == "parameters" && key == "max_tokens" {
                let ok = value
                    .as_integer()
                    .is_some_and(|n| n >= 1 && n as f64 <= bounds::MAX_OUTPUT_TOKENS);
                if !ok {
                    return Err(c.error(
                        &at(),
                        format!(
                            "max_tokens is a whole number of tokens from 1 to {}",
                            count(bounds::MAX_OUTPUT_TOKENS as u64)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A targeting instruction names a known kind and only variations the config has.
pub(in crate::scenario) fn check_instruction(
    instruction: &Spanned<toml::Table>,
    variations: &HashSet<&str>,
) -> Result<(), String> {
    let table = instruction.get_ref();
    let kind = table
        .get("kind")
        .and_then(toml::Value::as_str)
        .ok_or("an instruction needs a string `kind`")?;
    if !TARGETING_KINDS.contains(&kind) {
        return Err(format!(
            "unknown instruction kind {kind:?}; known kinds: {}",
            TARGETING_KINDS.join(", ")
        ));
    }
    let known = |key: &str| key == "disabled" || variations.contains(key);
    if let Some(variation) = table.get("variation") {
        let key = variation
            .as_str()
            .ok_or("`variation` names a variation by its key")?;
        if !known(key) {
            return Err(format!("unknown variation {key:?}"));
        }
    }
    if let Some(rollout) = table.get("rollout") {
        let weights = rollout
            .as_table()
            .ok_or("`rollout` maps variation keys to percentages")?;
        let mut sum = 0.0;
        for (key, weight) in weights {
            if !known(key) {
                return Err(format!("rollout names unknown variation {key:?}"));
            }
            sum += weight
                .as_float()
                .or_else(|| weight.as_integer().map(|w| w as f64))
                .ok_or("rollout percentages are numbers")?;
        }
        if (sum - 100.0).abs() > 1e-6 {
            return Err(format!("rollout percentages sum to {sum}, not 100"));
        }
    }
    Ok(())
}

/// Segment keys are unique, and their rules' clauses follow LaunchDarkly's rules.
pub(super) fn check_segments(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let mut keys = HashSet::new();
    for (i, segment) in s.segments.iter().enumerate() {
        let key_path = [Seg::Key("segments"), Seg::Index(i), Seg::Key("key")];
        if !keys.insert(segment.key.as_str()) {
            return Err(c.error(
                &key_path,
                format!("segment {:?} is defined twice", segment.key),
            ));
        }
        check_key("segment", &segment.key).map_err(|m| c.error(&key_path, m))?;
        for (n, instruction) in segment.instructions.iter().enumerate() {
            let path = [
                Seg::Key("segments"),
                Seg::Index(i),
                Seg::Key("instructions"),
                Seg::Index(n),
            ];
            check_targeting(s, instruction, &path, c)?;
        }
    }
    Ok(())
}

/// One targeting (or segment) instruction: each rollout weight a percentage, each clause's
/// operator LaunchDarkly's, its context kind and attribute valid, the segments it matches
/// defined; errors point at the value.
pub(super) fn check_targeting<'a>(
    s: &Scenario,
    table: &'a toml::Table,
    path: &[Seg<'a>],
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let at = |rest: &[Seg<'a>]| [path, rest].concat();
    if let Some(weights) = table.get("rollout").and_then(toml::Value::as_table) {
        for (key, weight) in weights {
            let w = weight
                .as_float()
                .or_else(|| weight.as_integer().map(|w| w as f64));
            if !w.is_some_and(|w| (0.0..=100.0).contains(&w)) {
                return Err(c.error(
                    &at(&[Seg::Key("rollout"), Seg::Key(key.as_str())]),
                    format!("rollout weight {weight} of {key:?} is not a percentage from 0 to 100"),
                ));
            }
        }
    }
    if let Some(kind) = table.get("rolloutContextKind") {
        let kind = kind.as_str().unwrap_or("");
        rules::check_kind(kind).map_err(|e| c.error(&at(&[Seg::Key("rolloutContextKind")]), e))?;
    }
    if let Some(by) = table.get("rolloutBucketBy") {
        rules::check_reference(by.as_str().unwrap_or(""))
            .map_err(|e| c.error(&at(&[Seg::Key("rolloutBucketBy")]), e))?;
    }
    let mut clauses: Vec<(Vec<Seg<'a>>, &toml::Table)> = Vec::new();
    if let Some(list) = table.get("clauses").and_then(toml::Value::as_array) {
        for (k, clause) in list.iter().enumerate() {
            if let Some(clause) = clause.as_table() {
                clauses.push((at(&[Seg::Key("clauses"), Seg::Index(k)]), clause));
            }
        }
    }
    if let Some(clause) = table.get("clause").and_then(toml::Value::as_table) {
        clauses.push((at(&[Seg::Key("clause")]), clause));
    }
    for (clause_path, clause) in clauses {
        check_clause(s, clause, &clause_path, c)?;
    }
    Ok(())
}

pub(super) fn check_clause<'a>(
    s: &Scenario,
    clause: &'a toml::Table,
    path: &[Seg<'a>],
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    let at = |k: &'a str| [path, &[Seg::Key(k)]].concat();
    let op = clause.get("op").and_then(toml::Value::as_str).unwrap_or("");
    if !rules::OPERATORS.contains(&op) {
        return Err(c.error(
            &at("op"),
            format!(
                "unknown operator {op:?}; LaunchDarkly's: {}",
                rules::OPERATORS.join(", ")
            ),
        ));
    }
    let kind = clause.get("contextKind");
    if let Some(kind) = kind {
        rules::check_kind(kind.as_str().unwrap_or(""))
            .map_err(|e| c.error(&at("contextKind"), e))?;
    }
    if op == "segmentMatch" {
        let defined: HashSet<&str> = s.segments.iter().map(|g| g.key.as_str()).collect();
        let values = clause.get("values").and_then(toml::Value::as_array);
        for (v, value) in values.into_iter().flatten().enumerate() {
            let key = value.as_str().unwrap_or("");
            if defined.contains(key) {
                continue;
            }
            let value_path = [&at("values")[..], &[Seg::Index(v)]].concat();
            if c.external_target {
                c.warnings.borrow_mut().push(c.error(
                    &value_path,
                    format!("segment {key:?} is not in [[segments]]; it must exist on the target, or the clause never matches"),
                ));
            } else {
                return Err(c.error(
                    &value_path,
                    format!("segment {key:?} is not in [[segments]], so the clause never matches (with `run --ld-url` this is a warning: the segment may exist on the target)"),
                ));
            }
        }
        return Ok(());
    }
    let attribute = clause
        .get("attribute")
        .and_then(toml::Value::as_str)
        .unwrap_or("");
    let valid = if kind.is_some() {
        rules::check_reference(attribute)
    } else if attribute.is_empty() {
        Err("a clause needs an `attribute`".to_owned())
    } else {
        Ok(())
    };
    valid.map_err(|e| c.error(&at("attribute"), e))
}

/// mock-ld's key rule (LaunchDarkly's), with its message.
fn check_key(what: &str, key: &str) -> Result<(), String> {
    mock_ld::api::check_key(what, key).map_err(|e| e.message)
}
