//! How a simulated model behaves: a [`Profile`] of log-normal distributions, and the
//! [`Plan`] one request draws from it.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use axum::http::StatusCode;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The 99th percentile of the standard normal distribution: a log-normal's p99 lies this
/// many sigmas above its median (in log space).
const Z_P99: f64 = 2.326_347_874;

/// Errors answer sooner than replies (a rejected request does little work), unless the
/// profile sets `errorLatencyMs`.
const ERROR_LATENCY_FRACTION: f64 = 0.2;

/// No simulated wait is longer than a day, so a wild profile cannot overflow a deadline.
const MAX_WAIT_SECS: f64 = 86_400.0;

/// The most tokens one reply has, whatever its profile draws: mock-ld writes one word per
/// token (about 6 bytes), so this bounds a reply at about 600 KB, past the output limit of
/// any current model. A log-normal tail (or a profile set through `/admin/llm` with a huge
/// p99) would otherwise draw up to `u32::MAX` tokens and build a reply of gigabytes.
pub const MAX_OUTPUT_TOKENS: u32 = 100_000;

/// The behaviour of one model. Every field is optional in JSON; missing ones take the
/// defaults of [`Profile::default`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Profile {
    /// Total time from request to the last token.
    pub latency_ms: Dist,
    /// Time to the first content token, capped at the total latency.
    pub ttft_ms: Dist,
    pub output_tokens: Dist,
    /// Fixes the prompt's token count; without it, tokens are counted from the messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Dist>,
    /// Share of requests answered with `errorStatus`, from 0 to 1.
    #[serde(deserialize_with = "probability")]
    pub error_rate: f64,
    #[serde(deserialize_with = "error_status")]
    pub error_status: u16,
    /// Time to an error answer; without it, a fifth of a sampled latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_latency_ms: Option<Dist>,
    /// Multiplies every latency, so tests can run a realistic profile fast (0 = no waiting).
    #[serde(deserialize_with = "scale")]
    pub time_scale: f64,
}

impl Default for Profile {
    /// A mid-sized hosted model: 1.2 s median, 250 ms to first token, 150 tokens out.
    fn default() -> Self {
        Profile {
            latency_ms: Dist::new(1200.0, 4000.0),
            ttft_ms: Dist::new(250.0, 1000.0),
            output_tokens: Dist::new(150.0, 600.0),
            input_tokens: None,
            error_rate: 0.0,
            error_status: 500,
            error_latency_ms: None,
            time_scale: 1.0,
        }
    }
}

/// A log-normal distribution given by its median and 99th percentile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DistSpec")]
pub struct Dist {
    pub median: f64,
    pub p99: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistSpec {
    median: f64,
    p99: f64,
}

impl TryFrom<DistSpec> for Dist {
    type Error = String;

    fn try_from(spec: DistSpec) -> Result<Self, String> {
        let DistSpec { median, p99 } = spec;
        if !(median.is_finite() && median > 0.0) {
            return Err(format!("median must be a positive number, not {median}"));
        }
        if !(p99.is_finite() && p99 >= median) {
            return Err(format!(
                "p99 ({p99}) must be at least the median ({median})"
            ));
        }
        Ok(Dist { median, p99 })
    }
}

impl Dist {
    /// `median` and `p99` must satisfy `0 < median <= p99`, as deserializing checks.
    pub const fn new(median: f64, p99: f64) -> Self {
        Dist { median, p99 }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        let sigma = (self.p99 / self.median).ln() / Z_P99;
        let z: f64 = rng.sample(StandardNormal);
        self.median * (sigma * z).exp()
    }

