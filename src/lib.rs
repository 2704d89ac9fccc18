//! aiconfig-harness: load tests and observability checks for LaunchDarkly AI Configs.
//!
//! Module map:
//! - [`ld_client`]: the real LaunchDarkly Rust SDK, built for plain-HTTP mock-ld or Relay.
//! - [`demo`]: the embedded default job: mock-ld in-process, the demo AI Config, the real
//!   SDK over thousands of contexts, and what arrived.
//! - [`metrics`]: HDR latency histograms and counts per variation, kind and second.
//! - [`scenario`]: scenario files: setup, population, load, LLM behaviour, actions, checks.
//! - [`split`]: statistics of rollout splits (chi-square goodness of fit).
//!
//! mock-ld, the local LaunchDarkly, is its own crate (`mock-ld/`).

pub mod demo;
pub mod ld_client;
pub mod metrics;
pub mod scenario;
pub mod split;
