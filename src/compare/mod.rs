//! `compare`: a run against a saved baseline, metric by metric.
//!
//! Modules: [`baseline`] (the files and the metrics in them), [`ks`] (Kolmogorov–Smirnov on
//! HDR histograms), [`tolerance`] (what change is allowed). The comparison is part of the
//! results (`results::comparison`); `report::comparison` renders it.
//!
//! A latency metric regresses when one of its p50, p95 or p99 (each with its own tolerance,
//! named `METRIC.p50` and so on)
//! - got worse by more than its tolerance (relative *and* absolute) and by more than the
//!   sampling noise of both runs (the current run's value at `q - 3σ_q` is above the
//!   baseline's at `q + 3σ_q`, σ_q = √(q(1-q)/n)), or when
//! - the whole distribution shifted slower: KS p-value below `alpha` *and* D at least
//!   `min_effect` (so a significant but tiny shift passes) *and* some percentile worse by
//!   more than its absolute tolerance.
//!
//! A rate (errors of calls) regresses when it got worse by more than its tolerance and a
//! two-proportion z-test puts the change beyond 3σ; a single value (throughput) when it got
//! worse by more than its tolerance.

pub mod baseline;
pub mod ks;
pub mod tolerance;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::results::comparison::{Change, Comparison, KsOutcome, Row, RowKind, Status, Tolerance};
use crate::results::latency::{HistogramError, LatencySummary as Summary};
use baseline::Metric;
use tolerance::Tolerances;

/// How many standard errors a change must clear to be more than noise.
const Z: f64 = 3.0;

/// The percentiles that decide a latency verdict (p99.9 and max are too noisy to gate on).
const GATED: [(&str, f64); 3] = [("p50", 0.50), ("p95", 0.95), ("p99", 0.99)];

#[derive(Clone, Debug)]
pub struct Options {
    pub tolerances: Tolerances,
    /// KS significance level.
    pub alpha: f64,
    /// Smallest KS D (largest CDF gap) that counts as a regression.
    pub min_effect: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tolerances: Tolerances::default(),
            alpha: 0.001,
            min_effect: 0.1,
        }
    }
}

/// With `overload` (why either run's load generator was overloaded), every latency and
/// throughput compared is inconclusive: the harness's lateness is in them.
pub fn compare(
    name: &str,
    baseline: &BTreeMap<String, Metric>,
    current: &BTreeMap<String, Metric>,
    options: &Options,
    overload: Option<String>,
) -> Result<Comparison, HistogramError> {
    let mut names: Vec<&String> = baseline
        .keys()
        .chain(current.keys().filter(|k| !baseline.contains_key(*k)))
        .collect();
    // Run-wide metrics first, then per variation.
    names.sort_by_key(|n| (n.contains('/'), n.as_str()));
    let mut rows: Vec<Row> = names
        .into_iter()
        .map(|metric| row(metric, baseline.get(metric), current.get(metric), options))
        .collect::<Result<_, _>>()?;
    if overload.is_some() {
        rows.iter_mut()
            .filter(|r| is_timing(r))
            .for_each(|r| r.status = Status::Inconclusive);
    }
    Ok(Comparison {
        baseline: name.to_owned(),
        rows,
        overload,
    })
}

/// A compared latency or throughput: what a late load generator moves.
fn is_timing(row: &Row) -> bool {
    let compared = !matches!(row.status, Status::Missing | Status::New);
    let timing = match row.kind {
        RowKind::Latency { .. } => true,
        RowKind::Value { .. } => row.metric == baseline::THROUGHPUT,
        RowKind::Ratio { .. } | RowKind::Unmatched => false,
    };
    compared && timing
}

fn row(
    metric: &str,
    base: Option<&Metric>,
    now: Option<&Metric>,
    options: &Options,
) -> Result<Row, HistogramError> {
    let tolerance = options.tolerances.for_metric(metric, None);
    let kind = match (base, now) {
        (Some(Metric::Latency(b)), Some(Metric::Latency(c))) => latency(metric, b, c, options)?,
        (
            Some(&Metric::Ratio { count: bc, of: bn }),
            Some(&Metric::Ratio { count: cc, of: cn }),
        ) => ratio((bc, bn), (cc, cn), tolerance),
        (
            Some(Metric::Value {
                value: b,
                higher_is_better,
                ..
            }),
            Some(Metric::Value { value: c, unit, .. }),
        ) => RowKind::Value {
            unit: unit.clone(),
            change: value(*b, *c, *higher_is_better, tolerance),
        },
        _ => RowKind::Unmatched,
    };
    let status = match (&kind, now) {
        (RowKind::Unmatched, None) => Status::Missing,
        (RowKind::Unmatched, Some(_)) => Status::New,
        _ => row_status(&kind),
    };
    Ok(Row {
        metric: metric.to_owned(),
        kind,
        status,
    })
}

