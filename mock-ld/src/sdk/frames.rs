//! Server-sent event frames of the `/all` stream, serialized once and shared by every stream.
//! The FDv2 stream's events use the same framing ([`frame`]).
//!
//! Framing follows `shared/spec/ld-sdk-protocol.md` §3: `event: NAME\ndata: JSON\n\n`, the
//! JSON on one line, no `id:` and no `retry:` (which would reset the SDKs' backoff).

use bytes::Bytes;
use serde_json::json;

use crate::model::Versioned;

/// A comment line every client ignores; it keeps Python's and Node's 5-minute read timeout
/// from firing on a quiet stream.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// One `event: NAME\ndata: JSON\n\n` frame; `data` must be one line of JSON.
pub fn frame(event: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(event.len() + data.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `put` replacing everything; `all_json` is `{"flags":{…},"segments":{…}}`.
pub fn put(all_json: &[u8]) -> Bytes {
    let mut data = Vec::with_capacity(all_json.len() + 24);
    data.extend_from_slice(br#"{"path":"/","data":"#);
    data.extend_from_slice(all_json);
    data.push(b'}');
    frame("put", &data)
}

/// `patch` upserting one flag or segment.
pub fn patch<T: Versioned>(item: &T) -> Bytes {
    let path = format!("/{}/{}", T::COLLECTION, item.key());
    let data = serde_json::to_vec(&json!({ "path": path, "data": item }))
        .expect("flags and segments always serialize");
    frame("patch", &data)
}

/// `delete` leaving a tombstone at `version`.
pub fn delete(collection: &str, key: &str, version: u64) -> Bytes {
    let path = format!("/{collection}/{key}");
    let data = serde_json::to_vec(&json!({ "path": path, "version": version }))
        .expect("plain JSON always serializes");
    frame("delete", &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flag;

    #[test]
    fn frames_are_single_line_json_events() {
        let flag = Flag {
            key: "a/b".into(),
            version: 3,
            ..Flag::default()
        };
        let text = String::from_utf8(patch(&flag).to_vec()).unwrap();
        assert!(text.starts_with("event: patch\ndata: {"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 3);
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(1).unwrap().trim_start_matches("data: "))
                .unwrap();
        assert_eq!(data["path"], "/flags/a/b");
        assert_eq!(data["data"]["version"], 3);

        let put = String::from_utf8(put(br#"{"flags":{},"segments":{}}"#).to_vec()).unwrap();
        assert_eq!(
            put,
            "event: put\ndata: {\"path\":\"/\",\"data\":{\"flags\":{},\"segments\":{}}}\n\n"
        );
        let del = String::from_utf8(delete("segments", "s", 7).to_vec()).unwrap();
        assert!(del.contains("\"version\":7") && del.starts_with("event: delete\n"));
    }
}
