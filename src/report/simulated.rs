//! The label every report puts beside LLM, time-to-first-token and end-to-end latencies:
//! whether mock-ld's simulator drew them, with its time scale and each model's profile;
//! the planned (real time) and excess (measured − planned) figures per variation; and the
//! simulator's own lateness.

use super::format::{ms, percent};
use super::table::Table;
use crate::results::simulated::{LogNormal, SimulatedInfo, SimulatedProfile};
use crate::results::{LatencySummary, RunResults};

/// What the LLM latencies are, in one paragraph; `None` when the run made no LLM call.
pub fn label(r: &RunResults) -> Option<String> {
    let calls: u64 = r.variations().map(|(_, _, v)| v.ai_calls).sum();
    if calls == 0 {
        return None;
    }
    let planned: u64 = r
        .variations()
        .map(|(_, _, v)| v.latency.llm_excess.count)
        .sum();
    Some(match &r.simulated {
        Some(sim) => simulated(sim),
        None if planned > 0 => "LLM latencies: the provider's answers told a mock-ld \
             simulator's plan (planned and excess below), but its profiles and lateness were \
             not read: it is not the target mock-ld's own simulator."
            .to_owned(),
        None => "LLM latencies are measured from a provider that is not mock-ld's simulator \
             (its answers told no plan): no planned or excess figures."
            .to_owned(),
    })
}

fn simulated(sim: &SimulatedInfo) -> String {
    let scale = sim.time_scale.map_or_else(
        || "time_scale as each profile sets it".to_owned(),
        |s| format!("time_scale {s} (every wait is the profile's draw × {s})"),
    );
    let profiles: Vec<String> = sim
        .profiles
        .iter()
        .map(|(model, p)| profile(model, p, sim.time_scale))
        .collect();
    format!(
        "Simulated: LLM, TTFT and end-to-end latencies come from mock-ld's simulated provider, \
         not from a model: {scale}; profiles: {}. Planned (real time) is the drawn latency \
         ÷ time_scale; excess (measured − planned) is the measured call minus its scheduled \
         wait, unscaled: what the harness, the network and the simulator's lateness added.",
        if profiles.is_empty() {
            "not read".to_owned()
        } else {
            profiles.join("; ")
        }
    )
}

/// `gpt-4o log-normal median 1200 ms p99 4000 ms, TTFT median 250 ms p99 1000 ms, 150
/// tokens out (p99 600), errors 0.00 %`.
fn profile(model: &str, p: &SimulatedProfile, scale: Option<f64>) -> String {
    let dist = |d: &LogNormal| format!("median {} ms p99 {} ms", ms(d.median), ms(d.p99));
    let mut text = format!(
        "{model}{} log-normal {}, TTFT {}, {} tokens out (p99 {}), errors {}",
        if p.default { " (mock-ld default)" } else { "" },
        dist(&p.latency_ms),
        dist(&p.ttft_ms),
        p.output_tokens.median,
        p.output_tokens.p99,
        percent(p.error_rate)
    );
    if scale != Some(p.time_scale) {
        text += &format!(", time_scale {}", p.time_scale);
    }
    text
}

/// `n / p50 / p99`, so no percentile goes without its n.
fn cell(s: &LatencySummary) -> String {
    if s.count == 0 {
        return "0 / - / -".to_owned();
    }
    format!("{} / {} / {}", s.count, ms(s.p50_ms), ms(s.p99_ms))
}

/// Per variation: the measured LLM latency beside the plan in real time and the excess.
pub fn plan_table(r: &RunResults) -> Table {
    let mut t = Table::new([
        "config / variation",
        "LLM measured n / p50 / p99 ms",
        "planned (real time) n / p50 / p99 ms",
        "excess (measured − planned) n / p50 / p99 ms",
        "ahead of plan",
    ]);
    for (config, key, v) in r.variations() {
        let l = &v.latency;
        t.push([
            format!("{config} / {key}"),
            cell(&l.llm),
            cell(&l.llm_planned_real_time),
            cell(&l.llm_excess),
            v.llm_ahead_of_plan.to_string(),
        ]);
    }
    t
}

/// The simulator's lateness as latency rows: name and summary.
pub fn lateness_rows(r: &RunResults) -> Vec<(&'static str, &LatencySummary)> {
    let Some(sim) = &r.simulated else {
        return Vec::new();
    };
    vec![
        (
            "simulator lateness, first token (sent − planned)",
            &sim.lateness.first_token,
        ),
        (
            "simulator lateness, last chunk (sent − planned)",
            &sim.lateness.last_chunk,
        ),
    ]
}

/// The lateness in one line, for the terminal.
pub fn lateness_line(r: &RunResults) -> Option<String> {
    let rows = lateness_rows(r);
    if rows.is_empty() {
        return None;
    }
    let parts: Vec<String> = rows
        .iter()
        .map(|(name, s)| {
            format!(
                "{name}: n = {}, p50 {} ms, p99 {} ms, max {} ms",
                s.count,
                ms(s.p50_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            )
        })
        .collect();
    Some(parts.join("; "))
}
