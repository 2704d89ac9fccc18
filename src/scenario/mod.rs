//! Scenario files (`scenarios/*.toml`): what to set up, who the users are, how much load,
//! how the LLMs behave, what changes mid-run and which checks apply.
//!
//! Every table rejects unknown keys, and every error names file, line, column and field
//! (see [`parse`]). Everything but `name` and `population.count` has a default.

pub mod bounds;
pub mod checks;
mod error;
mod overrides;
mod parse;
pub mod population;
#[cfg(test)]
mod properties;
pub mod rules;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::results::harness::OverloadBounds;
use checks::CheckSpec;

pub use error::ScenarioError;
pub use overrides::Overrides;
pub use parse::{load, load_with, parse, parse_with};

/// `scenarios/quickstart.toml`, built in: what `run` does without a file.
pub const QUICKSTART: &str = include_str!("../../scenarios/quickstart.toml");
pub use population::Population;

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds the population and the simulated LLM, so a rerun is the same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The LaunchDarkly project and environment the scenario sets up and evaluates in.
    #[serde(default = "default_project")]
    pub project: String,
    #[serde(default = "default_environment")]
    pub environment: String,
    #[serde(default)]
    pub ai_configs: Vec<AiConfigSpec>,
    #[serde(default)]
    pub segments: Vec<SegmentSpec>,
    /// USD per million tokens, by model name.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// Context attributes to break cost down by (e.g. `["tier"]`); read from whichever
    /// kind of the context has the attribute.
    #[serde(default)]
    pub cost_by: Vec<String>,
    pub population: Population,
    /// What one request does, in order; by default one call of every AI Config.
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub load: Load,
    #[serde(default)]
    pub llm: LlmSpec,
    /// Changes applied while the load runs; their propagation to every SDK is measured.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Faults mock-ld injects for a while during the load (`[[faults]]`, see [`TimedFault`]).
    #[serde(default)]
    pub faults: Vec<TimedFault>,
    /// Restarts of the embedded mock-ld during the load (`[[restarts]]`, see [`Restart`]).
    #[serde(default)]
    pub restarts: Vec<Restart>,
    /// `[[checks]]` as written; [`parse`] reads them into [`Scenario::checks`].
    #[serde(default, rename = "checks")]
    check_tables: Vec<toml::Table>,
    /// Checks and thresholds (see [`checks`]), read strictly when the scenario
    /// loads.
    #[serde(skip)]
    pub checks: Vec<CheckSpec>,
    /// Values the command line set in place of the file's, by field path (`load.rate`).
    #[serde(skip)]
    pub overrides: BTreeMap<String, String>,
    /// What the loader noticed but did not refuse, located like errors (`file:line:col:
    /// field …`): with `--ld-url`, a `segmentMatch` on a segment the file does not define.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn default_seed() -> u64 {
    1
}

fn default_project() -> String {
    "default".to_owned()
}

fn default_environment() -> String {
    "test".to_owned()
}

/// An AI Config and its targeting in the environment under test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiConfigSpec {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    pub variations: Vec<VariationSpec>,
    /// Semantic-patch instructions (LaunchDarkly's REST API vocabulary), with variations
    /// named by key: `variation = "large"` and `rollout = { large = 60, small = 40 }`
    /// (percentages) become `variationId` and `rolloutWeights`.
    #[serde(default)]
    pub targeting: Vec<Spanned<toml::Table>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Completion,
    Agent,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Completion => "completion",
            Mode::Agent => "agent",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariationSpec {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    pub model: ModelSpec,
    /// Completion mode: the prompt, with `{{variables}}` and `{{ldctx.…}}`.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Agent mode: the instructions, with `{{variables}}`.
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Vec<Tool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub parameters: toml::Table,
    #[serde(default)]
    pub custom: toml::Table,
}

fn default_provider() -> String {
    "openai".to_owned()
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: toml::Table,
}

