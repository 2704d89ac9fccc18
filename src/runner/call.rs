//! One request: for each step, get the AI Config through the AI layer (which evaluates the
//! flag with the real SDK), call the LLM when the config is enabled, and track the outcome
//! with the config's tracker, exactly as an application using LaunchDarkly's AI SDK would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use launchdarkly_server_sdk::{AttributeValue, Client, Context, Kind, Reference};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::llm_call::{chat, ChatRequest, LlmOutcome};
use super::retry::{attempt_seed, wait_before};
use crate::ai::{
    AiAgentConfigDefault, AiClient, AiCompletionConfigDefault, FeedbackKind, LdMessage,
    ModelConfig, TokenUsage, Tracker, Variables,
};
use crate::metrics::{Metrics, TokenCounts};
use crate::scenario::population::Generator;
use crate::scenario::{Mode, OnError, Scenario};
use crate::served::ServedLog;

/// Everything a request needs, shared by all workers.
pub struct Workload {
    ai: Vec<AiClient>,
    population: Generator,
    steps: Vec<PreparedStep>,
    http: reqwest::Client,
    llm_base: String,
    stream: bool,
    seed: u64,
    /// What the AI layer serves when a config cannot be evaluated: disabled, as Python's
    /// `AICompletionConfigDefault.disabled()`.
    completion_default: AiCompletionConfigDefault,
    agent_default: AiAgentConfigDefault,
    /// What each context was served, for the exact rollout check.
    served: Arc<ServedLog>,
    /// Attributes cost is broken down by.
    cost_by: Vec<(String, Reference)>,
    /// The context-kind label of each fixed context, then the one every generated context
    /// shares: made once rather than per request.
    kind_labels: Vec<String>,
    /// Custom events handed to the SDKs so far, setup's included: what a flush asked for
    /// during the load waits on ([`super::events::FlushSampler`]).
    handed: Arc<AtomicU64>,
}

/// A scenario step with its variables converted once, not per request.
struct PreparedStep {
    config: String,
    mode: Mode,
    variables: Variables,
    prompt: String,
    feedback_rate: f64,
    positive_feedback: f64,
    call_llm: bool,
    /// What the application does when the LLM call fails.
    on_error: OnError,
    /// This step's AI Config's record in the [`ServedLog`], if it has one.
    served_slot: Option<usize>,
}

/// What one step did. Names are indices into the [`Workload`]: a shared `Arc` cloned per
/// request is a cache line passed between the cores at every request.
pub struct StepRecord {
    /// Its index in the workload's steps.
    step: usize,
    /// The served variation's model, which the LLM call asked for.
    model: Option<Arc<ModelConfig>>,
    /// The run's tracker, which knows the served variation; none when the AI layer could
    /// not read it.
    tracker: Option<Tracker>,
    evaluation: Duration,
    ai_layer: Duration,
    /// The step's last LLM call: the first, a retry or the fallback.
    llm: Option<LlmOutcome>,
    /// The calls before it, all failed: the first and the retries to the step's model
    /// (empty, and unallocated, when the first call succeeded or no `on_error` acted).
    earlier: Vec<LlmOutcome>,
    /// Calls to the step's model after the first.
    retries: u32,
    /// The last call went to `on_error.fallback_model`.
    fell_back: bool,
    end_to_end: Duration,
    /// When the step ended; the next step starts then.
    ended: Instant,
    feedback: Option<FeedbackKind>,
    /// Tracker and usage events handed to the SDK.
    tracked: Tracked,
    /// The AI layer could not read the served variation.
    failed: bool,
}

/// What one request did.
pub struct RequestRecord {
    /// When its last step ended.
    pub ended: Instant,
    /// Its context's index in the workload's context-kind labels.
    kind: usize,
    /// `(attribute, value)` for each of the scenario's `cost_by` attributes.
    cost_attributes: Vec<(String, String)>,
    steps: Vec<StepRecord>,
}

