//! A comparison as tables: latencies (p50/p95/p99 and the KS test) and rates.

use super::format::{self, ms};
use super::table::Table;
use crate::results::comparison::{Change, Comparison, Row, RowKind, Status};

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Improved => "improved",
            Status::Missing => "not in this run",
            Status::New => "not in baseline",
            Status::Inconclusive => "INCONCLUSIVE",
            Status::Regressed => "REGRESSED",
        }
    }

    /// The word with a mark, for Markdown.
    pub fn marked(self) -> &'static str {
        match self {
            Status::Ok => "✅ ok",
            Status::Improved => "🟢 improved",
            Status::Missing => "➖ not in this run",
            Status::New => "🆕 not in baseline",
            Status::Inconclusive => "⚠️ inconclusive",
            Status::Regressed => "❌ regressed",
        }
    }
}

impl Comparison {
    /// "1 regression in 28 compared metrics against baseline `quickstart`": metrics on one
    /// side only are listed but not compared (and not counted, as in the verdict).
    pub fn headline(&self) -> String {
        let n = self.regressions();
        let what = if n == 1 { "regression" } else { "regressions" };
        let compared = self
            .rows
            .iter()
            .filter(|r| !matches!(r.status, Status::Missing | Status::New))
            .count();
        let inconclusive = self.inconclusive();
        let mut line = format!(
            "{n} {what} in {compared} compared metrics against baseline `{}`",
            self.baseline
        );
        if inconclusive > 0 {
            line += &format!(", {inconclusive} inconclusive");
        }
        if let Some(overload) = &self.overload {
            line += &format!(" (latency and throughput: {overload})");
        }
        line
    }

    pub fn latency_table(&self, marks: bool) -> Table {
        let mut t = Table::new([
            "metric",
            "n (base → now)",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "distribution (KS)",
            "allowed",
            "result",
        ]);
        for row in &self.rows {
            match &row.kind {
                RowKind::Latency {
                    counts,
                    percentiles,
                    ks,
                } => {
                    let mut cells =
                        vec![row.metric.clone(), format!("{} → {}", counts.0, counts.1)];
                    cells.extend((0..3).map(|i| {
                        percentiles
                            .get(i)
                            .map_or_else(|| "no data".to_owned(), change_cell)
                    }));
                    cells.push(ks.map_or_else(String::new, |k| {
                        let direction = if k.test.slower { "slower" } else { "faster" };
                        format!(
                            "D {:.3} {direction}, p {}",
                            k.test.d,
                            format::p_value(k.test.p_value)
                        )
                    }));
                    cells.push(allowed(percentiles));
                    cells.push(status(row, marks).to_owned());
                    t.push(cells);
                }
                RowKind::Unmatched if !is_rate(&row.metric) => t.push([
                    row.metric.as_str(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    status(row, marks),
                ]),
                _ => {}
            }
        }
        t
    }

    pub fn rate_table(&self, marks: bool) -> Table {
        let mut t = Table::new([
            "metric",
            "n (base → now)",
            "baseline",
            "now",
            "change",
            "allowed",
            "result",
        ]);
        for row in &self.rows {
            match &row.kind {
                RowKind::Ratio { counts, change } => t.push([
                    row.metric.clone(),
                    format!("{} → {}", counts.0, counts.1),
                    format::percent(change.baseline),
                    format::percent(change.current),
                    format::change(change.baseline, change.current),
                    format!(
                        "{:.0} %, {}",
                        change.tolerance.rel * 100.0,
                        format::percent(change.tolerance.abs)
                    ),
                    status(row, marks).to_owned(),
                ]),
                RowKind::Value { unit, change } => t.push([
                    row.metric.clone(),
                    String::new(),
                    value_cell(change.baseline, unit),
                    value_cell(change.current, unit),
                    format::change(change.baseline, change.current),
                    format!(
                        "{:.0} %, {}",
                        change.tolerance.rel * 100.0,
                        change.tolerance.abs
                    ),
                    status(row, marks).to_owned(),
                ]),
                RowKind::Unmatched if is_rate(&row.metric) => {
                    t.push([row.metric.as_str(), "", "", "", "", "", status(row, marks)])
                }
                _ => {}
            }
        }
        t
    }

    /// For the terminal and CI logs.
    pub fn text(&self) -> String {
        format!(
            "{}\n\n{}\n{}",
            self.headline(),
            self.latency_table(false).text(),
            self.rate_table(false).text()
        )
    }

    /// For `summary.md` and `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mark = if self.regressions() > 0 {
            "❌"
        } else if self.inconclusive() > 0 {
            "⚠️"
        } else {
            "✅"
        };
        format!(
            "### {mark} {}\n\n#### Latency\n\n{}\n#### Rates\n\n{}",
            self.headline(),
            self.latency_table(true).markdown(),
            self.rate_table(true).markdown()
        )
    }
}

