//! The run's per-second timeline, built while the load runs: the one the results carry, and
//! the one thresholds with `abort_on_fail` are judged on.
//!
//! Recording stays per recorder (an open-model dispatcher, or a shard of recorders): each
//! records into a small [`Publisher`] of the seconds it touched, and hands them to the
//! shared [`Live`] timeline (one lock) when a request of theirs completes in a later second
//! than the last it handed over. So the live timeline lags each recorder by at most its last
//! second, costs one lock per recorder per second, and is held once however many recorders
//! there are (a timeline per recorder cost 26 KB per recorder-second).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::checks::window;
use crate::metrics::Second;
use crate::scenario::checks::{Threshold, DEFAULT_MIN_SAMPLES};

/// The merged seconds so far.
pub struct Live {
    run_start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seconds: Vec<Second>,
    /// Every second added up: the whole run so far.
    total: Second,
}

impl Live {
    pub fn new(run_start: Instant) -> Arc<Self> {
        Arc::new(Live {
            run_start,
            state: Mutex::default(),
        })
    }

    /// The timeline, once every [`Publisher`] has handed over (been dropped or flushed).
    pub fn seconds(&self) -> Vec<Second> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.seconds.clone()
    }

    fn publish(&self, pending: &mut Vec<(usize, Second)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        for (index, second) in pending.drain(..) {
            if state.seconds.len() <= index {
                state.seconds.resize_with(index + 1, Second::default);
            }
            state.seconds[index].add(&second);
            state.total.add(&second);
        }
    }
}

/// One recorder's seconds not yet in [`Live`].
pub struct Publisher {
    live: Arc<Live>,
    pending: Vec<(usize, Second)>,
    /// The completion second of the last request handed over.
    handed: usize,
}

impl Publisher {
    pub fn new(live: Arc<Live>) -> Self {
        Publisher {
            live,
            pending: Vec::new(),
            handed: 0,
        }
    }

    /// The pending record of second `index`: a linear search, since a recorder has one or
    /// two seconds pending.
    pub fn second(&mut self, index: usize) -> &mut Second {
        let at = match self.pending.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None => {
                self.pending.push((index, Second::default()));
                self.pending.len() - 1
            }
        };
        &mut self.pending[at].1
    }

    /// Hands everything over once a request completes in a later second.
    pub fn completed_in(&mut self, index: usize) {
        if index > self.handed {
            self.handed = index;
            self.flush();
        }
    }

    /// Hands everything over now.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.live.publish(&mut self.pending);
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Which threshold stopped the load, once one has.
#[derive(Default)]
pub struct Aborted(OnceLock<String>);

impl Aborted {
    pub fn by(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// Every second, judges `thresholds` (name and threshold, each with `abort`) on the live
/// timeline; the first that fails once its delay has passed is recorded in `aborted` and
/// cancels the load. Ends when `cancel` is cancelled.
pub async fn watch(
    live: Arc<Live>,
    thresholds: Vec<(String, Threshold)>,
    cancel: CancellationToken,
    aborted: Arc<Aborted>,
) {
    let mut tick = tokio::time::interval_at(
        (live.run_start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let elapsed = live.run_start.elapsed();
        let failed = {
            let state = live.state.lock().unwrap_or_else(|p| p.into_inner());
            thresholds
                .iter()
                .filter(|(_, t)| t.abort.is_some_and(|a| elapsed >= a.delay))
                .find(|(_, t)| fails(t, &state, elapsed))
                .map(|(name, _)| name.clone())
        };
        if let Some(name) = failed {
            tracing::warn!(threshold = %name, "threshold failed: aborting the load");
            let _ = aborted.0.set(name);
            cancel.cancel();
            return;
        }
    }
}

/// Whether `t` fails on the seconds so far: in its worst window with enough samples, or
/// over the run so far once that has [`DEFAULT_MIN_SAMPLES`].
fn fails(t: &Threshold, state: &State, elapsed: Duration) -> bool {
    // Throughput counts whole seconds only: the current one is still running.
    let complete = elapsed.as_secs() as usize;
    match t.window {
        Some(w) => window::worst(&state.seconds, complete, t.metric, w, t.limit)
            .worst
            .is_some_and(|worst| t.limit.broken_by(worst.value)),
        None => {
            let (value, samples) = window::value(t.metric, &state.total, elapsed.as_secs_f64());
            samples >= DEFAULT_MIN_SAMPLES && value.is_some_and(|v| t.limit.broken_by(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_hand_over_when_a_later_second_completes() {
        let live = Live::new(Instant::now());
        let mut p = Publisher::new(live.clone());
        p.second(0).requests += 1;
        p.completed_in(0);
        assert!(live.state.lock().unwrap().seconds.is_empty());
        p.second(0).requests += 1;
        p.second(1).requests += 1;
        p.completed_in(1);
        {
            let state = live.state.lock().unwrap();
            assert_eq!(state.seconds.len(), 2);
            assert_eq!(state.seconds[0].requests, 2);
            assert_eq!(state.total.requests, 3);
        }
        p.second(2).requests += 1;
        drop(p);
        assert_eq!(live.state.lock().unwrap().total.requests, 4);
    }
}
