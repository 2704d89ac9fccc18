//! LaunchDarkly's role policies: statements that allow or deny actions on resources named by
//! resource specifiers (spec §9).
//!
//! A specifier is `type/name` parts joined by `:`, e.g. `proj/*:env/production:aiconfig/*`.
//! It matches a resource with the same number of parts whose types and names match, `*`
//! standing for any run of characters; `;tag` parts are ignored. A lone `*` matches every
//! resource. A statement matches when its actions (or everything but its `notActions`) and its
//! resources (or everything but its `notResources`) match. A request is allowed when some
//! allow statement matches and no deny statement does.

use std::fmt;

use serde::Deserialize;

/// Every action mock-ld checks; a policy naming another one is valid but never matches here.
pub const ACTIONS: &[&str] = &[
    "createProject",
    "deleteProject",
    "createEnvironment",
    "deleteEnvironment",
    "createAIConfig",
    "updateAIConfig",
    "deleteAIConfig",
    "createAIConfigVariation",
    "updateAIConfigVariation",
    "deleteAIConfigVariation",
    "updateAIConfigTargeting",
    "createAIModelConfig",
    "deleteAIModelConfig",
    "createSegment",
    "deleteSegment",
    "updateIncluded",
    "updateExcluded",
    "updateRules",
    "updateTags",
    "updateName",
    "updateDescription",
    "createFlag",
    "deleteFlag",
    "updateOn",
    "updateTargets",
    "updateFallthrough",
    "updateOffVariation",
    "updatePrerequisites",
    "updateFlagVariations",
    "updateFlagDefaultVariations",
    "updateTemporary",
    "updateTrackEvents",
    "updateClientSideFlagAvailability",
    "updateMaintainer",
    "updateFlagCustomProperties",
    "updateDeprecated",
];

/// The resource types mock-ld names in specifiers.
pub const RESOURCE_TYPES: &[&str] = &[
    "proj",
    "env",
    "aiconfig",
    "ai-model-config",
    "segment",
    "flag",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// One policy statement, checked when read: exactly one of `actions` / `notActions` and one of
/// `resources` / `notResources`.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawStatement")]
pub struct Statement {
    pub effect: Effect,
    pub actions: Selector<String>,
    pub resources: Selector<Specifier>,
}

/// A list of patterns, or everything but them.
#[derive(Clone, Debug)]
pub enum Selector<T> {
    Any(Vec<T>),
    AllBut(Vec<T>),
}

impl<T> Selector<T> {
    fn selects(&self, matches: impl Fn(&T) -> bool) -> bool {
        match self {
            Selector::Any(patterns) => patterns.iter().any(matches),
            Selector::AllBut(patterns) => !patterns.iter().any(matches),
        }
    }

    pub fn patterns(&self) -> &[T] {
        match self {
            Selector::Any(patterns) | Selector::AllBut(patterns) => patterns,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStatement {
    effect: Effect,
    actions: Option<Vec<String>>,
    not_actions: Option<Vec<String>>,
    resources: Option<Vec<Specifier>>,
    not_resources: Option<Vec<Specifier>>,
}

impl TryFrom<RawStatement> for Statement {
    type Error = String;

    fn try_from(raw: RawStatement) -> Result<Self, String> {
        Ok(Statement {
            effect: raw.effect,
            actions: selector(raw.actions, raw.not_actions, "actions")?,
            resources: selector(raw.resources, raw.not_resources, "resources")?,
        })
    }
}

fn selector<T>(
    listed: Option<Vec<T>>,
    excluded: Option<Vec<T>>,
    what: &str,
) -> Result<Selector<T>, String> {
    match (listed, excluded) {
        (Some(listed), None) => Ok(Selector::Any(listed)),
        (None, Some(excluded)) => Ok(Selector::AllBut(excluded)),
        _ => Err(format!(
            "a statement needs exactly one of `{what}` and `not{}{}`",
            what[..1].to_uppercase(),
            &what[1..]
        )),
    }
}

impl Statement {
    pub fn new(effect: Effect, actions: &[&str], resource: &str) -> Self {
        Statement {
            effect,
            actions: Selector::Any(actions.iter().map(|a| (*a).to_owned()).collect()),
            resources: Selector::Any(vec![resource.parse().expect("a valid specifier")]),
        }
    }

    fn matches(&self, action: &str, resource: &str) -> bool {
        self.actions.selects(|pattern| glob(pattern, action))
            && self.resources.selects(|spec| spec.matches(resource))
    }
}

/// What a policy says about one action on one resource.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A deny statement matches.
    Denied,
    /// No allow statement matches.
    NotAllowed,
}

/// The statements of a token's roles, together.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    pub fn check(&self, action: &str, resource: &str) -> Verdict {
        let matching = || {
            self.statements
                .iter()
                .filter(|s| s.matches(action, resource))
        };
        if matching().any(|s| s.effect == Effect::Deny) {
            Verdict::Denied
        } else if matching().any(|s| s.effect == Effect::Allow) {
            Verdict::Allowed
        } else {
            Verdict::NotAllowed
        }
    }
}

/// A resource specifier pattern.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Specifier {
    /// `*`: every resource.
    Everything,
    Parts(Vec<Part>),
}

