//! Driving requests: the closed model (a fixed set of virtual users) and the open model
//! (arrivals on a precomputed schedule, latency measured from each scheduled start).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::call::{RequestRecord, Workload};
use super::live::{Live, Publisher};
use super::progress::{LocalLatency, Progress};
use super::schedule::Schedule;
use crate::metrics::{Metrics, Second};

/// Recorders per runtime worker thread. Recording is a few histogram increments under an
/// uncontended lock; four shards a thread keep two threads from often wanting the same one.
/// A recorder per virtual user instead cost 3–4 MB each (its histograms), 240 MB of the
/// quickstart's 500 MB at 64 users.
const SHARDS_PER_THREAD: usize = 4;

/// Recorders that requests share, chosen by an index (virtual user, request), so memory
/// grows with the machine's threads, not with concurrency.
struct Shards(Vec<Mutex<Recorder>>);

impl Shards {
    /// At most `most` shards (no more than there are recorders to share them).
    fn new(most: usize, live: &Arc<Live>) -> Self {
        let threads = tokio::runtime::Handle::current().metrics().num_workers();
        let n = (threads.max(1) * SHARDS_PER_THREAD).min(most.max(1));
        Shards(
            (0..n)
                .map(|_| Mutex::new(Recorder::new(live.clone())))
                .collect(),
        )
    }

    fn get(&self, index: u64) -> std::sync::MutexGuard<'_, Recorder> {
        let shard = &self.0[(index % self.0.len() as u64) as usize];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds everything recorded to `total`, and hands the seconds over to the timeline.
    fn merge_into(&self, total: &mut Metrics) {
        for shard in &self.0 {
            let mut recorder = shard.lock().unwrap_or_else(|p| p.into_inner());
            recorder.live.flush();
            total.merge(&recorder.metrics);
        }
    }
}

/// Requests a worker has finished but not yet added to [`Progress`]. At a hundred thousand
/// requests a second, two workers adding each one to the same counters spend more time
/// passing the cache line between them than the display needs: it redraws ten times a
/// second.
struct Tally<'a> {
    progress: &'a Progress,
    finished: u64,
    failed: u64,
    latency: LocalLatency,
    since: Instant,
}

impl<'a> Tally<'a> {
    const MOST: u64 = 256;
    const LONGEST: Duration = Duration::from_millis(20);

    fn new(progress: &'a Progress) -> Self {
        Tally {
            progress,
            finished: 0,
            failed: 0,
            latency: LocalLatency::default(),
            since: Instant::now(),
        }
    }

    /// Counts a request that ended at `ended` after `latency` (corrected).
    fn add(&mut self, failed: bool, ended: Instant, latency: Duration) {
        self.finished += 1;
        self.latency.record(latency);
        self.failed += u64::from(failed);
        if self.finished >= Self::MOST
            || ended.saturating_duration_since(self.since) >= Self::LONGEST
        {
            self.publish();
            self.since = ended;
        }
    }

    fn publish(&mut self) {
        self.progress.latency.add(&mut self.latency);
        self.progress.add(
            std::mem::take(&mut self.finished),
            std::mem::take(&mut self.failed),
        );
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

/// Runs `iterations` requests over `concurrency` virtual users.
pub async fn closed(
    workload: Arc<Workload>,
    iterations: u64,
    concurrency: usize,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    run_start: Instant,
    live: Arc<Live>,
) -> Metrics {
    let shards = Arc::new(Shards::new(concurrency, &live));
    let workers: Vec<_> = (0..concurrency)
        .map(|user| {
            let (workload, progress, cancel) = (workload.clone(), progress.clone(), cancel.clone());
            let shards = shards.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new(&progress);
                while !cancel.is_cancelled() {
                    let index = progress.started.fetch_add(1, Ordering::Relaxed);
                    if index >= iterations {
                        break;
                    }
                    let started = Instant::now();
                    let record = workload.request(index).await;
                    let failed = finish(
                        &mut shards.get(user as u64),
                        &workload,
                        &record,
                        started,
                        started,
                        run_start,
                    );
                    tally.add(failed, record.ended, record.ended - started);
                    // A request with no awaits inside (no LLM call) would never give the
                    // worker back; this yields once the task's budget is spent.
                    tokio::task::coop::consume_budget().await;
                }
            })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "a load worker failed");
        }
    }
    let mut total = Metrics::default();
    shards.merge_into(&mut total);
    total
}

/// Starts request `n` at `schedule.due(n)` whatever happened before, with at most
/// `max_in_flight` running. A request that waits for a slot is late, and its latency is
/// counted from when it was due.
///
/// One dispatcher per runtime worker takes the next due request and runs it in place until
/// it first waits; only then does it become a task of its own. Requests that never wait
/// (evaluation without an LLM call) thus cost what they cost in the closed model, with no
/// task, lock or cross-thread wake each; a task per request held the open model to about
/// two thirds of the closed model's rate.
pub async fn open(
    workload: Arc<Workload>,
    schedule: Schedule,
    max_in_flight: usize,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    run_start: Instant,
    live: Arc<Live>,
) -> Metrics {
    // `acquire_many` below counts in u32.
    let permits = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
    let shared = Arc::new(Arrivals {
        workload,
        total: schedule.total(),
        schedule,
        next: AtomicU64::new(0),
        slots: Arc::new(Semaphore::new(permits as usize)),
        waited: Shards::new(usize::MAX, &live),
        progress,
        cancel,
        run_start,
        live,
    });
    let dispatchers = tokio::runtime::Handle::current().metrics().num_workers();
    let handles = (0..dispatchers.max(1))
        .map(|_| tokio::spawn(dispatch(shared.clone())))
        .collect();
    let mut total = merge_all(handles).await;
    // A request that became a task holds its slot until it has recorded, so holding every
    // slot means every request has finished.
    let _every_request_finished = shared.slots.acquire_many(permits).await;
    shared.waited.merge_into(&mut total);
    total
}

