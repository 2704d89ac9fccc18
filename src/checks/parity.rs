//! The built-in `sdk_parity` check of a Python or Node run: after the load, the first
//! `[load] parity_sample` requests run again through one worker and through the Rust SDK
//! with the harness's AI layer (`runner::parity` gathers what both sent), and here they
//! are compared context by context:
//!
//! - tracker (custom) events, as mock-ld received them, each reduced to its key, the
//!   `data` fields that say what was served (`configKey`, `variationKey`, `version`,
//!   `modelName`, `providerName`; a `data` that is not an object, such as the usage events'
//!   config key, whole) and, for token events, `metricValue`; compared as multisets per
//!   context. Left out: what differs between runs or SDKs by design: `$ld:ai:sdk:info` (the
//!   SDK's identity), `runId`, durations, time to first token and every timestamp (an
//!   event's presence is compared, its timing value is not);
//! - the variation each side served, per context and AI Config, and the predictor's for
//!   AI Configs whose targeting was read back (those a `rollout_split` check covers).
//!
//! Any difference fails the check, and the first [`MAX_LISTED`] are listed. This is how a
//! team learns that an SDK upgrade changed what its application tracks or serves.

use std::collections::BTreeMap;

use serde_json::Value;

use super::exact::{self, code_label};
use super::RolloutData;
use crate::results::checks::{CheckOutcome, Details, ParityDetails, ParityDifference, Status};
use crate::scenario::population::Generator;
use crate::served::UNSEEN;

/// Differences listed in results; `differenceCount` has them all.
pub const MAX_LISTED: usize = 20;

/// The AI SDK's identity event, sent once per AI client: per SDK by design.
const SDK_INFO: &str = "$ld:ai:sdk:info";

/// The events the AI SDK sends itself when it is asked for a config.
const USAGE_PREFIX: &str = "$ld:ai:usage:";

const HANDLER_NOTE: &str = "a team handler tracked the LLM calls in its own way: only the AI SDK's usage events and the served variations were compared";

/// The `data` fields that say what was served and to what model.
const DATA_FIELDS: [&str; 5] = [
    "configKey",
    "variationKey",
    "version",
    "modelName",
    "providerName",
];

/// What one SDK did with the sample.
#[derive(Debug, Default)]
pub struct Side {
    /// The custom events mock-ld received from it, as sent.
    pub events: Vec<Value>,
    /// Per AI Config, per request of the sample: the served code (`crate::served`).
    pub served: Vec<(String, Vec<u16>)>,
}

/// What the runner gathered for the check.
#[derive(Debug)]
pub struct ParityData {
    /// `python` or `node`.
    pub sdk: String,
    pub sample: u64,
    /// The worker ran a team's handler, whose tracking is its own: only the events the AI
    /// SDK sends itself (usage, on getting a config) are compared, with what was served.
    pub handler: bool,
    /// Per AI Config, the variation keys its served codes index.
    pub keys: Vec<(String, Vec<String>)>,
    pub worker: Side,
    pub rust: Side,
}

/// The outcome; `data` is `Err` with the reason the sample could not be run.
pub fn outcome(
    data: &Result<ParityData, String>,
    sdk: &str,
    rollouts: &[RolloutData],
    population: &Generator,
) -> CheckOutcome {
    let name = format!("SDK parity: {sdk} and Rust SDKs agree");
    let data = match data {
        Ok(data) => data,
        Err(why) => {
            return CheckOutcome {
                name,
                status: Status::Inconclusive,
                summary: format!("not checked: {why}"),
                details: Details::SdkParity(ParityDetails {
                    sdk: sdk.to_owned(),
                    note: Some(why.clone()),
                    ..ParityDetails::default()
                }),
            }
        }
    };
    let mut details = ParityDetails {
        sdk: data.sdk.clone(),
        sample: data.sample,
        contexts: sample_contexts(population, data.sample),
        note: data.handler.then(|| HANDLER_NOTE.to_owned()),
        ..ParityDetails::default()
    };
    let mut found = Differences::default();
    compare_events(data, &mut details, &mut found);
    compare_served(data, rollouts, population, &mut details, &mut found);
    details.difference_count = found.count;
    details.differences = found.listed;
    let (status, summary) = judge(&details);
    CheckOutcome {
        name,
        status,
        summary,
        details: Details::SdkParity(details),
    }
}

