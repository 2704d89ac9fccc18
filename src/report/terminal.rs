//! The plain-text summary for the terminal, CI logs and `summary.txt`: the figures with
//! their sample counts, the checks, the baseline comparison, and last the verdict.

use super::{harness_section, resilience_section, retries_section};
use crate::results::checks::Details;
use crate::results::cost::{CostLine, CostReport};
use crate::results::{LatencySummary, RunResults};

/// The summary, without trailing blanks (it is diffed and committed in READMEs).
pub fn render(r: &RunResults) -> String {
    let text = summary(r);
    let mut out: String = text
        .lines()
        .map(|l| l.trim_end().to_owned() + "\n")
        .collect();
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

fn summary(r: &RunResults) -> String {
    let mut out = run_line(r);
    out += &format!(
        "requests (corrected, n = {}): p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms; raw p99 {:.2} ms\n\n",
        r.requests_corrected.count,
        r.requests_corrected.p50_ms,
        r.requests_corrected.p95_ms,
        r.requests_corrected.p99_ms,
        r.requests_corrected.max_ms,
        r.requests_raw.p99_ms
    );
    out += &variations(r);
    out += &retries(r);
    out += &simulated(r);
    out += &events(r);
    out += &actions(r);
    out += &resilience(r);
    out += &format!("\n{}:\n", harness_section::TITLE.to_lowercase());
    for line in harness_section::lines(&r.harness) {
        out += &format!("  {line}\n");
    }
    out += &cost(&r.cost);
    out += &checks(r);
    if let Some(c) = &r.baseline {
        out += &format!("\n{}", c.text());
    }
    out += &format!("\n{}: {}\n", r.verdict.outcome.word(), r.verdict.headline);
    out
}

fn run_line(r: &RunResults) -> String {
    let cpu = r.harness.cpu_seconds.map_or(String::new(), |cpu| {
        format!(
            "; harness CPU {cpu:.1} s ({:.1} cores)",
            cpu / (r.duration_ms / 1000.0).max(1e-9)
        )
    });
    let status = r
        .status
        .incomplete_reason()
        .map_or(String::new(), |why| format!(" (INCOMPLETE: {why})"));
    let sdk = match r.load.sdk.describe() {
        d if d.is_empty() => String::new(),
        d => format!("SDK: {d}\n"),
    };
    format!(
        "scenario {}{}{status}: {} requests in {:.1} s ({:.0}/s{}), {} failed{cpu}\n{sdk}",
        r.scenario.name,
        overrides(r),
        r.load.requests,
        r.duration_ms / 1000.0,
        r.load.achieved_rate,
        r.load
            .target_rate
            .map_or(String::new(), |t| format!(", target {t:.0}/s")),
        r.load.failed_requests,
    )
}

/// ` (overridden: load.rate=50, seed=7)`, or nothing.
pub fn overrides(r: &RunResults) -> String {
    if r.scenario.overrides.is_empty() {
        return String::new();
    }
    let set: Vec<String> = r
        .scenario
        .overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(" (overridden: {})", set.join(", "))
}

/// Each latency column is `n / p95 / p99`, so that no percentile is shown without the number
/// of samples behind it.
fn variations(r: &RunResults) -> String {
    let mut out = format!(
        "{:<32} {:>7} {:>7} {:>7} {:>17}  {:<26} {:<26} {:<26}\n",
        "config / variation",
        "evals",
        "calls",
        "errors",
        "tokens in/out",
        "eval n / p95 / p99 ms",
        "llm n / p95 / p99 ms",
        "ttft n / p95 / p99 ms"
    );
    for (config, key, v) in r.variations() {
        let l = &v.latency;
        out += &format!(
            "{:<32} {:>7} {:>7} {:>7} {:>17}  {:<26} {:<26} {:<26}\n",
            format!("{config} / {key}"),
            v.evaluations,
            v.ai_calls,
            v.errors,
            format!("{}/{}", v.input_tokens, v.output_tokens),
            tail(&l.evaluation, 3),
            tail(&l.llm, 1),
            tail(&l.time_to_first_token, 1),
        );
    }
    out
}

/// What the LLM latencies are; with a plan, measured beside planned and excess; lateness.
fn simulated(r: &RunResults) -> String {
    let Some(label) = super::simulated::label(r) else {
        return String::new();
    };
    let mut out = format!("\n{label}\n");
    if r.variations()
        .any(|(_, _, v)| v.latency.llm_excess.count > 0)
    {
        out += &super::simulated::plan_table(r).text();
    }
    if let Some(line) = super::simulated::lateness_line(r) {
        out += &line;
        out.push('\n');
    }
    out
}

/// `n / p95 / p99` with `decimals` digits.
fn tail(s: &LatencySummary, decimals: usize) -> String {
    if s.count == 0 {
        return "0 / - / -".into();
    }
    format!(
        "{} / {:.decimals$} / {:.decimals$}",
        s.count, s.p95_ms, s.p99_ms
    )
}

fn events(r: &RunResults) -> String {
    let Some(e) = &r.events else {
        return String::new();
    };
    let (tracked, received) = e.tracker_totals();
    let mut out = format!(
        "\nevents: {received} of {tracked} tracker events received{}, {} payloads ({} duplicate, {} rejected)\n",
        if e.complete { "" } else { " (INCOMPLETE)" },
        e.payloads,
        e.duplicate_payloads,
        e.rejected_payloads
    );
    for (name, s) in super::events::latencies(e) {
        out += &format!(
            "  {name} (n = {}): p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms\n",
            s.count, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        );
    }
    if let Some(note) = super::events::left_out(e) {
        out += &format!("  {note}\n");
    }
    out
}

fn actions(r: &RunResults) -> String {
    let mut out = String::new();
    for a in &r.actions {
        out += &match &a.error {
            Some(error) => format!(
                "action at {:.1} s on {}: FAILED: {error}\n",
                a.at_ms / 1000.0,
                a.config
            ),
            None if a.kind == "llm" => format!(
                "action at {:.1} s: {}{}\n",
                a.at_ms / 1000.0,
                a.description,
                a.restored_at_ms.map_or(String::new(), |at| format!(
                    ", undone at {:.1} s",
                    at / 1000.0
                ))
            ),
            None => format!(
                "action at {:.1} s on {} ({}): reached {} SDK clients in p50 {:.2} ms, max {:.2} ms{}\n",
                a.at_ms / 1000.0,
                a.config,
                a.description,
                a.propagation.count,
                a.propagation.p50_ms,
                a.propagation.max_ms,
                if a.clients_missed > 0 {
                    format!(", {} clients MISSED it", a.clients_missed)
                } else {
                    String::new()
                }
            ),
        };
    }
    out
}

fn retries(r: &RunResults) -> String {
    let Some(t) = retries_section::table(r) else {
        return String::new();
    };
    let mut out = format!("\n{}:\n", retries_section::TITLE.to_lowercase());
    for line in t.text().lines() {
        out += &format!("  {line}\n");
    }
    out + &format!("  {}\n", retries_section::NOTE)
}

fn resilience(r: &RunResults) -> String {
    if !resilience_section::shown(r) {
        return String::new();
    }
    let mut out = format!("\n{}:\n", resilience_section::TITLE.to_lowercase());
    let table = resilience_section::table(r).map(|t| t.text());
    for line in table.iter().flat_map(|t| t.lines()) {
        out += &format!("  {line}\n");
    }
    for line in resilience_section::lines(r) {
        out += &format!("  {line}\n");
    }
    out
}

fn cost(c: &CostReport) -> String {
    let mut out = format!(
        "\ncost: ${:.4} in all, ${:.4} per 1,000 requests\n",
        c.total.cost_usd, c.per_thousand_requests_usd
    );
    out += "  by                                        calls    tokens in/out           cost\n";
    let mut row = |label: String, l: &CostLine| {
        out += &format!(
            "  {label:<40} {:>6} {:>10}/{:<10} ${:>10.4}\n",
            l.calls, l.input_tokens, l.output_tokens, l.cost_usd
        )
    };
    for (model, l) in &c.by_model {
        row(format!("model {model}"), l);
    }
    for (config, variations) in &c.by_variation {
        if let Some(l) = c.by_config.get(config) {
            row(format!("config {config}"), l);
        }
        for (variation, l) in variations {
            row(format!("  variation {variation}"), l);
        }
    }
    for (kind, l) in &c.by_context_kind {
        row(format!("context kind {kind}"), l);
    }
    for (attribute, values) in &c.by_attribute {
        for (value, l) in values {
            row(format!("{attribute} {value}"), l);
        }
    }
    if !c.unpriced_models.is_empty() {
        out += &format!(
            "  no price for {}: their calls are not in the cost\n",
            c.unpriced_models.join(", ")
        );
    }
    out
}

/// One line per check, then the listed mismatches of failed exact checks (a few;
/// `results.json` has them all).
fn checks(r: &RunResults) -> String {
    let t = &r.verdict.checks;
    let mut out = format!(
        "\nchecks: {} passed, {} failed, {} inconclusive\n",
        t.passed, t.failed, t.inconclusive
    );
    for o in &r.checks {
        out += &format!("  {:<12} {}: {}\n", o.status.as_str(), o.name, o.summary);
        if let Details::RolloutExact(d) = &o.details {
            for m in d.mismatches.iter().take(5) {
                out += &format!(
                    "               context {} ({}): expected {} ({}), served {}\n",
                    m.context, m.context_kind, m.expected, m.expected_reason, m.served
                );
            }
        }
    }
    out
}