/// A segment, by key; members and rules in LaunchDarkly's segment shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub included: Vec<String>,
    #[serde(default)]
    pub excluded: Vec<String>,
    /// Segment semantic-patch instructions, applied after creation.
    #[serde(default)]
    pub instructions: Vec<toml::Table>,
}

/// Price of a model in USD per million tokens.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// One AI call of a request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub config: String,
    /// Variables for the prompt template.
    #[serde(default)]
    pub variables: toml::Table,
    /// The user message appended to the configured messages.
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Share of calls whose user leaves feedback (positive with `positive_feedback`).
    #[serde(default)]
    pub feedback_rate: f64,
    #[serde(default = "default_positive")]
    pub positive_feedback: f64,
    /// Call the LLM when the config is enabled; `false` measures evaluation alone.
    #[serde(default = "default_true")]
    pub call_llm: bool,
    /// What the built-in application does when the LLM call fails; by default nothing
    /// (the step fails at the first error).
    #[serde(default)]
    pub on_error: OnError,
}

/// `on_error = { retries = 2, backoff = "500ms", max_retry_after = "10s", fallback_model =
/// "gpt-4o-mini" }`: a failed LLM call (429, 5xx, a timeout or transport error; not another
/// 4xx) is retried up to `retries` times, each after the answer's `Retry-After` when it has
/// one (above `max_retry_after`: no more retries), else after `backoff` doubled per retry
/// with jitter; then, if still failed, `fallback_model` is called once with the same
/// messages, or the step fails. Waits are wall-clock time, not scaled by `time_scale`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnError {
    /// Calls after the first, at most.
    #[serde(default)]
    pub retries: u32,
    /// The wait before the first retry when the answer has no `Retry-After`; doubled for
    /// each later one, with jitter (between half and all of it).
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; an answer asking for longer ends the retries.
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// A model called once, with the same messages, when the retries did not succeed.
    #[serde(default)]
    pub fallback_model: Option<String>,
}

impl Default for OnError {
    fn default() -> Self {
        OnError {
            retries: 0,
            backoff: default_backoff(),
            max_retry_after: default_max_retry_after(),
            fallback_model: None,
        }
    }
}

impl OnError {
    /// Whether a failed call is ever retried or replaced: today's behaviour when not.
    pub fn acts(&self) -> bool {
        self.retries > 0 || self.fallback_model.is_some()
    }

    /// The wait before retry `call` (1 first) of an answer without `Retry-After`, before
    /// its jitter (between half and all of it): `backoff` doubled per retry, at most
    /// [`bounds::MAX_RETRY_WAIT`].
    pub fn full_backoff(&self, call: u32) -> Duration {
        self.backoff
            .saturating_mul(1 << call.saturating_sub(1).min(20))
            .min(bounds::MAX_RETRY_WAIT)
    }
}

fn default_backoff() -> Duration {
    Duration::from_millis(500)
}

fn default_max_retry_after() -> Duration {
    Duration::from_secs(10)
}

fn default_prompt() -> String {
    "Help me with my account.".to_owned()
}

