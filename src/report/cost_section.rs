//! The cost tracking section of `report.html`: per model, per AI Config (feature), per
//! variation and per context kind, with bars, and the prices used.

use std::collections::BTreeMap;

use super::charts;
use super::format::{self, usd};
use super::markup::{esc, figure, note, section, table};
use super::table::Table;
use crate::results::cost::{CostLine, CostReport as Cost};
use crate::results::RunResults as Results;

pub fn render(r: &Results) -> Result<String, String> {
    let c = &r.cost;
    let mut body = String::new();
    let by_variation: BTreeMap<String, &CostLine> = c
        .by_variation
        .iter()
        .flat_map(|(config, vs)| {
            vs.iter()
                .map(move |(v, line)| (format!("{config} / {v}"), line))
        })
        .collect();
    for (title, by) in [
        ("Per model", by(&c.by_model)),
        ("Per AI Config (feature)", by(&c.by_config)),
        ("Per variation", by_variation),
    ] {
        body += &format!("<h3>{title}</h3>\n{}", table(&lines(&by, c)));
        if title != "Per AI Config (feature)" && !by.is_empty() {
            body += &figure(
                &bars(title, &by)?,
                "Total cost of the successful LLM calls.",
            );
        }
    }
    body += &format!(
        "<h3>Per context kind</h3>\n{}",
        table(&lines(&by(&c.by_context_kind), c))
    );
    for (attribute, values) in &c.by_attribute {
        body += &format!(
            "<h3>Per {}</h3>\n{}",
            esc(attribute),
            table(&lines(&by(values), c))
        );
    }
    body += &format!(
        "<h3>Prices used (USD per million tokens)</h3>\n{}",
        table(&prices(c))
    );
    if !c.unpriced_models.is_empty() {
        body += &note(&format!(
            "No price for {}: their calls are not in the cost.",
            c.unpriced_models.join(", ")
        ));
    }
    Ok(section("cost", "Cost tracking", &body))
}

fn by(map: &BTreeMap<String, CostLine>) -> BTreeMap<String, &CostLine> {
    map.iter().map(|(k, v)| (k.clone(), v)).collect()
}

fn lines(by: &BTreeMap<String, &CostLine>, c: &Cost) -> Table {
    let mut t = Table::new([
        "",
        "calls",
        "input tokens",
        "cached input",
        "output tokens",
        "cost",
        "per 1,000 calls",
        "share",
    ]);
    for (name, l) in by {
        t.push([
            name.clone(),
            l.calls.to_string(),
            l.input_tokens.to_string(),
            l.cached_input_tokens.to_string(),
            l.output_tokens.to_string(),
            usd(l.cost_usd),
            usd(l.cost_usd / l.calls.max(1) as f64 * 1000.0),
            format::percent(l.cost_usd / c.total.cost_usd.max(f64::MIN_POSITIVE)),
        ]);
    }
    t
}

fn prices(c: &Cost) -> Table {
    let mut t = Table::new(["model", "input", "cached input", "output", "source"]);
    for (model, p) in &c.prices {
        t.push([
            model.clone(),
            usd(p.input),
            p.cached_input.map_or("as input".to_owned(), usd),
            usd(p.output),
            p.source.clone(),
        ]);
    }
    t
}

fn bars(title: &str, by: &BTreeMap<String, &CostLine>) -> Result<String, String> {
    let groups: Vec<String> = by.keys().cloned().collect();
    let series = vec![(
        "cost (USD)".to_owned(),
        by.values().map(|l| l.cost_usd).collect(),
    )];
    charts::bars(
        &format!("Cost {}", title.to_lowercase()),
        "USD",
        &groups,
        &series,
        &|y| format!("${y:.2}"),
    )
}
