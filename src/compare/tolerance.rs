//! How much worse a metric may get before `compare` calls it a regression.
//!
//! A change is a regression only when it exceeds *both* the relative and the absolute
//! tolerance: the relative one keeps big metrics from failing on proportionate noise, the
//! absolute one keeps tiny metrics (an SDK evaluation of 20 µs) from failing on a jump that
//! is large in percent and meaningless in time.
//!
//! Set with `--tolerance PATTERN=REL%,ABS` (repeatable; the first matching flag wins over
//! the defaults). PATTERN is a metric name, where `*` matches anything; a latency's
//! percentiles are named `METRIC.p50`, `METRIC.p95` and `METRIC.p99`, and a pattern for
//! the metric covers all three: `llm`, `llm.p99`, `support-assistant/*/llm`, `*.p99`,
//! `*error_rate`. ABS is in the metric's unit:
//! milliseconds for latencies (a `ms` or `s` suffix is allowed), a fraction for error
//! rates, requests per second for throughput, USD for cost.

use std::str::FromStr;

use crate::results::comparison::Tolerance;

/// One `--tolerance` flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub pattern: String,
    pub tolerance: Tolerance,
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        let usage = || {
            format!("`{s}`: expected PATTERN=REL%,ABS, e.g. llm=10%,5ms or error_rate=50%,0.005")
        };
        let (pattern, value) = s.split_once('=').ok_or_else(usage)?;
        let (rel, abs) = value.split_once(',').ok_or_else(usage)?;
        let rel = rel.trim().strip_suffix('%').ok_or_else(usage)?;
        let rel: f64 = rel.trim().parse().map_err(|_| usage())?;
        let abs = parse_abs(abs.trim()).ok_or_else(usage)?;
        if pattern.trim().is_empty() || !(rel >= 0.0 && abs >= 0.0) {
            return Err(usage());
        }
        Ok(Rule {
            pattern: pattern.trim().to_owned(),
            tolerance: Tolerance {
                rel: rel / 100.0,
                abs,
            },
        })
    }
}

/// A plain number, or a duration in ms or s (converted to ms).
fn parse_abs(s: &str) -> Option<f64> {
    let (number, scale) = match (s.strip_suffix("ms"), s.strip_suffix('s')) {
        (Some(ms), _) => (ms, 1.0),
        (None, Some(secs)) => (secs, 1000.0),
        (None, None) => (s, 1.0),
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale)
}

/// The defaults, first match wins; each line says why.
const DEFAULTS: &[(&str, f64, f64)] = &[
    // Compressing and posting a flush's events moves with the machine's load, and a flush
    // during the load competes with it: only gross changes (a stuck flush) count.
    ("flush.*", 2.0, 1000.0),
    // A summary event is made at a flush (its endDate), so its delivery is a flush's, and
    // a run has only a few (one per client and flush): as noisy as `flush`. A rerun on a
    // busy runner went from 51 to 162 ms at p50 over 4 samples.
    ("delivery.summary*", 2.0, 1000.0),
    // An event waits in its SDK until the next flush, so delivery spans the flush interval
    // and moves with where the requests fall between flushes: only large changes count.
    ("delivery.*", 0.5, 500.0),
    // Half a percentage point, or half the baseline's rate, whichever is larger.
    ("*error_rate", 0.5, 0.005),
    // Achieved requests per second: machine-dependent, so only a large drop counts.
    ("throughput", 0.3, 0.0),
    ("cost_per_1k_requests", 0.1, 0.0),
    // The SDK evaluation and the AI Config layer run in-process in microseconds: on a busy
    // shared runner their percentiles jump by milliseconds of thread scheduling, so only a
    // gross change counts. Tighten them on a dedicated machine.
    ("*evaluation", 1.0, 20.0),
    ("*ai_layer", 1.0, 20.0),
    // The 1 % tail moves with the machine's load (a busy shared CI runner delays timers and
    // threads), so it gets more room than the body of the distribution.
    ("*.p99", 0.5, 10.0),
    // p50 and p95: 20 % and at least 5 ms.
    ("*", 0.2, 5.0),
];

/// The user's rules, then the defaults.
#[derive(Clone, Debug, Default)]
pub struct Tolerances {
    pub rules: Vec<Rule>,
}

