//! A step's `on_error` at run time: which failed LLM calls are retried, how long the
//! application waits before each retry, and the seed each call sends. The same rules are
//! written in the Python and Node workers (`workers/python/aiconfig_worker.py`,
//! `workers/node/lib/retry.mjs`), so that every SDK's run makes the same calls.

use std::time::Duration;

use super::llm_call::LlmOutcome;
use crate::scenario::OnError;

/// SplitMix64's increment, the golden ratio in 64 bits.
pub const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64: neighbouring inputs give unrelated outputs.
pub fn mix64(x: u64) -> u64 {
    finalize(x.wrapping_add(GOLDEN))
}

/// SplitMix64's finalizer, the one copy in the harness (`mix64`, `call::request_seed`).
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `X-Mock-Seed` of call `call` (0 first) of a step whose identity is `seed`: the
/// first call keeps the step's seed (so runs without retries draw as before), each later
/// one its own, so a retry is a new draw of the simulator rather than the same failure.
pub fn attempt_seed(seed: u64, call: u32) -> u64 {
    if call == 0 {
        seed
    } else {
        mix64(seed ^ u64::from(call))
    }
}

/// How long to wait before call `call` (1 for the first retry), after `failed`; `None`
/// when the application stops retrying: the failure is not one to retry, or its
/// `Retry-After` is above `max_retry_after`. Without `Retry-After`: `backoff` doubled per
/// retry ([`OnError::full_backoff`]), times a jitter between ½ and 1 drawn from the run's
/// seed, the step's identity and the call.
pub fn wait_before(
    policy: &OnError,
    (run_seed, seed): (u64, u64),
    call: u32,
    failed: &LlmOutcome,
) -> Option<Duration> {
    if !failed.retryable() {
        return None;
    }
    if let Some(asked) = failed.retry_after {
        return (asked <= policy.max_retry_after).then_some(asked);
    }
    let full = policy.full_backoff(call);
    Some(full.mul_f64(0.5 + 0.5 * jitter(run_seed, seed, call)))
}

/// A fraction in [0, 1) from 53 bits of the mix.
fn jitter(run_seed: u64, seed: u64, call: u32) -> f64 {
    (mix64(run_seed ^ attempt_seed(seed, call)) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::bounds::MAX_RETRY_WAIT;

    fn failed(status: Option<u16>, retry_after: Option<u64>) -> LlmOutcome {
        LlmOutcome {
            error: Some("failed".into()),
            status,
            retry_after: retry_after.map(Duration::from_secs),
            ..LlmOutcome::default()
        }
    }

    fn policy() -> OnError {
        OnError {
            retries: 3,
            backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(2),
            fallback_model: None,
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let wait = |after| wait_before(&p, (1, 2), 1, &failed(Some(429), Some(after)));
        assert_eq!(wait(1), Some(Duration::from_secs(1)));
        assert_eq!(wait(2), Some(Duration::from_secs(2)));
        assert_eq!(wait(3), None, "above max_retry_after: no more retries");
    }

    #[test]
    fn only_429_5xx_and_transport_errors_are_retried() {
        let p = policy();
        for (status, retried) in [
            (Some(429), true),
            (Some(500), true),
            (Some(504), true),
            (None, true),
            (Some(400), false),
            (Some(404), false),
        ] {
            assert_eq!(
                wait_before(&p, (1, 2), 1, &failed(status, None)).is_some(),
                retried,
                "{status:?}"
            );
        }
        let ok = LlmOutcome::default();
        assert_eq!(wait_before(&p, (1, 2), 1, &ok), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_drawn_from_the_identity() {
        let p = policy();
        let f = failed(Some(503), None);
        for call in 1..=3 {
            let full = Duration::from_millis(100 << (call - 1));
            let wait = wait_before(&p, (7, 99), call, &f).unwrap();
            assert!(wait >= full / 2 && wait <= full, "{call}: {wait:?}");
            assert_eq!(
                Some(wait),
                wait_before(&p, (7, 99), call, &f),
                "same seed, same wait"
            );
        }
        assert_ne!(
            wait_before(&p, (7, 99), 1, &f),
            wait_before(&p, (8, 99), 1, &f)
        );
        let long = OnError {
            backoff: MAX_RETRY_WAIT,
            retries: 10,
            ..policy()
        };
        assert!(wait_before(&long, (7, 99), 10, &f).unwrap() <= MAX_RETRY_WAIT);
    }

    #[test]
    fn the_first_call_keeps_the_steps_seed() {
        assert_eq!(attempt_seed(42, 0), 42);
        assert_ne!(attempt_seed(42, 1), 42);
        assert_ne!(attempt_seed(42, 1), attempt_seed(42, 2));
        // The values the Python and Node workers' copies are checked against.
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(attempt_seed(42, 1), 13_432_527_470_776_545_160);
        // The simulator's seeds per request and step, as they were before the finalizer
        // was shared: the same seed still draws the same run.
        use super::super::call::request_seed;
        assert_eq!(request_seed(0, 0), 0);
        assert_eq!(request_seed(1, 0), 16_294_208_416_658_607_535);
        assert_eq!(request_seed(7, 2), 9_679_842_854_367_843_133);
        assert_eq!(request_seed((1 << 40) + 3, 5), 14_373_043_092_935_501_496);
    }
}
