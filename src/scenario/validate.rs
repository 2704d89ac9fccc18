//! Checks a parsed scenario for what serde cannot: references between sections, sums of
//! weights, load shapes, LaunchDarkly's rules for kinds, attributes and operators, and the
//! [`bounds`] of every number. Errors point at the offending value in the file.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::bounds::{self, count, need};
use super::checks::{self as spec, CheckSpec};
use super::parse::ScenarioError;
use super::population::Generator;
use super::rules;
use super::{LoadModel, Mode, Scenario};

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

/// One step of a path into the document.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
    /// `run --ld-url`: segments may exist on the target.
    external_target: bool,
    warnings: RefCell<Vec<ScenarioError>>,
}

impl Checker<'_> {
    /// The span of the value at `path`, or of its deepest ancestor that exists.
    fn span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let root = self.root.as_ref()?;
        let mut span = root.span();
        let mut table = Some(root.get_ref());
        let mut array: Option<&toml::de::DeArray<'_>> = None;
        for seg in path {
            let next = match (seg, table, array) {
                (Seg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == *k)
                    .map(|(_, v)| v),
                (Seg::Index(i), _, Some(a)) => a.get(*i),
                _ => None,
            };
            let Some(value) = next else { break };
            span = value.span();
            (table, array) = match value.get_ref() {
                DeValue::Table(t) => (Some(t), None),
                DeValue::Array(a) => (None, Some(a)),
                _ => (None, None),
            };
        }
        Some(span)
    }

    fn error(&self, path: &[Seg<'_>], message: impl Into<String>) -> ScenarioError {
        let field = path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => format!(".{k}"),
                Seg::Index(i) => format!("[{i}]"),
            })
            .collect::<String>();
        ScenarioError::at(
            self.file,
            self.text,
            self.span(path),
            field.trim_start_matches('.'),
            message.into(),
        )
    }

    fn error_at(&self, span: Range<usize>, field: String, message: String) -> ScenarioError {
        ScenarioError::at(self.file, self.text, Some(span), &field, message)
    }
}

/// Checks the scenario and reads its `[[checks]]`; returns them with the warnings.
pub(super) fn check(
    s: &Scenario,
    file: &Path,
    text: &str,
    external_target: bool,
) -> Result<(Vec<CheckSpec>, Vec<ScenarioError>), ScenarioError> {
    let c = Checker {
        file,
        text,
        root: DeTable::parse(text).ok(),
        external_target,
        warnings: RefCell::new(Vec::new()),
    };
    check_configs(s, &c)?;
    check_segments(s, &c)?;
    check_steps_and_actions(s, &c)?;
    check_load(s, &c)?;
    check_llm(s, &c)?;
    check_population(s, &c)?;
    Generator::new(&s.population, s.seed).map_err(|e| c.error(&[Seg::Key("population")], e))?;
    let checks = read_checks(s, &c)?;
    check_events_enabled(s, &checks, &c)?;
    check_propagation_measured(s, &checks, &c)?;
    Ok((checks, c.warnings.into_inner()))
}

/// Propagation is measured for actions that change an AI Config: a threshold on it needs one.
fn check_propagation_measured(
    s: &Scenario,
    checks: &[CheckSpec],
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    if s.actions.iter().any(super::Action::changes_flags) {
        return Ok(());
    }
    let found = checks.iter().position(|check| {
        matches!(&check.kind, spec::CheckKind::Threshold(t)
            if matches!(t.metric, spec::Metric::Latency(spec::Series::Propagation, _)))
    });
    match found {
        Some(i) => Err(c.error(
            &[Seg::Key("checks"), Seg::Index(i), Seg::Key("metric")],
            "propagation is measured for [[actions]] that change an AI Config, and the scenario has none",
        )),
        None => Ok(()),
    }
}

/// With events off there is nothing to verify or flush, so an `events_complete` check or a
/// threshold on flush latency could only be inconclusive: refuse them rather than let them
/// pass unnoticed.
fn check_events_enabled(
    s: &Scenario,
    checks: &[CheckSpec],
    c: &Checker<'_>,
) -> Result<(), ScenarioError> {
    if s.load.events.enabled {
        return Ok(());
    }
    // The key to point at, and what needs the events.
    let needs_events = |check: &CheckSpec| match &check.kind {
        spec::CheckKind::EventsComplete => Some(("kind", "events_complete")),
        spec::CheckKind::Threshold(t) => match t.metric {
            spec::Metric::Latency(spec::Series::Flush, _) => Some(("metric", "flush latency")),
            spec::Metric::EventsLost => Some(("metric", "events_lost")),
            _ => None,
        },
        spec::CheckKind::RolloutSplit { .. } => None,
    };
    let found = checks
        .iter()
        .enumerate()
        .find_map(|(i, check)| Some((i, needs_events(check)?)));
    match found {
        Some((i, (key, what))) => Err(c.error(
            &[Seg::Key("checks"), Seg::Index(i), Seg::Key(key)],
            format!("{what} needs events: remove `enabled = false` from [load.events]"),
        )),
        None => Ok(()),
    }
}

