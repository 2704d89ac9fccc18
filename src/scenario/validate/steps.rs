//! Steps and timed actions: what they name exists, and an `llm` action can act.

use std::collections::HashSet;

use super::configs::{check_instruction, check_targeting};
use super::numbers::at_most;
use super::{Checker, Seg};
use crate::scenario::bounds::{self};
use crate::scenario::error::ScenarioError;
use crate::scenario::Scenario;

pub(super) fn check_steps_and_actions(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let configs: HashSet<&str> = s.ai_configs.iter().map(|a| a.key.as_str()).collect();
    for (i, step) in s.steps.iter().enumerate() {
        if !configs.contains(step.config.as_str()) {
            return Err(c.error(
                &[Seg::Key("steps"), Seg::Index(i), Seg::Key("config")],
                format!("unknown AI Config {:?}", step.config),
            ));
        }
        for (name, p) in [
            ("feedback_rate", step.feedback_rate),
            ("positive_feedback", step.positive_feedback),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(c.error(
                    &[Seg::Key("steps"), Seg::Index(i), Seg::Key(name)],
                    format!("{p} is not a probability"),
                ));
            }
        }
        check_on_error(&step.on_error, c, i)?;
    }
    for (i, action) in s.actions.iter().enumerate() {
        let path = |k| [Seg::Key("actions"), Seg::Index(i), Seg::Key(k)];
        at_most(c, &path("at"), action.at, bounds::MAX_DURATION, "")?;
        if let Some(change) = &action.llm {
            check_llm_action(s, action, change, c, i)?;
            continue;
        }
        if action.config.is_empty() {
            return Err(c.error(
                &[Seg::Key("actions"), Seg::Index(i)],
                "an action needs `config` with `targeting` or `update_variation`, or `llm`",
            ));
        }
        let Some(config) = s.ai_configs.iter().find(|a| a.key == action.config) else {
            return Err(c.error(
                &path("config"),
                format!("unknown AI Config {:?}", action.config),
            ));
        };
        let variations: HashSet<&str> = config.variations.iter().map(|v| v.key.as_str()).collect();
        for (n, instruction) in action.targeting.iter().enumerate() {
            let located = [
                Seg::Key("actions"),
                Seg::Index(i),
                Seg::Key("targeting"),
                Seg::Index(n),
            ];
            check_targeting(s, instruction.get_ref(), &located, c)?;
            check_instruction(instruction, &variations).map_err(|m| {
                c.error_at(
                    instruction.span(),
                    format!("actions[{i}].targeting[{n}]"),
                    m,
                )
            })?;
        }
        if let Some(update) = &action.update_variation {
            if !variations.contains(update.key.as_str()) {
                return Err(c.error(
                    &path("update_variation"),
                    format!("unknown variation {:?}", update.key),
                ));
            }
        }
        if action.targeting.is_empty() && action.update_variation.is_none() {
            return Err(c.error(
                &path("config"),
                "an action needs `targeting` or `update_variation`",
            ));
        }
    }
    Ok(())
}

/// A step's `on_error`: bounded retries and waits, and a fallback model that names one.
fn check_on_error(
    on_error: &crate::scenario::OnError,
    c: &Checker<'_>,
    i: usize,
) -> Result<(), ScenarioError> {
    let path = |k| {
        [
            Seg::Key("steps"),
            Seg::Index(i),
            Seg::Key("on_error"),
            Seg::Key(k),
        ]
    };
    if on_error.retries > bounds::MAX_RETRIES {
        return Err(c.error(
            &path("retries"),
            format!(
                "retries {} is more than {}: each retry is another LLM call and its tracker events",
                on_error.retries,
                bounds::MAX_RETRIES
            ),
        ));
    }
    let why = " (a wall-clock wait between retries)";
    at_most(
        c,
        &path("backoff"),
        on_error.backoff,
        bounds::MAX_RETRY_WAIT,
        why,
    )?;
    at_most(
        c,
        &path("max_retry_after"),
        on_error.max_retry_after,
        bounds::MAX_RETRY_WAIT,
        why,
    )?;
    if let Some(model) = &on_error.fallback_model {
        if model.trim().is_empty() || model.len() > mock_ld::faults::spec::MAX_MODEL_BYTES {
            return Err(c.error(
                &path("fallback_model"),
                format!(
                    "fallback_model names the model called when the retries fail: not empty, at most {} bytes",
                    mock_ld::faults::spec::MAX_MODEL_BYTES
                ),
            ));
        }
    }
    Ok(())
}

/// An `llm` action changes one model of mock-ld's simulator, alone, for a while.
pub(super) fn check_llm_action(
    s: &Scenario,
    action: &crate::scenario::Action,
    change: &crate::scenario::LlmChange,
    c: &Checker<'_>,
    i: usize,
) -> Result<(), ScenarioError> {
    let at = |rest: &[Seg<'static>]| [&[Seg::Key("actions"), Seg::Index(i)], rest].concat();
    let llm = |k| at(&[Seg::Key("llm"), Seg::Key(k)]);
    for (key, set) in [
        ("config", !action.config.is_empty()),
        ("targeting", !action.targeting.is_empty()),
        ("update_variation", action.update_variation.is_some()),
    ] {
        if set {
            return Err(c.error(
                &at(&[Seg::Key(key)]),
                format!("an `llm` action changes the simulated LLM alone: move `{key}` to an action of its own"),
            ));
        }
    }
    let known = s.llm.models.contains_key(&change.model)
        || s.ai_configs
            .iter()
            .flat_map(|a| &a.variations)
            .any(|v| v.model.name == change.model);
    if !known {
        return Err(c.error(
            &llm("model"),
            format!(
                "model {:?} is neither in [llm.models] nor the model of a variation",
                change.model
            ),
        ));
    }
    if !(change.latency_factor.is_finite()
        && change.latency_factor > 0.0
        && change.latency_factor <= bounds::MAX_TIME_SCALE)
    {
        return Err(c.error(
            &llm("latency_factor"),
            format!(
                "latency_factor multiplies the model's latency: a number above 0 and at most {} (20 is 20 times slower)",
                bounds::MAX_TIME_SCALE
            ),
        ));
    }
    if change.duration.is_zero() {
        return Err(c.error(&llm("for"), "`for` is how long the change lasts: above 0"));
    }
    at_most(c, &llm("for"), change.duration, bounds::MAX_DURATION, "")?;
    if s.llm.url.is_some() {
        return Err(c.error(
            &at(&[Seg::Key("llm")]),
            "an `llm` action changes mock-ld's simulated provider, but [llm] url calls another",
        ));
    }
    if s.llm.time_scale == Some(0.0) {
        return Err(c.error(
            &at(&[Seg::Key("llm")]),
            "with [llm] time_scale = 0 calls answer at once, and a latency factor changes nothing",
        ));
    }
    Ok(())
}
