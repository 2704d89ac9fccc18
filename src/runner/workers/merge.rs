//! A worker's measurements into the run's [`Metrics`]: its HDR histograms decoded and
//! added (exact: an HDR merge loses nothing), its counts summed.

use super::protocol::{Hdr, SecondDelta, Tokens, VariationResult, WorkerResult};
use crate::metrics::{growing, Latency, Metrics, Second, TokenCounts, VariationMetrics};

/// Most distinct keys one worker may report per map (event keys, variations, context kinds,
/// attribute values): what a worker sends is bounded like what mock-ld counts.
const MAX_KEYS: usize = 10_000;

/// Why a worker's report could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("a histogram does not decode ({field}): {message}")]
    Histogram {
        field: &'static str,
        message: String,
    },
    #[error("{what}: more than {MAX_KEYS} distinct keys")]
    TooManyKeys { what: &'static str },
}

/// Adds an encoded histogram to `into`; `None` adds nothing.
pub fn add_histogram(
    into: &mut Latency,
    encoded: &Hdr,
    field: &'static str,
) -> Result<(), MergeError> {
    let Some(encoded) = encoded else {
        return Ok(());
    };
    let histogram = mock_ld::hdr::decode(encoded)
        .map_err(|message| MergeError::Histogram { field, message })?;
    into.merge(&Latency::from_histogram(growing(histogram)));
    Ok(())
}

/// Adds a worker's result to the run's metrics (the timeline comes from progress messages).
pub fn merge_result(metrics: &mut Metrics, r: &WorkerResult) -> Result<(), MergeError> {
    bounded("variations", r.variations.len())?;
    bounded("context kinds", r.context_kinds.len())?;
    bounded("tracked event keys", r.tracked_events.len())?;
    bounded("cost attributes", r.attribute_usage.len())?;
    metrics.requests += r.requests;
    metrics.failed_requests += r.failed_requests;
    add_histogram(
        &mut metrics.requests_corrected,
        &r.requests_corrected,
        "requestsCorrected",
    )?;
    add_histogram(&mut metrics.requests_raw, &r.requests_raw, "requestsRaw")?;
    add_histogram(&mut metrics.schedule_lag, &r.schedule_lag, "scheduleLag")?;
    add_histogram(&mut metrics.worker_lag_probe, &r.lag_probe, "lagProbe")?;
    if let Some(cpu) = r.cpu_seconds.filter(|c| c.is_finite() && *c >= 0.0) {
        metrics.worker_cpu_seconds += cpu;
    }
    for (kind, n) in &r.context_kinds {
        *metrics.context_kinds.entry(kind.clone()).or_default() += n;
    }
    for (key, n) in &r.tracked_events {
        *metrics
            .tracked_events
            .entry(key.clone().into())
            .or_default() += n;
    }
    for (config, variations) in &r.variations {
        bounded("variations", variations.len())?;
        for (variation, v) in variations {
            merge_variation(metrics.variation(config, variation), v)?;
        }
    }
    for (attribute, values) in &r.attribute_usage {
        bounded("cost attribute values", values.len())?;
        let mine = metrics
            .attribute_usage
            .entry(attribute.clone())
            .or_default();
        for (value, models) in values {
            let mine = mine.entry(value.clone()).or_default();
            for (model, tokens) in models {
                mine.entry(model.clone())
                    .or_default()
                    .add(&token_counts(tokens));
            }
        }
    }
    Ok(())
}

