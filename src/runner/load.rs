//! Driving requests: the closed model (a fixed set of virtual users) and the open model
//! (arrivals on a precomputed schedule, latency measured from each scheduled start).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::call::{RequestRecord, Workload};
use super::schedule::Schedule;
use crate::metrics::Metrics;

/// Locks the open model's spawned requests share when recording; more shards than cores
/// keeps them from contending.
const SHARDS: usize = 32;

/// Live counters the progress display reads.
#[derive(Default)]
pub struct Progress {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub failed: AtomicU64,
}

/// Runs `iterations` requests over `concurrency` virtual users.
pub async fn closed(
    workload: Arc<Workload>,
    iterations: u64,
    concurrency: usize,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    run_start: Instant,
) -> Metrics {
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (workload, progress, cancel) = (workload.clone(), progress.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut metrics = Metrics::default();
                while !cancel.is_cancelled() {
                    let index = progress.started.fetch_add(1, Ordering::Relaxed);
                    if index >= iterations {
                        break;
                    }
                    let started = Instant::now();
                    let record = workload.request(index).await;
                    finish(
                        &mut metrics,
                        &progress,
                        &record,
                        started,
                        started,
                        run_start,
                    );
                    // A request with no awaits inside (no LLM call) would never give the
                    // worker back; this yields once the task's budget is spent.
                    tokio::task::coop::consume_budget().await;
                }
                metrics
            })
        })
        .collect();
    merge_all(workers).await
}

/// Starts request `n` at `schedule.due(n)` whatever happened before, with at most
/// `max_in_flight` running. A request that waits for a slot is late, and its latency is
/// counted from when it was due.
pub async fn open(
    workload: Arc<Workload>,
    schedule: Schedule,
    max_in_flight: usize,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    run_start: Instant,
) -> Metrics {
    let shards: Arc<Vec<Mutex<Metrics>>> = Arc::new(
        (0..SHARDS)
            .map(|_| Mutex::new(Metrics::default()))
            .collect(),
    );
    // `acquire_many` below counts in u32.
    let permits = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(permits as usize));
    for n in 0..schedule.total() {
        let Some(due) = schedule.due(n) else { break };
        let scheduled = run_start + due;
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(scheduled.into()) => {}
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        progress.started.fetch_add(1, Ordering::Relaxed);
        let (workload, shards, progress) = (workload.clone(), shards.clone(), progress.clone());
        // Plain tasks, not a JoinSet: at 100,000 starts a second its bookkeeping showed.
        // Each holds its slot until it has recorded, so holding every slot below means
        // every request has finished.
        tokio::spawn(async move {
            let started = Instant::now();
            let record = workload.request(n).await;
            finish(
                &mut shards[n as usize % SHARDS]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
                &progress,
                &record,
                scheduled,
                started,
                run_start,
            );
            drop(slot);
        });
    }
    let _every_request_finished = slots.acquire_many(permits).await;
    let mut total = Metrics::default();
    for shard in shards.iter() {
        total.merge(&shard.lock().unwrap_or_else(|p| p.into_inner()));
    }
    total
}

fn finish(
    metrics: &mut Metrics,
    progress: &Progress,
    record: &RequestRecord,
    scheduled: Instant,
    started: Instant,
    run_start: Instant,
) {
    let ended = record.ended;
    record.record(metrics);
    metrics.requests += 1;
    metrics.requests_corrected.record(ended - scheduled);
    metrics.requests_raw.record(ended - started);
    let failed = record.failed();
    if failed {
        metrics.failed_requests += 1;
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    let second = metrics.second(scheduled.saturating_duration_since(run_start).as_secs() as usize);
    second.requests += 1;
    second.errors += u64::from(failed);
    second.latency.record(ended - scheduled);
    progress.finished.fetch_add(1, Ordering::Relaxed);
}

async fn merge_all(workers: Vec<tokio::task::JoinHandle<Metrics>>) -> Metrics {
    let mut total = Metrics::default();
    for worker in workers {
        match worker.await {
            Ok(metrics) => total.merge(&metrics),
            Err(e) => tracing::error!(error = %e, "a load worker failed"),
        }
    }
    total
}
