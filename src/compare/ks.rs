//! The two-sample Kolmogorov–Smirnov test on two HDR histograms.
//!
//! A histogram is a step CDF over its buckets, so D is exact for the binned data. Binning
//! makes ties, which only makes the test conservative (D can only shrink), so a reported
//! difference is never an artefact of the buckets.

use hdrhistogram::Histogram;

use crate::results::comparison::KsTest;

/// `None` when either histogram is empty: there is nothing to compare.
pub fn two_sample(baseline: &Histogram<u64>, current: &Histogram<u64>) -> Option<KsTest> {
    let (n1, n2) = (baseline.len(), current.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (a, b) = (steps(baseline), steps(current));
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0u64, 0u64);
    let (mut slower_by, mut faster_by) = (0f64, 0f64);
    while i < a.len() || j < b.len() {
        // Advance through every bucket at the next value of either histogram.
        let v = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => unreachable!("the loop condition"),
        };
        while i < a.len() && a[i].0 == v {
            ca += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 == v {
            cb += b[j].1;
            j += 1;
        }
        let gap = ca as f64 / n1 as f64 - cb as f64 / n2 as f64;
        slower_by = slower_by.max(gap);
        faster_by = faster_by.max(-gap);
    }
    let d = slower_by.max(faster_by);
    Some(KsTest {
        d,
        slower: slower_by >= faster_by && d > 0.0,
        p_value: p_value(d, n1, n2),
    })
}

/// (bucket value, count) of every non-empty bucket, in increasing value.
fn steps(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The Kolmogorov distribution's tail Q(λ) with Stephens' small-sample correction of λ
/// (Numerical Recipes, `probks`).
pub fn p_value(d: f64, n1: u64, n2: u64) -> f64 {
    let ne = (n1 as f64 * n2 as f64) / (n1 + n2) as f64;
    let sqrt_ne = ne.sqrt();
    let lambda = (sqrt_ne + 0.12 + 0.11 / sqrt_ne) * d;
    kolmogorov_q(lambda)
}

fn kolmogorov_q(lambda: f64) -> f64 {
    // The series converges slowly for small λ, where Q is 1 to many digits anyway.
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-16 * sum.abs().max(1e-300) {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::latency::empty_histogram;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::{Distribution, LogNormal};

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = empty_histogram();
        values.into_iter().for_each(|v| h.record(v).unwrap());
        h
    }

    /// Log-normal latencies in µs around `median_us`, as the LLM simulator draws them.
    fn lognormal(seed: u64, n: usize, median_us: f64) -> Histogram<u64> {
        let dist = LogNormal::new(median_us.ln(), 0.5).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        histogram((0..n).map(|_| dist.sample(&mut rng).max(1.0) as u64))
    }

    #[test]
    fn identical_histograms_have_no_gap() {
        let h = lognormal(1, 5_000, 40_000.0);
        let t = two_sample(&h, &h).unwrap();
        assert_eq!(t.d, 0.0);
        assert!(!t.slower);
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn d_is_the_largest_cdf_gap_by_hand() {
        // F_base reaches 0.5 at 2 while F_cur is still 0: D = 0.5, current slower.
        let t = two_sample(&histogram([1, 2, 3, 4]), &histogram([3, 4, 5, 6])).unwrap();
        assert!((t.d - 0.5).abs() < 1e-12, "{t:?}");
        assert!(t.slower);
        let t = two_sample(&histogram([3, 4, 5, 6]), &histogram([1, 2, 3, 4])).unwrap();
        assert!(!t.slower);
    }

    #[test]
    fn p_value_matches_the_kolmogorov_distribution() {
        // λ = (√500 + 0.12 + 0.11/√500) · 0.1 = 2.2485; Q(λ) = 2 Σ (-1)^(k-1) e^(-2k²λ²).
        let p = p_value(0.1, 1000, 1000);
        assert!((p - 8.12e-5).abs() < 0.05e-5, "{p}");
        // Q(1.3581) = 0.05, the textbook 5 % critical value (λ already corrected).
        assert!((kolmogorov_q(1.3581) - 0.05).abs() < 1e-4);
        assert_eq!(kolmogorov_q(0.1), 1.0);
    }

    #[test]
    fn two_samples_of_one_distribution_are_not_significant() {
        let t = two_sample(
            &lognormal(1, 5_000, 40_000.0),
            &lognormal(2, 5_000, 40_000.0),
        )
        .unwrap();
        assert!(t.p_value > 0.01, "{t:?}");
        assert!(t.d < 0.05, "{t:?}");
    }

    #[test]
    fn doubled_latency_is_a_large_significant_slowdown() {
        let t = two_sample(
            &lognormal(1, 2_000, 40_000.0),
            &lognormal(2, 2_000, 80_000.0),
        )
        .unwrap();
        assert!(t.slower);
        assert!(t.d > 0.4, "{t:?}");
        assert!(t.p_value < 1e-12, "{t:?}");
    }

    #[test]
    fn a_tiny_shift_in_a_large_sample_is_significant_but_small() {
        // 3 % slower over 200,000 calls: KS sees it; the effect-size floor must keep it.
        let t = two_sample(
            &lognormal(1, 200_000, 40_000.0),
            &lognormal(2, 200_000, 41_200.0),
        )
        .unwrap();
        assert!(t.p_value < 0.001, "{t:?}");
        assert!(t.slower && t.d < 0.05, "{t:?}");
    }

    #[test]
    fn an_empty_side_has_no_test() {
        assert!(two_sample(&empty_histogram(), &histogram([5])).is_none());
        let mut rng = StdRng::seed_from_u64(0);
        let h = histogram((0..10).map(|_| rng.random_range(1..100)));
        assert!(two_sample(&h, &empty_histogram()).is_none());
    }
}