/// "1294.2 requests/s"; a unit starting with USD shows dollars: "$0.1825 per 1,000 requests".
fn value_cell(x: f64, unit: &str) -> String {
    match unit.strip_prefix("USD") {
        Some(rest) => format!("{}{rest}", format::usd(x)),
        None => format!("{x:.1} {unit}"),
    }
}

fn is_rate(metric: &str) -> bool {
    metric.ends_with("error_rate") || metric == "throughput" || metric.starts_with("cost")
}

fn status(row: &Row, marks: bool) -> &'static str {
    if marks {
        row.status.marked()
    } else {
        row.status.word()
    }
}

/// The tolerances of the percentiles, once when they are all the same:
/// "20 %, 5.00 ms", or "p50/p95 20 %, 5.00 ms; p99 50 %, 10.0 ms".
fn allowed(percentiles: &[Change]) -> String {
    let mut groups: Vec<(Vec<&str>, String)> = Vec::new();
    for p in percentiles {
        let t = format!(
            "{:.0} %, {} ms",
            p.tolerance.rel * 100.0,
            ms(p.tolerance.abs)
        );
        match groups.iter_mut().find(|(_, g)| *g == t) {
            Some((labels, _)) => labels.push(&p.label),
            None => groups.push((vec![&p.label], t)),
        }
    }
    match groups.as_slice() {
        [(_, only)] => only.clone(),
        _ => groups
            .iter()
            .map(|(labels, t)| format!("{} {t}", labels.join("/")))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// "35.2 → 70.4 (+100 %)", with a `!` when that percentile alone regressed.
fn change_cell(c: &Change) -> String {
    let flag = if c.status == Status::Regressed {
        " !"
    } else {
        ""
    };
    format!(
        "{} → {} ({}){flag}",
        ms(c.baseline),
        ms(c.current),
        format::change(c.baseline, c.current)
    )
}

impl Row {
    /// One line with the measured values, the baseline's and the tolerance, e.g.
    /// `REGRESSED: p99 70.4 ms, baseline 35.2 ms (+100 %), allowed 50 %, 10 ms`.
    pub fn summary(&self) -> String {
        let changes: Vec<String> = match &self.kind {
            RowKind::Latency {
                counts,
                percentiles,
                ks,
            } => {
                let mut parts: Vec<String> = percentiles
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} ms, baseline {} ms ({}), allowed {:.0} %, {} ms",
                            c.label,
                            ms(c.current),
                            ms(c.baseline),
                            format::change(c.baseline, c.current),
                            c.tolerance.rel * 100.0,
                            ms(c.tolerance.abs)
                        )
                    })
                    .collect();
                parts.push(format!("n {} → {}", counts.0, counts.1));
                if let Some(k) = ks {
                    parts.push(format!(
                        "KS D = {:.3}, p = {:.2e}{}",
                        k.test.d,
                        k.test.p_value,
                        if k.regressed { " (slower)" } else { "" }
                    ));
                }
                parts
            }
            RowKind::Ratio { counts, change } => vec![format!(
                "{}, baseline {} ({}), allowed {:.0} %, {}; n {} → {}",
                format::percent(change.current),
                format::percent(change.baseline),
                format::change(change.baseline, change.current),
                change.tolerance.rel * 100.0,
                format::percent(change.tolerance.abs),
                counts.0,
                counts.1
            )],
            RowKind::Value { unit, change } => vec![format!(
                "{}, baseline {} ({}), allowed {:.0} %, {}",
                value_cell(change.current, unit),
                value_cell(change.baseline, unit),
                format::change(change.baseline, change.current),
                change.tolerance.rel * 100.0,
                change.tolerance.abs
            )],
            RowKind::Unmatched => vec![],
        };
        format!("{}: {}", self.status.word(), changes.join("; "))
    }
}
