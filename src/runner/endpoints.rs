//! Where a run's SDKs, REST calls, events and LLM calls go: the target's URLs, or an
//! embedded mock-ld started for the run (with `[[restarts]]`, restartable, and its
//! simulated provider apart), and the admin APIs the run reads and acts on there.

use std::sync::Arc;

use mock_ld::faults::registry::RefusedEvents;
use mock_ld::isolated::IsolatedMockLd;

use super::embedded::EmbeddedMock;
use super::mock_admin::MockAdmin;
use super::{events, faults, restarts, RunError, Target};
use crate::ld_client::{EventOptions, SdkOptions};
use crate::scenario::Scenario;

/// The endpoints of one run, and the embedded mock-ld if there is one.
pub(crate) struct Endpoints {
    pub sdk_url: String,
    pub stream_url: Option<String>,
    pub events_url: Option<String>,
    pub api_url: String,
    pub sdk_key: String,
    pub api_token: String,
    /// mock-ld's admin API (targeting salts, SDK faults), when the SDK URL is a mock-ld.
    pub admin: Option<MockAdmin>,
    /// The admin API where events are verified, when the events URL is a mock-ld.
    pub events_admin: Option<MockAdmin>,
    /// The simulated provider's base URL (`…/v1`), unless `[llm] url` names another.
    pub llm_url: String,
    /// Its admin API (LLM profiles and faults): mock-ld's where the SDKs go, or with
    /// `[[restarts]]` the embedded provider's, which is not restarted.
    pub llm_admin: Option<MockAdmin>,
    embedded: Option<Arc<EmbeddedMock>>,
    _provider: Option<IsolatedMockLd>,
}

impl Endpoints {
    /// The target's endpoints, or an embedded mock-ld's that lists the last `listed` raw
    /// events it receives.
    pub async fn of(
        scenario: &Scenario,
        target: &Target,
        listed: usize,
    ) -> Result<Endpoints, RunError> {
        match target {
            Target::External {
                sdk_url,
                stream_url,
                events_url,
                api_url,
                sdk_key,
                api_token,
                admin_token,
            } => {
                let trim = |url: &String| url.trim_end_matches('/').to_owned();
                let sdk_url = trim(sdk_url);
                let events_url = events_url.as_ref().map(trim);
                let token = admin_token.as_deref();
                let admin = MockAdmin::probe(format!("{sdk_url}/admin"), token).await?;
                // Events are verified where they go.
                let events_admin = match &events_url {
                    Some(url) => MockAdmin::probe(format!("{url}/admin"), token).await?,
                    None => admin.clone(),
                };
                Ok(Endpoints {
                    llm_url: format!("{sdk_url}/v1"),
                    llm_admin: admin.clone(),
                    admin,
                    events_admin,
                    sdk_url,
                    stream_url: stream_url.as_ref().map(trim),
                    events_url,
                    api_url: api_url.trim_end_matches('/').to_owned(),
                    sdk_key: sdk_key.clone(),
                    api_token: api_token.clone(),
                    embedded: None,
                    _provider: None,
                })
            }
            Target::Embedded => embedded(scenario, listed).await,
        }
    }

    /// A Rust SDK client's settings for these endpoints; events as given.
    pub fn sdk_options(&self, events: Option<EventOptions>) -> SdkOptions {
        SdkOptions {
            base_url: self.sdk_url.clone(),
            stream_url: self.stream_url.clone(),
            events_url: self.events_url.clone(),
            sdk_key: self.sdk_key.clone(),
            events,
        }
    }

    /// With `[[faults]]` or `[[restarts]]`, the events payloads mock-ld where events go has
    /// refused so far in the scenario's environment (`Some(Ok(None))`: none yet); `None`
    /// without either, or without mock-ld.
    pub async fn refused_events(
        &self,
        scenario: &Scenario,
    ) -> Option<Result<Option<RefusedEvents>, String>> {
        let admin = self.events_admin.as_ref()?;
        if scenario.faults.is_empty() && scenario.restarts.is_empty() {
            return None;
        }
        Some(faults::refused_events(admin, &scenario.project, &scenario.environment).await)
    }

    /// What `[[restarts]]` restart and read: the embedded mock-ld, when there are any.
    pub fn restart_target(&self, scenario: &Scenario) -> Option<restarts::Target> {
        if scenario.restarts.is_empty() {
            return None;
        }
        let admin = self.admin.clone()?;
        Some(restarts::Target {
            mock: self.embedded.clone()?,
            stats: events::EventStats::new(&admin, &scenario.project, &scenario.environment),
            admin,
            project: scenario.project.clone(),
            environment: scenario.environment.clone(),
        })
    }

    /// mock-ld's event counts for the scenario's environment, when its events go to a
    /// mock-ld and are on.
    pub fn event_stats(&self, scenario: &Scenario) -> Option<events::EventStats> {
        let admin = self.events_admin.as_ref()?;
        scenario
            .load
            .events
            .enabled
            .then(|| events::EventStats::new(admin, &scenario.project, &scenario.environment))
    }
}

/// A closed mock-ld in-process; with `[[restarts]]`, restartable, and its simulated
/// provider apart in a second one that stays up (a provider is not down when LaunchDarkly
/// is).
async fn embedded(scenario: &Scenario, listed: usize) -> Result<Endpoints, RunError> {
    // Closed even in-process: nothing else on the machine may change the run.
    let admin_token = uuid::Uuid::new_v4().to_string();
    // Raw events it keeps listing: none (nothing else can list them, its port is not
    // announced, and the load's events are read through their counts, which cover every
    // event; 100,000 listed cost about 100 MB), unless a parity phase will read its events
    // one by one (`parity::event_list`).
    let config = mock_ld::Config {
        llm_seed: scenario.seed,
        max_stored_events: listed,
        admin_token: Some(admin_token.clone()),
        ..mock_ld::Config::default()
    };
    let restartable = !scenario.restarts.is_empty();
    let mock = EmbeddedMock::start(config.clone(), restartable).await?;
    let base = format!("http://{}", mock.addr());
    let admin = MockAdmin::new(format!("{base}/admin"), Some(&admin_token))?;
    let (env, api_token) = mock
        .with(|m| {
            let env = m
                .store()
                .environment(&scenario.project, &scenario.environment);
            (env, m.config().api_token.clone())
        })
        .await
        .expect("just started");
    let env = env.ok_or_else(|| {
        RunError::Scenario(format!(
            "the embedded mock-ld has no environment {:?} in project {:?}",
            scenario.environment, scenario.project
        ))
    })?;
    let provider = match restartable {
        true => Some(IsolatedMockLd::start(config).await?),
        false => None,
    };
    let (llm_url, llm_admin) = match &provider {
        Some(p) => (
            format!("{}/v1", p.base_url()),
            MockAdmin::new(format!("{}/admin", p.base_url()), Some(&admin_token))?,
        ),
        None => (format!("{base}/v1"), admin.clone()),
    };
    Ok(Endpoints {
        sdk_url: base.clone(),
        stream_url: None,
        events_url: None,
        api_url: base,
        sdk_key: env.sdk_key.clone(),
        api_token,
        admin: Some(admin.clone()),
        events_admin: Some(admin),
        llm_url,
        llm_admin: Some(llm_admin),
        embedded: Some(Arc::new(mock)),
        _provider: provider,
    })
}

/// The Rust SDK's event settings of the scenario's load.
pub fn event_options(scenario: &Scenario) -> EventOptions {
    EventOptions {
        capacity: scenario.load.events.capacity,
        flush_interval: scenario.load.events.flush_interval,
    }
}
