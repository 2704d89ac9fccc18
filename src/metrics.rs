//! What a run measures: HDR latency histograms (bounded memory, mergeable) and counts, per
//! AI Config variation, per context kind and per second. Each worker keeps its own
//! [`Metrics`] and they are merged at the end, so recording takes no lock.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use crate::results::latency::{empty_histogram, growing, LatencySummary, MAX_MICROS};

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(empty_histogram())
    }
}

impl Latency {
    pub fn record(&mut self, duration: Duration) {
        let micros = (duration.as_micros() as u64).clamp(1, MAX_MICROS);
        self.0.record(micros).expect("clamped into range");
    }

    /// A histogram to 2 significant digits (1 %), for what is kept per second: a tenth of
    /// the size at 3 digits.
    pub fn coarse() -> Self {
        Latency(growing(
            Histogram::new(2).expect("2 significant digits are valid"),
        ))
    }

    /// A histogram recorded elsewhere (a worker process), in microseconds.
    pub fn from_histogram(histogram: Histogram<u64>) -> Self {
        Latency(histogram)
    }

    pub fn merge(&mut self, other: &Latency) {
        self.0
            .add(&other.0)
            .expect("histograms grow to fit what is added");
    }

    /// Takes away `other`'s values, which must have been merged in before.
    pub fn subtract(&mut self, other: &Latency) {
        self.0
            .subtract(&other.0)
            .expect("only what was added is subtracted");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Percentiles in milliseconds, and the histogram itself.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.0)
    }
}

/// The variation a step is recorded under when the AI layer gave the SDK default (the SDK
/// could not evaluate, or the served value could not be read): the fallback.
pub const FALLBACK_VARIATION: &str = "(default)";

/// Counts and latencies of one AI Config variation.
#[derive(Clone, Debug, Default)]
pub struct VariationMetrics {
    pub evaluations: u64,
    /// LLM calls made: each step's first, its retries and its fallback call.
    pub ai_calls: u64,
    /// Of the LLM calls, those that succeeded and those that failed (provider side).
    pub successes: u64,
    pub errors: u64,
    /// LLM calls to the step's model after its first (`on_error.retries`).
    pub retries: u64,
    /// Calls to `on_error.fallback_model`, and those that succeeded.
    pub fallbacks: u64,
    pub fallback_successes: u64,
    /// Steps whose last LLM call, after retries and fallback, failed: what users got.
    pub failed_steps: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub feedback_positive: u64,
    pub feedback_negative: u64,
    /// The SDK evaluation alone.
    pub evaluation: Latency,
    /// The AI Config layer around it: parsing, interpolation, tracker.
    pub ai_layer: Latency,
    pub llm: Latency,
    /// Of the LLM calls whose simulator told its plan: the latency it drew, in real time
    /// (the scheduled wait over the time scale).
    pub llm_planned_real_time: Latency,
    /// Of the same calls: measured minus planned as scheduled (both after the time scale),
    /// what the harness, the network and the simulator's lateness added.
    pub llm_excess: Latency,
    /// Calls measured shorter than their plan, counted rather than put in `llm_excess`.
    pub llm_ahead_of_plan: u64,
    pub time_to_first_token: Latency,
    /// Evaluation, LLM call and tracking together.
    pub end_to_end: Latency,
    /// Tokens of successful calls by model, then context kind: what cost is computed from
    /// (a variation's model can change mid-run).
    pub usage: BTreeMap<String, BTreeMap<String, TokenCounts>>,
}

/// Tokens of successful LLM calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenCounts {
    pub calls: u64,
    /// All prompt tokens, cached ones included.
    pub input: u64,
    /// Prompt tokens the provider served from its cache (OpenAI's `cached_tokens`).
    pub cached_input: u64,
    pub output: u64,
}

impl TokenCounts {
    pub fn add(&mut self, o: &TokenCounts) {
        self.calls += o.calls;
        self.input += o.input;
        self.cached_input += o.cached_input;
        self.output += o.output;
    }
}

impl VariationMetrics {
    /// The steps that called the LLM ([`crate::results::llm_steps`]).
    pub fn llm_steps(&self) -> u64 {
        crate::results::llm_steps(self.ai_calls, self.retries, self.fallbacks)
    }