impl Workload {
    pub fn new(
        scenario: &Scenario,
        clients: &[Arc<Client>],
        population: Generator,
        http: reqwest::Client,
        llm_base: String,
        served: Arc<ServedLog>,
    ) -> Self {
        let ai = clients.iter().map(|c| AiClient::new(c.clone())).collect();
        let kind_labels = (0..=population.fixed_count())
            .filter(|&i| i < population.count().max(1))
            .map(|i| {
                population
                    .context(i)
                    .map_or_else(|_| "(invalid)".to_owned(), |c| kind_label(&c))
            })
            .collect();
        let steps = scenario
            .effective_steps()
            .into_iter()
            .map(|step| PreparedStep {
                served_slot: served.slot(&step.config),
                mode: scenario
                    .ai_configs
                    .iter()
                    .find(|c| c.key == step.config)
                    .map_or(Mode::Completion, |c| c.mode),
                variables: serde_json::to_value(&step.variables)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default(),
                config: step.config,
                prompt: step.prompt,
                feedback_rate: step.feedback_rate,
                positive_feedback: step.positive_feedback,
                call_llm: step.call_llm,
                on_error: step.on_error,
            })
            .collect();
        Workload {
            ai,
            population,
            steps,
            http,
            llm_base,
            stream: scenario.llm.stream,
            seed: scenario.seed,
            completion_default: AiCompletionConfigDefault::default(),
            agent_default: AiAgentConfigDefault::default(),
            served,
            cost_by: scenario
                .cost_by
                .iter()
                .map(|a| (a.clone(), Reference::new(a)))
                .collect(),
            kind_labels,
            // One AI client per SDK client, each with its setup event (`setup_events`).
            handed: Arc::new(AtomicU64::new(clients.len() as u64)),
        }
    }

    /// The live count of custom events handed to the SDKs. Added to after the events of a
    /// step were handed over (`Release`), so a flush after reading it (`Acquire`) follows
    /// them in each SDK's inbox.
    pub fn handed_events(&self) -> Arc<AtomicU64> {
        self.handed.clone()
    }

    /// Tracker events sent before the load: `$ld:ai:sdk:info`, once per AI client.
    pub fn setup_events(&self) -> u64 {
        self.ai.len() as u64
    }

    /// Runs request `index`: context `index` of the population, on SDK client
    /// `index % clients`, with draws seeded by the index so reruns make the same choices.
    pub async fn request(&self, index: u64) -> RequestRecord {
        let context_index = index % self.population.count().max(1);
        let context = match self.population.context(index) {
            Ok(context) => context,
            // The loader refuses what the SDK would; should the SDK refuse more, the request
            // fails rather than the run.
            Err(e) => {
                tracing::error!(error = %e, "a context could not be built");
                let now = Instant::now();
                return RequestRecord {
                    ended: now,
                    kind: (context_index as usize).min(self.kind_labels.len() - 1),
                    cost_attributes: Vec::new(),
                    steps: (0..self.steps.len().min(1))
                        .map(|step| StepRecord::failed(step, Duration::ZERO, now))
                        .collect(),
                };
            }
        };
        let ai = &self.ai[index as usize % self.ai.len()];
        let mut steps = Vec::with_capacity(self.steps.len());
        // The first step starts once the context is built (an application has its context
        // before it asks for a config); each later one when the one before it ended.
        let mut ended = Instant::now();
        for step in 0..self.steps.len() {
            let record = self
                .step(
                    ai,
                    step,
                    (context_index, &context),
                    (index, request_seed(index, step)),
                    ended,
                )
                .await;
            ended = record.ended;
            steps.push(record);
        }
        RequestRecord {
            ended,
            kind: (context_index as usize).min(self.kind_labels.len() - 1),
            cost_attributes: self
                .cost_by
                .iter()
                .map(|(name, r)| (name.clone(), attribute_label(&context, r)))
                .collect(),
            steps,
        }
    }

