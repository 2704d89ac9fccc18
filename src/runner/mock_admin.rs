//! mock-ld's control API (`/admin`), when the target is a mock-ld: the simulated provider's
//! profiles, targeting salts and event stats. Its client carries mock-ld's admin token when
//! there is one, and it is the only client that does: the LLM endpoint may be a real
//! provider, and the REST API has tokens of its own.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use super::RunError;
use crate::scenario::Scenario;

#[derive(Clone, Debug)]
pub struct MockAdmin {
    /// Sends the admin token, if any, with every request.
    pub http: reqwest::Client,
    /// `http://HOST:PORT/admin`.
    pub base: String,
}

impl MockAdmin {
    pub fn new(base: String, token: Option<&str>) -> Result<Self, RunError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token)
                .map_err(|_| RunError::Scenario("the admin token is not a valid header".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .build()
            .map_err(|e| RunError::Scenario(e.to_string()))?;
        Ok(MockAdmin { http, base })
    }

    /// The control API at `base`, if the target has one: only a mock-ld does (LaunchDarkly
    /// and the Relay Proxy have no event log to verify against and no simulated provider).
    /// A mock-ld that refuses the token is an error, not a target without `/admin`: its
    /// events would silently go unverified.
    pub async fn probe(base: String, token: Option<&str>) -> Result<Option<Self>, RunError> {
        let admin = MockAdmin::new(base, token)?;
        let response = admin
            .http
            .get(format!("{}/environments", admin.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Ok(Some(admin)),
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => Err(RunError::Scenario(format!(
                "{} refused the admin token: pass mock-ld's --admin-token with `run --admin-token` (or MOCK_LD_ADMIN_TOKEN)",
                admin.base
            ))),
            _ => Ok(None),
        }
    }

    /// Every model's profile, and `default`'s.
    pub async fn profiles(&self) -> Result<Map<String, Value>, String> {
        self.get_json("llm/models").await
    }

    /// `GET /admin/PATH` read as JSON; an error names the URL.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}/{path}", self.base);
        let failed = |e: reqwest::Error| format!("GET {url}: {e}");
        self.http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)
    }

    pub async fn put_profile(&self, model: &str, profile: &Value) -> Result<(), String> {
        let url = format!("{}/llm/models/{model}", self.base);
        let response = self
            .http
            .put(&url)
            .json(profile)
            .send()
            .await
            .map_err(|e| format!("PUT {url}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("PUT {url}: {status}: {body}"));
        }
        Ok(())
    }

    /// Tells the simulated provider how each model behaves. A `time_scale` applies to every
    /// model, those the scenario does not describe included (mock-ld's `default`).
    pub async fn set_llm_profiles(&self, scenario: &Scenario) -> Result<(), RunError> {
        let time_scale = scenario.llm.time_scale;
        if let Some(time_scale) = time_scale {
            self.scale_default_profile(time_scale)
                .await
                .map_err(RunError::Scenario)?;
        }
        for (model, b) in &scenario.llm.models {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let mut profile = json!({
                "latencyMs": {"median": ms(b.latency.median), "p99": ms(b.latency.p99)},
                "errorRate": b.error_rate,
                "timeScale": time_scale.unwrap_or(1.0),
            });
            if let Some(t) = b.ttft {
                profile["ttftMs"] = json!({"median": ms(t.median), "p99": ms(t.p99)});
            }
            if let Some(t) = b.output_tokens {
                profile["outputTokens"] = json!({"median": t.median, "p99": t.p99});
            }
            if let Some(status) = b.error_status {
                profile["errorStatus"] = json!(status);
            }
            self.put_profile(model, &profile)
                .await
                .map_err(RunError::Scenario)?;
        }
        Ok(())
    }

    /// Sets the time scale of the profile of models without one of their own, keeping the
    /// rest of it (a mock-ld started with `--llm-profiles FILE` may have its own default).
    async fn scale_default_profile(&self, time_scale: f64) -> Result<(), String> {
        let mut profiles = self.profiles().await?;
        let mut default = match profiles.remove(mock_ld::llm::DEFAULT_MODEL) {
            Some(Value::Object(profile)) => profile,
            _ => Map::new(),
        };
        default.insert("timeScale".into(), json!(time_scale));
        self.put_profile(mock_ld::llm::DEFAULT_MODEL, &Value::Object(default))
            .await
    }
}