fn judge(d: &ParityDetails) -> (Status, String) {
    if d.worker_events == 0 && d.rust_events == 0 && d.assignments_compared == 0 {
        return (
            Status::Inconclusive,
            "nothing to compare: neither SDK tracked an event or served a variation".into(),
        );
    }
    let mut figures = format!(
        "{} contexts: {} tracker events from {}, {} from Rust; {} served variations compared ({} with the predictor)",
        d.contexts, d.worker_events, d.sdk, d.rust_events, d.assignments_compared, d.predicted
    );
    if let Some(note) = &d.note {
        figures += &format!(" ({note})");
    }
    match d.differences.first() {
        None => (Status::Pass, format!("no difference over {figures}")),
        Some(first) => (
            Status::Fail,
            format!(
                "{} difference(s) over {figures}; first: context {}, {} {}: Rust {}, {} {}",
                d.difference_count,
                first.context,
                first.event,
                first.field,
                first.rust,
                d.sdk,
                first.worker
            ),
        ),
    }
}

#[derive(Default)]
struct Differences {
    count: u64,
    listed: Vec<ParityDifference>,
}

impl Differences {
    fn add(&mut self, difference: ParityDifference) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(difference);
        }
    }
}

/// Distinct context keys among the sample's requests.
fn sample_contexts(population: &Generator, sample: u64) -> u64 {
    let mut keys = std::collections::BTreeSet::new();
    for index in 0..sample {
        if let Ok(context) = population.context(index) {
            if let Ok(json) = serde_json::to_value(&context) {
                keys.insert(context_key(&json));
            }
        }
    }
    keys.len() as u64
}

/// An event as compared: its key, then `(field, value)` pairs in a fixed order.
type Reduced = (String, Vec<(&'static str, String)>);

/// Per context key, each side's reduced events (rust, worker).
type ByContext = BTreeMap<String, (Vec<Reduced>, Vec<Reduced>)>;

fn compare_events(data: &ParityData, details: &mut ParityDetails, found: &mut Differences) {
    let mut by_context = ByContext::new();
    for (side, events) in [(0, &data.rust.events), (1, &data.worker.events)] {
        for event in events {
            let Some(reduced) = reduce(event) else {
                continue;
            };
            if data.handler && !reduced.0.starts_with(USAGE_PREFIX) {
                continue;
            }
            let context = event
                .get("context")
                .map(context_key)
                .or_else(|| event.get("contextKeys").map(context_keys))
                .unwrap_or_else(|| "(no context)".into());
            let entry = by_context.entry(context).or_default();
            match side {
                0 => entry.0.push(reduced),
                _ => entry.1.push(reduced),
            }
        }
    }
    for (context, (mut rust, mut worker)) in by_context {
        details.rust_events += rust.len() as u64;
        details.worker_events += worker.len() as u64;
        rust.sort();
        worker.sort();
        let (rust_only, worker_only) = unmatched(rust, worker);
        describe(&context, rust_only, worker_only, found);
    }
}

/// The event as compared, or `None` for one left out (not custom, or the SDK's identity).
fn reduce(event: &Value) -> Option<Reduced> {
    if event.get("kind").and_then(Value::as_str) != Some("custom") {
        return None;
    }
    let key = event.get("key").and_then(Value::as_str)?;
    if key == SDK_INFO {
        return None;
    }
    let mut fields = Vec::new();
    match event.get("data") {
        Some(Value::Object(data)) => {
            for name in DATA_FIELDS {
                fields.push((data_field(name), shown(data.get(name))));
            }
        }
        other => fields.push(("data", shown(other))),
    }
    if is_token_count(key) {
        fields.push(("metricValue", shown(event.get("metricValue"))));
    }
    Some((key.to_owned(), fields))
}

/// `$ld:ai:tokens:total`, `:input`, `:output` (not `:ttf`, a time).
fn is_token_count(key: &str) -> bool {
    key.strip_prefix("$ld:ai:tokens:")
        .is_some_and(|rest| rest != "ttf")
}

fn data_field(name: &str) -> &'static str {
    match name {
        "configKey" => "data.configKey",
        "variationKey" => "data.variationKey",
        "version" => "data.version",
        "modelName" => "data.modelName",
        _ => "data.providerName",
    }
}

/// A JSON value as listed: numbers without a needless `.0`, so that 12 and 12.0 agree.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Some(v) => v.to_string(),
    }
}

