//! The sections of `report.html`, in the order of the rollout plan's Phase 3 (observability,
//! alert rules, cost tracking, performance baselines), then rollout validation and the
//! propagation of timed changes.

use hdrhistogram::Histogram;

use super::charts;
use super::format::{self, ms};
use super::harness_section;
use super::markup::{esc, figure, note, section, table};
use super::table::Table;
use crate::results::latency::HistogramError;
use crate::results::verdict::Outcome;
use crate::results::{LatencySummary as Summary, RunResults as Results, Stage};

type Html = Result<String, String>;

fn input(e: HistogramError) -> String {
    e.to_string()
}

pub fn header(r: &Results) -> String {
    format!(
        "<h1>{}</h1>\n<p class=\"lead\">{}{} · seed {} · population {}</p>\n{}<div class=\"cards\">{}</div>\n",
        esc(&format!("aiconfig-harness report: {}", r.scenario.name)),
        esc(&r.scenario.description),
        esc(&super::terminal::overrides(r)),
        r.scenario.seed,
        r.scenario.population,
        banner(r),
        cards(r)
    )
}

/// The verdict, as every output states it: green only when it passed.
fn banner(r: &Results) -> String {
    let v = &r.verdict;
    let class = match v.outcome {
        Outcome::Passed => "pass",
        Outcome::Failed | Outcome::Incomplete => "fail",
        Outcome::Inconclusive | Outcome::Unchecked => "warn",
    };
    format!(
        "<div class=\"banner {class}\" id=\"verdict\" data-outcome=\"{}\" data-exit-code=\"{}\">{} {}: {}</div>\n",
        esc(&format!("{:?}", v.outcome).to_lowercase()),
        v.exit_code,
        v.outcome.mark(),
        esc(v.outcome.word()),
        esc(&v.headline)
    )
}

/// The run's headline figures.
fn cards(r: &Results) -> String {
    let error_rate = r.load.failed_requests as f64 / r.load.requests.max(1) as f64;
    let cards = [
        (r.load.requests.to_string(), "requests".to_owned()),
        (
            format!("{:.1} s", r.duration_ms / 1000.0),
            "duration".to_owned(),
        ),
        (
            format!("{:.0}/s", r.load.achieved_rate),
            match r.load.sdk.describe() {
                d if d.is_empty() => {
                    format!("{} load, {} SDK clients", r.load.model, r.load.sdk_clients)
                }
                d => format!("{} load, {d}", r.load.model),
            },
        ),
        (
            format::percent(error_rate),
            format!("{} failed requests", r.load.failed_requests),
        ),
        (
            format!("{} ms", ms(r.requests_corrected.p99_ms)),
            "request p99 (corrected)".to_owned(),
        ),
        (
            format::usd(r.cost.total.cost_usd),
            format!(
                "LLM cost, {} per 1,000 requests",
                format::usd(r.cost.per_thousand_requests_usd)
            ),
        ),
    ];
    cards
        .iter()
        .map(|(v, l)| {
            format!(
                "<div class=\"card\"><b>{}</b><span>{}</span></div>",
                esc(v),
                esc(l)
            )
        })
        .collect()
}

/// LLM observability: cost, latency, errors and tokens per variation, latency over time.
pub fn observability(r: &Results) -> Html {
    let c = &r.cost;
    let unpriced = if c.unpriced_models.is_empty() {
        String::new()
    } else {
        format!(
            " No price for {}: their calls are not in the cost.",
            c.unpriced_models.join(", ")
        )
    };
    let mut body = note(&format!(
        "Cost: {} ({}) for {} successful LLM calls, {} per 1,000 requests.{unpriced} Errors: {} of {} requests failed.",
        format::usd(c.total.cost_usd),
        c.currency,
        c.total.calls,
        format::usd(c.per_thousand_requests_usd),
        r.load.failed_requests,
        r.load.requests
    ));
    body += &table(&variation_table(r));
    if let Some(t) = super::retries_section::table(r) {
        body += &format!("<h3>{}</h3>\n", super::retries_section::TITLE);
        body += &table(&t);
        body += &note(super::retries_section::NOTE);
    }
    if let Some(label) = super::simulated::label(r) {
        body += &note(&label);
        if r.variations()
            .any(|(_, _, v)| v.latency.llm_excess.count > 0)
        {
            body += &table(&super::simulated::plan_table(r));
        }
    }
    if !r.timeline.is_empty() {
        let bands = super::resilience_section::bands(r);
        let caption = if bands.is_empty() {
            "p50 and p99 of the requests started in each second (corrected for coordinated omission)."
        } else {
            "p50 and p99 of the requests started in each second (corrected for coordinated omission); shaded: faults mock-ld had on, labelled with their kind, and the time it was down for a restart."
        };
        body += &figure(&charts::timeline(&r.timeline, &bands)?, caption);
    }
    let llm: Vec<(String, Histogram<u64>)> = r
        .variations()
        .map(|(c, k, v)| Ok((format!("{c} / {k}"), v.latency.llm.histogram()?)))
        .collect::<Result<_, HistogramError>>()
        .map_err(input)?;
    let series: Vec<(String, &Histogram<u64>)> = llm.iter().map(|(n, h)| (n.clone(), h)).collect();
    body += &figure(
        &charts::percentile_curves("LLM call latency by variation", &series, false)?,
        "Latency at each percentile; the x axis is 1/(1-p), so the tail gets room.",
    );
    Ok(section(
        "observability",
        "LLM observability: cost, latency, errors",
        &body,
    ))
}

