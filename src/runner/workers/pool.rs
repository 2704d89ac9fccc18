//! The worker processes of one run: started and greeted, then each driven through the load
//! by a task of its own (pulls answered from the [`Feeder`], progress added to the live
//! timeline, the progress display and the served log), their results merged, their events
//! flushed, and closed. A worker that fails makes the whole pool fail, with its stderr.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::feed::Feeder;
use super::merge::{self, MergeError};
use super::process::{Launch, WorkerError, WorkerProcess, SILENCE};
use super::protocol::{FromWorker, Hello, ProgressMessage, Ready, ToWorker, WorkerResult};
use crate::metrics::Metrics;
use crate::results::sdk_start::{ClientStart, SdkStart};
use crate::runner::live::{Live, Publisher};
use crate::runner::progress::Progress;
use crate::served::ServedLog;

/// After `init_timeout`: how long a worker may take to start its interpreter and import the
/// SDKs before its SDK client starts initializing.
const STARTUP: Duration = Duration::from_secs(30);
/// How long a flush or a close may take.
const CLOSING: Duration = Duration::from_secs(20);

pub struct Pool {
    workers: Vec<WorkerProcess>,
    /// What the first worker said it runs (every worker runs the same installation).
    pub ready: Ready,
    /// Each worker's SDK client start: (wait in ms, timed out), from its `ready`.
    starts: Vec<(f64, bool)>,
    /// Workers whose client timed out at start-up: when it initialized, ms after `go`.
    initialized_later: Vec<f64>,
}

/// What the workers' progress goes into while the load runs.
#[derive(Clone)]
pub struct Sinks {
    pub live: Arc<Live>,
    pub progress: Arc<Progress>,
    pub served: Arc<ServedLog>,
    /// The served log's slot of each step's AI Config.
    pub served_slots: Arc<[Option<usize>]>,
    /// The population's size: a request's context is its index modulo this.
    pub population: u64,
}

impl Pool {
    /// Starts one worker per `hello` and waits until every one is ready.
    pub async fn start(
        launch: &Launch,
        hellos: Vec<Hello>,
        init: Duration,
    ) -> Result<Pool, PoolError> {
        let mut workers = Vec::with_capacity(hellos.len());
        for (index, hello) in hellos.into_iter().enumerate() {
            let mut worker = WorkerProcess::spawn(index, launch)?;
            worker.send(&ToWorker::Hello(Box::new(hello))).await?;
            workers.push(worker);
        }
        let mut ready = None;
        let mut starts = Vec::with_capacity(workers.len());
        for worker in &mut workers {
            match worker.receive(STARTUP + init).await? {
                FromWorker::Ready(r) => {
                    tracing::info!(worker = worker.index, sdk = %r.sdk, version = %r.sdk_version, pid = r.pid, "worker ready");
                    let waited = r.init_ms.unwrap_or(init.as_secs_f64() * 1e3);
                    starts.push((waited, r.init_timed_out));
                    ready.get_or_insert(r);
                }
                other => return Err(unexpected(worker, "ready", &other)),
            }
        }
        let ready = ready.ok_or(PoolError::NoWorkers)?;
        Ok(Pool {
            workers,
            ready,
            starts,
            initialized_later: Vec::new(),
        })
    }

    /// The workers' SDK clients at start-up, one per worker, as they reported them.
    pub fn sdk_start(&self, scenario: &crate::scenario::Scenario) -> SdkStart {
        let mut later = self.initialized_later.iter();
        let clients: Vec<ClientStart> = self
            .starts
            .iter()
            .map(|&(waited_ms, timed_out)| ClientStart {
                waited_ms,
                initialized: !timed_out,
                // Which worker's later time is whose does not matter to the summary.
                later_ms: if timed_out {
                    later.next().copied()
                } else {
                    None
                },
            })
            .collect();
        SdkStart::of(
            scenario.load.init_timeout.as_secs_f64() * 1e3,
            scenario.startup_fault_planned(),
            &clients,
        )
    }

    /// Workers in the pool (one that failed has left it).
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs the load: every request the feeder has, over all workers. Returns the merged
    /// metrics (the timeline went to `sinks.live`) and, when a worker failed, the first
    /// failure: the others were stopped, and their metrics are partial. A failed worker
    /// leaves the pool.
    pub async fn run(
        &mut self,
        feeder: Arc<Feeder>,
        sinks: Sinks,
        cancel: CancellationToken,
    ) -> (Metrics, Option<PoolError>) {
        for worker in &mut self.workers {
            if let Err(e) = worker.send(&ToWorker::Go).await {
                return (Metrics::default(), Some(e.into()));
            }
        }
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in std::mem::take(&mut self.workers) {
            let (feeder, sinks, cancel) = (feeder.clone(), sinks.clone(), cancel.clone());
            tasks.spawn(drive(worker, feeder, sinks, cancel, started));
        }
        let mut metrics = Metrics::default();
        let mut first_error = None;
        // In the order they finish, so that the first failure stops the others at once.
        while let Some(task) = tasks.join_next().await {
            let failure = match task {
                Ok(Ok((worker, result))) => {
                    self.workers.push(worker);
                    self.initialized_later.extend(result.initialized_later_ms);
                    match merge::merge_result(&mut metrics, &result) {
                        Ok(()) => continue,
                        Err(e) => e.into(),
                    }
                }
                Ok(Err(e)) => e,
                Err(join) => PoolError::Panicked(join.to_string()),
            };
            // The run is aborted either way: the others stop and report what they did.
            feeder.close();
            cancel.cancel();
            first_error.get_or_insert(failure);
        }
        self.workers.sort_by_key(|w| w.index);
        let unbuildable = feeder.unbuildable().len() as u64;
        metrics.requests += unbuildable;
        metrics.failed_requests += unbuildable;
        (metrics, first_error)
    }