    /// Runs step `index` of the workload; `context` is the context and its index in the
    /// population; `request` and `seed` are the request's index and this step's identity,
    /// which key the feedback drawn and the simulated LLM's reply; the step
    /// starts at `started`.
    async fn step(
        &self,
        ai: &AiClient,
        step_index: usize,
        (index, context): (u64, &Context),
        (request, seed): (u64, u64),
        started: Instant,
    ) -> StepRecord {
        let step = &self.steps[step_index];
        let resolved = self.resolve(ai, step, context);
        // Before the harness's own bookkeeping, which is not the AI layer's time.
        let resolved_at = Instant::now();
        if let Some(slot) = step.served_slot {
            self.served.record(
                slot,
                index,
                resolved.as_ref().map_or("", |r| r.tracker.variation_key()),
            );
        }
        let Some(resolved) = resolved else {
            return StepRecord::failed(step_index, resolved_at - started, resolved_at);
        };
        let mut tracked = Tracked::one(usage_key(step.mode));
        let mut ai_layer = (resolved_at - started).saturating_sub(resolved.evaluation);
        let (mut ended, mut calls, mut feedback) = (resolved_at, None, None);
        if resolved.enabled && step.call_llm {
            // Boxed: the HTTP call's future is kilobytes, and inline it would make every
            // request's future that large, LLM call or not.
            let made = Box::pin(self.calls(&resolved, step, seed, &mut tracked)).await;
            let tracking = Instant::now();
            let kind = feedback_draw(self.seed, request, step_index, step.into());
            let last = made.tracker.as_ref().unwrap_or(&resolved.tracker);
            feedback = give_feedback(last, kind, &mut tracked);
            ended = Instant::now();
            ai_layer += ended - tracking + made.tracking;
            calls = Some(made);
        }
        self.handed.fetch_add(tracked.total(), Ordering::Release);
        let (llm, earlier, retries, fell_back) = match calls {
            Some(c) => (Some(c.last), c.earlier, c.retries, c.fell_back),
            None => (None, Vec::new(), 0, false),
        };
        StepRecord {
            step: step_index,
            model: resolved.model,
            tracker: Some(resolved.tracker),
            evaluation: resolved.evaluation,
            ai_layer,
            llm,
            earlier,
            retries,
            fell_back,
            end_to_end: ended - started,
            ended,
            feedback,
            tracked,
            failed: false,
        }
    }

    /// The step's LLM calls as its `on_error` says: the first; retries while they fail
    /// and may be retried, after each wait; then the fallback model once. Each call is
    /// tracked as the application wraps it in the tracker, the first on the step's tracker
    /// and each later one on a new run of it (Python's `config.create_tracker()`), since
    /// the AI SDK records each metric at most once per run.
    async fn calls(
        &self,
        resolved: &Resolved,
        step: &PreparedStep,
        seed: u64,
        tracked: &mut Tracked,
    ) -> Calls {
        let policy = &step.on_error;
        let mut calls = Calls::default();
        let mut model = model_name(resolved.model.as_deref());
        for call in 0.. {
            let outcome = self
                .call_llm(resolved, step, model, attempt_seed(seed, call))
                .await;
            let tracking = Instant::now();
            let tracker = calls.tracker.as_ref().unwrap_or(&resolved.tracker);
            track_outcome(tracker, &outcome, tracked);
            calls.tracking += tracking.elapsed();
            if outcome.error.is_none() || calls.fell_back {
                calls.last = outcome;
                break;
            }
            let wait = (calls.retries < policy.retries)
                .then(|| wait_before(policy, (self.seed, seed), call + 1, &outcome))
                .flatten();
            match (wait, &policy.fallback_model) {
                (Some(wait), _) => {
                    calls.retries += 1;
                    tokio::time::sleep(wait).await;
                }
                (None, Some(fallback)) => {
                    calls.fell_back = true;
                    model = fallback;
                }
                (None, None) => {
                    calls.last = outcome;
                    break;
                }
            }
            calls.earlier.push(outcome);
            calls.tracker = Some(resolved.tracker.new_run());
        }
        calls
    }

    async fn call_llm(
        &self,
        resolved: &Resolved,
        step: &PreparedStep,
        model: &str,
        seed: u64,
    ) -> LlmOutcome {
        let mut messages: Vec<Value> = resolved
            .messages
            .iter()
            .map(|m| json!({"role": &*m.role, "content": &*m.content}))
            .collect();
        messages.push(json!({"role": "user", "content": step.prompt}));
        let request = ChatRequest {
            model,
            messages: Value::Array(messages),
            stream: self.stream,
            seed,
        };
        chat(&self.http, &self.llm_base, &request).await
    }
}

