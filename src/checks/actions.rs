//! Timed changes: every scenario action was applied through the REST API and reached every
//! SDK client. Not written in `[[checks]]`: a run whose changes did not land measured
//! something else than the scenario describes, so it always counts.

use crate::results::checks::{ActionDetails, CheckOutcome, Details, Status};
use crate::results::ActionResults;

/// `None` when the scenario has no actions.
pub fn outcome(actions: &[ActionResults]) -> Option<CheckOutcome> {
    if actions.is_empty() {
        return None;
    }
    let failed = actions.iter().filter(|a| a.error.is_some()).count();
    let clients_missed = actions.iter().map(|a| a.clients_missed).sum();
    let max_propagation_ms = actions
        .iter()
        .map(|a| a.propagation.max_ms)
        .fold(0.0, f64::max);
    let status = if actions.iter().all(ActionResults::landed) {
        Status::Pass
    } else {
        Status::Fail
    };
    let applied = actions.len() - failed;
    // Propagation is timed on the Rust SDK's clients in this process; a run through worker
    // processes (Python, Node) has none, and an LLM change has nothing to propagate.
    let timed = actions
        .iter()
        .any(|a| a.propagation.count > 0 || a.clients_missed > 0);
    let mut summary = if timed {
        format!("{applied} of {} changes applied, {clients_missed} SDK clients missed one, slowest propagation {max_propagation_ms:.2} ms", actions.len())
    } else {
        format!("{applied} of {} changes applied; propagation not timed (no SDK client in this process watched for it)", actions.len())
    };
    if let Some(error) = actions.iter().find_map(|a| a.error.as_deref()) {
        summary += &format!("; first error: {error}");
    }
    let details = ActionDetails {
        actions: actions.len(),
        failed,
        clients_missed,
        max_propagation_ms,
    };
    Some(CheckOutcome {
        name: "timed changes applied and propagated".into(),
        status,
        summary,
        details: Details::ActionsApplied(details),
    })
}
