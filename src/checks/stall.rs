//! The built-in stall check: no stretch of the load may have requests in flight and none
//! completing for longer than the longest request the scenario plans.
//!
//! The limit is `[load] stall_after` when set. Otherwise it is the longest planned request,
//! the sum over the steps that call the LLM of each step's longest planned time, at least
//! 1 s. A call's longest planned time is, over the models its AI Config can serve, the
//! largest p99 latency (`[llm.models]`, or mock-ld's default profile, 4 s, for a model
//! without one) plus the largest `llmLatencySpike` the scenario's `[[faults]]` put on that
//! model, times `[llm] time_scale`; or the longest `llmTimeout` on it (held while the fault
//! lasts, wall clock), if longer. A step takes that per call, `1 + on_error.retries` calls,
//! plus before each retry the longest wait the application can make (wall clock, not
//! scaled): the backoff doubled per retry before its jitter, or the longest `Retry-After`
//! the scenario's `llmRateLimited` faults on those models answer that is within
//! `max_retry_after` (a longer one ends the retries; the simulated provider sends
//! `Retry-After` only under that fault), whichever is longer; plus one call to
//! `fallback_model`, planned the same way. With `[llm] url` (a real provider, whose latency
//! is not planned) it is 60 s. So a scenario of slow calls at `time_scale = 1`, or of the
//! faults it plans, does not fail for being slow, and a scaled-down one still notices a
//! provider that stops answering.
//!
//! The timeline counts requests per second, so a stall is measured in whole seconds: a run
//! of k seconds in which nothing completed while something was in flight means a silence of
//! at least k seconds, and the check fails when k exceeds the limit. It never fails for
//! a silence shorter than the limit, and catches any longer than the limit plus 2 s. A load
//! no longer than the limit could not show a stall, so there no check is made (rather than
//! one that could only pass; the log says so). `[load] stall_check = false` turns it off. When the load generator
//! was overloaded (`results::harness`), a stall that would fail the check is inconclusive
//! instead.

use std::time::Duration;

use mock_ld::faults::{FaultKind, RATE_LIMIT_RETRY_AFTER_SECS};

use crate::metrics::Second;
use crate::results::checks::{CheckOutcome, Details, StallDetails, Status};
use crate::scenario::{OnError, Scenario, TimedFault};

/// The least limit: below it, whole-second counts cannot tell a stall from a slow second.
const FLOOR: Duration = Duration::from_secs(1);

/// The limit when the LLM is a real provider (`[llm] url`).
const UNPLANNED: Duration = Duration::from_secs(60);

/// The limit, and how it was set.
pub fn limit(scenario: &Scenario) -> (Duration, String) {
    if let Some(after) = scenario.load.stall_after {
        return (after, "[load] stall_after".into());
    }
    if scenario.llm.url.is_some() {
        return (
            UNPLANNED,
            format!(
                "{} s: the LLM at [llm] url has no planned latency",
                UNPLANNED.as_secs()
            ),
        );
    }
    let plan = Planned {
        scenario,
        default_p99_ms: mock_ld::llm::Profile::default().latency_ms.p99,
        scale: scenario.llm.time_scale.unwrap_or(1.0),
    };
    let planned_ms: f64 = scenario
        .effective_steps()
        .iter()
        .filter(|step| step.call_llm)
        .map(|step| {
            let config = scenario.ai_configs.iter().find(|c| c.key == step.config);
            let models: Vec<&str> = config
                .into_iter()
                .flat_map(|c| c.variations.iter().map(|v| v.model.name.as_str()))
                .chain(
                    scenario
                        .actions
                        .iter()
                        .filter(|a| a.config == step.config)
                        .filter_map(|a| a.update_variation.as_ref()?.model.as_ref())
                        .map(|m| m.name.as_str()),
                )
                .collect();
            let call_ms = models.iter().map(|m| plan.call_ms(m)).fold(0.0, f64::max);
            let retry_after = models
                .iter()
                .map(|m| plan.honoured_retry_after(m, step.on_error.max_retry_after))
                .max()
                .unwrap_or_default();
            step_ms(&step.on_error, call_ms, retry_after, |m| plan.call_ms(m))
        })
        .sum();
    let planned = Duration::from_secs_f64(planned_ms.max(0.0) / 1e3);
    (
        planned.max(FLOOR),
        format!(
            "the longest planned request ({planned_ms:.0} ms: the steps' largest model p99 × time_scale {}, with the planned LLM faults and on_error's retries, waits and fallback), at least {} s",
            plan.scale,
            FLOOR.as_secs()
        ),
    )
}