    /// Adds `o`'s counts and latencies: another recorder's, or a worker's.
    pub fn merge(&mut self, o: &VariationMetrics) {
        self.evaluations += o.evaluations;
        self.ai_calls += o.ai_calls;
        self.successes += o.successes;
        self.errors += o.errors;
        self.retries += o.retries;
        self.fallbacks += o.fallbacks;
        self.fallback_successes += o.fallback_successes;
        self.failed_steps += o.failed_steps;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.feedback_positive += o.feedback_positive;
        self.feedback_negative += o.feedback_negative;
        self.evaluation.merge(&o.evaluation);
        self.ai_layer.merge(&o.ai_layer);
        self.llm.merge(&o.llm);
        self.llm_planned_real_time.merge(&o.llm_planned_real_time);
        self.llm_excess.merge(&o.llm_excess);
        self.llm_ahead_of_plan += o.llm_ahead_of_plan;
        self.time_to_first_token.merge(&o.time_to_first_token);
        self.end_to_end.merge(&o.end_to_end);
        for (model, kinds) in &o.usage {
            let mine = self.usage.entry(model.clone()).or_default();
            for (kind, counts) in kinds {
                mine.entry(kind.clone()).or_default().add(counts);
            }
        }
    }

    /// Adds the plan of a call whose simulator told one: the drawn latency in real time (if
    /// known), and how much longer than planned the call was measured (`None`: shorter).
    pub fn record_plan(&mut self, real_time: Option<Duration>, excess: Option<Duration>) {
        if let Some(real_time) = real_time {
            self.llm_planned_real_time.record(real_time);
        }
        match excess {
            Some(excess) => self.llm_excess.record(excess),
            None => self.llm_ahead_of_plan += 1,
        }
    }

    /// Adds one successful call's tokens; allocates keys only the first time a model and
    /// kind are seen, since this runs for every call.
    pub fn record_usage(&mut self, model: &str, kind: &str, tokens: TokenCounts) {
        if let Some(counts) = self.usage.get_mut(model).and_then(|k| k.get_mut(kind)) {
            counts.add(&tokens);
            return;
        }
        self.usage
            .entry(model.to_owned())
            .or_default()
            .entry(kind.to_owned())
            .or_default()
            .add(&tokens);
    }
}

/// One second of the run. Requests are counted in the second they were scheduled to
/// start (their latency and LLM calls with them), and again in the second they completed.
#[derive(Clone, Debug)]
pub struct Second {
    /// Requests scheduled to start in this second (started, in the closed model).
    pub requests: u64,
    pub errors: u64,
    /// Whole requests, from their scheduled start (corrected), to 2 significant digits.
    pub latency: Latency,
    /// Requests that completed in this second, whenever they started.
    pub completed: u64,
    /// The LLM calls of this second's requests, to 2 significant digits.
    pub llm: Latency,
    /// Of them, those that failed.
    pub llm_errors: u64,
    /// The AI Config steps (evaluations) of this second's requests.
    pub evaluations: u64,
    /// Of them, those served the fallback: the AI layer got the SDK default because the SDK
    /// could not evaluate (recorded as the "(default)" variation).
    pub fallback_served: u64,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            requests: 0,
            errors: 0,
            latency: Latency::coarse(),
            completed: 0,
            llm: Latency::coarse(),
            llm_errors: 0,
            evaluations: 0,
            fallback_served: 0,
        }
    }
}

impl Second {
    pub fn add(&mut self, o: &Second) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.latency.merge(&o.latency);
        self.completed += o.completed;
        self.llm.merge(&o.llm);
        self.llm_errors += o.llm_errors;
        self.evaluations += o.evaluations;
        self.fallback_served += o.fallback_served;
    }

    /// Takes away a second added before (sliding windows).
    pub fn subtract(&mut self, o: &Second) {
        self.requests -= o.requests;
        self.errors -= o.errors;
        self.latency.subtract(&o.latency);
        self.completed -= o.completed;
        self.llm.subtract(&o.llm);
        self.llm_errors -= o.llm_errors;
        self.evaluations -= o.evaluations;
        self.fallback_served -= o.fallback_served;
    }
}

