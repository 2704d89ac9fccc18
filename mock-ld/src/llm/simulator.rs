//! The [`Simulator`]: profiles by model name, seeded draws, and per-model counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::lateness::Lateness;
use super::profile::{Plan, Profile};
use super::wire::ChatRequest;

/// The profile that answers for every model without one of its own.
pub const DEFAULT_MODEL: &str = "default";

/// Where the stats count requests for a model once they count
/// [`crate::bounds::Bounds::max_stat_keys`] others (a fuzz naming a new model per request).
pub const OTHER_MODELS: &str = "(other)";

/// The simulated provider's state, shared by every request.
///
/// Each request draws from its own RNG, keyed by the simulator's seed and either the
/// request's seed (`X-Mock-Seed` header, else OpenAI's `seed` field) or, without one, the
/// request's arrival number. So a given seed always gives the same plan, and a run of
/// unseeded requests gives the same set of plans whatever their concurrency (which request
/// gets which depends on arrival order).
pub struct Simulator {
    seed: u64,
    requests: AtomicU64,
    profiles: RwLock<HashMap<String, Profile>>,
    stats: Mutex<HashMap<String, ModelStats>>,
    /// Model names `stats` counts apart; the rest go under [`OTHER_MODELS`].
    max_models: usize,
    lateness: Lateness,
}

/// One request's draw: its arrival number, its plan, and the time scale the plan's waits
/// were multiplied by (its profile's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drawn {
    pub number: u64,
    pub plan: Plan,
    pub time_scale: f64,
}

/// What the simulator served for one model name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStats {
    pub requests: u64,
    pub errors: u64,
    pub streamed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl ModelStats {
    fn record(&mut self, plan: &Plan, streamed: bool) {
        self.requests += 1;
        self.streamed += u64::from(streamed);
        match plan {
            Plan::Reply(reply) => {
                self.prompt_tokens += u64::from(reply.prompt_tokens);
                self.completion_tokens += u64::from(reply.completion_tokens);
            }
            Plan::Fail { .. } => self.errors += 1,
        }
    }
}

impl Simulator {
    pub fn new(seed: u64) -> Self {
        let profiles = HashMap::from([(DEFAULT_MODEL.to_owned(), Profile::default())]);
        Simulator {
            seed,
            requests: AtomicU64::new(0),
            profiles: RwLock::new(profiles),
            stats: Mutex::default(),
            max_models: crate::bounds::Bounds::default().max_stat_keys,
            lateness: Lateness::default(),
        }
    }

    /// The same simulator, counting at most `max_models` model names apart.
    pub fn with_max_models(mut self, max_models: usize) -> Self {
        self.max_models = max_models;
        self
    }

    /// Sets how `model` behaves; [`DEFAULT_MODEL`] sets it for every model without a profile.
    pub fn set_profile(&self, model: impl Into<String>, profile: Profile) {
        self.profiles
            .write()
            .expect("profiles lock")
            .insert(model.into(), profile);
    }

    /// The profile that answers for `model`.
    pub fn profile(&self, model: &str) -> Profile {
        let profiles = self.profiles.read().expect("profiles lock");
        profiles
            .get(model)
            .or_else(|| profiles.get(DEFAULT_MODEL))
            .copied()
            .unwrap_or_default()
    }

    pub fn profiles(&self) -> BTreeMap<String, Profile> {
        let profiles = self.profiles.read().expect("profiles lock");
        profiles
            .iter()
            .map(|(model, profile)| (model.clone(), *profile))
            .collect()
    }

    pub fn stats(&self) -> BTreeMap<String, ModelStats> {
        let stats = self.stats.lock().expect("stats lock");
        stats.iter().map(|(model, s)| (model.clone(), *s)).collect()
    }

    /// How late the simulator's own answers went out.
    pub fn lateness(&self) -> &Lateness {
        &self.lateness
    }

    /// Forgets the counts and the lateness; profiles stay.
    pub fn reset_stats(&self) {
        self.stats.lock().expect("stats lock").clear();
        self.lateness.reset();
    }