/// Adds a worker's figures for one variation, read into [`VariationMetrics`] first so that
/// what adding means is said once, by [`VariationMetrics::merge`].
fn merge_variation(mine: &mut VariationMetrics, v: &VariationResult) -> Result<(), MergeError> {
    let mut theirs = VariationMetrics {
        evaluations: v.evaluations,
        ai_calls: v.ai_calls,
        successes: v.successes,
        errors: v.errors,
        retries: v.retries,
        fallbacks: v.fallbacks,
        fallback_successes: v.fallback_successes,
        failed_steps: v.failed_steps,
        input_tokens: v.input_tokens,
        output_tokens: v.output_tokens,
        feedback_positive: v.feedback_positive,
        feedback_negative: v.feedback_negative,
        llm_ahead_of_plan: v.llm_ahead_of_plan,
        ..VariationMetrics::default()
    };
    for (into, encoded, field) in [
        (&mut theirs.evaluation, &v.evaluation, "evaluation"),
        (&mut theirs.ai_layer, &v.ai_layer, "aiLayer"),
        (&mut theirs.llm, &v.llm, "llm"),
        (
            &mut theirs.llm_planned_real_time,
            &v.llm_planned_real_time,
            "llmPlannedRealTime",
        ),
        (&mut theirs.llm_excess, &v.llm_excess, "llmExcess"),
        (
            &mut theirs.time_to_first_token,
            &v.time_to_first_token,
            "timeToFirstToken",
        ),
        (&mut theirs.end_to_end, &v.end_to_end, "endToEnd"),
    ] {
        add_histogram(into, encoded, field)?;
    }
    for (model, kinds) in &v.usage {
        for (kind, tokens) in kinds {
            theirs.record_usage(model, kind, token_counts(tokens));
        }
    }
    mine.merge(&theirs);
    Ok(())
}

/// One second of a progress message as the timeline's [`Second`].
pub fn second(delta: &SecondDelta) -> Result<Second, MergeError> {
    let mut second = Second {
        requests: delta.requests,
        errors: delta.errors,
        completed: delta.completed,
        llm_errors: delta.llm_errors,
        evaluations: delta.evaluations,
        fallback_served: delta.fallback_served,
        ..Second::default()
    };
    add_histogram(&mut second.latency, &delta.latency, "seconds.latency")?;
    add_histogram(&mut second.llm, &delta.llm, "seconds.llm")?;
    Ok(second)
}

fn token_counts(t: &Tokens) -> TokenCounts {
    TokenCounts {
        calls: t.calls,
        input: t.input,
        cached_input: t.cached_input,
        output: t.output,
    }
}

fn bounded(what: &'static str, n: usize) -> Result<(), MergeError> {
    if n > MAX_KEYS {
        return Err(MergeError::TooManyKeys { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::empty_histogram;

    fn encoded(values: &[u64]) -> Hdr {
        let mut h = empty_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        Some(mock_ld::hdr::encode(&h))
    }

    #[test]
    fn two_workers_merge_exactly() {
        let mut metrics = Metrics::default();
        for values in [[100, 2_000], [30_000, 4_000_000]] {
            let mut v = VariationResult {
                evaluations: 2,
                llm: encoded(&values),
                ..VariationResult::default()
            };
            v.usage.entry("gpt-4o".into()).or_default().insert(
                "user".into(),
                Tokens {
                    calls: 2,
                    input: 10,
                    cached_input: 0,
                    output: 5,
                },
            );
            let mut r = WorkerResult {
                requests: 2,
                requests_corrected: encoded(&values),
                ..WorkerResult::default()
            };
            r.variations
                .entry("c".into())
                .or_default()
                .insert("v".into(), v);
            r.tracked_events
                .insert("$ld:ai:generation:success".into(), 2);
            merge_result(&mut metrics, &r).unwrap();
        }
        assert_eq!(metrics.requests, 4);
        assert_eq!(metrics.requests_corrected.count(), 4);
        let v = &metrics.variations["c"]["v"];
        assert_eq!(v.evaluations, 4);
        assert_eq!(v.usage["gpt-4o"]["user"].input, 20);
        assert_eq!(metrics.tracked_events["$ld:ai:generation:success"], 4);
        // Exact: the max is the larger worker's, within HDR's 3 digits.
        let max = v.llm.histogram().max();
        assert!((3_996_000..=4_004_000).contains(&max), "{max}");
    }

    #[test]
    fn a_histogram_that_does_not_decode_names_its_field() {
        let mut metrics = Metrics::default();
        let r = WorkerResult {
            requests_raw: Some("not base64!".into()),
            ..WorkerResult::default()
        };
        let e = merge_result(&mut metrics, &r).unwrap_err().to_string();
        assert!(e.contains("requestsRaw"), "{e}");
    }
}