/// Each `[[checks]]` table as a typed check; an error points at the offending key's value,
/// or at the table when a key is missing.
fn read_checks(s: &Scenario, c: &Checker<'_>) -> Result<Vec<CheckSpec>, ScenarioError> {
    s.check_tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            spec::parse(table, &s.ai_configs).map_err(|e| {
                let mut path = vec![Seg::Key("checks"), Seg::Index(i)];
                path.extend(e.key.as_deref().map(Seg::Key));
                c.error(&path, e.message)
            })
        })
        .collect()
}

fn check_configs(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let mut keys = HashSet::new();
    for (i, config) in s.ai_configs.iter().enumerate() {
        let at = |rest: &[Seg<'static>]| [&[Seg::Key("ai_configs"), Seg::Index(i)], rest].concat();
        if !keys.insert(config.key.as_str()) {
            return Err(c.error(
                &at(&[Seg::Key("key")]),
                format!("AI Config {:?} is defined twice", config.key),
            ));
        }
        let mut variations = HashSet::new();
        for (v, variation) in config.variations.iter().enumerate() {
            let path = at(&[Seg::Key("variations"), Seg::Index(v)]);
            if !variations.insert(variation.key.as_str()) {
                return Err(c.error(
                    &path,
                    format!("variation {:?} is defined twice", variation.key),
                ));
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
fn check_model_parameters(
    model: &super::ModelSpec,
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
pub(super) fn check_instruction(
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

fn check_steps_and_actions(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
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

/// An `llm` action changes one model of mock-ld's simulator, alone, for a while.
fn check_llm_action(
    s: &Scenario,
    action: &super::Action,
    change: &super::LlmChange,
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

/// `duration` is at most `max`; `why` is appended to the message.
fn at_most(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    duration: Duration,
    max: Duration,
    why: &str,
) -> Result<(), ScenarioError> {
    if duration <= max {
        return Ok(());
    }
    Err(c.error(
        path,
        format!(
            "{} is too long: at most {}{why}",
            human(duration),
            human(max)
        ),
    ))
}

/// A number as written: `1e300` rather than its 301 digits.
fn number(x: f64) -> String {
    if x.is_finite() && x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

fn human(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// A count field within `1..=max`; `memory` is the bytes one unit needs, when memory is
/// why there is a bound, and what that unit is.
fn in_range(
    c: &Checker<'_>,
    path: &[Seg<'_>],
    (what, n): (&str, u64),
    max: u64,
    memory: Option<(u64, &str)>,
) -> Result<(), ScenarioError> {
    if n == 0 {
        return Err(c.error(path, format!("{what} must be at least 1")));
    }
    if n <= max {
        return Ok(());
    }
    let message = match memory {
        Some((per, unit)) => format!(
            "{what} {} would need about {} (about {} {unit}); at most {}",
            count(n),
            need(n as f64, per),
            bounds::bytes(per as f64),
            count(max)
        ),
        None => format!("{what} {}: at most {}", count(n), count(max)),
    };
    Err(c.error(path, message))
}

fn check_load(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    let at = |k| [Seg::Key("load"), Seg::Key(k)];
    if s.population.count == 0 {
        return Err(c.error(
            &[Seg::Key("population"), Seg::Key("count")],
            "a population needs at least one context",
        ));
    }
    in_range(
        c,
        &[Seg::Key("population"), Seg::Key("count")],
        ("a population of", s.population.count),
        bounds::MAX_POPULATION,
        None,
    )
    .map_err(|e| ScenarioError {
        message: format!(
            "{} contexts (more than a run can request: at most {} requests)",
            e.message,
            count(bounds::MAX_REQUESTS)
        ),
        ..e
    })?;
    in_range(
        c,
        &at("concurrency"),
        ("concurrency", load.concurrency as u64),
        bounds::MAX_CONCURRENCY,
        Some((
            bounds::BYTES_PER_VIRTUAL_USER,
            "per virtual user, whose own latency histograms also grow with each second it runs; for more load, use the open model",
        )),
    )?;
    let clients = load.sdk_clients as u64;
    in_range(
        c,
        &at("sdk_clients"),
        ("sdk_clients", clients),
        bounds::MAX_SDK_CLIENTS,
        Some((
            bounds::BYTES_PER_SDK_CLIENT,
            "and six threads per client, besides its event buffers",
        )),
    )?;
    in_range(
        c,
        &at("max_in_flight"),
        ("max_in_flight", load.max_in_flight as u64),
        bounds::MAX_IN_FLIGHT,
        Some((
            bounds::BYTES_PER_REQUEST_IN_FLIGHT,
            "per request in flight, when full",
        )),
    )?;
    let events = [Seg::Key("load"), Seg::Key("events")];
    let capacity = load.events.capacity as u64;
    let capacity_path = [events[0], events[1], Seg::Key("capacity")];
    in_range(
        c,
        &capacity_path,
        ("capacity", capacity),
        bounds::MAX_EVENTS_CAPACITY,
        Some((
            bounds::BYTES_PER_EVENT_SLOT * clients,
            "per slot for all SDK clients: the SDK allocates its buffers at full capacity",
        )),
    )?;
    let flush = [events[0], events[1], Seg::Key("flush_interval")];
    if load.events.flush_interval.is_zero() {
        return Err(c.error(&flush, "flush_interval must be above 0"));
    }
    at_most(
        c,
        &flush,
        load.events.flush_interval,
        bounds::MAX_FLUSH_INTERVAL,
        "",
    )?;
    if let Some(stall) = load.stall_after {
        at_most(c, &at("stall_after"), stall, bounds::MAX_DURATION, "")?;
    }
    if let Some(n) = load.iterations {
        in_range(
            c,
            &at("iterations"),
            ("iterations", n),
            bounds::MAX_REQUESTS,
            None,
        )?;
    }
    if let Some(rate) = load.rate {
        if !(rate.is_finite() && rate > 0.0 && rate <= bounds::MAX_RATE) {
            return Err(c.error(
                &at("rate"),
                format!(
                    "rate {} is not a number of requests per second above 0 and at most {}",
                    number(rate),
                    count(bounds::MAX_RATE as u64)
                ),
            ));
        }
    }
    if let Some(duration) = load.duration {
        if duration.is_zero() {
            return Err(c.error(&at("duration"), "duration must be above 0"));
        }
        open_duration(c, &at("duration"), duration)?;
    }
    for (i, stage) in load.stages.iter().enumerate() {
        let path = |k| {
            [
                Seg::Key("load"),
                Seg::Key("stages"),
                Seg::Index(i),
                Seg::Key(k),
            ]
        };
        if !(stage.target.is_finite() && stage.target >= 0.0 && stage.target <= bounds::MAX_RATE) {
            return Err(c.error(
                &path("target"),
                format!(
                    "stage targets are requests per second, at least 0 and at most {}",
                    count(bounds::MAX_RATE as u64)
                ),
            ));
        }
        if stage.duration.is_zero() {
            return Err(c.error(&path("duration"), "a stage lasts more than 0s"));
        }
    }
    let stages: Duration = load.stages.iter().map(|st| st.duration).sum();
    open_duration(c, &at("stages"), stages)?;
    if load.concurrency == 0 || load.sdk_clients == 0 || load.max_in_flight == 0 {
        return Err(c.error(
            &at("concurrency"),
            "concurrency, sdk_clients and max_in_flight must be at least 1",
        ));
    }
    if load.model == LoadModel::Open {
        let rate_ok = load.rate.is_some_and(|r| r > 0.0) && load.duration.is_some();
        if !rate_ok && load.stages.is_empty() {
            return Err(c.error(
                &at("model"),
                "the open model needs `rate` with `duration`, or `stages`",
            ));
        }
        // What `runner::schedule` integrates: the stages' trapezoids, or rate × duration.
        let total = if load.stages.is_empty() {
            load.rate.unwrap_or(0.0) * load.duration.unwrap_or_default().as_secs_f64()
        } else {
            let mut from = 0.0;
            load.stages
                .iter()
                .map(|st| {
                    let part = st.duration.as_secs_f64() * (from + st.target) / 2.0;
                    from = st.target;
                    part
                })
                .sum()
        };
        if total > bounds::MAX_REQUESTS as f64 {
            let field = if !load.stages.is_empty() {
                "stages"
            } else if s.overrides.contains_key("load.duration")
                && !s.overrides.contains_key("load.rate")
            {
                "duration"
            } else {
                "rate"
            };
            return Err(c.error(
                &at(field),
                format!(
                    "the schedule makes {} requests: at most {} (about a quarter of an hour at the harness's ~110,000 evaluations/s)",
                    count(total as u64),
                    count(bounds::MAX_REQUESTS),
                ),
            ));
        }
    } else if load.iterations.is_none() && s.population.count > bounds::MAX_REQUESTS {
        return Err(c.error(
            &[Seg::Key("population"), Seg::Key("count")],
            "one request per context is more than a run makes: set `load.iterations`",
        ));
    }
    Ok(())
}

/// An open-model load's length: its per-second timeline costs memory.
fn open_duration(c: &Checker<'_>, path: &[Seg<'_>], d: Duration) -> Result<(), ScenarioError> {
    if d <= bounds::MAX_OPEN_DURATION {
        return Ok(());
    }
    Err(c.error(
        path,
        format!(
            "a load of {} would need about {} for its per-second timeline (about {} per second); at most {}",
            human(d),
            need(d.as_secs_f64(), bounds::BYTES_PER_OPEN_SECOND),
            bounds::bytes(bounds::BYTES_PER_OPEN_SECOND as f64),
            human(bounds::MAX_OPEN_DURATION)
        ),
    ))
}

fn check_llm(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let time_scale = s.llm.time_scale;
    if let Some(t) = time_scale {
        if !(t.is_finite() && (0.0..=bounds::MAX_TIME_SCALE).contains(&t)) {
            return Err(c.error(
                &[Seg::Key("llm"), Seg::Key("time_scale")],
                format!(
                    "time_scale {} is not a factor from 0 to {}",
                    number(t),
                    bounds::MAX_TIME_SCALE
                ),
            ));
        }
    }
    let scale = time_scale.unwrap_or(1.0);
    for (model, b) in &s.llm.models {
        let path = |rest: &[Seg<'static>]| {
            [
                &[
                    Seg::Key("llm"),
                    Seg::Key("models"),
                    Seg::Key(model.as_str()),
                ][..],
                rest,
            ]
            .concat()
        };
        if !(0.0..=1.0).contains(&b.error_rate) {
            return Err(c.error(
                &path(&[Seg::Key("error_rate")]),
                format!("error_rate {} is not a probability", b.error_rate),
            ));
        }
        if let Some(status) = b.error_status {
            if !(400..=599).contains(&status) {
                return Err(c.error(
                    &path(&[Seg::Key("error_status")]),
                    format!("error_status {status} is not an HTTP error status (400 to 599)"),
                ));
            }
        }
        for (key, dist) in [("latency", Some(b.latency)), ("ttft", b.ttft)] {
            let Some(dist) = dist else { continue };
            if dist.median.is_zero() {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("median")]),
                    "a median latency is above 0",
                ));
            }
            if dist.p99 < dist.median {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("p99")]),
                    "p99 must be at least the median",
                ));
            }
            let scaled = dist.p99.as_secs_f64() * scale;
            if scaled > bounds::MAX_LLM_LATENCY.as_secs_f64() {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("p99")]),
                    format!(
                        "a p99 of {} (times time_scale {scale}) is past {}, where latency histograms stop",
                        human(dist.p99),
                        human(bounds::MAX_LLM_LATENCY)
                    ),
                ));
            }
        }
        if let Some(t) = b.output_tokens {
            let at = |k| path(&[Seg::Key("output_tokens"), Seg::Key(k)]);
            if !(t.median.is_finite() && t.median > 0.0) {
                return Err(c.error(&at("median"), "a median token count is a number above 0"));
            }
            if !(t.p99.is_finite() && t.p99 >= t.median && t.p99 <= bounds::MAX_OUTPUT_TOKENS) {
                return Err(c.error(
                    &at("p99"),
                    format!(
                        "p99 is at least the median and at most {} tokens (mock-ld writes every token)",
                        count(bounds::MAX_OUTPUT_TOKENS as u64)
                    ),
                ));
            }
        }
    }
    for (model, price) in &s.prices {
        for (key, value) in [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cached_input", price.cached_input),
        ] {
            let Some(value) = value else { continue };
            if !(value.is_finite() && (0.0..=bounds::MAX_PRICE).contains(&value)) {
                return Err(c.error(
                    &[Seg::Key("prices"), Seg::Key(model.as_str()), Seg::Key(key)],
                    format!(
                        "{} is not a price in USD per million tokens from 0 to {}",
                        number(value),
                        count(bounds::MAX_PRICE as u64)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Kinds and attribute names of the population, where they are written.
fn check_population(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let p = Seg::Key("population");
    for (kind, spec) in &s.population.kinds {
        let at = |rest: &[Seg<'static>]| {
            [&[p, Seg::Key("kinds"), Seg::Key(kind.as_str())][..], rest].concat()
        };
        rules::check_kind(kind).map_err(|e| c.error(&at(&[]), e))?;
        for (name, attribute) in &spec.attributes {
            rules::check_attribute_name(name, attribute.value_kind()).map_err(|e| {
                c.error(
                    &[
                        &at(&[Seg::Key("attributes")])[..],
                        &[Seg::Key(name.as_str())],
                    ]
                    .concat(),
                    e,
                )
            })?;
        }
    }
    for (i, fixed) in s.population.fixed.iter().enumerate() {
        let at = |k| [p, Seg::Key("fixed"), Seg::Index(i), Seg::Key(k)];
        if fixed.key.is_empty() {
            return Err(c.error(&at("key"), "a context needs a key"));
        }
        rules::check_kind(&fixed.kind).map_err(|e| c.error(&at("kind"), e))?;
        for (name, value) in &fixed.attributes {
            rules::check_attribute_name(name, Some(value.type_str())).map_err(|e| {
                c.error(
                    &[&at("attributes")[..], &[Seg::Key(name.as_str())]].concat(),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// Segment keys are unique, and their rules' clauses follow LaunchDarkly's rules.
fn check_segments(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let mut keys = HashSet::new();
    for (i, segment) in s.segments.iter().enumerate() {
        if !keys.insert(segment.key.as_str()) {
            return Err(c.error(
                &[Seg::Key("segments"), Seg::Index(i), Seg::Key("key")],
                format!("segment {:?} is defined twice", segment.key),
            ));
        }
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
fn check_targeting<'a>(
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

fn check_clause<'a>(
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;

    const BASE: &str = r#"
name = "t"
[population]
count = 100

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "small"
model = { name = "gpt-4o-mini" }

[[ai_configs.variations]]
key = "large"
model = { name = "gpt-4o" }
"#;

    fn error(extra: &str) -> String {
        parse(Path::new("s.toml"), &format!("{BASE}{extra}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_base_is_valid() {
        assert!(parse(Path::new("s.toml"), BASE).is_ok());
    }

    #[test]
    fn rollouts_must_sum_to_100_and_name_known_variations() {
        let e = error("\n[[ai_configs.targeting]]\nkind = \"updateFallthroughVariationOrRollout\"\nrollout = { small = 60, large = 30 }\n");
        assert!(
            e.starts_with(
                "s.toml:17:1: field `ai_configs[0].targeting[0]`: rollout percentages sum to 90"
            ),
            "{e}"
        );
        let e = error("\n[[ai_configs.targeting]]\nkind = \"addTargets\"\nvariation = \"huge\"\nvalues = [\"a\"]\n");
        assert!(e.contains("unknown variation \"huge\""), "{e}");
        let e = error("\n[[ai_configs.targeting]]\nkind = \"turnFlagOn\"\n");
        assert!(e.contains("unknown instruction kind \"turnFlagOn\""), "{e}");
    }

    #[test]
    fn steps_and_actions_must_name_known_configs() {
        let e = error("\n[[steps]]\nconfig = \"nope\"\n");
        assert!(
            e.starts_with("s.toml:18:10: field `steps[0].config`: unknown AI Config"),
            "{e}"
        );
        let e = error("\n[[actions]]\nat = \"1s\"\nconfig = \"assistant\"\n");
        assert!(e.contains("needs `targeting` or `update_variation`"), "{e}");
    }

    #[test]
    fn llm_actions_name_a_known_model_and_stand_alone() {
        let ok = format!("{BASE}\n[[actions]]\nat = \"3s\"\nllm = {{ model = \"gpt-4o\", latency_factor = 20, for = \"4s\" }}\n");
        let s = parse(Path::new("s.toml"), &ok).unwrap();
        let change = s.actions[0].llm.as_ref().unwrap();
        assert_eq!(
            (
                change.model.as_str(),
                change.latency_factor,
                change.duration.as_secs()
            ),
            ("gpt-4o", 20.0, 4)
        );
        assert!(!s.actions[0].changes_flags());
        let e = error("\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-5\", latency_factor = 20, for = \"4s\" }\n");
        assert!(
            e.starts_with("s.toml:19:17: field `actions[0].llm.model`: model \"gpt-5\""),
            "{e}"
        );
        let e = error("\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-4o\", latency_factor = 0, for = \"4s\" }\n");
        assert!(
            e.starts_with("s.toml:19:44: field `actions[0].llm.latency_factor`"),
            "{e}"
        );
        let e = error("\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-4o\", latency_factor = 2, for = \"0s\" }\n");
        assert!(e.contains("field `actions[0].llm.for`"), "{e}");
        let e =
            error("\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-4o\", latency_factor = 2 }\n");
        assert!(e.contains("missing field `for`"), "{e}");
        let e = error("\n[[actions]]\nat = \"3s\"\nconfig = \"assistant\"\nllm = { model = \"gpt-4o\", latency_factor = 2, for = \"1s\" }\n");
        assert!(
            e.starts_with("s.toml:19:10: field `actions[0].config`: an `llm` action"),
            "{e}"
        );
        let e = error("\n[llm]\ntime_scale = 0\n\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-4o\", latency_factor = 2, for = \"1s\" }\n");
        assert!(e.contains("time_scale = 0"), "{e}");
    }

    #[test]
    fn propagation_thresholds_need_a_flag_change() {
        let check =
            "\n[[checks]]\nkind = \"threshold\"\nmetric = \"propagation.p99\"\nmax = \"1s\"\n";
        let e = error(check);
        assert!(
            e.starts_with("s.toml:19:10: field `checks[0].metric`: propagation is measured"),
            "{e}"
        );
        let e = error(&format!("\n[[actions]]\nat = \"3s\"\nllm = {{ model = \"gpt-4o\", latency_factor = 2, for = \"1s\" }}\n{check}"));
        assert!(e.contains("propagation is measured"), "{e}");
        let with_change = format!("{BASE}\n[[actions]]\nat = \"1s\"\nconfig = \"assistant\"\ntargeting = [{{ kind = \"updateOffVariation\", variation = \"small\" }}]\n{check}");
        assert!(parse(Path::new("s.toml"), &with_change).is_ok());
    }

    #[test]
    fn open_load_needs_a_rate_or_stages() {
        let e = error("\n[load]\nmodel = \"open\"\n");
        assert!(e.starts_with("s.toml:18:9: field `load.model`"), "{e}");
    }

    #[test]
    fn checks_are_typed_and_errors_point_at_the_key() {
        let s = parse(
            Path::new("s.toml"),
            &format!(
                "{BASE}\n[[checks]]\nkind = \"threshold\"\nmetric = \"llm.p99\"\nmax = \"250ms\"\n"
            ),
        )
        .unwrap();
        assert_eq!(s.checks.len(), 1);
        let e =
            error("\n[[checks]]\nkind = \"threshold\"\nmetric = \"llm.p9x\"\nmax = \"250ms\"\n");
        assert!(
            e.starts_with("s.toml:19:10: field `checks[0].metric`: unknown statistic \"p9x\""),
            "{e}"
        );
        let e = error("\n[[checks]]\nkind = \"threshold\"\nmetric = \"llm.p98\"\nmax = \"250ms\"\nwindow = \"1.5s\"\n");
        assert!(
            e.starts_with(
                "s.toml:21:10: field `checks[0].window`: a window is a whole number of seconds"
            ),
            "{e}"
        );
        let e =
            error("\n[[checks]]\nkind = \"rollout_split\"\nconfig = \"assistant\"\nalpha = 0.01\n");
        assert!(
            e.starts_with("s.toml:20:9: field `checks[0].alpha`: unknown key `alpha`"),
            "{e}"
        );
        let e = error("\n[[checks]]\nmetric = \"llm.p99\"\n");
        assert!(
            e.starts_with("s.toml:17:1: field `checks[0]`: a check needs a `kind`"),
            "{e}"
        );
    }

    #[test]
    fn events_complete_needs_events() {
        let e =
            error("\n[load.events]\nenabled = false\n\n[[checks]]\nkind = \"events_complete\"\n");
        assert!(
            e.starts_with("s.toml:21:8: field `checks[0].kind`: events_complete needs events"),
            "{e}"
        );
        let e = error(
            "\n[load.events]\nenabled = false\n\n[[checks]]\nkind = \"threshold\"\nmetric = \"flush.p99\"\nmax = \"1s\"\n",
        );
        assert!(
            e.starts_with("s.toml:22:10: field `checks[0].metric`: flush latency needs events"),
            "{e}"
        );
        let e = error(
            "\n[load.events]\nenabled = false\n\n[[checks]]\nkind = \"threshold\"\nmetric = \"events_lost\"\nmax = 0\n",
        );
        assert!(
            e.starts_with("s.toml:22:10: field `checks[0].metric`: events_lost needs events"),
            "{e}"
        );
        assert!(parse(
            Path::new("s.toml"),
            &format!("{BASE}\n[load.events]\nenabled = false\n")
        )
        .is_ok_and(|s| !s.load.events.enabled));
    }

    #[test]
    fn population_errors_point_at_the_population() {
        let e = parse(Path::new("s.toml"), "name = \"t\"\n[population]\ncount = 5\nkinds.user.attributes.age = { range = [9, 1] }\n").unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml:2:1: field `population`") && e.contains("age"),
            "{e}"
        );
    }

    /// `BASE` with one line replaced or added under a table: the error, as printed.
    fn located(extra: &str) -> String {
        error(extra)
    }

    #[test]
    fn the_reported_absurd_values_are_located_errors() {
        let cases = [
            ("\n[load]\nconcurrency = 4294967297\n", "s.toml:18:15: field `load.concurrency`: concurrency 4,294,967,297 would need about 8.6 PB"),
            ("\n[load]\nmodel = \"open\"\nrate = 1e300\nduration = \"10s\"\n", "s.toml:19:8: field `load.rate`: rate 1e300"),
            ("\n[llm]\ntime_scale = inf\n", "s.toml:18:14: field `llm.time_scale`: time_scale inf"),
            ("\n[[ai_configs.targeting]]\nkind = \"updateFallthroughVariationOrRollout\"\nrollout = { small = 160, large = -60 }\n", "s.toml:19:34: field `ai_configs[0].targeting[0].rollout.large`: rollout weight -60"),
            ("\n[population.kinds.\"bad kind!\"]\n", "field `population.kinds.bad kind!`: invalid context kind \"bad kind!\""),
            ("\n[[ai_configs.targeting]]\nkind = \"addRule\"\nvariation = \"small\"\nclauses = [{ contextKind = \"user\", attribute = \"tier\", op = \"inn\", values = [\"a\"] }]\n", "field `ai_configs[0].targeting[0].clauses[0].op`: unknown operator \"inn\""),
            ("\n[[ai_configs.targeting]]\nkind = \"addRule\"\nvariation = \"small\"\nclauses = [{ contextKind = \"user\", attribute = \"segmentMatch\", op = \"segmentMatch\", values = [\"nowhere\"] }]\n", "field `ai_configs[0].targeting[0].clauses[0].values[0]`: segment \"nowhere\" is not in [[segments]]"),
        ];
        for (extra, expected) in cases {
            let e = located(extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
            assert!(
                e.starts_with("s.toml:")
                    && e.split(':')
                        .nth(1)
                        .is_some_and(|l| l.parse::<u32>().is_ok()),
                "{e}"
            );
        }
        let e = parse(
            Path::new("s.toml"),
            "name = \"t\"\n[population]\ncount = 1_000_000_000_000\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "s.toml:3:9: field `population.count`: a population of 1,000,000,000,000"
            ),
            "{e}"
        );
    }

    #[test]
    fn load_bounds() {
        for (extra, expected) in [
            ("\n[load]\nsdk_clients = 65\n", "field `load.sdk_clients`: sdk_clients 65 would need"),
            ("\n[load]\nmax_in_flight = 100001\n", "field `load.max_in_flight`"),
            ("\n[load.events]\ncapacity = 2000000\n", "field `load.events.capacity`: capacity 2,000,000 would need about 1.1 GB"),
            ("\n[load.events]\ncapacity = 0\n", "capacity must be at least 1"),
            ("\n[load.events]\nflush_interval = \"0s\"\n", "field `load.events.flush_interval`"),
            ("\n[load]\niterations = 0\n", "field `load.iterations`"),
            ("\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"100000h\"\n", "field `load.duration`: a load of 11years 4months 27days 3h 45m 36s would need about 720 TB for its per-second timeline"),
            ("\n[load]\nmodel = \"open\"\nrate = 1000000\nduration = \"10m\"\n", "field `load.rate`: the schedule makes 600,000,000 requests"),
            ("\n[load]\nmodel = \"open\"\nstages = [{ duration = \"1s\", target = nan }]\n", "field `load.stages[0].target`"),
            ("\n[load]\nstall_after = \"100000h\"\n", "field `load.stall_after`"),
        ] {
            let e = located(extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn llm_and_price_bounds() {
        let model = |line: &str| {
            format!(
                "\n[llm.models.gpt-4o]\nlatency = {{ median = \"1s\", p99 = \"2s\" }}\n{line}\n"
            )
        };
        for (extra, expected) in [
            (model("error_rate = nan"), "field `llm.models.gpt-4o.error_rate`"),
            (model("error_status = 200"), "field `llm.models.gpt-4o.error_status`"),
            (model("output_tokens = { median = 0, p99 = 10 }"), "field `llm.models.gpt-4o.output_tokens.median`"),
            (model("output_tokens = { median = 10, p99 = 1e12 }"), "field `llm.models.gpt-4o.output_tokens.p99`"),
            ("\n[llm.models.gpt-4o]\nlatency = { median = \"0s\", p99 = \"2s\" }\n".to_owned(), "field `llm.models.gpt-4o.latency.median`"),
            ("\n[llm.models.gpt-4o]\nlatency = { median = \"3s\", p99 = \"2s\" }\n".to_owned(), "field `llm.models.gpt-4o.latency.p99`"),
            ("\n[llm]\ntime_scale = 1000\n[llm.models.gpt-4o]\nlatency = { median = \"3s\", p99 = \"5s\" }\n".to_owned(), "where latency histograms stop"),
            ("\n[llm]\ntime_scale = -1\n".to_owned(), "field `llm.time_scale`"),
            ("\n[prices]\ngpt-4o = { input = 1e300, output = 1 }\n".to_owned(), "field `prices.gpt-4o.input`"),
            ("\n[prices]\ngpt-4o = { input = 1, output = 1, cached_input = nan }\n".to_owned(), "field `prices.gpt-4o.cached_input`"),
            ("\n[[actions]]\nat = \"100000h\"\nllm = { model = \"gpt-4o\", latency_factor = 2, for = \"1s\" }\n".to_owned(), "field `actions[0].at`"),
            ("\n[[actions]]\nat = \"1s\"\nllm = { model = \"gpt-4o\", latency_factor = inf, for = \"1s\" }\n".to_owned(), "field `actions[0].llm.latency_factor`"),
        ] {
            let e = located(&extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn kinds_attributes_and_clauses_follow_launchdarkly() {
        let rule = |clause: &str| {
            format!("\n[[ai_configs.targeting]]\nkind = \"addRule\"\nvariation = \"small\"\nclauses = [{clause}]\n")
        };
        for (extra, expected) in [
            (rule("{ contextKind = \"multi\", attribute = \"tier\", op = \"in\", values = [1] }"), "clauses[0].contextKind`: invalid context kind \"multi\""),
            (rule("{ contextKind = \"user\", attribute = \"/a//b\", op = \"in\", values = [1] }"), "clauses[0].attribute`: invalid attribute reference"),
            (rule("{ attribute = \"\", op = \"in\", values = [1] }"), "clauses[0].attribute`"),
            ("\n[[ai_configs.targeting]]\nkind = \"updateFallthroughVariationOrRollout\"\nrollout = { small = 50, large = 50 }\nrolloutContextKind = \"kind\"\n".to_owned(), "rolloutContextKind`: invalid context kind"),
            ("\n[population.kinds.user.attributes]\nkind = { value = \"org\" }\n".to_owned(), "field `population.kinds.user.attributes.kind`"),
            ("\n[population.kinds.user.attributes]\nname = { range = [1, 2] }\n".to_owned(), "`name` is a string"),
            ("\n[[population.fixed]]\nkey = \"a\"\nkind = \"bad kind!\"\n".to_owned(), "field `population.fixed[0].kind`"),
            ("\n[population.kinds.user.attributes]\nx = { uniform = [-1e308, 1e308] }\n".to_owned(), "wider than a number holds"),
            ("\n[[segments]]\nkey = \"s\"\ninstructions = [{ kind = \"addRule\", clauses = [{ contextKind = \"user\", attribute = \"a\", op = \"inn\", values = [1] }] }]\n".to_owned(), "field `segments[0].instructions[0].clauses[0].op`"),
        ] {
            let e = located(&extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
        let defined = format!("{BASE}\n[[ai_configs.targeting]]\nkind = \"addRule\"\nvariation = \"small\"\nclauses = [{{ contextKind = \"user\", attribute = \"segmentMatch\", op = \"segmentMatch\", values = [\"beta\"] }}]\n\n[[segments]]\nkey = \"beta\"\n");
        assert!(parse(Path::new("s.toml"), &defined).is_ok());
    }

    #[test]
    fn an_undefined_segment_is_a_warning_against_an_external_target() {
        let text = format!("{BASE}\n[[ai_configs.targeting]]\nkind = \"addRule\"\nvariation = \"small\"\nclauses = [{{ contextKind = \"user\", attribute = \"segmentMatch\", op = \"segmentMatch\", values = [\"elsewhere\"] }}]\n");
        let o = super::super::Overrides {
            external_target: true,
            ..Default::default()
        };
        let s = super::super::parse_with(Path::new("s.toml"), &text, &o).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].starts_with("s.toml:20:")
                && s.warnings[0].contains("field `ai_configs[0].targeting[0].clauses[0].values[0]`: segment \"elsewhere\""),
            "{}",
            s.warnings[0]
        );
    }

    #[test]
    fn an_absurd_override_names_its_flag() {
        let o = super::super::Overrides {
            concurrency: Some(4_294_967_297),
            ..Default::default()
        };
        let e = super::super::parse_with(Path::new("s.toml"), BASE, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml: field `load.concurrency`: --concurrency 4294967297: concurrency 4,294,967,297 would need"),
            "{e}"
        );
    }
}