fn default_positive() -> f64 {
    0.8
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    /// A fixed number of virtual users, each starting its next request when one ends.
    #[default]
    Closed,
    /// Requests arrive on a schedule, whether or not earlier ones are done.
    Open,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub model: LoadModel,
    /// Closed model: concurrent virtual users.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests in all; by default one per context of the population.
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Open model: requests per second (with `duration`), or `stages`.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Open model: requests in flight at most; later arrivals wait, and their wait counts
    /// in the corrected latency.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// SDK client instances; contexts are spread over them. The Rust SDK's only: each
    /// worker process of the Python or Node SDK has one client.
    #[serde(default = "default_one")]
    pub sdk_clients: usize,
    /// Which SDK runs the load: the Rust SDK in this process, or worker processes running
    /// the Python or Node SDK and AI SDK (`aiconfig-harness setup-workers` installs them).
    #[serde(default)]
    pub sdk: SdkKind,
    /// Python and Node: worker processes; by default one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Python and Node: the team's own request handler, called per step instead of the
    /// built-in LLM call and tracking (Python `module:function` or `file.py:function`,
    /// Node `file.mjs#export`; a file relative to the scenario's directory).
    #[serde(default)]
    pub handler: Option<String>,
    /// Python and Node: how many of the population's first contexts run again after the
    /// load, through one worker and through the Rust SDK, for the built-in `sdk_parity`
    /// check (`checks::parity`); 0 turns it off.
    #[serde(default = "default_parity_sample")]
    pub parity_sample: u64,
    #[serde(default)]
    pub events: EventsSpec,
    /// How long the application waits for each SDK client to initialize (the Rust SDK's
    /// `wait_for_initialization`, Python's `start_wait`, Node's `waitForInitialization`).
    /// Past it the run is an error, unless a start-up fault is planned
    /// ([`TimedFault::is_startup`]): then the load starts with the client uninitialized, and
    /// it serves the fallback until it initializes, as a real application does.
    #[serde(default = "default_init_timeout", with = "humantime_serde")]
    pub init_timeout: Duration,
    /// The built-in stall check (see [`crate::checks::stall`]); `false` turns it off.
    #[serde(default = "default_true")]
    pub stall_check: bool,
    /// The stall check's limit, instead of the longest planned request.
    #[serde(default, with = "humantime_serde")]
    pub stall_after: Option<Duration>,
    /// When the load generator counts as overloaded.
    #[serde(default)]
    pub overload: OverloadSpec,
}

impl Default for Load {
    fn default() -> Self {
        toml::from_str("").expect("every load field has a default")
    }
}

/// The SDK a run drives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SdkKind {
    /// `launchdarkly-server-sdk` 3.2.0 with the harness's own AI layer, in-process.
    #[default]
    Rust,
    /// `launchdarkly-server-sdk` + `launchdarkly-server-sdk-ai` in worker processes.
    Python,
    /// `@launchdarkly/node-server-sdk` + `@launchdarkly/server-sdk-ai` in worker processes.
    Node,
}

impl SdkKind {
    pub const NAMES: [&'static str; 3] = ["rust", "python", "node"];

    pub fn name(self) -> &'static str {
        match self {
            SdkKind::Rust => "rust",
            SdkKind::Python => "python",
            SdkKind::Node => "node",
        }
    }
}

impl std::str::FromStr for SdkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rust" => Ok(SdkKind::Rust),
            "python" => Ok(SdkKind::Python),
            "node" => Ok(SdkKind::Node),
            other => Err(format!(
                "unknown SDK {other:?}: one of {}",
                SdkKind::NAMES.join(", ")
            )),
        }
    }
}

fn default_init_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_parity_sample() -> u64 {
    200
}

fn default_concurrency() -> usize {
    16
}

fn default_max_in_flight() -> usize {
    10_000
}

fn default_one() -> usize {
    1
}

/// A ramp stage: move linearly to `target` requests per second over `duration`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    pub target: f64,
}

/// The SDK's event processor. LaunchDarkly's default capacity of 500 drops events under
/// load, so the default here is large; set it to 500 to see what production would lose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    /// `false` starts the SDK clients without an event processor: nothing is tracked or
    /// verified, so the run measures evaluation alone.
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    #[serde(default = "default_flush", with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for EventsSpec {
    fn default() -> Self {
        EventsSpec {
            enabled: true,
            capacity: default_capacity(),
            flush_interval: default_flush(),
        }
    }
}

fn default_capacity() -> usize {
    100_000
}

fn default_flush() -> Duration {
    Duration::from_secs(5)
}

