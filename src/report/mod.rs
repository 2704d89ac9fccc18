//! Reports of a run, written by `aiconfig-harness report RESULTS` and at the end of `run`.
//!
//! Modules: [`input`] (results.json read back), [`html`] with [`sections`],
//! [`cost_section`] and [`rollout_section`] (`report.html`), [`charts`] (inline SVG),
//! [`markdown`] (`summary.md`), [`junit`] (`junit.xml`), [`table`] and [`format`] (shared
//! rendering).
//! The JSON itself is `results.json`, documented by `docs/results.schema.json`.

pub mod charts;
pub mod cost_section;
pub mod format;
pub mod html;
pub mod input;
pub mod junit;
pub mod markdown;
pub mod rollout_section;
pub mod sections;
pub mod table;

use std::path::{Path, PathBuf};

use crate::compare::Comparison;
use input::{InputError, Results};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Chart(String),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Writes `report.html`, `summary.md` and `junit.xml` into `dir`; returns their paths.
pub fn write(
    r: &Results,
    comparison: Option<&Comparison>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let files = [
        (
            "report.html",
            html::render(r, comparison).map_err(ReportError::Chart)?,
        ),
        ("summary.md", markdown::render(r, comparison)?),
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
