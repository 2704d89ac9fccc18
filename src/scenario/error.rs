//! What is wrong with a scenario, and where: below the parser and every check it runs.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario that cannot be used: the file, the 1-based line and column, the field and
/// what is wrong with it.
#[derive(Debug, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub position: Option<(usize, usize)>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    pub(crate) fn at(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        field: &str,
        message: String,
    ) -> Self {
        ScenarioError {
            file: file.to_owned(),
            position: span.map(|s| line_column(text, s.start)),
            field: field.to_owned(),
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
