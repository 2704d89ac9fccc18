//! Which of LaunchDarkly's three patch formats a PATCH body is, and JSON Patch and merge
//! patch applied to a resource's JSON view and read back into its typed edit.
//!
//! The formats, as LaunchDarkly's docs and generated clients send them:
//! - semantic patch: `{environmentKey?, instructions: [{kind, …}], comment?}`, with or without
//!   `Content-Type: application/json; domain-model=launchdarkly.semanticpatch` (mock-ld
//!   recognises the body; LaunchDarkly would read a body without the header as JSON Patch);
//! - JSON Patch (RFC 6902): a bare array of operations, or `{patch: [ops], comment?}` (the
//!   generated clients' `PatchWithComment`);
//! - JSON merge patch (RFC 7386): `{merge: {…}, comment?}`, or a bare merge document sent as
//!   `Content-Type: application/merge-patch+json`.
//!
//! A resource's view is the JSON its GET answers. Fields whose names start with `_`
//! (LaunchDarkly: "attributes that are not editable have names that start with an
//! underscore") and the resource's own read-only pointers may not change: the patch is
//! refused with a 400 naming the first such path.

use json_patch::PatchOperation;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::json::{from_value, parse};
use crate::api::semantic_patch::PatchBody;
use crate::error::AppError;

/// What a PATCH body asks for.
#[derive(Debug)]
pub enum Format {
    Semantic(PatchBody),
    Json(Vec<PatchOperation>),
    Merge(Value),
}

/// A PATCH body: its format and its comment, for the audit log.
#[derive(Debug)]
pub struct Request {
    pub format: Format,
    pub comment: Option<String>,
}

/// Reads a PATCH body in any of the three formats.
pub fn read(content_type: Option<&str>, body: &[u8]) -> Result<Request, AppError> {
    let value: Value = parse(body)?;
    let merge_type = content_type.is_some_and(|t| t.contains("merge-patch"));
    match value {
        Value::Array(_) => Ok(Request {
            format: Format::Json(operations(value)?),
            comment: None,
        }),
        Value::Object(mut object) if merge_type => {
            let comment = None;
            object.remove("comment");
            Ok(Request {
                format: Format::Merge(Value::Object(object)),
                comment,
            })
        }
        Value::Object(mut object) => {
            let comment = match object.get("comment") {
                None | Some(Value::Null) => None,
                Some(Value::String(c)) => Some(c.clone()),
                Some(_) => return Err(AppError::bad_request("`comment` must be a string")),
            };
            if object.contains_key("instructions") {
                let body: PatchBody = from_value(Value::Object(object))?;
                return Ok(Request {
                    format: Format::Semantic(body),
                    comment,
                });
            }
            if let Some(ops) = object.remove("patch") {
                if ops.is_object() {
                    return Ok(Request {
                        format: Format::Merge(ops),
                        comment,
                    });
                }
                return Ok(Request {
                    format: Format::Json(operations(ops).map_err(|e| prefix("patch", e))?),
                    comment,
                });
            }
            if let Some(merge) = object.remove("merge") {
                if !merge.is_object() {
                    return Err(AppError::bad_request("`merge` must be a JSON object"));
                }
                return Ok(Request {
                    format: Format::Merge(merge),
                    comment,
                });
            }
            Err(AppError::bad_request(
                "unrecognised patch body: send a semantic patch ({\"instructions\": [...]}), a \
                 JSON Patch ([ops] or {\"patch\": [ops], \"comment\"}) or a merge patch \
                 ({\"merge\": {...}, \"comment\"}, or a bare object with Content-Type \
                 application/merge-patch+json)",
            ))
        }
        _ => Err(AppError::bad_request(
            "a patch body is a JSON array (JSON Patch) or object",
        )),
    }
}

/// `error` about a value found at `field`: its field path, or the value itself, now under
/// `field`.
fn prefix(field: &str, error: AppError) -> AppError {
    let message = if error.message.contains("field `") {
        error
            .message
            .replacen("field `", &format!("field `{field}."), 1)
    } else {
        error.message.replacen(
            "invalid request body: ",
            &format!("invalid request body: field `{field}`: "),
            1,
        )
    };
    AppError::bad_request(message)
}

fn operations(value: Value) -> Result<Vec<PatchOperation>, AppError> {
    let ops: json_patch::Patch = from_value(value)?;
    Ok(ops.0)
}