    /// Numbers the request, draws its plan and counts it.
    pub(crate) fn plan(&self, request: &ChatRequest, seed: Option<u64>) -> Drawn {
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = self.rng(number, seed);
        let profile = self.profile(&request.model);
        let plan = profile.plan(&mut rng, request.prompt_tokens(), request.max_tokens());
        let mut stats = self.stats.lock().expect("stats lock");
        let known = stats.contains_key(&request.model);
        let model = if known || stats.len() < self.max_models {
            request.model.as_str()
        } else {
            OTHER_MODELS
        };
        if let Some(counts) = stats.get_mut(model) {
            counts.record(&plan, request.streams());
        } else {
            let counts = stats.entry(model.to_owned()).or_default();
            counts.record(&plan, request.streams());
        }
        Drawn {
            number,
            plan,
            time_scale: profile.time_scale,
        }
    }

    /// The request's RNG. Seeded and unseeded requests use different key spaces, so seed 5
    /// and the 5th unseeded request draw independently.
    fn rng(&self, number: u64, seed: Option<u64>) -> StdRng {
        let (space, value) = match seed {
            Some(seed) => (1u64, seed),
            None => (0, number),
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&space.to_le_bytes());
        key[16..24].copy_from_slice(&value.to_le_bytes());
        StdRng::from_seed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::profile::Dist;

    fn request(model: &str, stream: bool) -> ChatRequest {
        let body = serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "12345678"}]});
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn unknown_models_use_the_default_profile() {
        let sim = Simulator::new(0);
        let fast = Profile {
            latency_ms: Dist::new(5.0, 5.0),
            ..Profile::default()
        };
        sim.set_profile("fast", fast);
        assert_eq!(sim.profile("fast"), fast);
        assert_eq!(sim.profile("gpt-x"), Profile::default());
        assert_eq!(
            sim.profiles().keys().collect::<Vec<_>>(),
            ["default", "fast"]
        );
    }

    #[test]
    fn the_same_seeds_give_the_same_plans() {
        let plans = |sim_seed, request_seed| {
            let sim = Simulator::new(sim_seed);
            (0..20)
                .map(|_| sim.plan(&request("m", false), request_seed).plan)
                .collect::<Vec<_>>()
        };
        assert_eq!(plans(1, None), plans(1, None));
        assert_ne!(plans(1, None), plans(2, None));
        let seeded = plans(1, Some(9));
        assert!(
            seeded.windows(2).all(|w| w[0] == w[1]),
            "a request seed fixes the draw"
        );
        assert_ne!(seeded, plans(1, Some(10)));
    }

    #[test]
    fn stats_count_per_model_and_reset() {
        let sim = Simulator::new(0);
        sim.set_profile(
            "bad",
            Profile {
                error_rate: 1.0,
                ..Profile::default()
            },
        );
        let plan = sim.plan(&request("good", true), None).plan;
        sim.plan(&request("bad", false), None);
        let Plan::Reply(reply) = plan else {
            panic!("no errors configured")
        };
        let stats = sim.stats();
        let expected = ModelStats {
            requests: 1,
            streamed: 1,
            prompt_tokens: 2,
            completion_tokens: u64::from(reply.completion_tokens),
            errors: 0,
        };
        assert_eq!(stats["good"], expected);
        assert_eq!(
            stats["bad"],
            ModelStats {
                requests: 1,
                errors: 1,
                ..ModelStats::default()
            }
        );
        sim.reset_stats();
        assert!(sim.stats().is_empty());
    }

    #[test]
    fn stats_count_a_bounded_number_of_models_and_the_rest_together() {
        let sim = Simulator::new(0).with_max_models(3);
        for i in 0..10 {
            sim.plan(&request(&format!("m{i}"), false), None);
        }
        sim.plan(&request("m0", false), None);
        let stats = sim.stats();
        assert_eq!(
            stats.keys().map(String::as_str).collect::<Vec<_>>(),
            [OTHER_MODELS, "m0", "m1", "m2"]
        );
        assert_eq!(stats["m0"].requests, 2);
        assert_eq!(stats[OTHER_MODELS].requests, 7);
        assert_eq!(stats.values().map(|s| s.requests).sum::<u64>(), 11);
    }
}
