//! Evaluation contexts as LaunchDarkly's JSON defines them: a single-kind context
//! (`{"kind", "key", …attributes}`), a multi-kind one (`{"kind": "multi", KIND: {…}}`) or an
//! old-style user (no `kind`; built-in attributes at the top, the rest under `custom`).

use serde_json::{Map, Value};

use super::reference::Reference;

/// One kind's part of a context: its attributes, with `kind`, `key` and `anonymous` among
/// them so that attribute references reach them like any other attribute.
#[derive(Clone, Debug)]
pub struct Part {
    pub kind: String,
    pub key: String,
    attributes: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct Context {
    parts: Vec<Part>,
    multi: bool,
}

/// The built-in attributes of an old-style user, kept as top-level attributes.
const USER_BUILTINS: &[&str] = &[
    "name",
    "firstName",
    "lastName",
    "email",
    "avatar",
    "country",
    "ip",
    "anonymous",
];

impl Context {
    /// Reads a context from its JSON; `Err` says why it is not a valid context.
    pub fn from_json(json: &Value) -> Result<Context, String> {
        let object = json.as_object().ok_or("a context is a JSON object")?;
        match object.get("kind") {
            None => Ok(Context {
                parts: vec![old_user(object)?],
                multi: false,
            }),
            Some(Value::String(kind)) if kind == "multi" => multi(object),
            Some(Value::String(kind)) => Ok(Context {
                parts: vec![single(kind, object)?],
                multi: false,
            }),
            Some(other) => Err(format!("kind {other} is not a string")),
        }
    }

    /// The part of kind `kind`, if the context has one.
    pub fn part(&self, kind: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.kind == kind)
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// `user`, or for a multi-kind context its sorted kinds: `multi:organization+user` (the
    /// runner labels context kinds the same way).
    pub fn kind_label(&self) -> String {
        if !self.multi {
            return self.parts[0].kind.clone();
        }
        let mut kinds: Vec<&str> = self.parts.iter().map(|p| p.kind.as_str()).collect();
        kinds.sort_unstable();
        format!("multi:{}", kinds.join("+"))
    }

    /// `key` for a single kind, `kind=key,…` for a multi-kind context.
    pub fn describe(&self) -> String {
        if !self.multi {
            return self.parts[0].key.clone();
        }
        self.parts
            .iter()
            .map(|p| format!("{}={}", p.kind, p.key))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Part {
    /// The value `reference` points at, or `None` when there is none.
    pub fn value(&self, reference: &Reference) -> Option<&Value> {
        let mut components = reference.components()?.iter();
        let mut value = self.attributes.get(components.next()?.as_str())?;
        for name in components {
            value = value.as_object()?.get(name.as_str())?;
        }
        Some(value)
    }
}

fn multi(object: &Map<String, Value>) -> Result<Context, String> {
    let mut parts = Vec::new();
    for (kind, value) in object.iter().filter(|(k, _)| *k != "kind") {
        let part = value
            .as_object()
            .ok_or_else(|| format!("multi-kind part {kind} is not an object"))?;
        parts.push(single(kind, part)?);
    }
    if parts.is_empty() {
        return Err("a multi-kind context needs at least one kind".into());
    }
    // A multi-kind context of one kind is that kind's context (as the SDKs treat it).
    let multi = parts.len() > 1;
    Ok(Context { parts, multi })
}

fn single(kind: &str, object: &Map<String, Value>) -> Result<Part, String> {
    check_kind(kind)?;
    let key = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or("a context needs a string key")?;
    if key.is_empty() {
        return Err("a context key cannot be empty".into());
    }
    let mut attributes: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| *k != "_meta")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attributes.insert("kind".into(), Value::from(kind));
    let anonymous = attributes
        .get("anonymous")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    attributes.insert("anonymous".into(), Value::Bool(anonymous));
    Ok(Part {
        kind: kind.to_owned(),
        key: key.to_owned(),
        attributes,
    })
}

fn old_user(object: &Map<String, Value>) -> Result<Part, String> {
    // Old-style users may have an empty key.
    let key = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or("a user needs a string key")?;
    let mut attributes = Map::new();
    if let Some(Value::Object(custom)) = object.get("custom") {
        attributes.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for name in USER_BUILTINS {
        if let Some(value) = object.get(*name).filter(|v| !v.is_null()) {
            attributes.insert((*name).to_owned(), value.clone());
        }
    }
    attributes.insert("kind".into(), Value::from("user"));
    attributes.insert("key".into(), Value::from(key));
    let anonymous = attributes
        .get("anonymous")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    attributes.insert("anonymous".into(), Value::Bool(anonymous));
    Ok(Part {
        kind: "user".into(),
        key: key.to_owned(),
        attributes,
    })
}

/// Kinds are `[A-Za-z0-9._-]+` and neither `kind` nor `multi` (the rule the scenario
/// loader applies, in one place).
fn check_kind(kind: &str) -> Result<(), String> {
    crate::scenario::rules::check_kind(kind).map_err(|_| format!("invalid context kind {kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_three_formats_read_alike() {
        let single = Context::from_json(&json!({"kind": "user", "key": "a", "tier": "pro", "_meta": {"privateAttributes": ["tier"]}})).unwrap();
        let old = Context::from_json(&json!({"key": "a", "custom": {"tier": "pro"}})).unwrap();
        let tier = Reference::literal("tier");
        assert_eq!(
            single.part("user").unwrap().value(&tier),
            Some(&json!("pro"))
        );
        assert_eq!(old.part("user").unwrap().value(&tier), Some(&json!("pro")));
        assert_eq!(
            single
                .part("user")
                .unwrap()
                .value(&Reference::literal("_meta")),
            None
        );

        let multi = Context::from_json(&json!({"kind": "multi", "user": {"key": "u"}, "org": {"key": "o", "plan": {"tier": 2}}})).unwrap();
        assert_eq!(multi.kind_label(), "multi:org+user");
        assert_eq!(
            multi
                .part("org")
                .unwrap()
                .value(&Reference::parse("/plan/tier")),
            Some(&json!(2))
        );
        assert_eq!(multi.describe(), "org=o,user=u");
    }

    #[test]
    fn invalid_contexts_are_errors() {
        assert!(Context::from_json(&json!({"kind": "kind", "key": "a"})).is_err());
        assert!(Context::from_json(&json!({"kind": "user", "key": ""})).is_err());
        assert!(Context::from_json(&json!({"kind": "multi"})).is_err());
    }
}
