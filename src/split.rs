//! Statistics of rollout splits: does an observed split match the configured weights?

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Pearson's chi-square goodness-of-fit test of observed counts against expected shares.
#[derive(Clone, Debug, PartialEq)]
pub struct GoodnessOfFit {
    pub statistic: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
}

/// Tests `observed` against `weights` (any positive scale; they are normalized). Categories
/// with zero weight are left out, since they cannot be tested this way. `None` when fewer
/// than two categories remain or nothing was observed.
pub fn chi_square(observed: &[u64], weights: &[f64]) -> Option<GoodnessOfFit> {
    assert_eq!(
        observed.len(),
        weights.len(),
        "one weight per observed count"
    );
    let cells: Vec<(f64, f64)> = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| (*o as f64, *w))
        .collect();
    let total: f64 = cells.iter().map(|(o, _)| o).sum();
    let weight_sum: f64 = cells.iter().map(|(_, w)| w).sum();
    if cells.len() < 2 || total == 0.0 {
        return None;
    }
    let statistic = cells
        .iter()
        .map(|(o, w)| {
            let expected = total * w / weight_sum;
            (o - expected).powi(2) / expected
        })
        .sum();
    let degrees_of_freedom = cells.len() - 1;
    let distribution = ChiSquared::new(degrees_of_freedom as f64).ok()?;
    let p_value = 1.0 - distribution.cdf(statistic);
    Some(GoodnessOfFit {
        statistic,
        degrees_of_freedom,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_split_fits_and_a_skewed_one_does_not() {
        let fit = chi_square(&[6000, 4000], &[60.0, 40.0]).unwrap();
        assert_eq!(fit.statistic, 0.0);
        assert!((fit.p_value - 1.0).abs() < 1e-12);
        // 55/45 over 10,000 is far outside what chance gives a 60/40 rollout.
        let skewed = chi_square(&[5500, 4500], &[60.0, 40.0]).unwrap();
        assert!(skewed.p_value < 1e-6, "{skewed:?}");
    }

    #[test]
    fn p_value_matches_a_known_table_value() {
        // chi2 = 3.841 at 1 degree of freedom is the 5 % critical value.
        // observed 5098/4902 against 50/50: (98^2/5000)*2 = 3.8416
        let fit = chi_square(&[5098, 4902], &[1.0, 1.0]).unwrap();
        assert!((fit.statistic - 3.8416).abs() < 1e-9);
        assert!((fit.p_value - 0.05).abs() < 1e-3, "{fit:?}");
    }

    #[test]
    fn degenerate_inputs_have_no_test() {
        assert!(chi_square(&[10, 0], &[1.0, 0.0]).is_none());
        assert!(chi_square(&[0, 0], &[1.0, 1.0]).is_none());
    }
}
