//! A run compared with a saved baseline, metric by metric, as results carry it: `compare`
//! computes it, the verdict counts its regressions, and the reports render it.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Improved,
    /// In the baseline but not in this run (e.g. a variation nobody got).
    Missing,
    /// In this run but not in the baseline.
    New,
    /// Compared, but not to be trusted either way: the load generator was overloaded
    /// (`Comparison::overload` says how), and this is a latency or throughput.
    Inconclusive,
    Regressed,
}

/// One figure of a metric, baseline versus now.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub label: String,
    pub baseline: f64,
    pub current: f64,
    pub tolerance: Tolerance,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub metric: String,
    pub kind: RowKind,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RowKind {
    Latency {
        counts: (u64, u64),
        percentiles: Vec<Change>,
        ks: Option<KsOutcome>,
    },
    Ratio {
        counts: (u64, u64),
        change: Change,
    },
    Value {
        unit: String,
        change: Change,
    },
    /// Only on one side.
    Unmatched,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KsOutcome {
    pub test: KsTest,
    pub regressed: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub baseline: String,
    pub rows: Vec<Row>,
    /// Why latency and throughput rows are inconclusive: this run's or the baseline's
    /// load generator was overloaded.
    pub overload: Option<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.count(Status::Regressed)
    }

    pub fn inconclusive(&self) -> usize {
        self.count(Status::Inconclusive)
    }

    fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }
}

/// The largest gap between the two CDFs, its direction and its significance.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KsTest {
    /// sup |F_baseline - F_current|.
    pub d: f64,
    /// Whether the largest gap has the current run slower (its CDF below the baseline's).
    pub slower: bool,
    /// Two-sided p-value, from the asymptotic Kolmogorov distribution.
    pub p_value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tolerance {
    /// A fraction: 0.2 is 20 %.
    pub rel: f64,
    pub abs: f64,
}

impl Tolerance {
    /// The largest change, in the metric's unit, that still passes.
    pub fn allowance(&self, baseline: f64) -> f64 {
        self.abs.max(self.rel * baseline.abs())
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%, {}", round(self.rel * 100.0), round(self.abs))
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
