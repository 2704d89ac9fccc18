//! Rollout split, statistical: for each percentage rollout (a rule's or the fallthrough's)
//! and each context kind, Pearson's chi-square goodness of fit of the variations the SDK
//! served against the configured weights (a sample-ratio-mismatch test). Fails below the
//! configured p-value.
//!
//! Which rollout a context fell into is the predictor's attribution (the rule it predicts the
//! context matches), since the SDK does not say; the exact check covers the attribution.
//! Each context counts once, however many requests it made.
//!
//! The smallest deviation the sample can detect is the minimum detectable effect of a
//! two-sided z-test on the largest arm's share at 80 % power and α = the threshold:
//! `(z(1 − α/2) + z(0.8)) · √(p(1 − p)/n)`, in absolute share. With two arms it is the
//! chi-square test itself; with more it approximates it.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, Normal};

use super::exact::{code_label, reason_label, Comparison};
use super::predict::model::Rollout;
use super::predict::Reason;
use super::targeting::Targeting;
use crate::results::checks::{Arm, CheckOutcome, Details, SplitTest, SrmDetails, Status};
use crate::split::chi_square;

/// Power at which the minimum detectable effect is stated.
const POWER: f64 = 0.8;
/// Below this many expected contexts in an arm, chi-square's approximation does not hold.
const MIN_EXPECTED: f64 = 5.0;

const METHOD: &str = "Pearson chi-square goodness of fit per rollout and context kind; minimum detectable effect of a two-sided z-test on the largest arm at 80 % power and alpha = minPValue";

/// One test per (rollout, context kind) the comparison saw.
pub fn tests(targeting: &Targeting, comparison: &Comparison, min_p_value: f64) -> Vec<SplitTest> {
    let mut tests = Vec::new();
    for ((reason, kind), served) in &comparison.rollouts {
        let Some(rollout) = rollout_of(targeting, *reason) else {
            continue;
        };
        let arms = arms(rollout);
        if arms.iter().filter(|(_, w)| *w > 0.0).count() < 2 {
            continue; // a rollout to one variation is not a split
        }
        tests.push(test(targeting, *reason, kind, &arms, served, min_p_value));
    }
    tests
}

fn rollout_of(targeting: &Targeting, reason: Reason) -> Option<&Rollout> {
    match reason {
        Reason::RuleMatch(i) => targeting.flag.rules.get(i)?.serve.rollout.as_ref(),
        Reason::Fallthrough => targeting.flag.fallthrough.rollout.as_ref(),
        _ => None,
    }
}

/// (variation index, share) per distinct variation, in first-appearance order.
fn arms(rollout: &Rollout) -> Vec<(usize, f64)> {
    let total: f64 = rollout.variations.iter().map(|v| v.weight.max(0.0)).sum();
    let mut arms: Vec<(usize, f64)> = Vec::new();
    for weighted in &rollout.variations {
        let Ok(index) = usize::try_from(weighted.variation) else {
            continue;
        };
        let share = if total > 0.0 {
            weighted.weight.max(0.0) / total
        } else {
            0.0
        };
        match arms.iter_mut().find(|(i, _)| *i == index) {
            Some(arm) => arm.1 += share,
            None => arms.push((index, share)),
        }
    }
    arms
}

fn test(
    targeting: &Targeting,
    reason: Reason,
    kind: &str,
    arms: &[(usize, f64)],
    served: &BTreeMap<u16, u64>,
    min_p_value: f64,
) -> SplitTest {
    let arms = observe(targeting, arms, served);
    let observed: Vec<u64> = arms.iter().map(|a| a.observed).collect();
    let contexts: u64 = observed.iter().sum();
    let fit = chi_square(
        &observed,
        &arms.iter().map(|a| a.weight).collect::<Vec<_>>(),
    );
    let too_small = arms
        .iter()
        .any(|a| a.weight > 0.0 && a.expected < MIN_EXPECTED);
    let status = match &fit {
        _ if too_small => Status::Inconclusive,
        Some(f) if f.p_value < min_p_value => Status::Fail,
        Some(_) => Status::Pass,
        None => Status::Inconclusive,
    };
    let largest = arms.iter().map(|a| a.weight).fold(0.0, f64::max);
    SplitTest {
        rollout: rollout_label(targeting, reason),
        rule_index: match reason {
            Reason::RuleMatch(i) => Some(i),
            _ => None,
        },
        context_kind: kind.to_owned(),
        arms,
        outside: served.values().sum::<u64>() - contexts,
        contexts,
        chi_square: fit.as_ref().map(|f| f.statistic),
        degrees_of_freedom: fit.as_ref().map(|f| f.degrees_of_freedom),
        p_value: fit.as_ref().map(|f| f.p_value),
        min_detectable_effect: (contexts > 0)
            .then(|| min_detectable_effect(largest, contexts, min_p_value)),
        status,
    }
}