/// Applies a JSON Patch or merge patch to `view` (which `format` must be) and returns the
/// result, refusing changes to fields whose names start with `_` and to `read_only`
/// pointers (`*` matches any one segment).
pub fn apply(view: &Value, format: Format, read_only: &[&str]) -> Result<Value, AppError> {
    let mut after = view.clone();
    match format {
        Format::Json(ops) => json_patched(&mut after, &ops)?,
        Format::Merge(merge) => json_patch::merge(&mut after, &merge),
        Format::Semantic(_) => {
            return Err(AppError::bad_request(
                "internal: a semantic patch is not applied to a JSON view",
            ))
        }
    }
    check_read_only(view, &after, "", read_only)?;
    Ok(after)
}

/// Bytes one JSON Patch may copy in all. Every other op adds at most what its body holds
/// (bounded by `--max-api-body-bytes`), but each `copy` can double the document: forty
/// `copy` ops of the whole view into itself asked for 2^40 times its size and the process
/// was killed for memory.
pub const MAX_COPIED_BYTES: usize = 16 << 20;

/// Applies `ops` one at a time (the caller's copy is dropped on error, so the whole patch
/// still applies or not at all), measuring each `copy` source before it is copied.
fn json_patched(after: &mut Value, ops: &[PatchOperation]) -> Result<(), AppError> {
    let mut copy_budget = MAX_COPIED_BYTES;
    for (i, op) in ops.iter().enumerate() {
        if let PatchOperation::Copy(copy) = op {
            if let Some(source) = after.pointer(copy.from.as_str()) {
                copy_budget = copy_budget
                    .checked_sub(encoded_len(source, copy_budget))
                    .ok_or_else(|| {
                        AppError::bad_request(format!(
                            "patch[{i}] (copy) from {:?}: the patch would copy more than \
                             {MAX_COPIED_BYTES} bytes in all",
                            copy.from.to_string()
                        ))
                    })?;
            }
        }
        json_patch::patch(after, std::slice::from_ref(op)).map_err(|e| {
            AppError::bad_request(format!(
                "patch[{i}] ({}) failed at {:?}: {}",
                op_name(op),
                e.path.to_string(),
                e.kind
            ))
        })?;
    }
    Ok(())
}

/// `value`'s JSON length, or `limit + 1` as soon as it passes `limit` (so a huge value is
/// not written out just to be refused).
fn encoded_len(value: &Value, limit: usize) -> usize {
    struct Counter {
        written: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len();
            if self.written > self.limit {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { written: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.written,
        Err(_) => limit + 1,
    }
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// Walks objects present in both `before` and `after` (not arrays: a rule inserted first
/// shifts every later rule, and their `_id`s with them) and fails at the first read-only
/// field that differs.
fn check_read_only(
    before: &Value,
    after: &Value,
    path: &str,
    read_only: &[&str],
) -> Result<(), AppError> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Ok(());
    };
    let empty = Map::new();
    for key in before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
    {
        let here = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        if key.starts_with('_') || read_only.iter().any(|p| pointer_matches(p, &here)) {
            return Err(AppError::bad_request(format!(
                "{here} is read-only; the patch may not change it"
            )));
        }
        let none = Value::Object(empty.clone());
        check_read_only(old.unwrap_or(&none), new.unwrap_or(&none), &here, read_only)?;
    }
    Ok(())
}

/// Whether `pointer` is `pattern`, where a `*` segment matches any one segment.
fn pointer_matches(pattern: &str, pointer: &str) -> bool {
    let (pattern, pointer): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), pointer.split('/').collect());
    pattern.len() == pointer.len()
        && pattern
            .iter()
            .zip(&pointer)
            .all(|(p, s)| *p == "*" || p == s)
}

