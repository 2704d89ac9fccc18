//! `[[actions]]` with `llm = { model, latency_factor, for }`: slows (or speeds) one model of
//! mock-ld's simulated provider for a while, as an incident at the provider would.
//!
//! Through `/admin/llm`: the model's profile is read (the `default` profile when it has none
//! of its own), put back with its `timeScale` multiplied by the factor, and put back as it
//! was after `for`, or as soon as the load ends. A request draws its latency when it
//! arrives, so requests that arrive during the change are slow, whenever they end. Two
//! overlapping changes of one model compound, and each puts back what it found.

use std::time::Instant;

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::mock_admin::MockAdmin;
use crate::metrics::LatencySummary;
use crate::results::ActionResults;
use crate::scenario::{Action, LlmChange};

/// Putting the profile back: when it was done (ms into the run), or why it failed.
pub type Restore = JoinHandle<Result<f64, String>>;

/// Applies the change now; the task puts the profile back after `for`, or on `cancel`.
pub async fn apply(
    admin: Option<&MockAdmin>,
    action: &Action,
    change: &LlmChange,
    run_start: Instant,
    cancel: CancellationToken,
) -> (ActionResults, Option<Restore>) {
    let started = Instant::now();
    let outcome = slow_down(admin, change).await;
    let mut result = ActionResults {
        at_ms: started.saturating_duration_since(run_start).as_secs_f64() * 1e3,
        kind: "llm".into(),
        config: String::new(),
        description: action.description.clone().unwrap_or_else(|| {
            format!(
                "model {} latency × {} for {:?}",
                change.model, change.latency_factor, change.duration
            )
        }),
        apply_ms: started.elapsed().as_secs_f64() * 1e3,
        propagation: LatencySummary::default(),
        clients_missed: 0,
        restored_at_ms: None,
        error: None,
    };
    let (admin, original) = match outcome {
        Ok(found) => found,
        Err(e) => {
            result.error = Some(e);
            return (result, None);
        }
    };
    let until = started + change.duration;
    let model = change.model.clone();
    let restore = tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep_until(until.into()) => {}
        }
        admin
            .put_profile(&model, &original)
            .await
            .map_err(|e| format!("putting the profile back: {e}"))?;
        Ok(run_start.elapsed().as_secs_f64() * 1e3)
    });
    (result, Some(restore))
}

/// Multiplies the model's time scale; returns the control API and the profile as it was.
async fn slow_down(
    admin: Option<&MockAdmin>,
    change: &LlmChange,
) -> Result<(MockAdmin, Value), String> {
    let admin = admin
        .cloned()
        .ok_or("the target has no mock-ld /admin API, so the simulated LLM cannot be changed")?;
    let profiles = admin.profiles().await?;
    let original = profiles
        .get(&change.model)
        .or_else(|| profiles.get(mock_ld::llm::DEFAULT_MODEL))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut slowed = original.clone();
    let scale = original["timeScale"].as_f64().unwrap_or(1.0);
    slowed["timeScale"] = json!(scale * change.latency_factor);
    admin.put_profile(&change.model, &slowed).await?;
    Ok((admin, original))
}

/// Waits for the profiles to be put back and notes it in the actions' results.
pub async fn restored(results: &mut [ActionResults], restores: Vec<(usize, Restore)>) {
    for (i, restore) in restores {
        match restore.await {
            Ok(Ok(at_ms)) => results[i].restored_at_ms = Some(at_ms),
            Ok(Err(e)) => results[i].error = Some(e),
            Err(e) => results[i].error = Some(format!("putting the profile back: {e}")),
        }
    }
}