/// The simulated provider's plan for one call: its models' latency and the scenario's own
/// `[[faults]]` on them.
struct Planned<'a> {
    scenario: &'a Scenario,
    default_p99_ms: f64,
    scale: f64,
}

impl Planned<'_> {
    /// The scenario's faults of `kind` that act on calls to `model`.
    fn faults<'s>(
        &'s self,
        kind: FaultKind,
        model: &'s str,
    ) -> impl Iterator<Item = &'s TimedFault> {
        self.scenario
            .faults
            .iter()
            .filter(move |f| f.kind == kind && f.model.as_deref().is_none_or(|m| m == model))
    }

    /// A call's longest planned time in ms: the model's p99 and the largest latency spike
    /// on it, scaled as mock-ld scales both; or the longest timeout fault holding it.
    fn call_ms(&self, model: &str) -> f64 {
        let p99_ms = self
            .scenario
            .llm
            .models
            .get(model)
            .map_or(self.default_p99_ms, |b| b.latency.p99.as_secs_f64() * 1e3);
        let spike_ms = self
            .faults(FaultKind::LlmLatencySpike, model)
            .filter_map(|f| f.latency)
            .max()
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let held_ms = self
            .faults(FaultKind::LlmTimeout, model)
            .map(|f| f.duration.min(mock_ld::faults::HOLD_LIMIT))
            .max()
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        ((p99_ms + spike_ms) * self.scale).max(held_ms)
    }

    /// The longest `Retry-After` the rate-limit faults on `model` answer that the
    /// application waits for (one above `max_retry_after` ends the retries instead).
    fn honoured_retry_after(&self, model: &str, max_retry_after: Duration) -> Duration {
        self.faults(FaultKind::LlmRateLimited, model)
            .map(|f| {
                f.retry_after
                    .unwrap_or(Duration::from_secs(RATE_LIMIT_RETRY_AFTER_SECS))
            })
            .filter(|wait| *wait <= max_retry_after)
            .max()
            .unwrap_or_default()
    }
}

/// A step's longest planned time in ms: `call_ms` per call, every retry `on_error` allows
/// with the longest wait before each (its backoff, or the longest `retry_after` honoured),
/// and the fallback call (`fallback_ms` of its model).
fn step_ms(
    on_error: &OnError,
    call_ms: f64,
    retry_after: Duration,
    fallback_ms: impl Fn(&str) -> f64,
) -> f64 {
    let calls = f64::from(on_error.retries.saturating_add(1)) * call_ms;
    let waits: Duration = (1..=on_error.retries)
        .map(|call| on_error.full_backoff(call).max(retry_after))
        .sum();
    let fallback = on_error.fallback_model.as_deref().map_or(0.0, fallback_ms);
    calls + waits.as_secs_f64() * 1e3 + fallback
}

/// The longest run of seconds in which requests were in flight and none completed: its
/// first second and length.
pub fn longest(timeline: &[Second]) -> Option<(usize, u64)> {
    let (mut started, mut completed) = (0u64, 0u64);
    let mut best: Option<(usize, u64)> = None;
    let mut run: Option<(usize, u64)> = None;
    for (i, s) in timeline.iter().enumerate() {
        started += s.requests;
        let in_flight = started > completed;
        completed += s.completed;
        run = if in_flight && s.completed == 0 {
            Some(run.map_or((i, 1), |(from, n)| (from, n + 1)))
        } else {
            None
        };
        if let Some((from, n)) = run {
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((from, n));
            }
        }
    }
    best
}

