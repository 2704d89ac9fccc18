//! Changes made while the load runs (a targeting change, a new prompt), and how long each
//! took to reach every SDK client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::{Client, ContextBuilder, FlagDetailConfig};
use tokio_util::sync::CancellationToken;

use super::llm_action;
use super::mock_admin::MockAdmin;
use crate::ld_api::{ApiError, LdApi};
use crate::metrics::Latency;
use crate::results::ActionResults;
use crate::scenario::Action;

/// How long a change may take to reach an SDK before it counts as missed.
const PROPAGATION_WAIT: Duration = Duration::from_secs(30);

/// Applies each action at its time after `run_start`, until `cancel`; an `llm` action's
/// profile is put back after its `for`, or on `cancel`, before this returns.
pub async fn run_actions(
    api: Arc<LdApi>,
    environment: String,
    actions: Vec<Action>,
    clients: Vec<Arc<Client>>,
    admin: Option<MockAdmin>,
    run_start: Instant,
    cancel: CancellationToken,
) -> Vec<ActionResults> {
    let mut results = Vec::new();
    let mut restores = Vec::new();
    for action in actions {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until((run_start + action.at).into()) => {}
        }
        if let Some(change) = &action.llm {
            let (result, restore) =
                llm_action::apply(admin.as_ref(), &action, change, run_start, cancel.clone()).await;
            restores.extend(restore.map(|r| (results.len(), r)));
            results.push(result);
            continue;
        }
        results.push(apply(&api, &environment, &action, &clients, run_start).await);
    }
    llm_action::restored(&mut results, restores).await;
    results
}

async fn apply(
    api: &LdApi,
    environment: &str,
    action: &Action,
    clients: &[Arc<Client>],
    run_start: Instant,
) -> ActionResults {
    let before: Vec<Option<u64>> = clients
        .iter()
        .map(|c| flag_version(c, &action.config))
        .collect();
    let started = Instant::now();
    let outcome = apply_change(api, environment, action).await;
    let apply_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut propagation = Latency::default();
    let mut clients_missed = 0;
    if outcome.is_ok() {
        let waits = clients.iter().zip(before).map(|(client, before)| {
            let (client, key) = (client.clone(), action.config.clone());
            tokio::task::spawn_blocking(move || {
                wait_for_new_version(&client, &key, before, started)
            })
        });
        for wait in futures::future::join_all(waits).await {
            match wait.ok().flatten() {
                Some(elapsed) => propagation.record(elapsed),
                None => clients_missed += 1,
            }
        }
    }
    ActionResults {
        at_ms: started.saturating_duration_since(run_start).as_secs_f64() * 1e3,
        kind: "flag".into(),
        config: action.config.clone(),
        description: action
            .description
            .clone()
            .unwrap_or_else(|| describe(action)),
        apply_ms,
        propagation: propagation.summary(),
        clients_missed,
        restored_at_ms: None,
        error: outcome.err().map(|e| e.to_string()),
    }
}

async fn apply_change(api: &LdApi, environment: &str, action: &Action) -> Result<(), ApiError> {
    if !action.targeting.is_empty() {
        let instructions: Vec<toml::Table> = action
            .targeting
            .iter()
            .map(|i| i.get_ref().clone())
            .collect();
        api.patch_targeting(
            &action.config,
            environment,
            &instructions,
            &describe(action),
        )
        .await?;
    }
    if let Some(update) = &action.update_variation {
        api.update_variation(&action.config, update).await?;
    }
    Ok(())
}

fn describe(action: &Action) -> String {
    match (&action.update_variation, action.targeting.len()) {
        (Some(update), 0) => format!("new version of variation {}", update.key),
        (Some(update), n) => format!(
            "{n} targeting instructions and a new version of variation {}",
            update.key
        ),
        (None, n) => format!("{n} targeting instructions"),
    }
}

/// The flag version an SDK client holds; it changes exactly when a change has arrived.
fn flag_version(client: &Client, key: &str) -> Option<u64> {
    // Any context works: the version is the flag's, not the evaluation's.
    let context = ContextBuilder::new("aiconfig-harness-probe").build().ok()?;
    let detail =
        serde_json::to_value(client.all_flags_detail(&context, FlagDetailConfig::new())).ok()?;
    detail["$flagsState"][key]["version"].as_u64()
}

/// Polls on a blocking thread (tokio's timer has millisecond resolution, which would
/// dominate a sub-millisecond propagation) until the client's flag version changes.
fn wait_for_new_version(
    client: &Client,
    key: &str,
    before: Option<u64>,
    started: Instant,
) -> Option<Duration> {
    while started.elapsed() < PROPAGATION_WAIT {
        if flag_version(client, key) != before {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    None
}
