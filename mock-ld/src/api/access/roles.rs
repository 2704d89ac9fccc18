//! Access tokens and what they may do: `--api-token` is an admin token, and a `--roles` file
//! (JSON or YAML) defines more, each with a built-in role or custom-role policies:
//!
//! ```yaml
//! customRoles:
//!   - key: developer
//!     policy:
//!       - {effect: allow, actions: ["*"], resources: ["proj/*:env/test:aiconfig/*"]}
//! tokens:
//!   - {name: ci, token: api-ci, role: writer}
//!   - {name: alice, token: api-alice, customRoles: [developer]}
//!   - {name: bob, token: api-bob, policy: [{effect: allow, actions: ["*"], resources: ["*"]}]}
//! ```
//!
//! `customRoleIds` and `inlineRole`, the names LaunchDarkly's token API uses, are accepted too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::policy::{Effect, Policy, Statement, ACTIONS, RESOURCE_TYPES};
use crate::api::json::stable_salt;
use crate::datafile::{self, DataFileError};

/// LaunchDarkly's built-in token roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only: every write is 403.
    Reader,
    /// Writes AI Configs, variations, targeting, segments and model configs, but neither
    /// creates nor deletes projects and environments.
    Writer,
    Admin,
}

impl Role {
    fn policy(self) -> Policy {
        let everything = || Statement::new(Effect::Allow, &["*"], "*");
        let statements = match self {
            Role::Reader => Vec::new(),
            Role::Writer => vec![
                everything(),
                Statement::new(
                    Effect::Deny,
                    &[
                        "createProject",
                        "deleteProject",
                        "createEnvironment",
                        "deleteEnvironment",
                    ],
                    "*",
                ),
            ],
            Role::Admin => vec![everything()],
        };
        Policy { statements }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RolesFile {
    #[serde(default)]
    custom_roles: Vec<CustomRole>,
    tokens: Vec<TokenEntry>,
}

/// A custom role as LaunchDarkly defines one; its other fields (`name`, `description`, …)
/// are accepted and ignored.
#[derive(Deserialize)]
struct CustomRole {
    key: String,
    policy: Vec<Statement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token: String,
    role: Option<Role>,
    #[serde(default, alias = "customRoleIds")]
    custom_roles: Vec<String>,
    #[serde(default, alias = "inlineRole")]
    policy: Vec<Statement>,
}

/// A valid access token: who holds it, as the audit log names them, and its policy.
#[derive(Debug)]
pub struct Token {
    pub name: String,
    /// A stable id derived from the name, so audit entries keep naming the same token.
    pub id: String,
    /// The token's last four characters, as LaunchDarkly shows them.
    pub ending: String,
    /// How the start-up lines describe the role, e.g. `custom roles developer`.
    pub role: String,
    pub policy: Policy,
}

impl Token {
    fn new(name: &str, secret: &str, role: String, policy: Policy) -> Self {
        let chars: Vec<char> = secret.chars().collect();
        Token {
            name: name.to_owned(),
            id: stable_salt(&["token", name])[..24].to_owned(),
            ending: chars[chars.len().saturating_sub(4)..].iter().collect(),
            role,
            policy,
        }
    }
}

/// Every valid token, by its secret.
pub struct Tokens {
    by_secret: HashMap<String, Arc<Token>>,
    /// In definition order, for the start-up lines.
    listed: Vec<(String, Arc<Token>)>,
}

impl Tokens {
    /// Only the admin token.
    pub fn admin(admin_token: &str) -> Self {
        let mut tokens = Tokens {
            by_secret: HashMap::new(),
            listed: Vec::new(),
        };
        let admin = Token::new(
            "api-token",
            admin_token,
            "admin".into(),
            Role::Admin.policy(),
        );
        tokens.insert(admin_token, admin);
        tokens
    }

    /// The admin token and the tokens of a roles file.
    pub fn load(admin_token: &str, roles: Option<&Path>) -> Result<Self, DataFileError> {
        let mut tokens = Self::admin(admin_token);
        let Some(path) = roles else {
            return Ok(tokens);
        };
        let file: RolesFile = datafile::load_as(path)?;
        warn_about_unknown_names(path, &file);
        let custom: HashMap<&str, &CustomRole> = file
            .custom_roles
            .iter()
            .map(|role| (role.key.as_str(), role))
            .collect();
        for (i, entry) in file.tokens.iter().enumerate() {
            let error = |field: &str, message: String| {
                DataFileError::at(path, format!("tokens[{i}]{field}"), message)
            };
            let (role, policy) = token_policy(entry, &custom).map_err(|(f, m)| error(f, m))?;
            if tokens.by_secret.contains_key(&entry.token) {
                return Err(error(".token", "this token is defined twice".into()));
            }
            if tokens.listed.iter().any(|(_, t)| t.name == entry.name) {
                let message = format!("the name {:?} is taken by another token", entry.name);
                return Err(error(".name", message));
            }
            let token = Token::new(&entry.name, &entry.token, role, policy);
            tokens.insert(&entry.token, token);
        }
        Ok(tokens)
    }

    fn insert(&mut self, secret: &str, token: Token) {
        let token = Arc::new(token);
        self.by_secret.insert(secret.to_owned(), token.clone());
        self.listed.push((secret.to_owned(), token));
    }

    pub fn get(&self, secret: &str) -> Option<Arc<Token>> {
        self.by_secret.get(secret).cloned()
    }

    /// Every token with its secret, admin first.
    pub fn list(&self) -> impl Iterator<Item = (&str, &Token)> {
        self.listed
            .iter()
            .map(|(secret, token)| (secret.as_str(), &**token))
    }
}

/// A token entry's role description and policy; on error, the field and the message.
fn token_policy(
    entry: &TokenEntry,
    custom: &HashMap<&str, &CustomRole>,
) -> Result<(String, Policy), (&'static str, String)> {
    let has_custom = !entry.custom_roles.is_empty() || !entry.policy.is_empty();
    match (entry.role, has_custom) {
        (Some(role), false) => Ok((role.name().to_owned(), role.policy())),
        (None, true) => {
            let mut statements = Vec::new();
            for key in &entry.custom_roles {
                let role = custom.get(key.as_str()).ok_or_else(|| {
                    let mut known: Vec<&str> = custom.keys().copied().collect();
                    known.sort_unstable();
                    let message = format!(
                        "no custom role {key:?} (customRoles defines: {})",
                        known.join(", ")
                    );
                    (".customRoles", message)
                })?;
                statements.extend(role.policy.iter().cloned());
            }
            statements.extend(entry.policy.iter().cloned());
            Ok((describe(entry), Policy { statements }))
        }
        _ => Err((
            "",
            "give a token either `role` (reader, writer or admin) or `customRoles` and/or \
             an inline `policy`"
                .to_owned(),
        )),
    }
}

fn describe(entry: &TokenEntry) -> String {
    match (entry.custom_roles.is_empty(), entry.policy.is_empty()) {
        (false, true) => format!("custom roles {}", entry.custom_roles.join(", ")),
        (false, false) => format!(
            "custom roles {} and an inline policy",
            entry.custom_roles.join(", ")
        ),
        _ => "inline policy".to_owned(),
    }
}

/// Actions and resource types mock-ld never checks are legal (a policy copied from
/// LaunchDarkly names flags too) but are likely typos, so say so at start-up.
fn warn_about_unknown_names(path: &Path, file: &RolesFile) {
    let roles = file
        .custom_roles
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("customRoles[{i}].policy"), &r.policy));
    let tokens = file
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("tokens[{i}].policy"), &t.policy));
    for (field, policy) in roles.chain(tokens) {
        for (j, statement) in policy.iter().enumerate() {
            for action in statement.actions.patterns() {
                if !action.contains('*') && !ACTIONS.contains(&action.as_str()) {
                    tracing::warn!(file = %path.display(), field = %format!("{field}[{j}]"), "action {action:?} is not one mock-ld checks, so it matches nothing here");
                }
            }
            for spec in statement.resources.patterns() {
                let unknown = spec
                    .parts()
                    .iter()
                    .find(|p| !p.kind.contains('*') && !RESOURCE_TYPES.contains(&p.kind.as_str()));
                if let Some(part) = unknown {
                    tracing::warn!(file = %path.display(), field = %format!("{field}[{j}]"), "resource type {:?} in {spec} is not one mock-ld has, so it matches nothing here", part.kind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::access::policy::Verdict;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/roles.yaml");

    fn load(text: &str) -> Result<Tokens, DataFileError> {
        let path = std::env::temp_dir().join(format!(
            "mock-ld-roles-{}-{}.yaml",
            std::process::id(),
            stable_salt(&[text])
        ));
        std::fs::write(&path, text).unwrap();
        let tokens = Tokens::load("api-admin", Some(&path));
        std::fs::remove_file(&path).ok();
        tokens
    }

    #[test]
    fn the_example_file_loads_with_its_governance() {
        let tokens = Tokens::load("api-admin", Some(Path::new(EXAMPLE))).unwrap();
        let names: Vec<&str> = tokens.list().map(|(_, t)| t.name.as_str()).collect();
        assert_eq!(names[0], "api-token");
        let policy = |name: &str| {
            &tokens
                .list()
                .find(|(_, t)| t.name == name)
                .unwrap_or_else(|| panic!("{name} in {names:?}"))
                .1
                .policy
        };
        let targeting = |env: &str| format!("proj/default:env/{env}:aiconfig/chat");
        let developer = policy("developer");
        let action = "updateAIConfigTargeting";
        assert_eq!(
            developer.check(action, &targeting("test")),
            Verdict::Allowed
        );
        assert_ne!(
            developer.check(action, &targeting("production")),
            Verdict::Allowed
        );
        let release = policy("release-manager");
        assert_eq!(
            release.check(action, &targeting("production")),
            Verdict::Allowed
        );
    }

    #[test]
    fn built_in_roles_and_tokens() {
        let tokens = load(
            "tokens:\n  - {name: r, token: api-r, role: reader}\n  - {name: w, token: api-wxyz, role: writer}\n",
        )
        .unwrap();
        let writer = tokens.get("api-wxyz").unwrap();
        assert_eq!(writer.ending, "wxyz");
        assert_eq!(writer.role, "writer");
        let config = "proj/p:aiconfig/c";
        assert_eq!(
            writer.policy.check("createAIConfig", config),
            Verdict::Allowed
        );
        assert_eq!(
            writer.policy.check("createProject", "proj/p"),
            Verdict::Denied
        );
        let reader = tokens.get("api-r").unwrap();
        assert_eq!(
            reader.policy.check("createAIConfig", config),
            Verdict::NotAllowed
        );
        let admin = tokens.get("api-admin").unwrap();
        assert_eq!(
            admin.policy.check("deleteProject", "proj/p"),
            Verdict::Allowed
        );
        assert!(tokens.get("api-nobody").is_none());
    }

    #[test]
    fn errors_name_file_position_and_field() {
        let err = load("tokens:\n  - name: a\n    token: api-a\n    role: owner\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(".yaml:4:11: field `tokens[0].role`"), "{err}");
        assert!(err.contains("unknown variant `owner`"), "{err}");

        let text = "tokens:\n  - name: a\n    token: api-a\n    policy:\n      - effect: allow\n        actions: [\"*\"]\n        resources: [\"proj/*:env\"]\n";
        let err = load(text).err().unwrap().to_string();
        assert!(err.contains(".yaml:7:"), "{err}");
        assert!(err.contains("tokens[0].policy[0].resources[0]"), "{err}");
        assert!(err.contains("each part is `type/name`"), "{err}");

        let err = load("tokens:\n  - {name: a, token: api-a, customRoles: [dev]}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("field `tokens[0].customRoles`: no custom role \"dev\""),
            "{err}"
        );

        let err = load("tokens:\n  - {name: a, token: api-a, role: admin, customRoles: [x]}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("field `tokens[0]`: give a token either `role`"),
            "{err}"
        );

        let err = load("tokens:\n  - {name: a, token: api-admin, role: admin}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("tokens[0].token`: this token is defined twice"),
            "{err}"
        );
    }
}