/// `[load.overload]`: when the load generator counts as overloaded, and latency checks and
/// latency baseline comparisons become inconclusive (`results::harness`). Each bound left
/// out keeps its default ([`OverloadBounds::default`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadSpec {
    /// p99 of the lag probe, the open model's schedule lag and the simulator's lateness.
    #[serde(default, with = "humantime_serde")]
    pub lag_p99: Option<Duration>,
    /// The harness's CPU time over the load's wall time on every core.
    pub cpu_share: Option<f64>,
    /// Shares of the load's wall time the machine stalled (`/proc/pressure/*`, `some`).
    pub cpu_pressure: Option<f64>,
    pub memory_pressure: Option<f64>,
    pub io_pressure: Option<f64>,
}

impl OverloadSpec {
    pub fn bounds(&self) -> OverloadBounds {
        let d = OverloadBounds::default();
        OverloadBounds {
            lag_p99_ms: self.lag_p99.map_or(d.lag_p99_ms, |l| l.as_secs_f64() * 1e3),
            cpu_share: self.cpu_share.unwrap_or(d.cpu_share),
            cpu_pressure: self.cpu_pressure.unwrap_or(d.cpu_pressure),
            memory_pressure: self.memory_pressure.unwrap_or(d.memory_pressure),
            io_pressure: self.io_pressure.unwrap_or(d.io_pressure),
        }
    }
}

/// How the simulated LLM provider behaves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// Multiplies every simulated latency: 0.01 runs a scenario of 2 s calls in CI time;
    /// 0 answers at once. Unset, the scenario's models run at their own speed and other
    /// models at mock-ld's (an external mock-ld may have its own default).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// Stream responses (time to first token is then measured).
    #[serde(default = "default_true")]
    pub stream: bool,
    /// An OpenAI-compatible base URL to call instead of mock-ld's simulator.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelBehaviour>,
}

impl Default for LlmSpec {
    fn default() -> Self {
        toml::from_str("").expect("every llm field has a default")
    }
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelBehaviour {
    pub latency: DurationDist,
    #[serde(default)]
    pub ttft: Option<DurationDist>,
    #[serde(default)]
    pub output_tokens: Option<CountDist>,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub error_status: Option<u16>,
}

/// A log-normal distribution given by its median and 99th percentile.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationDist {
    #[serde(with = "humantime_serde")]
    pub median: Duration,
    #[serde(with = "humantime_serde")]
    pub p99: Duration,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountDist {
    pub median: f64,
    pub p99: f64,
}

/// A change made during the run: to an AI Config (`config` with `targeting` or
/// `update_variation`), or to the simulated LLM (`llm`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// The AI Config changed; empty for an `llm` action.
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Targeting instructions, as in `ai_configs.targeting`.
    #[serde(default)]
    pub targeting: Vec<Spanned<toml::Table>>,
    /// A new version of one variation (a prompt or model change).
    #[serde(default)]
    pub update_variation: Option<VariationUpdate>,
    /// A change of mock-ld's simulated latency for one model, undone after `for`.
    #[serde(default)]
    pub llm: Option<LlmChange>,
}

impl Action {
    /// Whether it changes an AI Config (and so has a propagation to measure).
    pub fn changes_flags(&self) -> bool {
        self.llm.is_none()
    }
}

/// `llm = { model = "gpt-4o", latency_factor = 20, for = "4s" }`: the model's simulated
/// latencies (time to first token, total, errors) are multiplied by `latency_factor` for
/// requests that arrive during `for`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmChange {
    pub model: String,
    pub latency_factor: f64,
    #[serde(rename = "for", with = "humantime_serde")]
    pub duration: Duration,
}