/// The identity of step `step` of request `index`, as the simulated LLM's seed: distinct per
/// request and step, the same in every run (the simulator mixes in its own seed, the
/// scenario's).
pub fn request_seed(index: u64, step: usize) -> u64 {
    // SplitMix64's finalizer: neighbouring identities give unrelated seeds.
    super::retry::finalize(
        index
            .wrapping_mul(super::retry::GOLDEN)
            .wrapping_add((step as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9)),
    )
}

/// What a step's LLM calls did.
#[derive(Default)]
struct Calls {
    earlier: Vec<LlmOutcome>,
    last: LlmOutcome,
    retries: u32,
    fell_back: bool,
    /// Time spent in the tracker's calls, which is the AI layer's.
    tracking: Duration,
    /// The run the last call was tracked on, when not the step's own tracker.
    tracker: Option<Tracker>,
}

/// The parts of a completion or agent config a step uses.
struct Resolved {
    enabled: bool,
    model: Option<Arc<ModelConfig>>,
    /// Shared with the AI layer's cache when no template needed rendering.
    messages: Arc<[LdMessage]>,
    tracker: Tracker,
    evaluation: Duration,
}

impl Workload {
    fn resolve(&self, ai: &AiClient, step: &PreparedStep, context: &Context) -> Option<Resolved> {
        let variables = Some(&step.variables);
        match step.mode {
            Mode::Completion => {
                let (config, tracker, evaluation) = ai
                    .completion_config_timed(
                        &step.config,
                        context,
                        &self.completion_default,
                        variables,
                    )
                    .ok()?;
                Some(Resolved {
                    enabled: config.enabled,
                    model: config.model,
                    messages: config.messages.unwrap_or_else(|| Arc::new([])),
                    tracker,
                    evaluation,
                })
            }
            Mode::Agent => {
                let (config, tracker, evaluation) = ai
                    .agent_config_timed(&step.config, context, &self.agent_default, variables)
                    .ok()?;
                let instructions = config.instructions.as_deref().unwrap_or_default();
                Some(Resolved {
                    enabled: config.enabled,
                    model: config.model,
                    messages: Arc::new([LdMessage::new("system", instructions)]),
                    tracker,
                    evaluation,
                })
            }
        }
    }

    /// Adds a finished request to `metrics`.
    pub fn record(&self, request: &RequestRecord, metrics: &mut Metrics) {
        let kind = &*self.kind_labels[request.kind];
        match metrics.context_kinds.get_mut(kind) {
            Some(n) => *n += 1,
            None => drop(metrics.context_kinds.insert(kind.to_owned(), 1)),
        }
        for step in &request.steps {
            for &(key, n) in step.tracked.counts() {
                *metrics
                    .tracked_events
                    .entry(std::borrow::Cow::Borrowed(key))
                    .or_default() += u64::from(n);
            }
            let variation = step.variation();
            let v = metrics.variation(&self.steps[step.step].config, variation);
            v.evaluations += 1;
            v.evaluation.record(step.evaluation);
            v.ai_layer.record(step.ai_layer);
            v.end_to_end.record(step.end_to_end);
            match step.feedback {
                Some(FeedbackKind::Positive) => v.feedback_positive += 1,
                Some(FeedbackKind::Negative) => v.feedback_negative += 1,
                None => {}
            }
            let Some(last) = &step.llm else { continue };
            v.retries += u64::from(step.retries);
            v.fallbacks += u64::from(step.fell_back);
            v.fallback_successes += u64::from(step.fell_back && last.error.is_none());
            v.failed_steps += u64::from(last.error.is_some());
            for call in &step.earlier {
                record_call(v, call);
            }
            let Some(tokens) = record_call(v, last) else {
                continue;
            };
            let model = match (
                step.fell_back,
                &self.steps[step.step].on_error.fallback_model,
            ) {
                (true, Some(fallback)) => fallback.as_str(),
                _ => model_name(step.model.as_deref()),
            };
            v.record_usage(model, kind, tokens);
            for (attribute, value) in &request.cost_attributes {
                let by_value = metrics
                    .attribute_usage
                    .entry(attribute.clone())
                    .or_default();
                let by_model = by_value.entry(value.clone()).or_default();
                by_model.entry(model.to_owned()).or_default().add(&tokens);
            }
        }
    }
}

