//! LaunchDarkly's rules for what a scenario names: context kinds, attribute references and
//! clause operators. The predictor (`checks::predict`) applies the same kind rule and knows
//! the same operators, so a scenario `validate` accepts is one LaunchDarkly would accept.

use launchdarkly_server_sdk::Reference;

/// LaunchDarkly's clause operators, as mock-ld's REST API accepts them: `segmentMatch` tests
/// segment membership; the others compare a context value with the clause's values
/// (`checks::predict::operators`).
pub use mock_ld::api::semantic_patch::OPERATORS;

/// A context kind: ASCII letters, digits, `.`, `_` and `-`, and neither `kind` nor `multi`.
pub fn check_kind(kind: &str) -> Result<(), String> {
    let valid = !kind.is_empty()
        && kind != "kind"
        && kind != "multi"
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid context kind {kind:?}: a kind is ASCII letters, digits, `.`, `_` and `-`, \
             and neither \"kind\" nor \"multi\""
        ))
    }
}

/// An attribute reference as a clause with a `contextKind` reads it: `name`, or `/a/b`
/// with `~1` for `/` and `~0` for `~`.
pub fn check_reference(text: &str) -> Result<(), String> {
    let reference = Reference::new(text);
    if reference.is_valid() {
        Ok(())
    } else {
        Err(format!(
            "invalid attribute reference {text:?} ({}): `name`, or `/a/b` with `~1` for `/` and `~0` for `~`",
            reference.error()
        ))
    }
}

/// Attributes a generated or fixed context cannot set: `kind` and `key` are the context's
/// own (set through `kinds` and `key_prefix`), `_meta` is LaunchDarkly's.
pub const RESERVED_ATTRIBUTES: &[&str] = &["kind", "key", "_meta"];

/// A context attribute's name, as the population sets it (a top-level name, not a
/// reference): not empty, not reserved; `name` must be a string and `anonymous` a boolean.
pub fn check_attribute_name(name: &str, kind_of_value: Option<&str>) -> Result<(), String> {
    if name.is_empty() {
        return Err("an attribute needs a name".into());
    }
    if RESERVED_ATTRIBUTES.contains(&name) {
        return Err(format!(
            "{name:?} is not an attribute a population sets ({} are the context's own)",
            RESERVED_ATTRIBUTES.join(", ")
        ));
    }
    match (name, kind_of_value) {
        ("name", Some(k)) if k != "string" => Err(format!("`name` is a string, not {k}")),
        ("anonymous", Some(k)) if k != "boolean" => {
            Err(format!("`anonymous` is a boolean, not {k}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_launchdarkly() {
        for good in ["user", "org.team", "a_b-1"] {
            assert!(check_kind(good).is_ok(), "{good}");
        }
        for bad in ["", "kind", "multi", "bad kind!", "ü"] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_and_names() {
        assert!(check_reference("tier").is_ok() && check_reference("/a~1b/c").is_ok());
        for bad in ["", "/", "/a//b", "/~3"] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
        assert!(check_attribute_name("kind", None).is_err());
        assert!(check_attribute_name("", None).is_err());
        assert!(check_attribute_name("name", Some("number")).is_err());
        assert!(check_attribute_name("tier", Some("number")).is_ok());
    }
}