/// `[[faults]]`: one of mock-ld's faults (`mock_ld::faults`), switched on `at` after the
/// load starts and off `duration` later, in wall-clock time (not scaled by `time_scale`:
/// an outage lasts as long whatever the simulated models' speed). The fault's own fields are
/// mock-ld's `FaultSpec`, in this file's style: `retry_after` and `latency` are durations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(default)]
    pub description: Option<String>,
    pub kind: mock_ld::faults::FaultKind,
    /// The status refusing kinds answer with (each kind has a default and a range).
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` of `eventsError` and `llmRateLimited`, in whole seconds.
    #[serde(default, with = "humantime_serde")]
    pub retry_after: Option<Duration>,
    /// What `sdkSlow` and `llmLatencySpike` add, in whole milliseconds.
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// `sdkThrottled`: the SDK responses' bandwidth, bytes per second.
    #[serde(default)]
    pub bytes_per_second: Option<u64>,
    /// `llm*` kinds: the one model affected; every model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// SDK kinds: the environment whose endpoints misbehave; the scenario's by default.
    #[serde(default)]
    pub environment: Option<String>,
}

impl TimedFault {
    /// A fault at `0s` of a kind that acts on what an SDK needs to initialize (its stream,
    /// or every SDK endpoint): switched on before the SDK clients start, its `duration`
    /// counted from then (wall clock), so that they start while LaunchDarkly misbehaves.
    pub fn is_startup(&self) -> bool {
        use mock_ld::faults::FaultKind as K;
        self.at.is_zero()
            && matches!(
                self.kind,
                K::StreamRefused
                    | K::StreamDropped
                    | K::StreamStalled
                    | K::StreamMalformed
                    | K::SdkUnavailable
                    | K::SdkSlow
                    | K::SdkThrottled
            )
    }

    /// The fault as mock-ld takes it (`POST /admin/faults`), in `project`, with SDK kinds
    /// in `environment` unless the fault names its own. Sub-unit remainders of
    /// `retry_after` and `latency` are refused by validation, so nothing is rounded here.
    pub fn spec(&self, project: &str, environment: &str) -> mock_ld::faults::FaultSpec {
        let sdk = !self.kind.is_llm();
        mock_ld::faults::FaultSpec {
            kind: self.kind,
            status: self.status,
            retry_after: self.retry_after.map(|d| d.as_secs()),
            latency_ms: self.latency.map(|d| d.as_millis() as u64),
            bytes_per_second: self.bytes_per_second,
            project: sdk.then(|| project.to_owned()),
            environment: self
                .environment
                .clone()
                .or_else(|| sdk.then(|| environment.to_owned())),
            model: self.model.clone(),
        }
    }
}

/// `[[restarts]]`: the embedded mock-ld (LaunchDarkly's part: SDK endpoints, events, REST
/// API) stopped at once `at` after the load starts, as `kill -9` stops a process (no
/// snapshot; only what its `--state` journal holds survives), and started again `down`
/// later on the same port with the same state. Wall-clock time, like `[[faults]]`. The
/// simulated provider runs apart and stays up, as a provider does when LaunchDarkly is down.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// How long mock-ld is down: connections to it are refused meanwhile.
    #[serde(with = "humantime_serde")]
    pub down: Duration,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariationUpdate {
    pub key: String,
    #[serde(default)]
    pub messages: Option<Vec<Message>>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub model: Option<ModelSpec>,
}

impl Scenario {
    /// Whether a `[[faults]]` entry is on while the SDK clients start, so that an
    /// initialization timeout is what the run measures rather than an error.
    pub fn startup_fault_planned(&self) -> bool {
        self.faults.iter().any(TimedFault::is_startup)
    }

    /// The steps of one request: as written, or one call of every AI Config.
    pub fn effective_steps(&self) -> Vec<Step> {
        if !self.steps.is_empty() {
            return self.steps.clone();
        }
        self.ai_configs
            .iter()
            .map(|c| Step {
                config: c.key.clone(),
                variables: toml::Table::new(),
                prompt: default_prompt(),
                feedback_rate: 0.0,
                positive_feedback: default_positive(),
                call_llm: true,
                on_error: OnError::default(),
            })
            .collect()
    }

    /// Requests in all for a closed-model or counted run.
    pub fn iterations(&self) -> u64 {
        self.load.iterations.unwrap_or(self.population.count)
    }
}
