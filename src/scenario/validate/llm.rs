//! The simulated provider's profiles and the time scale.

use super::numbers::{human, number};
use super::{Checker, Seg};
use crate::scenario::bounds::{self, count};
use crate::scenario::error::ScenarioError;
use crate::scenario::Scenario;

pub(super) fn check_llm(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let time_scale = s.llm.time_scale;
    if let Some(t) = time_scale {
        if !(t.is_finite() && (0.0..=bounds::MAX_TIME_SCALE).contains(&t)) {
            return Err(c.error(
                &[Seg::Key("llm"), Seg::Key("time_scale")],
                format!(
                    "time_scale {} is not a factor from 0 to {}",
                    number(t),
                    bounds::MAX_TIME_SCALE
                ),
            ));
        }
    }
    let scale = time_scale.unwrap_or(1.0);
    for (model, b) in &s.llm.models {
        let path = |rest: &[Seg<'static>]| {
            [
                &[
                    Seg::Key("llm"),
                    Seg::Key("models"),
                    Seg::Key(model.as_str()),
                ][..],
                rest,
            ]
            .concat()
        };
        if !(0.0..=1.0).contains(&b.error_rate) {
            return Err(c.error(
                &path(&[Seg::Key("error_rate")]),
                format!("error_rate {} is not a probability", b.error_rate),
            ));
        }
        if let Some(status) = b.error_status {
            if !(400..=599).contains(&status) {
                return Err(c.error(
                    &path(&[Seg::Key("error_status")]),
                    format!("error_status {status} is not an HTTP error status (400 to 599)"),
                ));
            }
        }
        for (key, dist) in [("latency", Some(b.latency)), ("ttft", b.ttft)] {
            let Some(dist) = dist else { continue };
            if dist.median.is_zero() {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("median")]),
                    "a median latency is above 0",
                ));
            }
            if dist.p99 < dist.median {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("p99")]),
                    "p99 must be at least the median",
                ));
            }
            let scaled = dist.p99.as_secs_f64() * scale;
            if scaled > bounds::MAX_LLM_LATENCY.as_secs_f64() {
                return Err(c.error(
                    &path(&[Seg::Key(key), Seg::Key("p99")]),
                    format!(
                        "a p99 of {} (times time_scale {scale}) is past {}, where latency histograms stop",
                        human(dist.p99),
                        human(bounds::MAX_LLM_LATENCY)
                    ),
                ));
            }
        }
        if let Some(t) = b.output_tokens {
            let at = |k| path(&[Seg::Key("output_tokens"), Seg::Key(k)]);
            if !(t.median.is_finite() && t.median > 0.0) {
                return Err(c.error(&at("median"), "a median token count is a number above 0"));
            }
            if !(t.p99.is_finite() && t.p99 >= t.median && t.p99 <= bounds::MAX_OUTPUT_TOKENS) {
                return Err(c.error(
                    &at("p99"),
                    format!(
                        "p99 is at least the median and at most {} tokens (mock-ld writes every token)",
                        count(bounds::MAX_OUTPUT_TOKENS as u64)
                    ),
                ));
            }
        }
    }
    for (model, price) in &s.prices {
        for (key, value) in [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cached_input", price.cached_input),
        ] {
            let Some(value) = value else { continue };
            if !(value.is_finite() && (0.0..=bounds::MAX_PRICE).contains(&value)) {
                return Err(c.error(
                    &[Seg::Key("prices"), Seg::Key(model.as_str()), Seg::Key(key)],
                    format!(
                        "{} is not a price in USD per million tokens from 0 to {}",
                        number(value),
                        count(bounds::MAX_PRICE as u64)
                    ),
                ));
            }
        }
    }
    Ok(())
}