/// `None` when the scenario turned the check off, or when the load was no longer than the
/// limit: a stall is whole seconds of the timeline, so none longer than the limit fits in
/// it, and a check that could only pass would be counted as passed. With the load generator overloaded
/// (`overload` says how), a stall may have been the harness's own, so one that would fail
/// is inconclusive; no stall is still no stall.
pub fn outcome(
    scenario: &Scenario,
    timeline: &[Second],
    overload: Option<String>,
) -> Option<CheckOutcome> {
    if !scenario.load.stall_check {
        return None;
    }
    let (limit, rule) = limit(scenario);
    let idle = timeline.iter().all(|s| s.requests == 0);
    if !idle && Duration::from_secs(timeline.len() as u64) <= limit {
        tracing::info!(
            load_seconds = timeline.len(),
            limit_ms = limit.as_millis() as u64,
            "no stall check: the load was no longer than its limit ({rule}), so no stall could show; set [load] stall_after shorter, or run longer"
        );
        return None;
    }
    let found = longest(timeline);
    let seconds = found.map_or(0, |(_, n)| n);
    let status = if idle {
        Status::Inconclusive
    } else if Duration::from_secs(seconds) > limit {
        Status::Fail
    } else {
        Status::Pass
    };
    let mut summary = match found {
        _ if idle => "no requests were made".into(),
        Some((from, n)) => format!(
            "longest stretch with requests in flight and none completed: {n} s from second {from} (limit {:.2} s: {rule})",
            limit.as_secs_f64()
        ),
        None => format!(
            "no second with requests in flight and none completed (limit {:.2} s: {rule})",
            limit.as_secs_f64()
        ),
    };
    let status = match overload {
        Some(note) if status == Status::Fail => {
            summary = format!("{summary}; {note}");
            Status::Inconclusive
        }
        _ => status,
    };
    Some(CheckOutcome {
        name: "no stall".into(),
        status,
        summary,
        details: Details::Stall(StallDetails {
            longest_seconds: seconds,
            from_second: found.map(|(from, _)| from),
            limit_ms: limit.as_secs_f64() * 1e3,
            rule,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (scheduled to start, completed) per second.
    fn timeline(counts: &[(u64, u64)]) -> Vec<Second> {
        counts
            .iter()
            .map(|&(requests, completed)| Second {
                requests,
                completed,
                ..Second::default()
            })
            .collect()
    }

    #[test]
    fn the_longest_silence_with_requests_in_flight_is_found() {
        // Four requests start in second 1 and complete in second 5.
        let t = timeline(&[
            (10, 10),
            (4, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (5, 9),
            (0, 0),
            (2, 2),
        ]);
        assert_eq!(longest(&t), Some((1, 4)));
    }

    #[test]
    fn idle_seconds_are_not_a_stall() {
        // An open model at a low rate: nothing in flight between requests.
        let t = timeline(&[(1, 1), (0, 0), (0, 0), (1, 0), (0, 1), (0, 0)]);
        assert_eq!(longest(&t), Some((3, 1)));
        assert_eq!(longest(&timeline(&[(5, 5), (0, 0)])), None);
        assert_eq!(longest(&[]), None);
    }

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            r#"
name = "t"
[population]
count = 10
[[ai_configs]]
key = "a"
[[ai_configs.variations]]
key = "fast"
model = {{ name = "fast" }}
[[ai_configs.variations]]
key = "other"
model = {{ name = "undescribed" }}
[llm.models.fast]
latency = {{ median = "100ms", p99 = "2s" }}
{extra}
"#
        );
        crate::scenario::parse(std::path::Path::new("s.toml"), &text).unwrap()
    }

    #[test]
    fn the_limit_is_the_longest_planned_request_scaled_with_a_floor() {
        // The undescribed model has mock-ld's default profile: 4 s at p99.
        assert_eq!(limit(&scenario("")).0, Duration::from_secs(4));
        assert_eq!(
            limit(&scenario("[llm]\ntime_scale = 0.5\n")).0,
            Duration::from_secs(2)
        );
        assert_eq!(limit(&scenario("[llm]\ntime_scale = 0\n")).0, FLOOR);
        assert_eq!(
            limit(&scenario("[load]\nstall_after = \"7s\"\n")).0,
            Duration::from_secs(7)
        );
        let off = scenario("[load]\nstall_check = false\n");
        assert!(outcome(&off, &timeline(&[(1, 0), (0, 0), (0, 0), (0, 1)]), None).is_none());
    }

    #[test]
    fn on_error_adds_every_retry_its_longest_wait_and_the_fallback_call() {
        let step =
            |on_error: &str| format!("[[steps]]\nconfig = \"a\"\non_error = {{ {on_error} }}\n");
        let rate_limited = |retry_after: &str| {
            format!("[[faults]]\nat = \"1s\"\nduration = \"1s\"\nkind = \"llmRateLimited\"\nretry_after = \"{retry_after}\"\n")
        };
        let on_error = step(
            "retries = 2, backoff = \"1s\", max_retry_after = \"5s\", fallback_model = \"fast\"",
        );
        // 3 calls of 4 s (the undescribed model), the backoff's waits of 1 s and 2 s (no
        // planned fault answers with Retry-After), then the fallback at `fast`'s 2 s.
        assert_eq!(
            limit(&scenario(&on_error)).0,
            Duration::from_secs(12 + 3 + 2)
        );
        // A planned 429 asking for 5 s: waits of max(5 s, 1 s) and max(5 s, 2 s).
        let s = scenario(&format!("{on_error}{}", rate_limited("5s")));
        let (limit_, rule) = limit(&s);
        assert_eq!(limit_, Duration::from_secs(12 + 10 + 2), "{rule}");
        assert!(rule.contains("24000 ms"), "{rule}");
        // One asking for more than max_retry_after ends the retries: no such wait.
        let s = scenario(&format!("{on_error}{}", rate_limited("6s")));
        assert_eq!(limit(&s).0, Duration::from_secs(12 + 3 + 2));
        // The backoff doubled (4, 8, 16 s) beats a 1 s Retry-After, and the waits are wall
        // clock while the 4 calls of 4 s scale by 0.5: 8 + 28.
        let s = scenario(&format!(
            "{}{}[llm]\ntime_scale = 0.5\n",
            step("retries = 3, backoff = \"4s\", max_retry_after = \"1s\""),
            rate_limited("1s")
        ));
        assert_eq!(limit(&s).0, Duration::from_secs(36));
        // Doubling stops at a minute: 40, 60, 60 s of waits, 4 calls of 4 s.
        let s = scenario(&step("retries = 3, backoff = \"40s\""));
        assert_eq!(limit(&s).0, Duration::from_secs(160 + 16));
    }

    #[test]
    fn planned_latency_spikes_and_timeouts_lengthen_a_call() {
        let fault = |kind: &str, model: &str, extra: &str| {
            format!("[[faults]]\nat = \"1s\"\nduration = \"10s\"\nkind = \"{kind}\"\nmodel = \"{model}\"\n{extra}")
        };
        // A 2 s spike on the undescribed model (4 s p99), scaled by 0.5 as mock-ld does.
        let spike = fault("llmLatencySpike", "undescribed", "latency = \"2s\"\n");
        let s = scenario(&format!("{spike}[llm]\ntime_scale = 0.5\n"));
        assert_eq!(limit(&s).0, Duration::from_secs(3));
        // A spike on a model no step calls changes nothing.
        let s = scenario(&format!(
            "[llm.models.elsewhere]\nlatency = {{ median = \"1s\", p99 = \"2s\" }}\n{}",
            fault("llmLatencySpike", "elsewhere", "latency = \"20s\"\n")
        ));
        assert_eq!(limit(&s).0, Duration::from_secs(4));
        // A timeout holds a call while the fault lasts, wall clock.
        let s = scenario(&format!(
            "{}[llm]\ntime_scale = 0.5\n",
            fault("llmTimeout", "fast", "")
        ));
        assert_eq!(limit(&s).0, Duration::from_secs(10));
    }

    #[test]
    fn a_load_no_longer_than_the_limit_is_not_judged() {
        let s = scenario("[load]\nstall_after = \"3s\"\n");
        let silent = timeline(&[(5, 0), (0, 0), (0, 0)]);
        assert!(outcome(&s, &silent, None).is_none());
        let longer = timeline(&[(5, 0), (0, 0), (0, 0), (0, 5)]);
        assert_eq!(outcome(&s, &longer, None).unwrap().status, Status::Pass);
    }

    #[test]
    fn a_stall_longer_than_the_limit_fails() {
        let s = scenario("[load]\nstall_after = \"2s\"\n");
        let two = timeline(&[(5, 4), (0, 0), (0, 0), (0, 1)]);
        assert_eq!(outcome(&s, &two, None).unwrap().status, Status::Pass);
        let three = timeline(&[(5, 4), (0, 0), (0, 0), (0, 0), (0, 1)]);
        let o = outcome(&s, &three, None).unwrap();
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("3 s from second 1"), "{}", o.summary);
    }

    #[test]
    fn an_overloaded_load_generator_makes_a_stall_inconclusive_and_no_stall_still_passes() {
        let s = scenario("[load]\nstall_after = \"2s\"\n");
        let overload = || Some("the load generator was overloaded (lag probe p99 900 ms)".into());
        let three = timeline(&[(5, 4), (0, 0), (0, 0), (0, 0), (0, 1)]);
        let o = outcome(&s, &three, overload()).unwrap();
        assert_eq!(o.status, Status::Inconclusive, "{}", o.summary);
        assert!(
            o.summary.ends_with("(lag probe p99 900 ms)"),
            "{}",
            o.summary
        );
        let none = timeline(&[(5, 4), (0, 1), (1, 1)]);
        assert_eq!(outcome(&s, &none, overload()).unwrap().status, Status::Pass);
    }
}
