use std::collections::BTreeMap;

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::baseline::Metric;
use super::*;
use crate::results::latency::{empty_histogram, LatencySummary as Summary};

/// Log-normal latencies in µs, as the LLM simulator draws them.
fn latency(seed: u64, n: usize, median_ms: f64) -> Metric {
    let dist = LogNormal::new((median_ms * 1000.0).ln(), 0.5).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = empty_histogram();
    (0..n).for_each(|_| h.record(dist.sample(&mut rng).max(1.0) as u64).unwrap());
    Metric::Latency(Summary::of(&h))
}

fn run(seed: u64, llm_median_ms: f64, errors: u64, rate: f64) -> BTreeMap<String, Metric> {
    BTreeMap::from([
        ("llm".to_owned(), latency(seed, 5_000, llm_median_ms)),
        ("evaluation".to_owned(), latency(seed + 100, 5_000, 0.02)),
        (
            "error_rate".to_owned(),
            Metric::Ratio {
                count: errors,
                of: 5_000,
            },
        ),
        (
            "throughput".to_owned(),
            Metric::Value {
                value: rate,
                unit: "requests/s".into(),
                higher_is_better: true,
            },
        ),
    ])
}

fn status(c: &Comparison, metric: &str) -> Status {
    c.rows.iter().find(|r| r.metric == metric).unwrap().status
}

#[test]
fn a_rerun_with_noise_passes() {
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 40.0, 38, 930.0),
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(c.regressions(), 0, "{}", c.text());
    assert!(
        c.rows.iter().all(|r| r.status == Status::Ok),
        "{}",
        c.text()
    );
}

#[test]
fn doubled_llm_latency_regresses_on_percentiles_and_distribution() {
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 80.0, 30, 1000.0),
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(status(&c, "llm"), Status::Regressed);
    assert_eq!(status(&c, "evaluation"), Status::Ok);
    let RowKind::Latency {
        percentiles, ks, ..
    } = &c.rows.iter().find(|r| r.metric == "llm").unwrap().kind
    else {
        panic!()
    };
    assert!(percentiles.iter().all(|p| p.status == Status::Regressed));
    assert!(ks.unwrap().regressed);
    assert!(c.text().contains("REGRESSED"), "{}", c.text());
}

#[test]
fn a_large_relative_jump_below_the_absolute_tolerance_passes() {
    // Evaluation latency doubling from 20 µs to 40 µs is significant, and far below the
    // absolute tolerance that makes it matter.
    let mut now = run(2, 40.0, 30, 1000.0);
    now.insert("evaluation".into(), latency(102, 5_000, 0.04));
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &now,
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(status(&c, "evaluation"), Status::Ok, "{}", c.text());
    let tight = Options {
        tolerances: tolerance::Tolerances {
            rules: vec!["evaluation=20%,0.005ms".parse().unwrap()],
        },
        ..Options::default()
    };
    let c = compare("b", &run(1, 40.0, 30, 1000.0), &now, &tight, None).unwrap();
    assert_eq!(status(&c, "evaluation"), Status::Regressed, "{}", c.text());
}

#[test]
fn the_effect_size_floor_keeps_a_significant_tiny_shift() {
    // 8 % slower over 100,000 calls, within a 50 % tolerance: KS finds the shift highly
    // significant, but D is far below the 0.1 floor, so it must not fail.
    let options = Options {
        tolerances: tolerance::Tolerances {
            rules: vec!["llm=50%,0ms".parse().unwrap()],
        },
        ..Options::default()
    };
    let big = |seed, median| BTreeMap::from([("llm".to_owned(), latency(seed, 100_000, median))]);
    let c = compare("b", &big(1, 40.0), &big(2, 43.2), &options, None).unwrap();
    let RowKind::Latency { ks, .. } = &c.rows.iter().find(|r| r.metric == "llm").unwrap().kind
    else {
        panic!()
    };
    let ks = ks.unwrap();
    assert!(
        ks.test.p_value < 0.001 && ks.test.d < 0.1 && !ks.regressed,
        "{ks:?}"
    );
    assert_eq!(status(&c, "llm"), Status::Ok);
}

#[test]
fn error_rate_and_throughput_regress_beyond_tolerance_and_noise() {
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 40.0, 150, 500.0),
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(status(&c, "error_rate"), Status::Regressed, "{}", c.text());
    assert_eq!(status(&c, "throughput"), Status::Regressed);
    // 30 → 45 errors in 5,000 is +50 %, within the default 0.5 percentage point.
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 40.0, 45, 1000.0),
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(status(&c, "error_rate"), Status::Ok);
}

#[test]
fn faster_is_improved_and_one_sided_metrics_are_listed() {
    let mut now = run(2, 20.0, 30, 1000.0);
    now.remove("throughput");
    now.insert("c/v/llm".into(), latency(3, 100, 20.0));
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &now,
        &Options::default(),
        None,
    )
    .unwrap();
    assert_eq!(status(&c, "llm"), Status::Improved);
    assert_eq!(status(&c, "throughput"), Status::Missing);
    assert_eq!(status(&c, "c/v/llm"), Status::New);
    assert_eq!(c.regressions(), 0);
    assert_eq!(
        c.rows.last().unwrap().metric,
        "c/v/llm",
        "per-variation metrics come last"
    );
    assert!(
        c.markdown().contains("🆕 not in baseline"),
        "{}",
        c.markdown()
    );
}

#[test]
fn an_overloaded_load_generator_makes_latency_and_throughput_inconclusive_not_errors() {
    let overload = "the load generator was overloaded (lag probe p99 34.2 ms > 20 ms (n = 600))";
    // Doubled LLM latency, halved throughput and five times the errors.
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 80.0, 150, 500.0),
        &Options::default(),
        Some(overload.into()),
    )
    .unwrap();
    assert_eq!(status(&c, "llm"), Status::Inconclusive, "{}", c.text());
    assert_eq!(status(&c, "evaluation"), Status::Inconclusive);
    assert_eq!(status(&c, "throughput"), Status::Inconclusive);
    assert_eq!(
        status(&c, "error_rate"),
        Status::Regressed,
        "counts still judge"
    );
    assert_eq!((c.regressions(), c.inconclusive()), (1, 3));
    assert!(c.headline().contains(overload), "{}", c.headline());
    assert!(c.markdown().starts_with("### ❌"), "{}", c.markdown());
    // Without the regression, the comparison is never shown as passed.
    let c = compare(
        "b",
        &run(1, 40.0, 30, 1000.0),
        &run(2, 40.0, 30, 1000.0),
        &Options::default(),
        Some(overload.into()),
    )
    .unwrap();
    assert!(c.markdown().starts_with("### ⚠️"), "{}", c.markdown());
}
