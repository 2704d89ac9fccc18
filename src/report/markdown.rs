//! `summary.md`: the run in a page of Markdown tables, made for a CI job summary
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).

use super::format::{self, ms};
use super::table::{markdown_cell, Table};
use super::{harness_section, resilience_section, retries_section};
use crate::results::latency::HistogramError;
use crate::results::{LatencySummary as Summary, RunResults as Results, Stage};

pub fn render(r: &Results) -> Result<String, HistogramError> {
    let mut out = headline(r);
    if !r.checks.is_empty() {
        let mut t = Table::new(["", "check", "figures"]);
        for o in &r.checks {
            t.push([o.status.mark(), o.name.as_str(), o.summary.as_str()]);
        }
        out += &format!("### Checks\n\n{}\n", t.markdown());
    }
    out += &format!(
        "### LLM calls per variation\n\n{}\n",
        variations(r).markdown()
    );
    if let Some(t) = retries_section::table(r) {
        out += &format!(
            "### {}\n\n{}\n{}\n\n",
            retries_section::TITLE,
            t.markdown(),
            markdown_cell(retries_section::NOTE)
        );
    }
    if let Some(label) = super::simulated::label(r) {
        out += &format!("{}\n\n", markdown_cell(&label));
        if r.variations()
            .any(|(_, _, v)| v.latency.llm_excess.count > 0)
        {
            out += &format!("{}\n", super::simulated::plan_table(r).markdown());
        }
    }
    out += &format!(
        "### Latency, all variations\n\n{}\n",
        latencies(r)?.markdown()
    );
    if let Some(note) = r.events.as_ref().and_then(super::events::left_out) {
        out += &format!("{}\n\n", markdown_cell(&note));
    }
    if !r.actions.is_empty() {
        out += &format!("### Timed changes\n\n{}\n", actions(r).markdown());
    }
    if resilience_section::shown(r) {
        out += &format!("### {}\n\n", resilience_section::TITLE);
        if let Some(t) = resilience_section::table(r) {
            out += &format!("{}\n", t.markdown());
        }
        for line in resilience_section::lines(r) {
            out += &format!("{}\n\n", markdown_cell(&line));
        }
    }
    out += &format!("### {}\n\n", harness_section::TITLE);
    for line in harness_section::lines(&r.harness) {
        out += &format!("- {}\n", markdown_cell(&line));
    }
    out.push('\n');
    if let Some(c) = &r.baseline {
        out += &c.markdown();
        out.push('\n');
    }
    out += "<sub>Full report: `report.html`; data: `results.json`; checks: `junit.xml`.</sub>\n";
    Ok(out)
}

/// The title is the verdict, word for word as every other output has it.
fn headline(r: &Results) -> String {
    let v = &r.verdict;
    let cost = format!(
        "; LLM cost {} ({} per 1,000 requests)",
        format::usd(r.cost.total.cost_usd),
        format::usd(r.cost.per_thousand_requests_usd)
    );
    format!(
        "## {} {}{}: {} {}\n\n{} requests in {:.1} s ({:.0}/s, {} load{}), {} failed ({}); request p99 {} ms (corrected, n = {}){cost}\n\n",
        v.outcome.mark(),
        markdown_cell(&r.scenario.name),
        markdown_cell(&super::terminal::overrides(r)),
        v.outcome.word(),
        markdown_cell(&v.headline),
        r.load.requests,
        r.duration_ms / 1000.0,
        r.load.achieved_rate,
        markdown_cell(&r.load.model),
        markdown_cell(&match r.load.sdk.describe() {
            d if d.is_empty() => String::new(),
            d => format!(", {d}"),
        }),
        r.load.failed_requests,
        format::percent(r.load.failed_requests as f64 / r.load.requests.max(1) as f64),
        ms(r.requests_corrected.p99_ms),
        r.requests_corrected.count
    )
}

fn variations(r: &Results) -> Table {
    let mut t = Table::new([
        "config / variation",
        "AI calls",
        "errors",
        "LLM n",
        "LLM p50 ms",
        "LLM p95 ms",
        "LLM p99 ms",
        "TTFT n / p95 ms",
        "tokens in / out",
        "cost",
    ]);
    for (config, key, v) in r.variations() {
        let l = &v.latency;
        let cost = r
            .cost
            .by_variation
            .get(config)
            .and_then(|vs| vs.get(key))
            .map_or(0.0, |c| c.cost_usd);
        t.push([
            format!("{config} / {key}"),
            v.ai_calls.to_string(),
            v.errors.to_string(),
            l.llm.count.to_string(),
            ms(l.llm.p50_ms),
            ms(l.llm.p95_ms),
            ms(l.llm.p99_ms),
            format!(
                "{} / {}",
                l.time_to_first_token.count,
                ms(l.time_to_first_token.p95_ms)
            ),
            format!("{} / {}", v.input_tokens, v.output_tokens),
            format::usd(cost),
        ]);
    }
    t
}

fn latencies(r: &Results) -> Result<Table, HistogramError> {
    let mut t = Table::new([
        "latency", "n", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms",
    ]);
    let mut push = |name: &str, s: &Summary| {
        t.push([
            name.to_owned(),
            s.count.to_string(),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            ms(s.p999_ms),
            ms(s.max_ms),
        ])
    };
    push("requests (corrected)", &r.requests_corrected);
    for stage in Stage::ALL {
        push(stage.label(), &Summary::of(&r.overall(stage)?));
    }
    if let Some(e) = &r.events {
        for (name, s) in super::events::latencies(e) {
            push(&name, s);
        }
    }
    for (name, s) in super::simulated::lateness_rows(r) {
        push(name, s);
    }
    Ok(t)
}

fn actions(r: &Results) -> Table {
    let mut t = Table::new([
        "", "at", "config", "change", "reached", "p50 ms", "max ms", "missed",
    ]);
    for a in &r.actions {
        let passed = a.landed();
        t.push([
            (if passed { "✅" } else { "❌" }).to_owned(),
            format!("{:.1} s", a.at_ms / 1000.0),
            a.target().to_owned(),
            a.change(),
            a.propagation.count.to_string(),
            ms(a.propagation.p50_ms),
            ms(a.propagation.max_ms),
            a.clients_missed.to_string(),
        ]);
    }
    t
}