/// What the open model's dispatchers share.
struct Arrivals {
    workload: Arc<Workload>,
    schedule: Schedule,
    /// Requests in the schedule.
    total: u64,
    /// The next request to start.
    next: AtomicU64,
    slots: Arc<Semaphore>,
    /// Metrics of the requests that became tasks, in shards so they seldom contend.
    waited: Shards,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    run_start: Instant,
    live: Arc<Live>,
}

/// Starts due requests until the schedule ends or the run is cancelled; returns the metrics
/// of the requests it finished in place.
async fn dispatch(arrivals: Arc<Arrivals>) -> Metrics {
    let a = &*arrivals;
    let mut metrics = Recorder::new(a.live.clone());
    let mut tally = Tally::new(&a.progress);
    // When this dispatcher was last free to start a request: a request due before then
    // waited for the one before it (the system), not for the harness.
    let mut free_at = Instant::now();
    while !a.cancel.is_cancelled() {
        let n = a.next.fetch_add(1, Ordering::Relaxed);
        // `total` bounds it exactly (the progress bar counts to it); `due` is floating point.
        let Some(due) = (n < a.total).then(|| a.schedule.due(n)).flatten() else {
            break;
        };
        let scheduled = a.run_start + due;
        // tokio's timer has millisecond resolution: a request due now is started at once,
        // and one due later waits for the timer, with the others due by then behind it.
        if Instant::now() < scheduled {
            tokio::select! {
                () = a.cancel.cancelled() => break,
                () = tokio::time::sleep_until(scheduled.into()) => {}
            }
        }
        let (slot, slot_wait) = match a.slots.clone().try_acquire_owned() {
            Ok(slot) => (slot, Duration::ZERO),
            Err(_) => {
                let waiting = Instant::now();
                tokio::select! {
                    () = a.cancel.cancelled() => break,
                    slot = a.slots.clone().acquire_owned() => match slot {
                        Ok(slot) => (slot, waiting.elapsed()),
                        Err(_) => break,
                    },
                }
            }
        };
        let started = Instant::now();
        // The harness's own delay: its timer and runtime, not the slot's wait.
        let lag = started.saturating_duration_since(scheduled.max(free_at));
        metrics
            .metrics
            .schedule_lag
            .record(lag.saturating_sub(slot_wait));
        let workload = a.workload.clone();
        let mut request = Box::pin(async move { workload.request(n).await });
        match std::future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await {
            Poll::Ready(record) => {
                let failed = finish(
                    &mut metrics,
                    &a.workload,
                    &record,
                    scheduled,
                    started,
                    a.run_start,
                );
                tally.add(failed, record.ended, record.ended - scheduled);
                drop(slot);
                free_at = record.ended;
            }
            Poll::Pending => {
                free_at = started;
                let arrivals = arrivals.clone();
                // The task's first poll registers its own waker in place of ours.
                tokio::spawn(async move {
                    let record = request.await;
                    let a = &*arrivals;
                    let failed = finish(
                        &mut a.waited.get(n),
                        &a.workload,
                        &record,
                        scheduled,
                        started,
                        a.run_start,
                    );
                    // A request that waited is slow enough to count at once.
                    a.progress.add_one(failed, record.ended - scheduled);
                    drop(slot);
                });
            }
        }
        // A dispatcher behind schedule reaches no other await: without this it would keep
        // the worker from the tasks it spawned, and from the I/O and timer drivers.
        tokio::task::coop::consume_budget().await;
    }
    drop(tally);
    metrics.metrics
}

/// One recorder's metrics, and the seconds it has not yet handed to the timeline.
struct Recorder {
    metrics: Metrics,
    live: Publisher,
}

impl Recorder {
    fn new(live: Arc<Live>) -> Self {
        Recorder {
            metrics: Metrics::default(),
            live: Publisher::new(live),
        }
    }
}

/// Records a finished request; returns whether it failed.
fn finish(
    recorder: &mut Recorder,
    workload: &Workload,
    record: &RequestRecord,
    scheduled: Instant,
    started: Instant,
    run_start: Instant,
) -> bool {
    let metrics = &mut recorder.metrics;
    let ended = record.ended;
    workload.record(record, metrics);
    metrics.requests += 1;
    metrics.requests_corrected.record(ended - scheduled);
    metrics.requests_raw.record(ended - started);
    let failed = record.failed();
    metrics.failed_requests += u64::from(failed);
    let index = scheduled.saturating_duration_since(run_start).as_secs() as usize;
    let ended_index = ended.saturating_duration_since(run_start).as_secs() as usize;
    let live = &mut recorder.live;
    record_second(live.second(index), record, ended - scheduled, failed);
    live.second(ended_index).completed += 1;
    live.completed_in(ended_index);
    failed
}

/// A request in the second it was scheduled in.
fn record_second(second: &mut Second, record: &RequestRecord, latency: Duration, failed: bool) {
    second.requests += 1;
    second.errors += u64::from(failed);
    second.latency.record(latency);
    let (evaluations, fallback) = record.served();
    second.evaluations += evaluations;
    second.fallback_served += fallback;
    for (duration, failed) in record.llm_calls() {
        second.llm.record(duration);
        second.llm_errors += u64::from(failed);
    }
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
