//! aiconfig-harness: load tests and observability checks for LaunchDarkly AI Configs.
//!
//! Module map:
//! - [`ai`]: the AI Config layer, LaunchDarkly's Python AI SDK 1.2.0 event for event over the
//!   real Rust SDK: configs, Mustache prompts, per-run trackers.
//! - [`ld_client`]: the real LaunchDarkly Rust SDK, built for plain-HTTP mock-ld or Relay.
//! - [`ld_api`]: a client of LaunchDarkly's REST API v2 (setup, and targeting read back).
//! - [`cli`]: the commands behind `main`, output files and exit codes.
//! - [`checks`]: a run's checks (exact and statistical rollout split, event completeness,
//!   thresholds), with an independent predictor of LaunchDarkly's evaluation.
//! - [`cost`]: model prices and the cost of a run per model, config, variation and kind.
//! - [`compare`]: baselines (`baseline save`) and `compare`: per-metric tolerances and a
//!   Kolmogorov–Smirnov test on the latency histograms.
//! - [`runner`]: `run`: setup through the REST API, load models, actions, events.
//! - [`demo`]: the embedded default job: mock-ld in-process, the demo AI Config, the real
//!   SDK over thousands of contexts, and what arrived.
//! - [`metrics`]: HDR latency histograms and counts per variation, kind and second.
//! - [`process`]: the harness's own process: no transparent huge pages, and its CPU time
//!   (a run's `harness.cpuSeconds`).
//! - [`results`]: everything a run produces, and its verdict: the one model every output
//!   renders (`results.json`, schema generated from it).
//! - [`served`]: what each context was served, recorded by the runner for the exact
//!   rollout check.
//! - [`report`]: `report.html` (with SVG charts), `summary.md` and `junit.xml` of a run.
//! - [`scenario`]: scenario files: setup, population, load, LLM behaviour, actions, checks.
//! - [`split`]: statistics of rollout splits (chi-square goodness of fit).
//!
//! mock-ld, the local LaunchDarkly, is its own crate (`mock-ld/`).

pub mod ai;
pub mod checks;
pub mod cli;
pub mod compare;
pub mod cost;
pub mod demo;
pub mod ld_api;
pub mod ld_client;
pub mod metrics;
pub mod process;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod served;
pub mod split;