impl Tolerances {
    /// The tolerance of `metric`, or of its percentile `stat` (`p50`, `p95`, `p99`): a
    /// pattern matches either `METRIC.STAT` or `METRIC` itself, so `llm=10%,5ms` covers
    /// every percentile of `llm` and `llm.p99=…` only its tail.
    pub fn for_metric(&self, metric: &str, stat: Option<&str>) -> Tolerance {
        let full = stat.map(|s| format!("{metric}.{s}"));
        let applies = |pattern: &str| {
            matches(pattern, metric) || full.as_deref().is_some_and(|f| matches(pattern, f))
        };
        if let Some(rule) = self.rules.iter().find(|r| applies(&r.pattern)) {
            return rule.tolerance;
        }
        let (_, rel, abs) = DEFAULTS
            .iter()
            .find(|(p, _, _)| applies(p))
            .expect("`*` matches every metric");
        Tolerance {
            rel: *rel,
            abs: *abs,
        }
    }
}

/// Glob matching where `*` matches any run of characters (including `/`).
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_units() {
        let r: Rule = "llm=10%,5ms".parse().unwrap();
        assert_eq!(
            r,
            Rule {
                pattern: "llm".into(),
                tolerance: Tolerance { rel: 0.1, abs: 5.0 }
            }
        );
        let r: Rule = "support-assistant/*/ttft = 25 %, 0.5s".parse().unwrap();
        assert_eq!(r.pattern, "support-assistant/*/ttft");
        assert_eq!(
            r.tolerance,
            Tolerance {
                rel: 0.25,
                abs: 500.0
            }
        );
        assert_eq!(
            "error_rate=50%,0.005"
                .parse::<Rule>()
                .unwrap()
                .tolerance
                .abs,
            0.005
        );
        for bad in [
            "llm",
            "llm=10,5",
            "llm=10%",
            "=1%,1",
            "llm=-1%,1",
            "llm=x%,1",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(matches("llm", "llm"));
        assert!(!matches("llm", "c/v/llm"));
        assert!(matches("*/llm", "c/v/llm"));
        assert!(matches("c/*/llm", "c/v/llm"));
        assert!(!matches("c/*/llm", "c/v/ttft"));
        assert!(matches("*error_rate", "error_rate"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(!matches("ab*ba", "aba"));
    }

    #[test]
    fn user_rules_come_before_the_defaults() {
        let t = Tolerances {
            rules: vec![
                "*/llm=5%,1ms".parse().unwrap(),
                "llm.p99=100%,50ms".parse().unwrap(),
            ],
        };
        assert_eq!(
            t.for_metric("c/v/llm", Some("p50")),
            Tolerance {
                rel: 0.05,
                abs: 1.0
            }
        );
        assert_eq!(
            t.for_metric("c/v/llm", Some("p99")),
            Tolerance {
                rel: 0.05,
                abs: 1.0
            }
        );
        assert_eq!(
            t.for_metric("llm", Some("p50")),
            Tolerance { rel: 0.2, abs: 5.0 }
        );
        assert_eq!(
            t.for_metric("llm", Some("p99")),
            Tolerance {
                rel: 1.0,
                abs: 50.0
            }
        );
        assert_eq!(
            t.for_metric("c/v/error_rate", None),
            Tolerance {
                rel: 0.5,
                abs: 0.005
            }
        );
        assert_eq!(
            t.for_metric("flush", Some("p99")),
            Tolerance {
                rel: 2.0,
                abs: 1000.0
            }
        );
    }

    #[test]
    fn in_process_stages_only_fail_on_gross_changes() {
        let t = Tolerances::default();
        let gross = Tolerance {
            rel: 1.0,
            abs: 20.0,
        };
        assert_eq!(t.for_metric("c/v/evaluation", Some("p99")), gross);
        assert_eq!(t.for_metric("ai_layer", Some("p50")), gross);
        assert_eq!(
            t.for_metric("c/v/end_to_end", Some("p50")),
            Tolerance { rel: 0.2, abs: 5.0 }
        );
    }

    #[test]
    fn a_change_must_exceed_both_tolerances() {
        let t = Tolerance { rel: 0.2, abs: 5.0 };
        assert_eq!(t.allowance(100.0), 20.0);
        assert_eq!(t.allowance(0.02), 5.0);
    }
}