    /// Another phase (protocol 2) on worker `index` alone, after the load: every request
    /// `feeder` has. Returns that phase's result; a failure leaves the worker out of the pool.
    pub async fn phase(
        &mut self,
        index: usize,
        feeder: Arc<Feeder>,
        sinks: Sinks,
        cancel: CancellationToken,
    ) -> Result<WorkerResult, PoolError> {
        if index >= self.workers.len() {
            return Err(PoolError::NoWorkers);
        }
        let mut worker = self.workers.remove(index);
        worker.send(&ToWorker::Go).await?;
        let (worker, result) = drive(worker, feeder, sinks, cancel, Instant::now()).await?;
        self.workers.insert(index, worker);
        Ok(result)
    }

    /// Asks worker `index`'s SDK to flush its events; returns the custom events it had
    /// handed to its SDK since it started.
    pub async fn flush_one(&mut self, index: usize) -> Result<u64, PoolError> {
        let worker = self.workers.get_mut(index).ok_or(PoolError::NoWorkers)?;
        worker.send(&ToWorker::Flush).await?;
        match worker.receive(CLOSING).await? {
            FromWorker::Flushed { handed_events } => Ok(handed_events),
            other => Err(unexpected(worker, "flushed", &other)),
        }
    }

    /// Asks every worker's SDK to flush its events; returns the custom events they had
    /// handed to their SDKs before it.
    pub async fn flush(&mut self) -> Result<u64, PoolError> {
        for worker in &mut self.workers {
            worker.send(&ToWorker::Flush).await?;
        }
        let mut handed = 0;
        for worker in &mut self.workers {
            match worker.receive(CLOSING).await? {
                FromWorker::Flushed { handed_events } => handed += handed_events,
                other => return Err(unexpected(worker, "flushed", &other)),
            }
        }
        Ok(handed)
    }

    /// Closes every worker's SDK client and waits for the processes to exit.
    pub async fn close(mut self) -> Result<(), PoolError> {
        for worker in &mut self.workers {
            worker.send(&ToWorker::Close).await?;
        }
        for worker in self.workers {
            worker.wait(CLOSING).await?;
        }
        Ok(())
    }
}

/// One worker through the load: pulls answered, progress added, until its result.
async fn drive(
    mut worker: WorkerProcess,
    feeder: Arc<Feeder>,
    sinks: Sinks,
    cancel: CancellationToken,
    started: Instant,
) -> Result<(WorkerProcess, WorkerResult), PoolError> {
    let mut publisher = Publisher::new(sinks.live.clone());
    let mut counted = Counted::default();
    let mut stopped = false;
    loop {
        let message = worker.receive(SILENCE).await?;
        // Checked at every message, and progress comes every 250 ms.
        if cancel.is_cancelled() && !stopped {
            stopped = true;
            worker.send(&ToWorker::Stop).await?;
        }
        match message {
            FromWorker::Pull { max } => {
                let items = if stopped {
                    Vec::new()
                } else {
                    feeder.take(max)
                };
                let reply = match items.is_empty() {
                    true => ToWorker::End,
                    false => ToWorker::Batch { requests: &items },
                };
                worker.send(&reply).await?;
            }
            FromWorker::Progress(p) => {
                apply_progress(&p, &sinks, &mut publisher, &mut counted, started)?;
            }
            FromWorker::Result(result) => {
                publisher.flush();
                return Ok((worker, *result));
            }
            other => return Err(unexpected(&worker, "pull, progress or result", &other)),
        }
    }
}

/// The running totals a worker last reported, so that each progress adds its difference.
#[derive(Default)]
struct Counted {
    completed: u64,
    failed: u64,
}

fn apply_progress(
    p: &ProgressMessage,
    sinks: &Sinks,
    publisher: &mut Publisher,
    counted: &mut Counted,
    started: Instant,
) -> Result<(), MergeError> {
    let finished = p.completed.saturating_sub(counted.completed);
    let failed = p.failed.saturating_sub(counted.failed);
    (counted.completed, counted.failed) = (
        p.completed.max(counted.completed),
        p.failed.max(counted.failed),
    );
    for delta in &p.seconds {
        let second = merge::second(delta)?;
        sinks
            .progress
            .latency
            .add_histogram(second.latency.histogram());
        publisher.second(delta.second).add(&second);
    }
    publisher.flush();
    sinks.progress.add(finished, failed);
    for (index, step, variation, micros) in &p.served {
        if let Some(Some(slot)) = sinks.served_slots.get(*step) {
            let at = started + Duration::from_micros(*micros);
            let context = index % sinks.population.max(1);
            sinks.served.record_at(*slot, context, variation, at);
        }
    }
    Ok(())
}

fn unexpected(worker: &WorkerProcess, wanted: &str, got: &FromWorker) -> PoolError {
    let got = match got {
        FromWorker::Ready(_) => "ready",
        FromWorker::Error { .. } => "error",
        FromWorker::Pull { .. } => "pull",
        FromWorker::Progress(_) => "progress",
        FromWorker::Result(_) => "result",
        FromWorker::Flushed { .. } => "flushed",
    };
    PoolError::Protocol {
        index: worker.index,
        message: format!("sent {got} where {wanted} was due"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("a worker's results: {0}")]
    Merge(#[from] MergeError),
    #[error("worker {index} broke the protocol: it {message}")]
    Protocol { index: usize, message: String },
    #[error("a worker's driver panicked: {0}")]
    Panicked(String),
    #[error("no worker was started")]
    NoWorkers,
}
