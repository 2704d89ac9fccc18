//! Reports of a run, written by `aiconfig-harness report RESULTS` and at the end of `run`.
//!
//! Every output renders the one [`RunResults`] and its verdict; none decides anything.
//! Modules: [`terminal`] (the summary on the terminal and in `summary.txt`), [`html`] with
//! [`sections`], [`cost_section`] and [`rollout_section`] (`report.html`), [`charts`]
//! (inline SVG), [`markdown`] (`summary.md`), [`junit`] (`junit.xml`), [`comparison`] (a
//! baseline comparison as tables), [`events`] (the event latencies' rows), [`resilience_section`]
//! (the Resilience section: fault table, restarts, fallback served, SDK start-up, and the
//! bands), [`retries_section`] (a step's `on_error`: retries and fallbacks per variation),
//! [`harness_section`] (the load generator's own figures, the same lines everywhere),
//! [`simulated`] (the simulated-provider label, planned and excess latencies, the
//! simulator's lateness), [`table`] and [`format`] (shared rendering).
//! The JSON itself is `results.json`, documented by `docs/results.schema.json`.

pub mod charts;
pub mod comparison;
pub mod cost_section;
pub mod events;
pub mod format;
pub mod harness_section;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod markup;
pub mod resilience_section;
pub mod retries_section;
pub mod rollout_section;
pub mod sections;
pub mod simulated;
pub mod table;
pub mod terminal;

use std::path::{Path, PathBuf};

use crate::results::latency::HistogramError;
use crate::results::RunResults;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("{0}")]
    Chart(String),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Writes `report.html`, `summary.md` and `junit.xml` into `dir`; returns their paths.
pub fn write(r: &RunResults, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let files = [
        ("report.html", html::render(r).map_err(ReportError::Chart)?),
        ("summary.md", markdown::render(r)?),
        ("junit.xml", junit::render(r)),
    ];
    let write_error = |path: &Path, source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let mut written = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| write_error(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