fn variation_table(r: &Results) -> Table {
    let mut t = Table::new([
        "config / variation",
        "AI calls",
        "errors",
        "error rate",
        "LLM n",
        "LLM p50 ms",
        "LLM p95 ms",
        "LLM p99 ms",
        "TTFT n",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "tokens in / out",
    ]);
    for (config, key, v) in r.variations() {
        let (llm, ttft) = (&v.latency.llm, &v.latency.time_to_first_token);
        t.push([
            format!("{config} / {key}"),
            v.ai_calls.to_string(),
            v.errors.to_string(),
            format::percent(v.errors as f64 / v.ai_calls.max(1) as f64),
            llm.count.to_string(),
            ms(llm.p50_ms),
            ms(llm.p95_ms),
            ms(llm.p99_ms),
            ttft.count.to_string(),
            ms(ttft.p50_ms),
            ms(ttft.p95_ms),
            format!("{} / {}", v.input_tokens, v.output_tokens),
        ]);
    }
    t
}

/// The checks as the plan's alert rules, and the baseline comparison as one more.
pub fn alert_rules(r: &Results) -> String {
    let mut t = Table::new(["rule", "result", "figures"]);
    for o in &r.checks {
        t.push([o.name.as_str(), o.status.word(), o.summary.as_str()]);
    }
    if let Some(c) = &r.baseline {
        // Never "pass" while a compared metric could not be judged.
        let word = if c.regressions() > 0 {
            "FAIL"
        } else if c.inconclusive() > 0 {
            "inconclusive"
        } else {
            "pass"
        };
        t.push([
            format!("no regression against baseline `{}`", c.baseline),
            word.to_owned(),
            c.headline(),
        ]);
    }
    let body = if t.rows.is_empty() {
        note("This run evaluated no rules: it cannot fail.")
    } else {
        table(&t)
    };
    section("alerts", "Alert rules evaluated", &body)
}

/// p50 to max of every recorded latency, the percentile curves by stage, and the
/// comparison with a baseline when there is one.
pub fn baselines(r: &Results) -> Html {
    let mut t = Table::new([
        "latency", "n", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms",
    ]);
    t.push(percentiles("requests (corrected)", &r.requests_corrected));
    t.push(percentiles("requests (raw)", &r.requests_raw));
    let overall: Vec<(Stage, Histogram<u64>)> = Stage::ALL
        .iter()
        .map(|&s| Ok((s, r.overall(s)?)))
        .collect::<Result<_, HistogramError>>()
        .map_err(input)?;
    for (stage, h) in &overall {
        t.push(percentiles(stage.label(), &Summary::of(h)));
    }
    if let Some(e) = &r.events {
        for (name, s) in super::events::latencies(e) {
            t.push(percentiles(&name, s));
        }
    }
    for (name, s) in super::simulated::lateness_rows(r) {
        t.push(percentiles(name, s));
    }
    for (config, key, v) in r.variations() {
        for stage in Stage::ALL {
            t.push(percentiles(
                &format!("{config} / {key}: {}", stage.label()),
                v.latency.of(stage),
            ));
        }
    }
    let series: Vec<(String, &Histogram<u64>)> = overall
        .iter()
        .map(|(s, h)| (s.label().to_owned(), h))
        .collect();
    let mut body = figure(&charts::percentile_curves("Latency by stage, all variations", &series, true)?, "Both axes are logarithmic: the SDK evaluation takes microseconds, the LLM call milliseconds.");
    body += &table(&t);
    if let Some(left_out) = r.events.as_ref().and_then(super::events::left_out) {
        body += &note(&left_out);
    }
    if let Some(c) = &r.baseline {
        body += &format!(
            "<h3>{}</h3>\n{}{}",
            esc(&c.headline()),
            table(&c.latency_table(false)),
            table(&c.rate_table(false))
        );
    }
    Ok(section("baselines", "Performance baselines", &body))
}

fn percentiles(name: &str, s: &Summary) -> Vec<String> {
    let mut row = vec![name.to_owned(), s.count.to_string()];
    row.extend([s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.p999_ms, s.max_ms].map(ms));
    row
}

/// How long each timed change took to reach every SDK client.
/// The load generator's own lag, CPU and the machine's pressure, and whether it kept up.
pub fn load_generator(r: &Results) -> String {
    let items: String = harness_section::lines(&r.harness)
        .iter()
        .map(|line| format!("<li>{}</li>\n", esc(line)))
        .collect();
    section(
        "load-generator",
        harness_section::TITLE,
        &format!("<ul>\n{items}</ul>\n"),
    )
}

/// Resilience: the fault timeline, what users were served during and after it, and the
/// SDKs' start-up.
pub fn resilience(r: &Results) -> String {
    if !super::resilience_section::shown(r) {
        return String::new();
    }
    let mut body = super::resilience_section::table(r)
        .map(|t| table(&t))
        .unwrap_or_default();
    for line in super::resilience_section::lines(r) {
        body += &note(&line);
    }
    section("resilience", super::resilience_section::TITLE, &body)
}

pub fn propagation(r: &Results) -> String {
    if r.actions.is_empty() {
        return section(
            "propagation",
            "Propagation of timed changes",
            &note("This scenario makes no timed changes."),
        );
    }
    let mut t = Table::new([
        "at",
        "config",
        "change",
        "REST call ms",
        "clients reached",
        "p50 ms",
        "max ms",
        "missed",
        "result",
    ]);
    for a in &r.actions {
        let passed = a.landed();
        t.push([
            format!("{:.1} s", a.at_ms / 1000.0),
            a.target().to_owned(),
            a.change(),
            ms(a.apply_ms),
            a.propagation.count.to_string(),
            ms(a.propagation.p50_ms),
            ms(a.propagation.max_ms),
            a.clients_missed.to_string(),
            (if passed { "pass" } else { "FAIL" }).to_owned(),
        ]);
    }
    section("propagation", "Propagation of timed changes", &table(&t))
}
