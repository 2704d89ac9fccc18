//! Checks a parsed scenario for what serde cannot: references between sections, sums of
//! weights, load shapes. Errors point at the offending value in the file.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::checks::{self as spec, CheckSpec};
use super::parse::ScenarioError;
use super::population::Generator;
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

/// Checks the scenario and reads its `[[checks]]`.
pub(super) fn check(
    s: &Scenario,
    file: &Path,
    text: &str,
) -> Result<Vec<CheckSpec>, ScenarioError> {
    let c = Checker {
        file,
        text,
        root: DeTable::parse(text).ok(),
    };
    check_configs(s, &c)?;
    check_steps_and_actions(s, &c)?;
    check_load(s, &c)?;
    check_llm(s, &c)?;
    Generator::new(&s.population, s.seed).map_err(|e| c.error(&[Seg::Key("population")], e))?;
    let checks = read_checks(s, &c)?;
    check_events_enabled(s, &checks, &c)?;
    check_propagation_measured(s, &checks, &c)?;
    Ok(checks)
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
            if config.mode == Mode::Agent && variation.instructions.is_none() {
                return Err(c.error(&path, "an agent-mode variation needs `instructions`"));
            }
        }
        let field = |n: usize| format!("ai_configs[{i}].targeting[{n}]");
        for (n, instruction) in config.targeting.iter().enumerate() {
            check_instruction(instruction, &variations)
                .map_err(|m| c.error_at(instruction.span(), field(n), m))?;
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
    if !(change.latency_factor.is_finite() && change.latency_factor > 0.0) {
        return Err(c.error(
            &llm("latency_factor"),
            "latency_factor multiplies the model's latency: a number above 0 (20 is 20 times slower)",
        ));
    }
    if change.duration.is_zero() {
        return Err(c.error(&llm("for"), "`for` is how long the change lasts: above 0"));
    }
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

fn check_load(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let load = &s.load;
    let at = |k| [Seg::Key("load"), Seg::Key(k)];
    if s.population.count == 0 {
        return Err(c.error(
            &[Seg::Key("population"), Seg::Key("count")],
            "a population needs at least one context",
        ));
    }
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
        if load.stages.iter().any(|st| st.target < 0.0) {
            return Err(c.error(
                &at("stages"),
                "stage targets are requests per second, at least 0",
            ));
        }
    }
    Ok(())
}

fn check_llm(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    if s.llm.time_scale.is_some_and(|t| t.is_nan() || t < 0.0) {
        return Err(c.error(
            &[Seg::Key("llm"), Seg::Key("time_scale")],
            "time_scale cannot be negative",
        ));
    }
    for (model, b) in &s.llm.models {
        let path = [
            Seg::Key("llm"),
            Seg::Key("models"),
            Seg::Key(model.as_str()),
        ];
        if !(0.0..=1.0).contains(&b.error_rate) {
            return Err(c.error(
                &path,
                format!("error_rate {} is not a probability", b.error_rate),
            ));
        }
        let ordered = b.latency.median <= b.latency.p99
            && b.ttft.is_none_or(|t| t.median <= t.p99)
            && b.output_tokens
                .is_none_or(|t| 0.0 < t.median && t.median <= t.p99);
        if !ordered {
            return Err(c.error(&path, "each distribution needs 0 < median <= p99"));
        }
    }
    for (model, price) in &s.prices {
        if price.input < 0.0 || price.output < 0.0 {
            return Err(c.error(
                &[Seg::Key("prices"), Seg::Key(model.as_str())],
                "prices cannot be negative",
            ));
        }
    }
    Ok(())
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
}
