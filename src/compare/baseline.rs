//! Baseline files (`reports/baselines/NAME.json`): the metrics of one run, histograms
//! included, in a stable key order so that a committed baseline diffs well.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::results::latency::{HistogramError, LatencySummary as Summary};
use crate::results::verdict::Outcome;
use crate::results::{self, ResultsError, RunResults as Results, ScenarioInfo, Stage};

/// Bumped whenever a metric changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The metric of requests completed per second.
pub const THROUGHPUT: &str = "throughput";

/// Where `--baseline NAME` looks.
pub const DIR: &str = "reports/baselines";

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub format_version: u32,
    pub name: String,
    pub scenario: ScenarioInfo,
    /// By metric name (see [`metrics`]).
    pub metrics: BTreeMap<String, Metric>,
    /// The run's verdict headline when it was inconclusive and saved with `--force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
    /// Why the run's load generator was overloaded (`results::harness`), if it was: its
    /// latencies are not the system's, so latency comparisons against it are inconclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overloaded: Vec<String>,
}

/// One metric of a run.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Metric {
    /// Milliseconds, with the histogram for the distribution test.
    Latency(Summary),
    /// `count` of `of`, e.g. failed requests of all requests; lower is better.
    Ratio { count: u64, of: u64 },
    /// A single figure, e.g. requests per second.
    Value {
        value: f64,
        unit: String,
        higher_is_better: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("baseline name `{0}`: use letters, digits, `.`, `_` and `-` only")]
    Name(String),
    #[error("{0}: an incomplete run (interrupted, aborted or not set up) is not a baseline; rerun it to the end")]
    Partial(String),
    #[error("{path}: an inconclusive run ({headline}) is not a baseline; rerun it on a quiet machine, or save it anyway with --force (the file says so)")]
    Inconclusive { path: String, headline: String },
    #[error("baseline {path}: {source} (save one with `aiconfig-harness baseline save RESULTS --name NAME`)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("baseline {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "baseline {path}: format version {found}, this build reads {FORMAT_VERSION}; save it again"
    )]
    Version { path: String, found: u32 },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Every metric `compare` knows, by name: `requests`, `requests.raw`, each stage over all
/// variations (`llm`, `ttft`, ...), `flush`, `delivery.KIND` (per event kind), `error_rate`, `throughput`,
/// `cost_per_1k_requests`, and per variation
/// `CONFIG/VARIATION/STAGE` and `CONFIG/VARIATION/error_rate`.
pub fn metrics(r: &Results) -> Result<BTreeMap<String, Metric>, HistogramError> {
    let mut m = BTreeMap::new();
    m.insert(
        "requests".to_owned(),
        Metric::Latency(r.requests_corrected.clone()),
    );
    m.insert(
        "requests.raw".to_owned(),
        Metric::Latency(r.requests_raw.clone()),
    );
    for stage in Stage::ALL {
        m.insert(
            stage.key().to_owned(),
            Metric::Latency(Summary::of(&r.overall(stage)?)),
        );
    }
    if let Some(events) = &r.events {
        m.insert(
            "flush".to_owned(),
            Metric::Latency(events.flush_latency.clone()),
        );
        for (kind, d) in &events.delivery {
            m.insert(
                format!("delivery.{kind}"),
                Metric::Latency(d.latency.clone()),
            );
        }
    }
    m.insert(
        "error_rate".to_owned(),
        Metric::Ratio {
            count: r.load.failed_requests,
            of: r.load.requests,
        },
    );
    let throughput = Metric::Value {
        value: r.load.achieved_rate,
        unit: "requests/s".to_owned(),
        higher_is_better: true,
    };
    m.insert(THROUGHPUT.to_owned(), throughput);
    let cost = Metric::Value {
        value: r.cost.per_thousand_requests_usd,
        unit: "USD per 1,000 requests".to_owned(),
        higher_is_better: false,
    };
    m.insert("cost_per_1k_requests".to_owned(), cost);
    for (config, key, v) in r.variations() {
        for stage in Stage::ALL {
            m.insert(
                format!("{config}/{key}/{}", stage.key()),
                Metric::Latency(v.latency.of(stage).clone()),
            );
        }
        if v.ai_calls > 0 {
            m.insert(
                format!("{config}/{key}/error_rate"),
                Metric::Ratio {
                    count: v.errors,
                    of: v.ai_calls,
                },
            );
        }
    }
    Ok(m)
}

pub fn of_results(name: &str, results: &Results) -> Result<Baseline, BaselineError> {
    Ok(Baseline {
        format_version: FORMAT_VERSION,
        name: name.to_owned(),
        scenario: results.scenario.clone(),
        metrics: metrics(results)?,
        inconclusive: (results.verdict.outcome == Outcome::Inconclusive)
            .then(|| results.verdict.headline.clone()),
        overloaded: results.harness.overloaded.clone(),
    })
}

/// `baseline save`: writes `dir/NAME.json` and returns its path. An inconclusive run is
/// refused unless `force`, and then marked in the file.
pub fn save(
    results_path: &Path,
    name: &str,
    dir: &Path,
    force: bool,
) -> Result<PathBuf, BaselineError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(BaselineError::Name(name.to_owned()));
    }
    let results = results::load(results_path)?;
    if !results.status.is_complete() {
        return Err(BaselineError::Partial(results_path.display().to_string()));
    }
    if results.verdict.outcome == Outcome::Inconclusive && !force {
        return Err(BaselineError::Inconclusive {
            path: results_path.display().to_string(),
            headline: results.verdict.headline.clone(),
        });
    }
    let baseline = of_results(name, &results)?;
    let path = dir.join(format!("{name}.json"));
    let write = |source| BaselineError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let json = serde_json::to_string_pretty(&baseline).expect("a baseline serializes");
    std::fs::write(&path, json + "\n").map_err(write)?;
    Ok(path)
}

/// A name is looked up in [`DIR`]; anything with a `/` or ending in `.json` is a path.
pub fn resolve(name_or_path: &str) -> PathBuf {
    if name_or_path.contains('/') || name_or_path.ends_with(".json") {
        PathBuf::from(name_or_path)
    } else {
        Path::new(DIR).join(format!("{name_or_path}.json"))
    }
}

pub fn load(name_or_path: &str) -> Result<Baseline, BaselineError> {
    let path = resolve(name_or_path);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| BaselineError::Read {
        path: shown.clone(),
        source,
    })?;
    let baseline: Baseline =
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: shown.clone(),
            source,
        })?;
    if baseline.format_version != FORMAT_VERSION {
        return Err(BaselineError::Version {
            path: shown,
            found: baseline.format_version,
        });
    }
    Ok(baseline)
}