/// Adds one LLM call to its variation: an LLM call, its latency, its plan, and an error
/// or a success with its tokens, which are returned (the caller costs them by model).
fn record_call(v: &mut crate::metrics::VariationMetrics, llm: &LlmOutcome) -> Option<TokenCounts> {
    v.ai_calls += 1;
    v.llm.record(llm.duration);
    if let Some(plan) = &llm.plan {
        v.record_plan(plan.real_time(), plan.excess(llm.duration));
    }
    if let Some(ttft) = llm.time_to_first_token {
        v.time_to_first_token.record(ttft);
    }
    if llm.error.is_some() {
        v.errors += 1;
        return None;
    }
    v.successes += 1;
    v.input_tokens += llm.input_tokens;
    v.output_tokens += llm.output_tokens;
    Some(TokenCounts {
        calls: 1,
        input: llm.input_tokens,
        cached_input: llm.cached_input_tokens,
        output: llm.output_tokens,
    })
}

/// How often a step gives feedback, and how often it is positive.
#[derive(Clone, Copy, Debug)]
pub struct FeedbackRates {
    pub rate: f64,
    pub positive: f64,
}

impl From<&PreparedStep> for FeedbackRates {
    fn from(step: &PreparedStep) -> Self {
        FeedbackRates {
            rate: step.feedback_rate,
            positive: step.positive_feedback,
        }
    }
}

/// The feedback step `step` of request `index` gives after its LLM call, if any, drawn from
/// the run's seed and the step's identity alone: every SDK's run of the request gives the
/// same, whatever the earlier steps did.
pub fn feedback_draw(
    seed: u64,
    index: u64,
    step: usize,
    rates: FeedbackRates,
) -> Option<FeedbackKind> {
    let mut rng = SmallRng::seed_from_u64(seed ^ request_seed(index, step));
    if !rng.random_bool(rates.rate) {
        return None;
    }
    Some(if rng.random_bool(rates.positive) {
        FeedbackKind::Positive
    } else {
        FeedbackKind::Negative
    })
}

/// Gives the drawn feedback through the tracker.
fn give_feedback(
    tracker: &Tracker,
    kind: Option<FeedbackKind>,
    tracked: &mut Tracked,
) -> Option<FeedbackKind> {
    let kind = kind?;
    if tracker.track_feedback(kind) {
        tracked.push(feedback_key(kind));
    }
    Some(kind)
}

fn model_name(model: Option<&ModelConfig>) -> &str {
    model.map_or("", |m| m.name.as_str())
}

/// The tracker calls an application makes after an LLM call, as LaunchDarkly's AI SDK
/// documentation shows them: duration, time to first token, tokens, then success or error.
fn track_outcome(tracker: &Tracker, outcome: &LlmOutcome, tracked: &mut Tracked) {
    let mut note = |recorded: bool, key: &'static str| {
        if recorded {
            tracked.push(key);
        }
    };
    note(
        tracker.track_duration(outcome.duration.as_millis() as u64),
        "$ld:ai:duration:total",
    );
    if let Some(ttft) = outcome.time_to_first_token {
        note(
            tracker.track_time_to_first_token(ttft.as_millis() as u64),
            "$ld:ai:tokens:ttf",
        );
    }
    if outcome.error.is_some() {
        note(tracker.track_error(), "$ld:ai:generation:error");
        return;
    }
    let tokens = TokenUsage {
        total: outcome.input_tokens + outcome.output_tokens,
        input: outcome.input_tokens,
        output: outcome.output_tokens,
    };
    if tracker.track_tokens(tokens) {
        for (count, key) in [
            (tokens.total, "$ld:ai:tokens:total"),
            (tokens.input, "$ld:ai:tokens:input"),
            (tokens.output, "$ld:ai:tokens:output"),
        ] {
            note(count > 0, key);
        }
    }
    note(tracker.track_success(), "$ld:ai:generation:success");
}