/// Each arm with what was served: `served` maps codes (index + 1) to contexts.
fn observe(targeting: &Targeting, arms: &[(usize, f64)], served: &BTreeMap<u16, u64>) -> Vec<Arm> {
    let observed: Vec<u64> = arms
        .iter()
        .map(|(i, _)| served.get(&(*i as u16 + 1)).copied().unwrap_or(0))
        .collect();
    let contexts: u64 = observed.iter().sum();
    arms.iter()
        .zip(observed)
        .map(|((i, share), observed)| Arm {
            variation: code_label(*i as u16 + 1, &targeting.variation_keys),
            weight: *share,
            expected: share * contexts as f64,
            observed,
        })
        .collect()
}

fn rollout_label(targeting: &Targeting, reason: Reason) -> String {
    let description = match reason {
        Reason::RuleMatch(i) => targeting
            .flag
            .rules
            .get(i)
            .and_then(|r| r.description.clone()),
        _ => None,
    };
    match description {
        Some(d) => format!("{} ({d})", reason_label(reason)),
        None => reason_label(reason),
    }
}

/// The smallest absolute change of a share `p` that `n` contexts detect with 80 % power
/// at significance `alpha` (two-sided).
pub fn min_detectable_effect(p: f64, n: u64, alpha: f64) -> f64 {
    let z = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    (z.inverse_cdf(1.0 - alpha / 2.0) + z.inverse_cdf(POWER)) * (p * (1.0 - p) / n as f64).sqrt()
}

/// The outcome for one AI Config; `tests` is `Err` with the reason it could not be made.
pub fn outcome(
    name: String,
    config: &str,
    tests: Result<Vec<SplitTest>, &str>,
    min_p_value: f64,
) -> CheckOutcome {
    let mut details = SrmDetails {
        config: config.to_owned(),
        min_p_value,
        attribution: "predicted".to_owned(),
        method: METHOD.to_owned(),
        tests: Vec::new(),
        note: None,
    };
    let (status, summary) = match tests {
        Err(why) => {
            details.note = Some(why.to_owned());
            (Status::Inconclusive, format!("not tested: {why}"))
        }
        Ok(tests) if tests.is_empty() => {
            let why = "no context fell into a percentage rollout of two or more variations";
            details.note = Some(why.to_owned());
            (Status::Inconclusive, why.to_owned())
        }
        Ok(tests) => {
            let status = Status::combine(tests.iter().map(|t| t.status));
            let lines: Vec<String> = tests.iter().map(|t| test_summary(t, min_p_value)).collect();
            details.tests = tests;
            (
                status,
                format!("{} (rule attribution predicted)", lines.join("; ")),
            )
        }
    };
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::RolloutSrm(details),
    }
}

fn test_summary(t: &SplitTest, min_p_value: f64) -> String {
    let split: Vec<String> = t
        .arms
        .iter()
        .map(|a| format!("{} {}/{:.0}", a.variation, a.observed, a.expected))
        .collect();
    let verdict = match (t.status, t.p_value) {
        (Status::Inconclusive, _) => {
            format!("inconclusive: sample too small (expected counts below {MIN_EXPECTED} per arm)")
        }
        (status, Some(p)) => format!(
            "p = {} ({} at {min_p_value})",
            p_value(p),
            if status == Status::Fail {
                "FAILS"
            } else {
                "fits"
            }
        ),
        (_, None) => "no test".into(),
    };
    let mde = t
        .min_detectable_effect
        .map_or(String::new(), |m| format!(", detects ±{:.1} pp", m * 100.0));
    format!(
        "{} / {}: observed/expected {} over {} contexts, {verdict}{mde}",
        t.rollout,
        t.context_kind,
        split.join(", "),
        t.contexts
    )
}

/// Four decimals, or two significant digits below 0.0001 (a broken split's p is tiny).
fn p_value(p: f64) -> String {
    if p >= 1e-4 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_detectable_effect_matches_the_textbook_formula() {
        // z(0.9995) = 3.2905, z(0.8) = 0.8416; sqrt(0.24 / 4000) = 0.0077460
        let mde = min_detectable_effect(0.6, 4000, 0.001);
        assert!((mde - (3.2905 + 0.8416) * 0.007_746).abs() < 1e-4, "{mde}");
    }
}