/// The two sorted lists with their common events (as multisets) taken out.
fn unmatched(rust: Vec<Reduced>, worker: Vec<Reduced>) -> (Vec<Reduced>, Vec<Reduced>) {
    let (mut rust_only, mut worker_only) = (Vec::new(), Vec::new());
    let (mut r, mut w) = (rust.into_iter().peekable(), worker.into_iter().peekable());
    loop {
        match (r.peek(), w.peek()) {
            (Some(a), Some(b)) if a == b => {
                r.next();
                w.next();
            }
            (Some(a), Some(b)) if a < b => rust_only.push(r.next().expect("peeked")),
            (Some(_), Some(_)) | (None, Some(_)) => worker_only.push(w.next().expect("peeked")),
            (Some(_), None) => rust_only.push(r.next().expect("peeked")),
            (None, None) => return (rust_only, worker_only),
        }
    }
}

/// The unmatched events of one context as differences: paired by event key, field by
/// field; an event without a partner as a `count` difference.
fn describe(context: &str, rust: Vec<Reduced>, worker: Vec<Reduced>, found: &mut Differences) {
    let mut worker_by_key: BTreeMap<String, Vec<Vec<(&'static str, String)>>> = BTreeMap::new();
    for (key, fields) in worker {
        worker_by_key.entry(key).or_default().push(fields);
    }
    let difference = |event: &str, field: &str, rust: String, worker: String| ParityDifference {
        context: context.to_owned(),
        event: event.to_owned(),
        field: field.to_owned(),
        rust,
        worker,
        predicted: None,
    };
    for (key, fields) in rust {
        let partner = worker_by_key
            .get_mut(&key)
            .and_then(|list| (!list.is_empty()).then(|| list.remove(0)));
        match partner {
            Some(theirs) => {
                for ((field, ours), (_, other)) in fields.iter().zip(&theirs) {
                    if ours != other {
                        found.add(difference(&key, field, ours.clone(), other.clone()));
                    }
                }
            }
            None => found.add(difference(&key, "count", "sent".into(), "not sent".into())),
        }
    }
    for (key, list) in worker_by_key {
        for _ in list {
            found.add(difference(&key, "count", "not sent".into(), "sent".into()));
        }
    }
}

/// `kind:key`, a multi-context's parts sorted by kind and joined by `|`.
pub fn context_key(context: &Value) -> String {
    let key_of = |c: &Value| {
        c.get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match context.get("kind").and_then(Value::as_str) {
        Some("multi") => {
            let mut parts: Vec<String> = context
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(kind, _)| kind.as_str() != "kind")
                .map(|(kind, c)| format!("{kind}:{}", key_of(c)))
                .collect();
            parts.sort();
            parts.join("|")
        }
        kind => format!("{}:{}", kind.unwrap_or("user"), key_of(context)),
    }
}

/// The same key from an event's `contextKeys` (`{kind: key}`).
fn context_keys(keys: &Value) -> String {
    let mut parts: Vec<String> = keys
        .as_object()
        .into_iter()
        .flatten()
        .map(|(kind, key)| format!("{kind}:{}", key.as_str().unwrap_or("")))
        .collect();
    parts.sort();
    parts.join("|")
}

/// Served variations, per AI Config and request: the worker's against the Rust SDK's and,
/// where the targeting was read, against the predictor's.
fn compare_served(
    data: &ParityData,
    rollouts: &[RolloutData],
    population: &Generator,
    details: &mut ParityDetails,
    found: &mut Differences,
) {
    for (config, worker) in &data.worker.served {
        let keys = data
            .keys
            .iter()
            .find(|(c, _)| c == config)
            .map_or(&[][..], |(_, k)| &k[..]);
        let rust = data
            .rust
            .served
            .iter()
            .find(|(c, _)| c == config)
            .map_or(&[][..], |(_, codes)| &codes[..]);
        let predicted = predictions(config, worker, rollouts, population);
        if predicted.is_some() {
            details.predicted += worker.iter().filter(|c| **c != UNSEEN).count() as u64;
        }
        for (index, &ours) in worker.iter().enumerate() {
            let theirs = rust.get(index).copied().unwrap_or(UNSEEN);
            if ours == UNSEEN && theirs == UNSEEN {
                continue;
            }
            details.assignments_compared += 1;
            let expected = predicted
                .as_ref()
                .and_then(|p| p.get(&(index as u64)).cloned());
            if ours == theirs && expected.is_none() {
                continue;
            }
            let context = population
                .context(index as u64)
                .ok()
                .and_then(|c| serde_json::to_value(&c).ok())
                .map_or_else(|| format!("#{index}"), |json| context_key(&json));
            found.add(ParityDifference {
                context,
                event: format!("served {config}"),
                field: "variation".into(),
                rust: code_label(theirs, keys),
                worker: code_label(ours, keys),
                predicted: expected.or_else(|| predicted.is_some().then(|| code_label(ours, keys))),
            });
        }
    }
}

/// For an AI Config whose targeting was read: the predictor's variation for each request
/// where the worker served another (so an empty map: every one as predicted).
fn predictions(
    config: &str,
    served: &[u16],
    rollouts: &[RolloutData],
    population: &Generator,
) -> Option<BTreeMap<u64, String>> {
    let targeting = rollouts
        .iter()
        .find(|r| r.config == config)?
        .targeting
        .as_ref()
        .ok()?;
    let comparison = exact::compare(targeting, served, population).ok()?;
    Some(
        comparison
            .mismatches
            .into_iter()
            .map(|m| (m.context_index, m.expected))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(key: &str, context: &str, value: f64) -> Value {
        json!({"kind": "custom", "key": key, "context": {"kind": "user", "key": context},
               "data": {"configKey": "c", "variationKey": "v", "version": 1,
                        "modelName": "m", "providerName": "p", "runId": context},
               "metricValue": value, "creationDate": 1})
    }

    fn differences(rust: Vec<Value>, worker: Vec<Value>) -> Vec<ParityDifference> {
        let data = ParityData {
            sdk: "python".into(),
            sample: 0,
            handler: false,
            keys: Vec::new(),
            worker: Side {
                events: worker,
                served: Vec::new(),
            },
            rust: Side {
                events: rust,
                served: Vec::new(),
            },
        };
        let (mut details, mut found) = (ParityDetails::default(), Differences::default());
        compare_events(&data, &mut details, &mut found);
        found.listed
    }

    #[test]
    fn durations_run_ids_and_sdk_info_are_left_out() {
        let rust = vec![
            event("$ld:ai:duration:total", "a", 120.0),
            event("$ld:ai:tokens:output", "a", 50.0),
            event(SDK_INFO, "x", 1.0),
        ];
        let worker = vec![
            event("$ld:ai:tokens:output", "a", 50.0),
            event("$ld:ai:duration:total", "a", 97.0),
        ];
        assert_eq!(differences(rust, worker), Vec::new());
    }

    #[test]
    fn a_changed_token_count_is_named_by_context_event_and_field() {
        let rust = vec![event("$ld:ai:tokens:output", "a", 50.0)];
        let worker = vec![event("$ld:ai:tokens:output", "a", 51.0)];
        let found = differences(rust, worker);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (
                found[0].context.as_str(),
                found[0].event.as_str(),
                found[0].field.as_str(),
                found[0].rust.as_str(),
                found[0].worker.as_str()
            ),
            ("user:a", "$ld:ai:tokens:output", "metricValue", "50", "51")
        );
    }

    #[test]
    fn a_missing_event_counts_and_another_context_does_not_match() {
        let rust = vec![event("$ld:ai:generation:success", "a", 1.0)];
        let worker = vec![event("$ld:ai:generation:success", "b", 1.0)];
        let found = differences(rust, worker);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|d| d.field == "count"));
    }

    #[test]
    fn multi_context_keys_do_not_depend_on_order() {
        let a = json!({"kind": "multi", "user": {"key": "u"}, "org": {"key": "o"}});
        let b = json!({"org": {"key": "o"}, "kind": "multi", "user": {"key": "u"}});
        assert_eq!(context_key(&a), "org:o|user:u");
        assert_eq!(context_key(&a), context_key(&b));
        assert_eq!(
            context_keys(&json!({"user": "u", "org": "o"})),
            "org:o|user:u"
        );
    }
}
