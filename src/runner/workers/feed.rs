//! The run's requests as the workers take them: request `n` is context `n` of the
//! population, with every draw the coordinator makes for it (its steps' seeds and feedback)
//! and, in the open model, its due time. Workers pull them in order, so the requests are the
//! Rust run's whichever worker runs each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use launchdarkly_server_sdk::Reference;

use super::protocol::{OnErrorSpec, StepSpec, WorkItem, WorkStep};
use crate::ai::FeedbackKind;
use crate::runner::call::{
    attribute_label, feedback_draw, kind_label, request_seed, FeedbackRates,
};
use crate::runner::schedule::Schedule;
use crate::scenario::bounds::MAX_RETRY_WAIT;
use crate::scenario::population::Generator;
use crate::scenario::{Mode, Scenario};

/// Most requests one pull may take.
pub const MAX_PULL: u64 = 4096;

pub struct Feeder {
    population: Generator,
    seed: u64,
    steps: Vec<FeedbackRates>,
    cost_by: Vec<(String, Reference)>,
    /// The open model's arrivals; none in the closed model.
    schedule: Option<Schedule>,
    /// Without a schedule: every request due at 0 (a parity phase in the open model).
    due_at_once: bool,
    total: u64,
    next: AtomicU64,
    /// Requests whose context could not be built: failed at the coordinator, as the Rust
    /// path fails them.
    unbuildable: Mutex<Vec<u64>>,
}

impl Feeder {
    pub fn new(scenario: &Scenario, population: Generator, schedule: Option<Schedule>) -> Self {
        let total = schedule
            .as_ref()
            .map_or_else(|| scenario.iterations(), Schedule::total);
        Feeder {
            population,
            seed: scenario.seed,
            steps: scenario
                .effective_steps()
                .iter()
                .map(|s| FeedbackRates {
                    rate: s.feedback_rate,
                    positive: s.positive_feedback,
                })
                .collect(),
            cost_by: scenario
                .cost_by
                .iter()
                .map(|a| (a.clone(), Reference::new(a)))
                .collect(),
            schedule,
            due_at_once: false,
            total,
            next: AtomicU64::new(0),
            unbuildable: Mutex::default(),
        }
    }

    /// Requests `range` only, the same requests as in the load (contexts, seeds, feedback),
    /// for a phase after it: in the open model all due at once (`dueMicros` 0), so that the
    /// worker's `maxInFlight` alone paces them.
    pub fn range(scenario: &Scenario, population: Generator, range: std::ops::Range<u64>) -> Self {
        let mut feeder = Feeder::new(scenario, population, None);
        feeder.due_at_once = scenario.load.model == crate::scenario::LoadModel::Open;
        feeder.total = range.end;
        feeder.next = AtomicU64::new(range.start.min(range.end));
        feeder
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Stops handing out requests (the load was stopped).
    pub fn close(&self) {
        self.next.fetch_max(self.total, Ordering::Relaxed);
    }

    /// The next up to `max` requests; empty when none is left.
    pub fn take(&self, max: u64) -> Vec<WorkItem> {
        let max = max.clamp(1, MAX_PULL);
        let start = self.next.fetch_add(max, Ordering::Relaxed).min(self.total);
        let end = (start + max).min(self.total);
        (start..end).filter_map(|n| self.item(n)).collect()
    }

    /// Requests that failed here, before any worker.
    pub fn unbuildable(&self) -> Vec<u64> {
        self.unbuildable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn item(&self, index: u64) -> Option<WorkItem> {
        let context = match self.population.context(index) {
            Ok(context) => context,
            Err(e) => {
                tracing::error!(index, error = %e, "a context could not be built");
                self.unbuildable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(index);
                return None;
            }
        };
        let due_micros = self
            .schedule
            .as_ref()
            .and_then(|s| s.due(index))
            .map(|d| d.as_micros() as u64)
            .or(self.due_at_once.then_some(0));
        Some(WorkItem {
            index,
            due_micros,
            context: serde_json::to_value(&context).expect("contexts serialize"),
            kind: kind_label(&context),
            cost_by: self
                .cost_by
                .iter()
                .map(|(name, r)| (name.clone(), attribute_label(&context, r)))
                .collect(),
            steps: self
                .steps
                .iter()
                .enumerate()
                .map(|(step, rates)| WorkStep {
                    seed: request_seed(index, step).to_string(),
                    feedback: feedback_draw(self.seed, index, step, *rates).map(feedback_name),
                })
                .collect(),
        })
    }
}

fn feedback_name(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Positive => "positive",
        FeedbackKind::Negative => "negative",
    }
}

/// The steps as `hello` carries them.
pub fn step_specs(scenario: &Scenario) -> Vec<StepSpec> {
    scenario
        .effective_steps()
        .into_iter()
        .map(|step| StepSpec {
            mode: match scenario
                .ai_configs
                .iter()
                .find(|c| c.key == step.config)
                .map_or(Mode::Completion, |c| c.mode)
            {
                Mode::Completion => "completion",
                Mode::Agent => "agent",
            },
            variables: serde_json::to_value(&step.variables).unwrap_or_default(),
            config: step.config,
            prompt: step.prompt,
            call_llm: step.call_llm,
            on_error: OnErrorSpec {
                retries: step.on_error.retries,
                backoff_ms: step.on_error.backoff.as_millis() as u64,
                max_retry_after_ms: step.on_error.max_retry_after.as_millis() as u64,
                max_wait_ms: MAX_RETRY_WAIT.as_millis() as u64,
                fallback_model: step.on_error.fallback_model,
                run_seed: scenario.seed.to_string(),
            },
        })
        .collect()
}
