//! Command-line values in place of a scenario's (`run --population 500 --rate 50`): applied
//! after the file is read and before it is validated, so they are checked as strictly as
//! the file; an error in one names the flag, not a line of the file. The results record
//! them (`scenario.overrides`), so a run is never mistaken for the file's.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::ScenarioError;
use super::{Scenario, SdkKind};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub population: Option<u64>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub seed: Option<u64>,
    pub sdk: Option<SdkKind>,
    pub workers: Option<usize>,
    /// Not a value: `run --ld-url` targets a LaunchDarkly (or mock-ld) that may hold
    /// segments the file does not define, so a `segmentMatch` on one is a warning there
    /// and an error for the embedded mock-ld (and for `validate`).
    pub external_target: bool,
}

impl Overrides {
    /// Each overridden field: its path in the scenario, its flag and the new value.
    fn fields(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut fields = Vec::new();
        let mut add = |path, flag, value: Option<String>| {
            if let Some(value) = value {
                fields.push((path, flag, value));
            }
        };
        add(
            "population.count",
            "--population",
            self.population.map(|n| n.to_string()),
        );
        add(
            "load.concurrency",
            "--concurrency",
            self.concurrency.map(|n| n.to_string()),
        );
        add("load.rate", "--rate", self.rate.map(|r| r.to_string()));
        add(
            "load.duration",
            "--duration",
            self.duration
                .map(|d| humantime_serde::re::humantime::format_duration(d).to_string()),
        );
        add(
            "load.iterations",
            "--iterations",
            self.iterations.map(|n| n.to_string()),
        );
        add("seed", "--seed", self.seed.map(|s| s.to_string()));
        add("load.sdk", "--sdk", self.sdk.map(|s| s.name().to_owned()));
        add(
            "load.workers",
            "--workers",
            self.workers.map(|n| n.to_string()),
        );
        fields
    }

    /// Sets the values on `scenario` and records them in `scenario.overrides`.
    pub(super) fn apply(&self, scenario: &mut Scenario) {
        if let Some(n) = self.population {
            scenario.population.count = n;
        }
        if let Some(n) = self.concurrency {
            scenario.load.concurrency = n;
        }
        if let Some(r) = self.rate {
            scenario.load.rate = Some(r);
        }
        if let Some(d) = self.duration {
            scenario.load.duration = Some(d);
        }
        if let Some(n) = self.iterations {
            scenario.load.iterations = Some(n);
        }
        if let Some(s) = self.seed {
            scenario.seed = s;
        }
        if let Some(sdk) = self.sdk {
            scenario.load.sdk = sdk;
        }
        if let Some(n) = self.workers {
            scenario.load.workers = Some(n);
        }
        scenario.overrides = self
            .fields()
            .into_iter()
            .map(|(path, _, value)| (path.to_owned(), value))
            .collect::<BTreeMap<_, _>>();
    }

    /// An error about an overridden field points at the flag: the file's line is not the
    /// value that was checked.
    pub(super) fn locate(&self, mut error: ScenarioError) -> ScenarioError {
        if let Some((_, flag, value)) = self
            .fields()
            .into_iter()
            .find(|(path, _, _)| error.field == *path)
        {
            error.position = None;
            error.message = format!("{flag} {value}: {}", error.message);
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::{parse_with, LoadModel};

    const BASE: &str = "name = \"t\"\n[[ai_configs]]\nkey = \"a\"\n[[ai_configs.variations]]\nkey = \"v\"\nmodel = { name = \"m\" }\n[population]\ncount = 10\n[load]\nmodel = \"open\"\nrate = 5\nduration = \"1s\"\n";

    #[test]
    fn overrides_replace_the_files_values_and_are_recorded() {
        let o = Overrides {
            population: Some(500),
            rate: Some(50.0),
            duration: Some(Duration::from_secs(3)),
            seed: Some(7),
            ..Overrides::default()
        };
        let s = parse_with(Path::new("s.toml"), BASE, &o).unwrap();
        assert_eq!(s.population.count, 500);
        assert_eq!(s.load.model, LoadModel::Open);
        assert_eq!(s.load.rate, Some(50.0));
        assert_eq!(s.load.duration, Some(Duration::from_secs(3)));
        assert_eq!(s.seed, 7);
        assert_eq!(
            s.overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            [
                "load.duration=3s",
                "load.rate=50",
                "population.count=500",
                "seed=7"
            ]
        );
    }

    #[test]
    fn an_invalid_override_is_refused_naming_its_flag() {
        let o = Overrides {
            population: Some(0),
            ..Overrides::default()
        };
        let e = parse_with(Path::new("s.toml"), BASE, &o)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "s.toml: field `population.count`: --population 0: a population needs at least one context"
        );
    }
}
