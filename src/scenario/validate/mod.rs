//! Checks a parsed scenario for what serde cannot: references between sections, sums of
//! weights, load shapes, LaunchDarkly's rules for kinds, attributes and operators, and the
//! bounds (`scenario::bounds`) of every number. Errors point at the offending value in the
//! file, through [`Checker`].
//!
//! Modules, one per part of the file: [`configs`] (AI Configs, targeting, segments),
//! [`steps`] (steps and actions), [`faults`] (the fault timeline), [`restarts`], [`load`],
//! [`llm`], [`population`]; [`numbers`] holds the bounded-number checks they share.

mod configs;
mod faults;
mod llm;
mod load;
mod numbers;
mod population;
mod restarts;
mod steps;

use std::cell::RefCell;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::checks::{self as spec, CheckSpec};
use super::error::ScenarioError;
use super::population::Generator;
use super::Scenario;

use configs::{check_configs, check_segments};
use faults::check_faults;
use llm::check_llm;
use load::check_load;
use population::check_population;
use restarts::check_restarts;
use steps::check_steps_and_actions;

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
    /// `run --ld-url`: segments may exist on the target, and there is no mock-ld to restart.
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
    check_faults(s, &c)?;
    check_restarts(s, &c)?;
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
            spec::Metric::EventsLostRate => Some(("metric", "events_lost_rate")),
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
    fn keys_follow_launchdarklys_rule_and_disabled_is_reserved() {
        let with = |from: &str, to: &str| {
            let text = BASE.replacen(from, to, 1);
            parse(Path::new("s.toml"), &text).unwrap_err().to_string()
        };
        let e = with("key = \"assistant\"", "key = \"-assistant\"");
        assert!(
            e.starts_with("s.toml:7:7: field `ai_configs[0].key`: invalid AI Config key"),
            "{e}"
        );
        let e = with("key = \"small\"", "key = \"small model\"");
        assert!(
            e.starts_with(
                "s.toml:10:7: field `ai_configs[0].variations[0].key`: invalid variation key"
            ),
            "{e}"
        );
        let e = with("key = \"small\"", "key = \"disabled\"");
        assert!(e.contains("the AI Config's own disabled variation"), "{e}");
        let e = error("\n[[segments]]\nkey = \"beta testers\"\n");
        assert!(
            e.contains("field `segments[0].key`: invalid segment key"),
            "{e}"
        );
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

    #[test]
    fn on_error_is_bounded_and_located() {
        let step = |on_error: &str| {
            format!("\n[[steps]]\nconfig = \"assistant\"\non_error = {on_error}\n")
        };
        for (on_error, expected) in [
            (
                "{ retries = 11 }",
                "s.toml:19:24: field `steps[0].on_error.retries`: retries 11 is more than 10",
            ),
            ("{ retries = -1 }", "field `steps[0].on_error.retries`"),
            (
                "{ backoff = \"61s\" }",
                "s.toml:19:24: field `steps[0].on_error.backoff`: 1m 1s is too long: at most 1m",
            ),
            (
                "{ max_retry_after = \"1h\" }",
                "field `steps[0].on_error.max_retry_after`: 1h is too long",
            ),
            (
                "{ backoff = \"soon\" }",
                "field `steps[0].on_error.backoff`",
            ),
            (
                "{ fallback_model = \" \" }",
                "s.toml:19:31: field `steps[0].on_error.fallback_model`: fallback_model names",
            ),
            ("{ retry = 2 }", "steps[0].on_error"),
        ] {
            let e = error(&step(on_error));
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
            assert!(e.starts_with("s.toml:19:"), "{e}");
        }
        let ok = step("{ retries = 10, backoff = \"0s\", max_retry_after = \"60s\", fallback_model = \"gpt-4o-mini\" }");
        let s = parse(Path::new("s.toml"), &format!("{BASE}{ok}")).unwrap();
        assert_eq!(s.steps[0].on_error.retries, 10);
        assert_eq!(
            s.steps[0].on_error.fallback_model.as_deref(),
            Some("gpt-4o-mini")
        );
    }

    /// `BASE` with one line replaced or added under a table: the error, as printed.
    fn located(extra: &str) -> String {
        error(extra)
    }

    #[test]
    fn the_reported_absurd_values_are_located_errors() {
        let cases = [
            ("\n[load]\nconcurrency = 4294967297\n", "s.toml:18:15: field `load.concurrency`: concurrency 4,294,967,297 would need about 429 TB"),
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
            ("\n[load]\nworkers = 2\n", "field `load.workers`: workers needs sdk = \"python\" or \"node\""),
            ("\n[load]\nsdk = \"python\"\nworkers = 0\n", "field `load.workers`: workers must be at least 1"),
            ("\n[load]\nsdk = \"node\"\nworkers = 65\n", "field `load.workers`: workers 65 would need about 6.5 GB"),
            ("\n[load]\nsdk = \"node\"\nhandler = \"app.mjs\"\n", "field `load.handler`: handler \"app.mjs\" is not of the form file.mjs#export"),
            ("\n[load]\nsdk = \"python\"\nhandler = \"missing/app.py:handle\"\n", "field `load.handler`: handler file "),
            ("\n[load]\nsdk = \"python\"\nparity_sample = 10001\n", "field `load.parity_sample`: parity_sample 10,001 is more than 10,000"),
            ("\n[load]\nmax_in_flight = 100001\n", "field `load.max_in_flight`"),
            ("\n[load.events]\ncapacity = 2000000\n", "field `load.events.capacity`: capacity 2,000,000 would need about 1.1 GB"),
            ("\n[load.events]\ncapacity = 0\n", "capacity must be at least 1"),
            ("\n[load.events]\nflush_interval = \"0s\"\n", "field `load.events.flush_interval`"),
            ("\n[load]\niterations = 0\n", "field `load.iterations`"),
            ("\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"100000h\"\n", "field `load.duration`: a load of 11years 4months 27days 3h 45m 36s would need about 90 TB for its per-second timeline"),
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
    fn faults_are_read_into_mock_lds_spec() {
        let text = format!("{BASE}\n[[faults]]\nat = \"1s\"\nduration = \"5s\"\nkind = \"eventsError\"\nstatus = 429\nretry_after = \"5s\"\n\n[[faults]]\nat = \"2s\"\nduration = \"1s\"\nkind = \"llmLatencySpike\"\nlatency = \"1500ms\"\nmodel = \"gpt-4o\"\n");
        let s = parse(Path::new("s.toml"), &text).unwrap();
        let spec = s.faults[0].spec(&s.project, &s.environment);
        assert_eq!(
            (
                spec.retry_after,
                spec.status,
                spec.environment.as_deref(),
                spec.project.as_deref()
            ),
            (Some(5), Some(429), Some("test"), Some("default"))
        );
        let spec = s.faults[1].spec(&s.project, &s.environment);
        assert_eq!(
            (spec.latency_ms, spec.environment, spec.model.as_deref()),
            (Some(1500), None, Some("gpt-4o"))
        );
    }

    #[test]
    fn fault_errors_are_located_at_their_key() {
        let fault =
            |lines: &str| format!("\n[[faults]]\nat = \"1s\"\nduration = \"2s\"\n{lines}\n");
        for (extra, expected) in [
            (fault("kind = \"eventsError\"\nstatus = 401"), "s.toml:21:10: field `faults[0].status`: status 401: eventsError must be 429 or 5xx"),
            (fault("kind = \"sdkSlow\""), "field `faults[0].latency`: latencyMs: sdkSlow needs it"),
            (fault("kind = \"streamStalled\"\nretry_after = \"1s\""), "s.toml:21:15: field `faults[0].retry_after`: retryAfter: streamStalled takes no retryAfter"),
            (fault("kind = \"eventsError\"\nretry_after = \"1500ms\""), "field `faults[0].retry_after`: 1s 500ms is not a whole number of seconds"),
            (fault("kind = \"llmError\"\nenvironment = \"production\""), "field `faults[0].environment`: environment: llmError is the provider's"),
            (fault("kind = \"llmOutage\"\nmodel = \"gpt-5\""), "field `faults[0].model`: model \"gpt-5\" is neither"),
            (fault("kind = \"pollingError\"\nmodel = \"gpt-4o\""), "field `faults[0].model`: model: pollingError"),
            (fault("kind = \"sdkThrottled\""), "field `faults[0].bytes_per_second`: bytesPerSecond: sdkThrottled needs it"),
            (fault("kind = \"eventError\""), "s.toml:20:8: field `faults[0].kind`: unknown variant `eventError`"),
            ("\n[[faults]]\nat = \"1s\"\nduration = \"0s\"\nkind = \"llmOutage\"\n".to_owned(), "s.toml:19:12: field `faults[0].duration`: duration is how long"),
            ("\n[[faults]]\nat = \"100000h\"\nduration = \"1s\"\nkind = \"llmOutage\"\n".to_owned(), "field `faults[0].at`"),
            ("\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"5s\"\n[[faults]]\nat = \"6s\"\nduration = \"1s\"\nkind = \"llmOutage\"\n".to_owned(), "field `faults[0].at`: the load lasts 5s: a fault at 6s never applies"),
            ("\n[llm]\nurl = \"http://127.0.0.1:9/v1\"\n[[faults]]\nat = \"1s\"\nduration = \"1s\"\nkind = \"llmOutage\"\n".to_owned(), "field `faults[0].kind`: llmOutage is a fault of mock-ld's simulated provider"),
        ] {
            let e = located(&extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
            assert!(e.starts_with("s.toml:"), "{e}");
        }
        let many: String = (0..65)
            .map(|_| "\n[[faults]]\nat = \"1s\"\nduration = \"1s\"\nkind = \"llmOutage\"\n")
            .collect();
        assert!(located(&many).contains("field `faults[64]`: 65 faults: at most 64"));
    }

    #[test]
    fn restart_errors_are_located_at_their_key() {
        let restart =
            |at: &str, down: &str| format!("\n[[restarts]]\nat = \"{at}\"\ndown = \"{down}\"\n");
        for (extra, expected) in [
            (
                restart("1s", "0s"),
                "s.toml:19:8: field `restarts[0].down`: down is how long mock-ld stays stopped",
            ),
            (
                restart("1s", "2s") + &restart("2s", "1s"),
                "field `restarts[1].at`: mock-ld is still down from restarts[0] then",
            ),
            (
                restart("1s", "2s")
                    + "\n[[faults]]\nat = \"2500ms\"\nduration = \"1s\"\nkind = \"eventsError\"\n",
                "field `restarts[0].at`: faults[0] (eventsError) is on during this restart",
            ),
            (
                "\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"5s\"\n".to_owned()
                    + &restart("5s", "1s"),
                "field `restarts[0].at`: the load lasts 5s: a restart at 5s never happens",
            ),
            (
                restart("1s", "1s").replace("down", "dwon"),
                "unknown field `dwon`",
            ),
        ] {
            let e = located(&extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
            assert!(e.starts_with("s.toml:"), "{e}");
        }
        // A provider fault during a restart is fine: the provider is not restarted.
        let text = format!(
            "{BASE}{}\n[[faults]]\nat = \"1s\"\nduration = \"1s\"\nkind = \"llmOutage\"\n",
            restart("1s", "2s")
        );
        assert!(parse(Path::new("s.toml"), &text).is_ok());
        let many: String = (0..17)
            .map(|i| restart(&format!("{}s", 2 * i), "1s"))
            .collect();
        assert!(located(&many).contains("field `restarts[16]`: 17 restarts: at most 16"));
    }

    #[test]
    fn init_timeout_is_located_and_a_start_up_fault_is_told_apart() {
        for (extra, expected) in [
            ("\n[load]\ninit_timeout = \"0s\"\n", "s.toml:18:16: field `load.init_timeout`: init_timeout is how long each SDK client may take to initialize: above 0"),
            ("\n[load]\ninit_timeout = \"1h\"\n", "s.toml:18:16: field `load.init_timeout`: 1h is too long: at most"),
            ("\n[load]\ninit_timeout = \"soon\"\n", "s.toml:18:16: field `load.init_timeout`"),
        ] {
            let e = located(extra);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
        let fault = |at: &str, kind: &str| {
            format!("{BASE}\n[load]\ninit_timeout = \"2s\"\n[[faults]]\nat = \"{at}\"\nduration = \"3s\"\nkind = \"{kind}\"\n")
        };
        let s = parse(Path::new("s.toml"), &fault("0s", "sdkUnavailable")).unwrap();
        assert_eq!(s.load.init_timeout, std::time::Duration::from_secs(2));
        assert!(s.startup_fault_planned());
        // Later, or a kind an initializing SDK does not meet: no start-up fault.
        for (at, kind) in [
            ("1s", "sdkUnavailable"),
            ("0s", "eventsError"),
            ("0s", "llmOutage"),
        ] {
            let s = parse(Path::new("s.toml"), &fault(at, kind)).unwrap();
            assert!(!s.startup_fault_planned(), "{at} {kind}");
        }
        let s = parse(Path::new("s.toml"), BASE).unwrap();
        assert_eq!(s.load.init_timeout, std::time::Duration::from_secs(15));
    }

    #[test]
    fn restarts_run_in_order_and_apart_from_changes() {
        let restart =
            |at: &str, down: &str| format!("\n[[restarts]]\nat = \"{at}\"\ndown = \"{down}\"\n");
        let e = located(&(restart("10s", "1s") + &restart("2s", "1s")));
        assert!(
            e.contains("field `restarts[1].at`: restarts run in the order written: this one at 2s comes before restarts[0]'s at 10s"),
            "{e}"
        );
        let change = |at: &str| {
            format!("\n[[actions]]\nat = \"{at}\"\nconfig = \"assistant\"\ntargeting = [{{ kind = \"updateFallthroughVariationOrRollout\", variation = \"large\" }}]\n")
        };
        let e = located(&(restart("2s", "3s") + &change("4s")));
        assert!(
            e.contains("field `actions[0].at`: mock-ld is down then (restarts[0], 2s–5s), and its REST API with it"),
            "{e}"
        );
        // A change just after mock-ld is back, or a change of the provider during it, is fine.
        let llm = "\n[[actions]]\nat = \"3s\"\nllm = { model = \"gpt-4o\", latency_factor = 2, for = \"1s\" }\n";
        for extra in [
            restart("2s", "3s") + &change("5s"),
            restart("2s", "3s") + llm,
        ] {
            let text = format!("{BASE}{extra}");
            assert!(parse(Path::new("s.toml"), &text).is_ok(), "{extra}");
        }
    }

    #[test]
    fn a_restart_against_an_external_target_is_a_located_error() {
        let text = format!("{BASE}\n[[restarts]]\nat = \"1s\"\ndown = \"1s\"\n");
        let o = super::super::Overrides {
            external_target: true,
            ..Default::default()
        };
        let e = super::super::parse_with(Path::new("s.toml"), &text, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:") && e.contains("field `restarts[0]`: a restart stops and starts the embedded mock-ld; against --ld-url"),
            "{e}"
        );
    }

    #[test]
    fn a_restart_that_outlasts_the_load_is_a_warning() {
        let text = format!("{BASE}\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"5s\"\n[[restarts]]\nat = \"4s\"\ndown = \"1h\"\n");
        let s = parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("field `restarts[0].down`: the load lasts 5s: mock-ld is started again when it ends, 1s after it stopped"),
            "{}",
            s.warnings[0]
        );
    }

    #[test]
    fn a_fault_that_outlasts_the_load_is_a_warning() {
        let text = format!("{BASE}\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"5s\"\n[[faults]]\nat = \"4s\"\nduration = \"3s\"\nkind = \"llmOutage\"\n");
        let s = parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("field `faults[0].duration`: the load lasts 5s"),
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
