//! Numbers as every report shows them.

/// Milliseconds with about three significant digits: 0.021, 4.35, 35.2, 1250.
pub fn ms(x: f64) -> String {
    match x.abs() {
        0.0 => "0".to_owned(),
        a if a < 1.0 => format!("{x:.3}"),
        a if a < 10.0 => format!("{x:.2}"),
        a if a < 1000.0 => format!("{x:.1}"),
        _ => format!("{x:.0}"),
    }
}

/// A fraction as a percentage: 0.0064 is "0.64 %".
pub fn percent(fraction: f64) -> String {
    format!("{:.2} %", fraction * 100.0)
}

/// The relative change from `baseline` to `current`: "+99 %", "-3.2 %", "±0 %".
pub fn change(baseline: f64, current: f64) -> String {
    if baseline == current {
        return "±0 %".to_owned();
    }
    if baseline == 0.0 {
        return "new".to_owned();
    }
    let rel = (current - baseline) / baseline.abs() * 100.0;
    if rel.abs() < 10.0 {
        format!("{rel:+.1} %")
    } else {
        format!("{rel:+.0} %")
    }
}

/// US dollars, with cents for large sums and four significant digits for small ones.
pub fn usd(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("${x:.2}")
    } else {
        format!("${}", significant(x, 4))
    }
}

fn significant(x: f64, digits: i32) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A p-value: "1e-12" below 0.001 ("< 1e-300" at the floor), else three decimals.
pub fn p_value(p: f64) -> String {
    if p <= 1e-300 {
        "< 1e-300".to_owned()
    } else if p < 0.001 {
        format!("{p:.0e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(0.0214), "0.021");
        assert_eq!(ms(35.23), "35.2");
        assert_eq!(ms(1250.4), "1250");
        assert_eq!(percent(0.0064), "0.64 %");
        assert_eq!(change(35.0, 70.0), "+100 %");
        assert_eq!(change(100.0, 96.8), "-3.2 %");
        assert_eq!(change(0.0, 1.0), "new");
        assert_eq!(usd(0.0123456), "$0.01235");
        assert_eq!(usd(12.3456), "$12.35");
        assert_eq!(usd(1234.567), "$1234.57");
        assert_eq!(p_value(0.0), "< 1e-300");
        assert_eq!(p_value(3.2e-7), "3e-7");
        assert_eq!(p_value(0.2468), "0.247");
    }
}
