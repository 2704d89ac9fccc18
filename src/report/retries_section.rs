//! What the built-in application did about provider errors (a step's `on_error`), per
//! variation: the provider's error rate per LLM call beside the steps users saw fail. The
//! same table in the terminal, `summary.md` and `report.html`; absent when no call was
//! retried or replaced, so runs without `on_error` render as before.

use super::format;
use super::table::Table;
use crate::results::RunResults;

pub const TITLE: &str = "Retries and fallbacks";

/// One row per variation that retried or fell back; `None` when none did.
pub fn table(r: &RunResults) -> Option<Table> {
    let mut rows = r
        .variations()
        .filter(|(_, _, v)| v.retries > 0 || v.fallbacks > 0)
        .peekable();
    rows.peek()?;
    let mut t = Table::new([
        "config / variation",
        "LLM calls",
        "errors",
        "error rate (per call)",
        "retries",
        "fallbacks",
        "fallbacks answered",
        "steps",
        "steps failed",
        "failed (per step)",
    ]);
    for (config, key, v) in rows {
        let steps = v.llm_steps();
        t.push([
            format!("{config} / {key}"),
            v.ai_calls.to_string(),
            v.errors.to_string(),
            format::percent(v.errors as f64 / v.ai_calls.max(1) as f64),
            v.retries.to_string(),
            v.fallbacks.to_string(),
            v.fallback_successes.to_string(),
            steps.to_string(),
            v.failed_steps.to_string(),
            format::percent(v.failed_steps as f64 / steps.max(1) as f64),
        ]);
    }
    Some(t)
}

/// What the table's two rates are, said once.
pub const NOTE: &str = "Error rate per call is the provider's side (every call, retries and \
fallbacks included; the error_rate threshold's figure); failed per step is what users got, \
after the step's retries and fallback.";