/// Reads the patched view back into the resource's typed edit, naming the field of any
/// error.
pub fn read_back<T: DeserializeOwned>(view: Value) -> Result<T, AppError> {
    from_value(view).map_err(|e| {
        AppError::bad_request(e.message.replacen(
            "invalid request body",
            "the patched resource is invalid",
            1,
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn format(body: Value, content_type: Option<&str>) -> Format {
        read(content_type, body.to_string().as_bytes())
            .expect("reads")
            .format
    }

    #[test]
    fn tells_the_three_formats_apart() {
        assert!(matches!(
            format(json!([{"op": "remove", "path": "/a"}]), None),
            Format::Json(ops) if ops.len() == 1
        ));
        let commented = read(
            None,
            br#"{"comment": "why", "patch": [{"op": "add", "path": "/a", "value": 1}]}"#,
        )
        .expect("reads");
        assert_eq!(commented.comment.as_deref(), Some("why"));
        assert!(matches!(commented.format, Format::Json(_)));
        assert!(matches!(
            format(json!({"merge": {"a": 1}}), None),
            Format::Merge(m) if m == json!({"a": 1})
        ));
        assert!(matches!(
            format(json!({"a": 1}), Some("application/merge-patch+json")),
            Format::Merge(m) if m == json!({"a": 1})
        ));
        assert!(matches!(
            format(json!({"instructions": [{"kind": "turnFlagOn"}]}), None),
            Format::Semantic(_)
        ));
        let unknown = read(None, br#"{"a": 1}"#).expect_err("refused");
        assert!(unknown.message.contains("unrecognised patch body"));
        let null = read(None, br#"{"patch": null}"#).expect_err("refused");
        assert_eq!(
            null.message,
            "invalid request body: field `patch`: invalid type: null, expected a sequence"
        );
        let nested = read(None, br#"{"patch": [{"op": 5}]}"#).expect_err("refused");
        assert!(
            nested
                .message
                .starts_with("invalid request body: field `patch.[0].op`"),
            "{}",
            nested.message
        );
        let bad_op = read(None, br#"[{"op": "frobnicate", "path": "/a"}]"#).expect_err("refused");
        assert!(bad_op.message.contains("frobnicate"), "{}", bad_op.message);
    }

    #[test]
    fn a_patch_copying_the_document_into_itself_is_refused_before_it_grows() {
        let view = json!({"big": "x".repeat(1 << 20), "copies": {}});
        let ops: Vec<Value> = (0..20)
            .map(|i| json!({"op": "copy", "from": "/big", "path": format!("/copies/c{i}")}))
            .collect();
        let error = apply(&view, format(Value::Array(ops), None), &[]).expect_err("refused");
        assert_eq!(
            error.message,
            format!(
                "patch[15] (copy) from \"/big\": the patch would copy more than \
                 {MAX_COPIED_BYTES} bytes in all"
            )
        );
        let few: Vec<Value> = (0..3)
            .map(|i| json!({"op": "copy", "from": "/big", "path": format!("/copies/c{i}")}))
            .collect();
        let after = apply(&view, format(Value::Array(few), None), &[]).expect("copies");
        assert_eq!(after["copies"]["c2"], view["big"]);
    }

    #[test]
    fn a_merge_patch_nulling_a_required_field_names_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Edit {
            name: String,
        }
        let view = json!({"name": "a"});
        let after = apply(&view, format(json!({"merge": {"name": null}}), None), &[]).unwrap();
        let error = read_back::<Edit>(after).expect_err("refused");
        assert_eq!(
            error.message,
            "the patched resource is invalid: missing field `name`"
        );
    }

    #[test]
    fn applies_and_refuses_read_only_fields_by_path() {
        let view = json!({"key": "k", "name": "a", "_version": 3, "envs": {"t": {"on": false, "salt": "s"}}});
        let ops = format(
            json!([{"op": "replace", "path": "/envs/t/on", "value": true}]),
            None,
        );
        let after = apply(&view, ops, &["/key"]).expect("applies");
        assert_eq!(after["envs"]["t"]["on"], true);
        for (patch, path) in [
            (
                json!([{"op": "replace", "path": "/_version", "value": 4}]),
                "/_version",
            ),
            (
                json!([{"op": "replace", "path": "/key", "value": "x"}]),
                "/key",
            ),
            (
                json!([{"op": "replace", "path": "/envs/t", "value": {"on": true}}]),
                "/envs/t/salt",
            ),
        ] {
            let error =
                apply(&view, format(patch, None), &["/key", "/envs/*/salt"]).expect_err("refused");
            assert_eq!(
                error.message,
                format!("{path} is read-only; the patch may not change it")
            );
        }
        let merge = format(
            json!({"merge": {"name": "b", "envs": {"t": {"on": true}}}}),
            None,
        );
        let after = apply(&view, merge, &["/key"]).expect("merges");
        assert_eq!(after["name"], "b");
        assert_eq!(after["envs"]["t"]["salt"], "s");
        let failing = format(json!([{"op": "test", "path": "/name", "value": "z"}]), None);
        let error = apply(&view, failing, &[]).expect_err("test fails");
        assert!(
            error
                .message
                .starts_with("patch[0] (test) failed at \"/name\""),
            "{}",
            error.message
        );
    }
}
