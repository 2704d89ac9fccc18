//! What the run learns from mock-ld's simulated provider when it answers the LLM calls:
//! the profiles the run set (read back after setup) and the simulator's lateness over the
//! load (read before and after it, the difference kept, so a mock-ld that served earlier
//! runs reports this one's alone).

use std::collections::BTreeMap;

use mock_ld::llm::{Profile, DEFAULT_MODEL};
use serde_json::Value;

use super::mock_admin::MockAdmin;
use crate::results::latency::HistogramError;
use crate::results::simulated::{LogNormal, SimulatedInfo, SimulatedProfile, SimulatorLateness};
use crate::results::LatencySummary;
use crate::scenario::Scenario;

/// What was read before the load.
pub struct Before {
    time_scale: Option<f64>,
    profiles: BTreeMap<String, SimulatedProfile>,
    lateness: SimulatorLateness,
}

impl Before {
    /// Reads the profiles of every model the scenario names, and the lateness so far. What
    /// cannot be read is logged and left empty: the calls were simulated all the same.
    pub async fn read(admin: &MockAdmin, scenario: &Scenario) -> Before {
        let profiles = match admin.profiles().await {
            Ok(all) => named_profiles(scenario, &all),
            Err(e) => {
                tracing::warn!(error = %e, "the simulated provider's profiles could not be read");
                BTreeMap::new()
            }
        };
        Before {
            time_scale: scenario.llm.time_scale,
            profiles,
            lateness: read_lateness(admin).await,
        }
    }

    /// The simulated provider's part of the results, with the lateness since `read`.
    pub async fn finish(self, admin: &MockAdmin) -> SimulatedInfo {
        let after = read_lateness(admin).await;
        SimulatedInfo {
            time_scale: self.time_scale,
            profiles: self.profiles,
            lateness: SimulatorLateness {
                first_token: since(&self.lateness.first_token, after.first_token),
                last_chunk: since(&self.lateness.last_chunk, after.last_chunk),
            },
        }
    }
}

/// Every model a variation, an `update_variation` or `[llm.models]` names, with the profile
/// that answers for it.
fn named_profiles(
    scenario: &Scenario,
    all: &serde_json::Map<String, Value>,
) -> BTreeMap<String, SimulatedProfile> {
    let variations = scenario.ai_configs.iter().flat_map(|c| &c.variations);
    let updates = scenario
        .actions
        .iter()
        .filter_map(|a| a.update_variation.as_ref());
    let names = variations
        .map(|v| v.model.name.as_str())
        .chain(updates.filter_map(|u| u.model.as_ref().map(|m| m.name.as_str())))
        .chain(scenario.llm.models.keys().map(String::as_str));
    let profile = |name: &str| {
        let value = all.get(name)?;
        serde_json::from_value::<Profile>(value.clone()).ok()
    };
    let mut profiles = BTreeMap::new();
    for name in names {
        let own = profile(name);
        let default = own.is_none();
        if let Some(p) = own.or_else(|| profile(DEFAULT_MODEL)) {
            profiles.insert(name.to_owned(), simulated_profile(&p, default));
        }
    }
    profiles
}

fn simulated_profile(p: &Profile, default: bool) -> SimulatedProfile {
    let log_normal = |d: mock_ld::llm::Dist| LogNormal {
        median: d.median,
        p99: d.p99,
    };
    SimulatedProfile {
        default,
        latency_ms: log_normal(p.latency_ms),
        ttft_ms: log_normal(p.ttft_ms),
        output_tokens: log_normal(p.output_tokens),
        error_rate: p.error_rate,
        error_status: p.error_status,
        time_scale: p.time_scale,
    }
}

/// `/admin/llm/lateness`; empty (n = 0) when it cannot be read, which the reports show.
async fn read_lateness(admin: &MockAdmin) -> SimulatorLateness {
    let url = format!("{}/llm/lateness", admin.base);
    let read = async {
        let response = admin.http.get(&url).send().await?.error_for_status()?;
        response.json::<SimulatorLateness>().await
    };
    read.await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "GET {url}: the simulator's lateness could not be read");
        SimulatorLateness::default()
    })
}

/// `after` without what `before` held; `after` whole if it does not contain `before` (the
/// stats were reset during the run).
fn since(before: &LatencySummary, after: LatencySummary) -> LatencySummary {
    if before.count == 0 {
        return after;
    }
    let subtract = || -> Result<LatencySummary, HistogramError> {
        let mut h = after.histogram()?;
        h.subtract(before.histogram()?)
            .map_err(|e| HistogramError(e.to_string()))?;
        Ok(LatencySummary::of(&h))
    };
    match subtract() {
        Ok(summary) if before.count <= after.count => summary,
        _ => after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::latency::empty_histogram;

    fn summary(micros: &[u64]) -> LatencySummary {
        let mut h = empty_histogram();
        micros.iter().for_each(|&m| h.record(m).unwrap());
        LatencySummary::of(&h)
    }

    #[test]
    fn lateness_since_an_earlier_read_is_the_difference_or_all_after_a_reset() {
        let before = summary(&[100, 200]);
        let after = summary(&[100, 200, 5_000]);
        let diff = since(&before, after.clone());
        assert_eq!(diff.count, 1);
        assert!((diff.p50_ms - 5.0).abs() < 0.01, "{diff:?}");
        let reset = summary(&[300]);
        assert_eq!(since(&before, reset.clone()), reset);
        assert_eq!(since(&LatencySummary::default(), after.clone()), after);
    }
}