/// `type/name`, each a glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub kind: String,
    pub name: String,
}

impl std::str::FromStr for Specifier {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(Specifier::Everything);
        }
        let parts = text
            .split(':')
            .map(|part| {
                let part = part.split(';').next().unwrap_or_default().trim();
                match part.split_once('/') {
                    Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(Part {
                        kind: kind.to_owned(),
                        name: name.to_owned(),
                    }),
                    _ => Err(format!(
                        "invalid resource specifier {text:?}: each part is `type/name`, \
                         e.g. proj/*:env/production:aiconfig/*"
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Specifier::Parts(parts))
    }
}

impl TryFrom<String> for Specifier {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl Specifier {
    /// The parts; none for `*`.
    pub fn parts(&self) -> &[Part] {
        match self {
            Specifier::Everything => &[],
            Specifier::Parts(parts) => parts,
        }
    }

    /// Whether `resource` (a specifier without wildcards, as [`crate::api::write::change`] builds them)
    /// is one this pattern names.
    pub fn matches(&self, resource: &str) -> bool {
        let Specifier::Parts(parts) = self else {
            return true;
        };
        let resource: Vec<&str> = resource.split(':').collect();
        parts.len() == resource.len()
            && parts.iter().zip(resource).all(|(part, actual)| {
                let actual = actual.split(';').next().unwrap_or_default();
                let (kind, name) = actual.split_once('/').unwrap_or((actual, ""));
                glob(&part.kind, kind) && glob(&part.name, name)
            })
    }
}

impl fmt::Display for Specifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Specifier::Everything => write!(f, "*"),
            Specifier::Parts(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ":" };
                    write!(f, "{sep}{}/{}", part.kind, part.name)?;
                }
                Ok(())
            }
        }
    }
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last `*` swallow one more character and retry from there.
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Specifier {
        text.parse().unwrap()
    }

    fn statement(json: &str) -> Statement {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        assert!(glob("*", ""));
        assert!(glob("*", "anything"));
        assert!(glob("update*", "updateAIConfigTargeting"));
        assert!(glob("*Segment", "createSegment"));
        assert!(glob("qa-*-eu", "qa-team-eu"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(!glob("update*", "createAIConfig"));
        assert!(!glob("prod", "production"));
    }

    #[test]
    fn specifiers_match_part_by_part() {
        let targeting = "proj/default:env/production:aiconfig/chat";
        assert!(spec("proj/*:env/production:aiconfig/*").matches(targeting));
        assert!(spec("proj/default:env/prod*:aiconfig/chat").matches(targeting));
        assert!(spec("*").matches(targeting));
        assert!(!spec("proj/*:env/test:aiconfig/*").matches(targeting));
        // The config itself is not an environment's targeting, and a project is neither.
        assert!(!spec("proj/*:env/*:aiconfig/*").matches("proj/default:aiconfig/chat"));
        assert!(spec("proj/default:aiconfig/*").matches("proj/default:aiconfig/chat"));
        assert!(!spec("proj/*").matches(targeting));
        assert!(!spec("proj/*:env/*:segment/*").matches(targeting));
        // Tags are ignored on either side.
        assert!(spec("proj/*;team-a:env/production;critical:aiconfig/*").matches(targeting));
        assert!(spec("proj/*:env/*:segment/beta").matches("proj/p:env/test;t:segment/beta"));
    }

    #[test]
    fn malformed_specifiers_are_refused() {
        for bad in [
            "",
            "proj",
            "proj/",
            "proj/*:env",
            "/x",
            "proj/*::aiconfig/*",
        ] {
            let err = bad.parse::<Specifier>().unwrap_err();
            assert!(err.contains("type/name"), "{bad:?}: {err}");
        }
        assert_eq!(
            spec("proj/*:env/production:aiconfig/*").to_string(),
            "proj/*:env/production:aiconfig/*"
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let policy = Policy {
            statements: vec![
                statement(
                    r#"{"effect": "allow", "actions": ["*"], "resources": ["proj/*:env/*:aiconfig/*"]}"#,
                ),
                statement(
                    r#"{"effect": "deny", "actions": ["updateAIConfigTargeting"], "resources": ["proj/*:env/production:aiconfig/*"]}"#,
                ),
            ],
        };
        let verdict = |env: &str| {
            let resource = format!("proj/default:env/{env}:aiconfig/chat");
            policy.check("updateAIConfigTargeting", &resource)
        };
        assert_eq!(verdict("test"), Verdict::Allowed);
        assert_eq!(verdict("production"), Verdict::Denied);
        assert_eq!(
            policy.check("createAIConfig", "proj/default:aiconfig/chat"),
            Verdict::NotAllowed
        );
        assert_eq!(
            Policy::default().check("createSegment", "proj/p:env/e:segment/s"),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn not_actions_and_not_resources_select_everything_else() {
        let policy = Policy {
            statements: vec![statement(
                r#"{"effect": "allow", "notActions": ["delete*"], "notResources": ["proj/*:env/production:*/*"]}"#,
            )],
        };
        let segment = |env: &str| format!("proj/p:env/{env}:segment/beta");
        assert_eq!(
            policy.check("createSegment", &segment("test")),
            Verdict::Allowed
        );
        assert_eq!(
            policy.check("deleteSegment", &segment("test")),
            Verdict::NotAllowed
        );
        assert_eq!(
            policy.check("createSegment", &segment("production")),
            Verdict::NotAllowed
        );
        // notResources with deny: everything outside test is off limits.
        let policy = Policy {
            statements: vec![
                statement(r#"{"effect": "allow", "actions": ["*"], "resources": ["*"]}"#),
                statement(
                    r#"{"effect": "deny", "actions": ["*"], "notResources": ["proj/*:env/test:*/*"]}"#,
                ),
            ],
        };
        assert_eq!(
            policy.check("updateRules", &segment("test")),
            Verdict::Allowed
        );
        assert_eq!(
            policy.check("updateRules", &segment("staging")),
            Verdict::Denied
        );
    }

    #[test]
    fn statements_need_one_of_each_pair() {
        let both =
            r#"{"effect": "allow", "actions": ["*"], "notActions": ["x"], "resources": ["*"]}"#;
        let err = serde_json::from_str::<Statement>(both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exactly one of `actions` and `notActions`"),
            "{err}"
        );
        let neither = r#"{"effect": "deny", "actions": ["*"]}"#;
        let err = serde_json::from_str::<Statement>(neither)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`resources` and `notResources`"), "{err}");
        let effect = r#"{"effect": "maybe", "actions": ["*"], "resources": ["*"]}"#;
        assert!(serde_json::from_str::<Statement>(effect).is_err());
    }
}
