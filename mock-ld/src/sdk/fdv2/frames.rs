//! FDv2 events, each serialized once: as SSE frames on `/sdk/stream` (the FDv1 framing of
//! [`crate::sdk::frames::frame`]) and as `{"event":NAME,"data":…}` items of the
//! `{"events":[…]}` body of `/sdk/poll`.
//!
//! Field names follow what the SDKs parse (Python `ldclient/impl/datasystem/protocolv2.py`
//! and `interfaces.py`, js-core `internal/fdv2/proto.ts`): `server-intent` carries
//! `{"payloads":[{"id","target","intentCode","reason"}]}` (exactly one payload: Python
//! refuses any other count), `put-object` `{"version","kind","key","object"}`,
//! `delete-object` `{"version","kind","key"}`, `payload-transferred` `{"state","version"}`,
//! `goodbye` `{"reason"}`. Heartbeats stay SSE comments, as on `/all`: every SDK ignores
//! them, while the `heart-beat` event the SDKs know is spelled `heartbeat` by the test harness.

use bytes::Bytes;
use serde_json::json;

use super::selector::Selector;
use crate::model::Versioned;
use crate::sdk::frames::frame;

/// One FDv2 event: its name and its data, one line of JSON.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: &'static str,
    pub data: Bytes,
}

/// What a `server-intent` announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Everything follows; it replaces what the SDK had.
    Full,
    /// Only the changes since the SDK's basis follow.
    Changes,
    /// The SDK's basis is current: nothing follows.
    None,
}

impl Intent {
    fn code(self) -> &'static str {
        match self {
            Intent::Full => "xfer-full",
            Intent::Changes => "xfer-changes",
            Intent::None => "none",
        }
    }
}

fn event(name: &'static str, data: serde_json::Value) -> Event {
    Event {
        name,
        data: serde_json::to_vec(&data)
            .expect("plain JSON always serializes")
            .into(),
    }
}

/// `server-intent` for the payload `selector` ends at; `reason` is informational
/// (`payload-missing`, `cant-catchup`, `up-to-date`, as LaunchDarkly and ldcli send).
pub fn server_intent(selector: &Selector, intent: Intent, reason: &str) -> Event {
    event(
        "server-intent",
        json!({"payloads": [{
            "id": selector.payload_id,
            "target": selector.version,
            "intentCode": intent.code(),
            "reason": reason,
        }]}),
    )
}

/// `put-object` upserting one flag or segment.
pub fn put_object<T: Versioned>(item: &T) -> Event {
    let data = serde_json::to_vec(&json!({
        "version": item.version(),
        "kind": T::KIND,
        "key": item.key(),
        "object": item,
    }))
    .expect("flags and segments always serialize");
    Event {
        name: "put-object",
        data: data.into(),
    }
}

/// `delete-object` leaving a tombstone at `version`.
pub fn delete_object(kind: &str, key: &str, version: u64) -> Event {
    event(
        "delete-object",
        json!({"version": version, "kind": kind, "key": key}),
    )
}

/// `payload-transferred`: the events before it bring the SDK to `selector`.
pub fn payload_transferred(selector: &Selector) -> Event {
    event(
        "payload-transferred",
        json!({"state": selector.to_string(), "version": selector.version}),
    )
}

/// `goodbye`: the server is about to close the stream; the SDK reconnects.
pub fn goodbye(reason: &str) -> Event {
    event("goodbye", json!({ "reason": reason }))
}

/// The events as consecutive SSE frames.
pub fn sse<'a>(events: impl IntoIterator<Item = &'a Event>) -> Bytes {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(&frame(e.name, &e.data));
    }
    out.into()
}

/// The events as comma-separated `{"event":NAME,"data":…}` items, to sit in a JSON array.
pub fn json_items<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"event":""#);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(br#"","data":"#);
        out.extend_from_slice(&e.data);
        out.push(b'}');
    }
    out
}

/// `{"events":[…]}` of the given item lists (each from [`json_items`]), the `/sdk/poll` body.
pub fn poll_body(parts: &[&[u8]]) -> Bytes {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 12);
    out.extend_from_slice(br#"{"events":["#);
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if out.len() > 11 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"]}");
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flag;
    use serde_json::Value;

    fn selector() -> Selector {
        Selector {
            payload_id: "pid".into(),
            version: 9,
        }
    }

    #[test]
    fn events_carry_the_fields_the_sdks_parse() {
        let flag = Flag {
            key: "f".into(),
            version: 4,
            ..Flag::default()
        };
        let put: Value = serde_json::from_slice(&put_object(&flag).data).unwrap();
        assert_eq!(put["kind"], "flag");
        assert_eq!(put["key"], "f");
        assert_eq!(put["version"], 4);
        assert_eq!(put["object"]["version"], 4);

        let intent: Value =
            serde_json::from_slice(&server_intent(&selector(), Intent::Changes, "r").data).unwrap();
        assert_eq!(
            intent,
            json!({"payloads": [{"id": "pid", "target": 9, "intentCode": "xfer-changes", "reason": "r"}]})
        );
        let done: Value = serde_json::from_slice(&payload_transferred(&selector()).data).unwrap();
        assert_eq!(done, json!({"state": "(p:pid:9)", "version": 9}));
        let del: Value = serde_json::from_slice(&delete_object("segment", "s", 3).data).unwrap();
        assert_eq!(del, json!({"version": 3, "kind": "segment", "key": "s"}));
    }

    #[test]
    fn sse_and_poll_encodings_hold_the_same_events() {
        let events = [
            server_intent(&selector(), Intent::Full, "payload-missing"),
            delete_object("flag", "gone", 2),
            payload_transferred(&selector()),
        ];
        let text = String::from_utf8(sse(&events).to_vec()).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            ["server-intent", "delete-object", "payload-transferred"]
        );
        assert_eq!(text.matches("\n\n").count(), 3);

        let body = poll_body(&[&json_items(&events[..1]), &[], &json_items(&events[1..])]);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        let parsed = parsed["events"].as_array().unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1]["event"], "delete-object");
        assert_eq!(parsed[1]["data"]["key"], "gone");
        assert_eq!(parsed[2]["data"]["state"], "(p:pid:9)");
        assert_eq!(&*poll_body(&[]), br#"{"events":[]}"#);
    }
}