/// Regressed if anything regressed; improved if something improved and nothing regressed.
fn row_status(kind: &RowKind) -> Status {
    let mut statuses: Vec<Status> = match kind {
        RowKind::Latency {
            percentiles, ks, ..
        } => {
            let ks = ks.filter(|k| k.regressed).map(|_| Status::Regressed);
            percentiles.iter().map(|c| c.status).chain(ks).collect()
        }
        RowKind::Ratio { change, .. } | RowKind::Value { change, .. } => vec![change.status],
        RowKind::Unmatched => vec![],
    };
    statuses.sort();
    statuses.pop().unwrap_or(Status::Ok)
}

/// Each percentile has its own tolerance, looked up as `METRIC.p50`, `METRIC.p95`, ...
fn latency(
    metric: &str,
    base: &Summary,
    now: &Summary,
    options: &Options,
) -> Result<RowKind, HistogramError> {
    let (b, c) = (base.histogram()?, now.histogram()?);
    if b.is_empty() || c.is_empty() {
        return Ok(RowKind::Latency {
            counts: (b.len(), c.len()),
            percentiles: vec![],
            ks: None,
        });
    }
    let percentiles: Vec<Change> = GATED
        .iter()
        .map(|&(label, q)| {
            percentile(
                label,
                q,
                &b,
                &c,
                options.tolerances.for_metric(metric, Some(label)),
            )
        })
        .collect();
    // The effect-size floor in time: some percentile must be slower by more than its
    // absolute tolerance, or the shift, however certain, does not matter.
    let material = percentiles
        .iter()
        .any(|p| p.current - p.baseline > p.tolerance.abs);
    let ks = ks::two_sample(&b, &c).map(|test| KsOutcome {
        test,
        regressed: test.slower
            && test.p_value < options.alpha
            && test.d >= options.min_effect
            && material,
    });
    Ok(RowKind::Latency {
        counts: (b.len(), c.len()),
        percentiles,
        ks,
    })
}

fn percentile(
    label: &'static str,
    q: f64,
    b: &Histogram<u64>,
    c: &Histogram<u64>,
    tolerance: Tolerance,
) -> Change {
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1000.0;
    let spread = |h: &Histogram<u64>| Z * (q * (1.0 - q) / h.len() as f64).sqrt();
    let (baseline, current) = (ms(b, q), ms(c, q));
    let allowance = tolerance.allowance(baseline);
    let status = if current - baseline > allowance && ms(c, q - spread(c)) > ms(b, q + spread(b)) {
        Status::Regressed
    } else if baseline - current > allowance && ms(b, q - spread(b)) > ms(c, q + spread(c)) {
        Status::Improved
    } else {
        Status::Ok
    };
    Change {
        label: label.to_owned(),
        baseline,
        current,
        tolerance,
        status,
    }
}

fn ratio((bc, bn): (u64, u64), (cc, cn): (u64, u64), tolerance: Tolerance) -> RowKind {
    let rate = |count: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    };
    let (baseline, current) = (rate(bc, bn), rate(cc, cn));
    // Two-proportion z-test with the pooled rate.
    let pooled = rate(bc + cc, bn + cn);
    let se = (pooled * (1.0 - pooled) * (1.0 / bn.max(1) as f64 + 1.0 / cn.max(1) as f64)).sqrt();
    let beyond_noise = |delta: f64| se > 0.0 && delta / se > Z;
    let allowance = tolerance.allowance(baseline);
    let status = if current - baseline > allowance && beyond_noise(current - baseline) {
        Status::Regressed
    } else if baseline - current > allowance && beyond_noise(baseline - current) {
        Status::Improved
    } else {
        Status::Ok
    };
    RowKind::Ratio {
        counts: (bn, cn),
        change: Change {
            label: "rate".to_owned(),
            baseline,
            current,
            tolerance,
            status,
        },
    }
}

fn value(baseline: f64, current: f64, higher_is_better: bool, tolerance: Tolerance) -> Change {
    let worse_by = if higher_is_better {
        baseline - current
    } else {
        current - baseline
    };
    let allowance = tolerance.allowance(baseline);
    let status = if worse_by > allowance {
        Status::Regressed
    } else if -worse_by > allowance {
        Status::Improved
    } else {
        Status::Ok
    };
    Change {
        label: "value".to_owned(),
        baseline,
        current,
        tolerance,
        status,
    }
}

#[cfg(test)]
mod tests;
