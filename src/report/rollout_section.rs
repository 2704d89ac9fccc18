//! The rollout validation section of `report.html`: for every split the checks tested,
//! expected versus observed per variation with the chi-square p-value, the exact check's
//! agreement and mismatches, and the split each AI Config served.

use super::charts;
use super::format::{self, p_value};
use super::markup::{esc, figure, note, section, table};
use super::table::Table;
use crate::results::checks::{Details, ExactDetails, SplitTest, SrmDetails};
use crate::results::RunResults as Results;

/// Mismatches shown; the count says how many there were.
const MISMATCHES_SHOWN: usize = 20;

pub fn render(r: &Results) -> Result<String, String> {
    let mut body = String::new();
    for o in &r.checks {
        if let Details::RolloutSrm(d) = &o.details {
            body += &format!("<h3>{}: {}</h3>\n", esc(&o.name), esc(o.status.word()));
            body += &srm(d)?;
        } else if let Details::RolloutExact(d) = &o.details {
            body += &format!("<h3>{}: {}</h3>\n", esc(&o.name), esc(o.status.word()));
            body += &exact(d);
        }
    }
    body += &served(r);
    Ok(section("rollout", "Rollout validation", &body))
}

fn srm(d: &SrmDetails) -> Result<String, String> {
    let mut out = d.note.as_deref().map(note).unwrap_or_default();
    for t in &d.tests {
        out += &format!(
            "<h4>{}, context kind {}: {}</h4>\n",
            esc(&t.rollout),
            esc(&t.context_kind),
            esc(t.status.word())
        );
        out += &table(&arms(t));
        out += &note(&test_line(t, d.min_p_value));
        out += &figure(
            &split_chart(&d.config, t)?,
            "Configured weight against the share the SDK served, per variation.",
        );
    }
    Ok(out)
}

fn arms(t: &SplitTest) -> Table {
    let mut table = Table::new([
        "variation",
        "weight",
        "expected contexts",
        "observed contexts",
        "observed share",
    ]);
    for a in &t.arms {
        let share = a.observed as f64 / t.contexts.max(1) as f64;
        table.push([
            a.variation.clone(),
            format::percent(a.weight),
            format!("{:.1}", a.expected),
            a.observed.to_string(),
            format::percent(share),
        ]);
    }
    table
}

fn test_line(t: &SplitTest, min_p_value: f64) -> String {
    let chi = match (t.chi_square, t.degrees_of_freedom) {
        (Some(chi), Some(df)) => format!("chi-square {chi:.3} (df {df})"),
        _ => "no chi-square".to_owned(),
    };
    let p = t.p_value.map_or_else(
        || "no p-value".to_owned(),
        |p| format!("p = {}", p_value(p)),
    );
    let mde = t.min_detectable_effect.map_or_else(String::new, |m| {
        format!("; smallest detectable deviation {}", format::percent(m))
    });
    format!(
        "{} contexts: {chi}, {p} (fails below {min_p_value}){mde}.",
        t.contexts
    )
}

fn split_chart(config: &str, t: &SplitTest) -> Result<String, String> {
    let groups: Vec<String> = t.arms.iter().map(|a| a.variation.clone()).collect();
    let series = vec![
        (
            "expected".to_owned(),
            t.arms.iter().map(|a| 100.0 * a.weight).collect(),
        ),
        (
            "observed".to_owned(),
            t.arms
                .iter()
                .map(|a| 100.0 * a.observed as f64 / t.contexts.max(1) as f64)
                .collect(),
        ),
    ];
    let title = format!("{config}: {}, {}", t.rollout, t.context_kind);
    charts::bars(&title, "% of contexts", &groups, &series, &|y| {
        format!("{y:.0} %")
    })
}

fn exact(d: &ExactDetails) -> String {
    let mut out = note(&format!(
        "{} of {} contexts were served the predicted variation; {} mismatches.",
        d.agreed, d.contexts_checked, d.mismatch_count
    ));
    out += &d.note.as_deref().map(note).unwrap_or_default();
    if !d.mismatches.is_empty() {
        let mut t = Table::new(["context", "kind", "expected", "because", "served"]);
        for m in d.mismatches.iter().take(MISMATCHES_SHOWN) {
            t.push([
                m.context.as_str(),
                m.context_kind.as_str(),
                m.expected.as_str(),
                m.expected_reason.as_str(),
                m.served.as_str(),
            ]);
        }
        out += &table(&t);
        if d.mismatches.len() > MISMATCHES_SHOWN {
            out += &note(&format!(
                "The first {MISMATCHES_SHOWN} are shown; results.json lists {}.",
                d.mismatches.len()
            ));
        }
    }
    out
}

/// What each AI Config served, whether or not a check covered it.
fn served(r: &Results) -> String {
    let mut out = String::from("<h3>Variations served</h3>\n");
    for (config, c) in &r.configs {
        let total: u64 = c.variations.values().map(|v| v.evaluations).sum();
        let mut t = Table::new(["config", "variation", "evaluations", "share"]);
        for (key, v) in &c.variations {
            t.push([
                config.clone(),
                key.clone(),
                v.evaluations.to_string(),
                format::percent(v.evaluations as f64 / total.max(1) as f64),
            ]);
        }
        out += &table(&t);
    }
    let mut kinds = Table::new(["context kind", "evaluations"]);
    for (kind, n) in &r.context_kinds {
        kinds.push([kind.clone(), n.to_string()]);
    }
    out + &table(&kinds)
}