/// The events one step tracked, counted by key, without a heap allocation per step. A
/// step tracks at most these nine keys (usage, duration, time to first token, three
/// token counts, success, error, feedback), each any number of times: once per LLM call
/// for the per-call keys, however many retries `on_error` allows. A step that tracks
/// another kind of event must grow `counts`.
#[derive(Default)]
struct Tracked {
    counts: [(&'static str, u16); 9],
    len: usize,
}

impl Tracked {
    fn one(key: &'static str) -> Self {
        let mut tracked = Tracked::default();
        tracked.push(key);
        tracked
    }

    fn push(&mut self, key: &'static str) {
        if let Some((_, n)) = self.counts[..self.len].iter_mut().find(|(k, _)| *k == key) {
            *n += 1;
            return;
        }
        self.counts[self.len] = (key, 1);
        self.len += 1;
    }

    fn counts(&self) -> &[(&'static str, u16)] {
        &self.counts[..self.len]
    }

    /// Events in all.
    fn total(&self) -> u64 {
        self.counts().iter().map(|&(_, n)| u64::from(n)).sum()
    }
}

fn usage_key(mode: Mode) -> &'static str {
    match mode {
        Mode::Completion => "$ld:ai:usage:completion-config",
        Mode::Agent => "$ld:ai:usage:agent-config",
    }
}

fn feedback_key(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Positive => "$ld:ai:feedback:user:positive",
        FeedbackKind::Negative => "$ld:ai:feedback:user:negative",
    }
}

/// The attribute's value as a label: from the context, or from the first of a multi-kind
/// context's kinds (in kind order) that has it; `(none)` when no kind has it.
pub fn attribute_label(context: &Context, attribute: &Reference) -> String {
    let value = if context.is_multi() {
        let mut kinds = context.kinds();
        kinds.sort_by_key(|k| k.to_string());
        kinds
            .iter()
            .find_map(|k| context.as_kind(k).and_then(|c| c.get_value(attribute)))
    } else {
        context.get_value(attribute)
    };
    match value {
        Some(AttributeValue::String(s)) => s,
        Some(AttributeValue::Number(n)) => n.to_string(),
        Some(AttributeValue::Bool(b)) => b.to_string(),
        Some(other) => serde_json::to_string(&other).unwrap_or_default(),
        None => "(none)".to_owned(),
    }
}

/// `user`, or for a multi-kind context its kinds: `multi:organization+user`.
pub fn kind_label(context: &Context) -> String {
    if !context.is_multi() {
        return context.kind().to_string();
    }
    let mut kinds: Vec<String> = context
        .kinds()
        .iter()
        .map(|k: &&Kind| k.to_string())
        .collect();
    kinds.sort();
    format!("multi:{}", kinds.join("+"))
}

impl StepRecord {
    fn failed(step: usize, elapsed: Duration, ended: Instant) -> Self {
        StepRecord {
            step,
            model: None,
            tracker: None,
            evaluation: elapsed,
            ai_layer: Duration::ZERO,
            llm: None,
            earlier: Vec::new(),
            retries: 0,
            fell_back: false,
            end_to_end: elapsed,
            ended,
            feedback: None,
            tracked: Tracked::default(),
            failed: true,
        }
    }
}

impl StepRecord {
    /// The variation the step is recorded under: the served one, or the fallback.
    fn variation(&self) -> &str {
        match self.tracker.as_ref().map(Tracker::variation_key) {
            None | Some("") => crate::metrics::FALLBACK_VARIATION,
            Some(key) => key,
        }
    }
}

impl RequestRecord {
    /// Its steps (evaluations), and how many of them served the fallback.
    pub fn served(&self) -> (u64, u64) {
        let fallback = self
            .steps
            .iter()
            .filter(|s| s.variation() == crate::metrics::FALLBACK_VARIATION)
            .count();
        (self.steps.len() as u64, fallback as u64)
    }

    /// Its LLM calls, retries and fallbacks included: how long each took and whether it
    /// failed.
    pub fn llm_calls(&self) -> impl Iterator<Item = (Duration, bool)> + '_ {
        self.steps
            .iter()
            .flat_map(|s| s.earlier.iter().chain(s.llm.as_ref()))
            .map(|o| (o.duration, o.error.is_some()))
    }

    /// A request fails when any step's config could not be read or its last LLM call
    /// (after its retries and fallback) failed.
    pub fn failed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.failed || s.llm.as_ref().is_some_and(|o| o.error.is_some()))
    }
}