    /// A count: rounded, and at least 1.
    fn sample_count(&self, rng: &mut impl Rng) -> u32 {
        self.sample(rng).round().clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

/// What one request will do, drawn before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    Reply(Reply),
    Fail { status: StatusCode, after: Duration },
}

impl Plan {
    /// The same outcome, every wait `extra` later (a latency spike).
    pub fn delayed(self, extra: Duration) -> Plan {
        match self {
            Plan::Reply(reply) => Plan::Reply(Reply {
                latency: reply.latency + extra,
                ttft: reply.ttft + extra,
                ..reply
            }),
            Plan::Fail { status, after } => Plan::Fail {
                status,
                after: after + extra,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reply {
    pub latency: Duration,
    /// At most `latency`.
    pub ttft: Duration,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// The sampled output exceeded the request's `max_tokens` and was cut to it.
    pub truncated: bool,
}

impl Profile {
    /// Draws one request's outcome. `counted_prompt_tokens` is the prompt's size as counted
    /// from its messages; `max_tokens` is the request's cap on output. The draws happen in a
    /// fixed order, so a seeded RNG always gives the same plan.
    pub fn plan(
        &self,
        rng: &mut impl Rng,
        counted_prompt_tokens: u32,
        max_tokens: Option<u32>,
    ) -> Plan {
        // A comparison rather than `random_bool`, which panics on a rate outside 0..=1 that
        // a profile built in code (not deserialized) could carry.
        let failed = rng.random::<f64>() < self.error_rate;
        let latency_ms = self.latency_ms.sample(rng);
        if failed {
            let after_ms = match &self.error_latency_ms {
                Some(dist) => dist.sample(rng),
                None => latency_ms * ERROR_LATENCY_FRACTION,
            };
            return Plan::Fail {
                status: StatusCode::from_u16(self.error_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                after: self.scaled(after_ms),
            };
        }
        let ttft_ms = self.ttft_ms.sample(rng).min(latency_ms);
        let sampled = self.output_tokens.sample_count(rng);
        let prompt_tokens = match &self.input_tokens {
            Some(dist) => dist.sample_count(rng),
            None => counted_prompt_tokens,
        };
        let cap = max_tokens.unwrap_or(u32::MAX).clamp(1, MAX_OUTPUT_TOKENS);
        Plan::Reply(Reply {
            latency: self.scaled(latency_ms),
            ttft: self.scaled(ttft_ms),
            prompt_tokens,
            completion_tokens: sampled.min(cap),
            truncated: sampled > cap,
        })
    }

    fn scaled(&self, ms: f64) -> Duration {
        scaled(ms, self.time_scale)
    }
}

/// `ms` of the model's time in real time at `time_scale`, at most [`MAX_WAIT_SECS`]: any
/// scale a profile accepts (up to `f64::MAX`) gives a wait, never a panic.
pub fn scaled(ms: f64, time_scale: f64) -> Duration {
    let secs = ms * time_scale / 1000.0;
    Duration::try_from_secs_f64(secs.min(MAX_WAIT_SECS)).unwrap_or_default()
}

fn probability<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    de.deserialize_any(Bounded {
        range: 0.0..=1.0,
        integer: false,
        expecting: "a number from 0 to 1",
    })
}

fn error_status<'de, D: Deserializer<'de>>(de: D) -> Result<u16, D::Error> {
    let expecting = "an HTTP error status (400 to 599)";
    let status = de.deserialize_any(Bounded {
        range: 400.0..=599.0,
        integer: true,
        expecting,
    })?;
    Ok(status as u16)
}

fn scale<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    de.deserialize_any(Bounded {
        range: 0.0..=f64::MAX,
        integer: false,
        expecting: "a number of at least 0",
    })
}

/// Checks a number's range while the parser still knows where the number is, so a bad value
/// in a YAML file is reported at its own line rather than at its profile's.
struct Bounded {
    range: RangeInclusive<f64>,
    integer: bool,
    expecting: &'static str,
}

impl Visitor<'_> for Bounded {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        self.check(v, Unexpected::Float(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        self.check(v as f64, Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        self.check(v as f64, Unexpected::Signed(v))
    }
}

impl Bounded {
    fn check<E: de::Error>(&self, v: f64, unexpected: Unexpected) -> Result<f64, E> {
        if self.range.contains(&v) && !(self.integer && v.fract() != 0.0) {
            Ok(v)
        } else {
            Err(E::invalid_value(unexpected, self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const SAMPLES: usize = 20_000;

    /// The sample's median and p99 (nearest rank).
    fn quantiles(dist: Dist, seed: u64) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut xs: Vec<f64> = (0..SAMPLES).map(|_| dist.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        (xs[SAMPLES / 2], xs[SAMPLES * 99 / 100])
    }

    fn assert_within(actual: f64, expected: f64, tolerance: f64) {
        let error = (actual - expected).abs() / expected;
        assert!(
            error <= tolerance,
            "{actual} is {:.2} % off {expected}",
            error * 100.0
        );
    }

    #[test]
    fn samples_match_the_configured_median_and_p99() {
        for (dist, seed) in [
            (Dist::new(800.0, 3000.0), 1),
            (Dist::new(30.0, 31.0), 2),
            (Dist::new(150.0, 2000.0), 3),
        ] {
            let (median, p99) = quantiles(dist, seed);
            assert_within(median, dist.median, 0.02);
            assert_within(p99, dist.p99, 0.05);
        }
    }

    #[test]
    fn equal_median_and_p99_is_a_constant() {
        let mut rng = StdRng::seed_from_u64(0);
        let dist = Dist::new(42.0, 42.0);
        assert!((0..100).all(|_| dist.sample(&mut rng) == 42.0));
    }

    #[test]
    fn plans_are_deterministic_for_a_seed() {
        let profile = Profile {
            error_rate: 0.3,
            ..Profile::default()
        };
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| profile.plan(&mut rng, 10, None))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn errors_follow_the_error_rate() {
        let profile = Profile {
            error_rate: 0.1,
            error_status: 429,
            ..Profile::default()
        };
        let mut rng = StdRng::seed_from_u64(11);
        let failures = (0..SAMPLES)
            .filter(|_| matches!(profile.plan(&mut rng, 1, None), Plan::Fail { status, .. } if status == StatusCode::TOO_MANY_REQUESTS))
            .count();
        // Binomial(20000, 0.1): mean 2000, standard deviation 42.4; allow 5 of them.
        assert!((1788..=2212).contains(&failures), "{failures} failures");
    }

    #[test]
    fn ttft_never_exceeds_latency_and_tokens_are_at_least_one() {
        let profile = Profile {
            latency_ms: Dist::new(10.0, 100.0),
            ttft_ms: Dist::new(50.0, 500.0),
            output_tokens: Dist::new(1.0, 50.0),
            ..Profile::default()
        };
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..SAMPLES {
            let Plan::Reply(reply) = profile.plan(&mut rng, 3, None) else {
                panic!("no errors configured")
            };
            assert!(reply.ttft <= reply.latency);
            assert!(reply.completion_tokens >= 1);
            assert_eq!(reply.prompt_tokens, 3);
        }
    }

    #[test]
    fn any_accepted_time_scale_scales_to_a_bounded_wait() {
        assert_eq!(scaled(5000.0, 0.001), Duration::from_millis(5));
        assert_eq!(scaled(1.0, f64::MAX), Duration::from_secs(86_400));
        assert_eq!(scaled(1000.0, 0.0), Duration::ZERO);
    }

    #[test]
    fn no_reply_is_longer_than_the_output_bound() {
        let profile = Profile {
            output_tokens: Dist::new(1e9, 1e12),
            ..Profile::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let Plan::Reply(reply) = profile.plan(&mut rng, 3, None) else {
                continue;
            };
            assert_eq!(reply.completion_tokens, MAX_OUTPUT_TOKENS);
            assert!(reply.truncated);
        }
    }

    #[test]
    fn max_tokens_truncates_and_time_scale_shrinks_latency() {
        let profile = Profile {
            latency_ms: Dist::new(1000.0, 1000.0),
            output_tokens: Dist::new(100.0, 100.0),
            input_tokens: Some(Dist::new(7.0, 7.0)),
            time_scale: 0.01,
            ..Profile::default()
        };
        let Plan::Reply(reply) = profile.plan(&mut StdRng::seed_from_u64(0), 3, Some(40)) else {
            panic!()
        };
        assert_eq!(
            (
                reply.completion_tokens,
                reply.truncated,
                reply.prompt_tokens
            ),
            (40, true, 7)
        );
        assert_eq!(reply.latency, Duration::from_millis(10));
    }

    #[test]
    fn errors_come_after_a_fraction_of_the_latency_by_default() {
        let profile = Profile {
            latency_ms: Dist::new(1000.0, 1000.0),
            error_rate: 1.0,
            ..Profile::default()
        };
        let plan = profile.plan(&mut StdRng::seed_from_u64(0), 1, None);
        assert_eq!(
            plan,
            Plan::Fail {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                after: Duration::from_millis(200)
            }
        );
    }

    #[test]
    fn json_uses_camel_case_defaults_and_names_bad_fields() {
        let profile: Profile =
            serde_json::from_str(r#"{"latencyMs": {"median": 100, "p99": 400}, "errorRate": 0.5}"#)
                .unwrap();
        assert_eq!(profile.latency_ms, Dist::new(100.0, 400.0));
        assert_eq!(
            (profile.error_rate, profile.error_status, profile.time_scale),
            (0.5, 500, 1.0)
        );
        for (body, wanted) in [
            (
                r#"{"latencyMs": {"median": 100, "p99": 50}}"#,
                "p99 (50) must be at least the median (100)",
            ),
            (r#"{"errorRate": 1.5}"#, "expected a number from 0 to 1"),
            (r#"{"errorStatus": 200}"#, "400 to 599"),
            (r#"{"errorStatus": 500.5}"#, "400 to 599"),
            (r#"{"errorRate": "high"}"#, "expected a number from 0 to 1"),
            (r#"{"timeScale": -1}"#, "at least 0"),
            (r#"{"latency": {}}"#, "unknown field `latency`"),
        ] {
            let err = serde_json::from_str::<Profile>(body)
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{body}: {err}");
        }
    }
}
