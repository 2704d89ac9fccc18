//! What mock-ld's simulated provider planned for one LLM call, read from the headers it
//! answers with (`x-mock-plan-latency-ms`, `x-mock-time-scale`). Another provider sends
//! none, and nothing is known.

use std::time::Duration;

use mock_ld::llm::{PLAN_LATENCY_HEADER, TIME_SCALE_HEADER};
use reqwest::header::HeaderMap;

/// The simulator's plan for a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Planned {
    /// From the request's arrival at the simulator to its last chunk (or its whole or error
    /// answer), as scheduled: after the time scale, so comparable with the measured latency.
    pub latency: Duration,
    /// The profile's time scale that `latency` was multiplied by.
    pub time_scale: f64,
}

impl Planned {
    /// The plan's headers, if the answer has both and they are numbers.
    pub fn from_headers(headers: &HeaderMap) -> Option<Planned> {
        let number = |name: &str| -> Option<f64> {
            let value = headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()?;
            (value.is_finite() && value >= 0.0).then_some(value)
        };
        let latency = Duration::try_from_secs_f64(number(PLAN_LATENCY_HEADER)? / 1e3).ok()?;
        let time_scale = number(TIME_SCALE_HEADER)?;
        Some(Planned {
            latency,
            time_scale,
        })
    }

    /// The latency the profile drew, in real time (the scheduled one over the time scale);
    /// none at time scale 0, where nothing was waited and the draw is not told.
    pub fn real_time(&self) -> Option<Duration> {
        if self.time_scale <= 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(self.latency.as_secs_f64() / self.time_scale).ok()
    }

    /// How much longer the call took than planned (`measured − planned`): the network, the
    /// simulator's lateness and the harness's own delays. `None` when the call was measured
    /// shorter than planned, which only a clock quirk or a plan for another call could do.
    pub fn excess(&self, measured: Duration) -> Option<Duration> {
        measured.checked_sub(self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_plan_is_read_scaled_back_and_compared() {
        let planned = Planned::from_headers(&headers(&[
            (PLAN_LATENCY_HEADER, "60.500"),
            (TIME_SCALE_HEADER, "0.05"),
        ]))
        .unwrap();
        assert_eq!(planned.latency, Duration::from_micros(60_500));
        assert_eq!(planned.real_time(), Some(Duration::from_micros(1_210_000)));
        let measured = Duration::from_millis(62);
        assert_eq!(planned.excess(measured), Some(Duration::from_micros(1_500)));
        assert_eq!(planned.excess(Duration::from_millis(60)), None);
    }

    #[test]
    fn without_both_headers_or_with_bad_numbers_nothing_is_known() {
        let latency = (PLAN_LATENCY_HEADER, "5");
        assert_eq!(Planned::from_headers(&headers(&[latency])), None);
        for bad in ["-1", "NaN", "inf", "ms"] {
            let pairs = [latency, (TIME_SCALE_HEADER, bad)];
            assert_eq!(Planned::from_headers(&headers(&pairs)), None, "{bad}");
        }
        let unscaled = [latency, (TIME_SCALE_HEADER, "0")];
        let planned = Planned::from_headers(&headers(&unscaled)).unwrap();
        assert_eq!(planned.real_time(), None);
    }
}
