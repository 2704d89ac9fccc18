//! A simulated OpenAI-compatible LLM provider, so load tests need no real model.
//!
//! `POST /v1/chat/completions` answers like OpenAI's chat completions API, whole or
//! streamed, with latency, time to first token, token counts and errors drawn from the
//! requested model's [`Profile`]. `/admin/llm` sets profiles and reads counts.
//!
//! - [`profile`]: the behaviour model (log-normal distributions) and one request's plan.
//! - `simulator`: profiles by model, seeded per-request randomness, counts.
//! - `lateness`: how late the simulator's answers went out against their plan.
//! - `wire`: OpenAI's request, response, chunk and error shapes.
//! - `completions`: the endpoint, including the timed SSE stream.
//! - `sent`: the plan told in response headers, and when a whole answer left.
//! - `control`: the `/admin/llm` routes.
//! - `file`: `--llm-profiles` files.

mod completions;
mod control;
mod file;
pub mod lateness;
pub mod profile;
mod sent;
mod simulator;
mod wire;

use axum::routing::{get, post, put};
use axum::Router;

pub use file::{load_profiles, Profiles};
pub use lateness::LatenessReport;
pub use profile::{Dist, Profile, MAX_OUTPUT_TOKENS};
pub use sent::{PLAN_LATENCY_HEADER, PLAN_TTFT_HEADER, TIME_SCALE_HEADER};
pub use simulator::{Drawn, ModelStats, Simulator, DEFAULT_MODEL};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(completions::chat_completions))
        .route("/admin/llm/models", get(control::list_models))
        // A wildcard, so model names with a slash (`meta-llama/Llama-3-8B`) need no escaping.
        .route("/admin/llm/models/{*model}", put(control::put_model))
        .route("/admin/llm/stats", get(control::stats))
        .route("/admin/llm/lateness", get(control::lateness))
}
