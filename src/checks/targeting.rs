//! An AI Config's targeting as read back from the REST API after setup, before the load:
//! what the exact rollout check predicts from. Taken before the load, it is what was
//! configured, so a data source that serves something else (a stale Relay, a tampered flag)
//! shows up as mismatches.
//!
//! - `GET /api/v2/projects/{p}/ai-configs/{key}/targeting`: the environment's `on`,
//!   `offVariation`, `targets`, `contextTargets`, `rules` and `fallthrough`, and the
//!   variations in flag order (their keys map what the AI layer served to indices).
//! - `GET /api/v2/segments/{p}/{env}/{key}`: every segment a `segmentMatch` clause names,
//!   and the segments those segments' rules name.
//! - The flag's bucketing salt, which the targeting answer does not carry: from its
//!   environment's `salt` if present, else from `GET /api/v2/flags/{p}/{key}`
//!   (LaunchDarkly's flag answer has it per environment), else from mock-ld's admin API.
//!   Only the salt is taken from there, so everything the check compares still comes from
//!   the REST API. Rollouts with a `seed` do not use it.

use std::collections::HashMap;

use serde_json::Value;

use super::predict::{Flag, Segment};
use crate::ld_api::LdApi;

/// The targeting one AI Config had in one environment.
#[derive(Clone, Debug)]
pub struct Targeting {
    pub config: String,
    /// The environment's targeting as a flag: key, salt and variations filled in.
    pub flag: Flag,
    /// Variation keys in flag order (index 0 is the implicit `disabled`).
    pub variation_keys: Vec<String>,
    pub segments: HashMap<String, Segment>,
    /// The environment's `_version` of the targeting.
    pub version: Option<u64>,
}

/// Reads one AI Config's targeting; `admin` is mock-ld's admin base URL, if the target is
/// a mock-ld.
pub async fn read(
    api: &LdApi,
    env: &str,
    config: &str,
    admin: Option<(&reqwest::Client, &str)>,
) -> Result<Targeting, String> {
    let path = format!(
        "/api/v2/projects/{}/ai-configs/{config}/targeting",
        api.project
    );
    let answer = api
        .get(&path)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("GET {path}: not found"))?;
    let variation_keys = variation_keys(&answer);
    let env_targeting = answer["environments"]
        .get(env)
        .ok_or_else(|| format!("GET {path}: no environment {env:?}"))?;
    let mut flag: Flag = serde_json::from_value(env_targeting.clone())
        .map_err(|e| format!("GET {path}: unreadable targeting: {e}"))?;
    flag.key = config.to_owned();
    flag.variations = variation_keys.len();
    if let Some(on) = env_targeting
        .get("enabled")
        .and_then(Value::as_bool)
        .filter(|_| env_targeting.get("on").is_none())
    {
        flag.on = on;
    }
    flag.salt = salt(api, env, config, env_targeting, admin).await?;
    let segments = segments(api, env, &flag).await?;
    let version = env_targeting["_version"].as_u64();
    Ok(Targeting {
        config: config.to_owned(),
        flag,
        variation_keys,
        segments,
        version,
    })
}

/// `variations[].key` (or `_ldMeta.variationKey` of the value) in order.
fn variation_keys(answer: &Value) -> Vec<String> {
    let variations = answer["variations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    variations
        .iter()
        .map(|v| {
            v["key"]
                .as_str()
                .or_else(|| v["value"]["_ldMeta"]["variationKey"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn salt(
    api: &LdApi,
    env: &str,
    config: &str,
    env_targeting: &Value,
    admin: Option<(&reqwest::Client, &str)>,
) -> Result<String, String> {
    if let Some(salt) = env_targeting["salt"].as_str() {
        return Ok(salt.to_owned());
    }
    let path = format!("/api/v2/flags/{}/{config}", api.project);
    if let Some(flag) = api.get(&path).await.map_err(|e| e.to_string())? {
        if let Some(salt) = flag["environments"][env]["salt"].as_str() {
            return Ok(salt.to_owned());
        }
    }
    let Some((http, admin)) = admin else {
        return Err(format!(
            "no bucketing salt for {config}: neither the targeting nor GET {path} has one"
        ));
    };
    let url = format!(
        "{admin}/environments/{env}/flags/{config}?project={}",
        api.project
    );
    let flag: Value = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    flag["salt"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("GET {url}: no salt"))
}

/// Every segment the flag's rules reach, directly or through other segments' rules. A
/// segment that does not exist matches no one, as in the SDKs, so it is left out.
async fn segments(api: &LdApi, env: &str, flag: &Flag) -> Result<HashMap<String, Segment>, String> {
    let mut pending: Vec<String> = flag
        .rules
        .iter()
        .flat_map(|r| segment_keys(&r.clauses))
        .collect();
    let mut found = HashMap::new();
    let mut missing = Vec::new();
    while let Some(key) = pending.pop() {
        if found.contains_key(&key) || missing.contains(&key) {
            continue;
        }
        let path = format!("/api/v2/segments/{}/{env}/{key}", api.project);
        let Some(json) = api.get(&path).await.map_err(|e| e.to_string())? else {
            missing.push(key);
            continue;
        };
        let segment: Segment = serde_json::from_value(json)
            .map_err(|e| format!("GET {path}: unreadable segment: {e}"))?;
        pending.extend(segment.rules.iter().flat_map(|r| segment_keys(&r.clauses)));
        found.insert(key, segment);
    }
    Ok(found)
}

fn segment_keys(clauses: &[super::predict::model::Clause]) -> Vec<String> {
    clauses
        .iter()
        .filter(|c| c.op == "segmentMatch")
        .flat_map(|c| c.values.iter().filter_map(Value::as_str).map(str::to_owned))
        .collect()
}
