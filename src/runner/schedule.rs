//! When requests start. The closed model has no schedule (a virtual user starts its next
//! request when the last one ends); the open model fixes every arrival time in advance, so
//! a slow system cannot slow the arrivals down and hide its own latency (coordinated
//! omission, as wrk2 and k6's arrival-rate executors avoid it).

use std::time::Duration;

use crate::scenario::{Load, Stage};

/// Arrival times of an open-model run, relative to its start.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Constant-or-linearly-changing rate segments.
    segments: Vec<Segment>,
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    start: f64,
    duration: f64,
    from_rate: f64,
    to_rate: f64,
    /// Arrivals before this segment.
    arrivals_before: f64,
}

impl Schedule {
    /// `rate` for `duration`, or the ramp `stages` starting from 0 requests per second.
    pub fn from_load(load: &Load) -> Option<Schedule> {
        if !load.stages.is_empty() {
            return Some(Schedule::ramp(&load.stages));
        }
        let stage = Stage {
            duration: load.duration?,
            target: load.rate?,
        };
        Some(Schedule::build(&[(
            stage.duration,
            stage.target,
            stage.target,
        )]))
    }

    fn ramp(stages: &[Stage]) -> Schedule {
        let mut rate = 0.0;
        let parts: Vec<(Duration, f64, f64)> = stages
            .iter()
            .map(|s| {
                let part = (s.duration, rate, s.target);
                rate = s.target;
                part
            })
            .collect();
        Schedule::build(&parts)
    }

    fn build(parts: &[(Duration, f64, f64)]) -> Schedule {
        let mut segments = Vec::new();
        let (mut start, mut arrivals) = (0.0, 0.0);
        for &(duration, from_rate, to_rate) in parts {
            let duration = duration.as_secs_f64();
            segments.push(Segment {
                start,
                duration,
                from_rate,
                to_rate,
                arrivals_before: arrivals,
            });
            start += duration;
            arrivals += duration * (from_rate + to_rate) / 2.0;
        }
        Schedule { segments }
    }

    /// Requests in the whole schedule.
    pub fn total(&self) -> u64 {
        self.segments.last().map_or(0, |s| {
            (s.arrivals_before + s.duration * (s.from_rate + s.to_rate) / 2.0).floor() as u64
        })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.segments.last().map_or(0.0, |s| s.start + s.duration))
    }

    /// When request `n` (from 0) is due: the time at which `n + 1` arrivals have
    /// accumulated, i.e. where the integral of the rate reaches `n + 1`.
    pub fn due(&self, n: u64) -> Option<Duration> {
        let target = n as f64 + 1.0;
        let segment = self
            .segments
            .iter()
            .rev()
            .find(|s| s.arrivals_before < target)?;
        let needed = target - segment.arrivals_before;
        // Arrivals after t seconds into the segment: a t + b t² / 2, with a the starting
        // rate and b its slope. Solve for t.
        let a = segment.from_rate;
        let b = (segment.to_rate - segment.from_rate) / segment.duration;
        let t = if b.abs() < 1e-12 {
            needed / a
        } else {
            (-a + (a * a + 2.0 * b * needed).max(0.0).sqrt()) / b
        };
        (t.is_finite() && t <= segment.duration + 1e-9)
            .then(|| Duration::from_secs_f64(segment.start + t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Load {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = Schedule::from_load(&load("model = \"open\"\nrate = 100\nduration = \"2s\"\n"))
            .unwrap();
        assert_eq!(s.total(), 200);
        assert_eq!(s.due(0), Some(Duration::from_millis(10)));
        assert_eq!(s.due(99), Some(Duration::from_secs(1)));
        assert_eq!(s.due(199), Some(Duration::from_secs(2)));
        assert_eq!(s.due(200), None);
    }

    #[test]
    fn a_ramp_integrates_the_rate() {
        // 0 → 100/s over 2 s (100 requests), then 100/s for 1 s (100 more).
        let s = Schedule::from_load(&load("model = \"open\"\nstages = [{ duration = \"2s\", target = 100 }, { duration = \"1s\", target = 100 }]\n")).unwrap();
        assert_eq!(s.total(), 200);
        assert_eq!(s.duration(), Duration::from_secs(3));
        // Arrivals by time t in the ramp are 25 t²: the 25th is due at 1 s.
        let t = s.due(24).unwrap().as_secs_f64();
        assert!((t - 1.0).abs() < 1e-9, "{t}");
        let t = s.due(149).unwrap().as_secs_f64();
        assert!((t - 2.5).abs() < 1e-9, "{t}");
        let mut last = Duration::ZERO;
        for n in 0..200 {
            let due = s.due(n).unwrap();
            assert!(due >= last, "arrivals are ordered");
            last = due;
        }
    }
}