/// Everything one worker (or, merged, the whole run) measured.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// By AI Config key, then variation key.
    pub variations: BTreeMap<String, BTreeMap<String, VariationMetrics>>,
    /// Evaluations per context kind (`user`, `organization`, or `multi:organization,user`).
    pub context_kinds: BTreeMap<String, u64>,
    /// Whole requests, timed from when they were scheduled to start: corrected for
    /// coordinated omission in the open model (in the closed model the same as `raw`).
    pub requests_corrected: Latency,
    /// Whole requests, timed from when they actually started.
    pub requests_raw: Latency,
    pub requests: u64,
    pub failed_requests: u64,
    /// Open model: how late the harness itself started each request (see
    /// `results::harness::HarnessHealth::schedule_lag`).
    pub schedule_lag: Latency,
    /// Worker processes (Python, Node): their event loops' lag probes, merged.
    pub worker_lag_probe: Latency,
    /// Worker processes: their CPU time over the load, added up.
    pub worker_cpu_seconds: f64,
    /// Per second since the load started, for latency-over-time charts and windowed
    /// thresholds. Recorders hand their seconds to the runner's one live timeline instead of
    /// keeping their own, so this is set from it once the load has ended, and not merged.
    pub timeline: Vec<Second>,
    /// Tracker events sent, by event key: what mock-ld should receive. The keys the
    /// harness's own AI layer sends are borrowed; a worker's are its own.
    pub tracked_events: BTreeMap<Cow<'static, str>, u64>,
    /// Tokens of successful calls by cost attribute (`Scenario::cost_by`), its value, then
    /// model.
    pub attribute_usage: BTreeMap<String, BTreeMap<String, BTreeMap<String, TokenCounts>>>,
}

impl Metrics {
    pub fn variation(&mut self, config: &str, variation: &str) -> &mut VariationMetrics {
        // Runs for every call: allocate keys only the first time a variation is seen.
        if !self
            .variations
            .get(config)
            .is_some_and(|v| v.contains_key(variation))
        {
            self.variations
                .entry(config.to_owned())
                .or_default()
                .insert(variation.to_owned(), VariationMetrics::default());
        }
        self.variations
            .get_mut(config)
            .and_then(|v| v.get_mut(variation))
            .expect("inserted above")
    }

    pub fn merge(&mut self, o: &Metrics) {
        for (attribute, values) in &o.attribute_usage {
            let mine = self.attribute_usage.entry(attribute.clone()).or_default();
            for (value, models) in values {
                let mine = mine.entry(value.clone()).or_default();
                for (model, tokens) in models {
                    mine.entry(model.clone()).or_default().add(tokens);
                }
            }
        }
        for (config, variations) in &o.variations {
            let mine = self.variations.entry(config.clone()).or_default();
            for (variation, v) in variations {
                mine.entry(variation.clone()).or_default().merge(v);
            }
        }
        for (kind, n) in &o.context_kinds {
            *self.context_kinds.entry(kind.clone()).or_default() += n;
        }
        for (key, n) in &o.tracked_events {
            *self.tracked_events.entry(key.clone()).or_default() += n;
        }
        self.requests_corrected.merge(&o.requests_corrected);
        self.requests_raw.merge(&o.requests_raw);
        self.schedule_lag.merge(&o.schedule_lag);
        self.requests += o.requests;
        self.failed_requests += o.failed_requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut a = Metrics::default();
        a.variation("c", "v").evaluations = 2;
        a.requests_raw.record(Duration::from_millis(5));
        let mut b = Metrics::default();
        b.variation("c", "v").evaluations = 3;
        b.requests_raw.record(Duration::from_secs(7));
        a.merge(&b);
        assert_eq!(a.variations["c"]["v"].evaluations, 5);
        assert_eq!(a.requests_raw.count(), 2);
        // b's histogram reached seconds, a's only milliseconds: a grew to hold it.
        assert!(a.requests_raw.histogram().max() >= 6_990_000);
    }

    #[test]
    fn a_histogram_is_small_until_it_holds_large_values() {
        let mut l = Latency::default();
        l.record(Duration::from_micros(100));
        let small = l.histogram().distinct_values();
        l.record(Duration::from_secs(3600));
        assert!(small * 2 < l.histogram().distinct_values(), "{small}");
        assert_eq!(l.count(), 2);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut latency = Latency::default();
        latency.record(Duration::ZERO);
        latency.record(Duration::from_secs(7200));
        assert_eq!(latency.count(), 2);
    }
}
