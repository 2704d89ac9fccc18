//! Mustache prompt templates rendered the way Python's AI SDK 1.2.0 renders them
//! (`chevron.render`), compiled once and rendered by ramhorns.
//!
//! ramhorns alone differs from chevron where prompts notice:
//! - it keeps the blank lines that standalone `{{#section}}` / `{{/section}}` / comment lines
//!   leave, where chevron (like the Mustache spec) removes those lines;
//! - it trims the template's trailing whitespace, so a prompt's final newline is lost;
//! - `{{a.b}}` is one name to it and `{{a b}}` a nested lookup; chevron walks `a` then `b`
//!   and reads `a b` as one key;
//! - a partial (`{{>name}}`) is a parse error; chevron renders it as nothing (it reads
//!   `./name.mustache`, which a server does not have);
//! - its values render with Rust formatting, chevron's with Python's `str()`.
//!
//! So this module tokenizes like chevron (standalone lines, comments, partials, triple
//! mustaches) and hands ramhorns a normalized source in which every tag names a placeholder
//! (`k0`, `k1`, …) for a pre-split key path; [`super::scope`] resolves those paths with
//! chevron's scope rules. HTML escaping is the same in both (`& < > "`, not `'`). Missing
//! names render as nothing in both. Set-delimiter tags (`{{=<% %>=}}`) are not supported
//! and are reported as an error.

use std::sync::Arc;

use super::pystr::is_space;
use super::scope::{self, Data, Key};

/// Why a prompt template cannot be rendered. chevron raises on the same templates, except
/// for set-delimiter tags, which it supports.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed tag (a `{{{{` without its `}}}}`)")]
    UnclosedTag,
    #[error("empty tag `{{{{}}}}`")]
    EmptyTag,
    #[error("section `{0}` is closed but was never opened")]
    NotOpened(String),
    #[error("section `{open}` is closed by `{close}`")]
    Mismatched { open: String, close: String },
    #[error("section `{0}` is never closed")]
    NeverClosed(String),
    #[error("unclosed set-delimiter tag")]
    UnclosedSetDelimiter,
    #[error("set-delimiter tags (`{{{{=<% %>=}}}}`) are not supported; use `{{{{ }}}}`")]
    SetDelimiter,
    #[error("{0}")]
    Engine(String),
}

/// A compiled template: plain text when it has no tags (rendering then costs nothing).
pub(crate) enum Template {
    Text(Arc<str>),
    Compiled(Compiled),
}

pub(crate) struct Compiled {
    pub template: ramhorns::Template<'static>,
    /// Placeholder `k{i}` stands for `keys[i]`.
    pub keys: Box<[Key]>,
    /// The trailing whitespace ramhorns trims, put back after rendering.
    tail: Box<str>,
    needs_ldctx: bool,
}

impl Template {
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        let tokens = tokenize(source)?;
        if tokens.iter().all(|t| matches!(t, Token::Text(_))) {
            let text: String = tokens.iter().map(Token::text).collect();
            return Ok(Template::Text(text.into()));
        }
        let (normalized, keys) = normalize(&tokens);
        let tail = normalized[normalized.trim_end().len()..].into();
        let needs_ldctx = keys.iter().any(|key| match key {
            Key::Dot => true,
            Key::Path(path) => &*path[0] == "ldctx",
        });
        let template = ramhorns::Template::new(normalized)
            .map_err(|e| TemplateError::Engine(e.to_string()))?;
        Ok(Template::Compiled(Compiled {
            template,
            keys: keys.into(),
            tail,
            needs_ldctx,
        }))
    }

    /// Whether rendering reads `ldctx`, so callers can skip serializing the context.
    pub fn needs_ldctx(&self) -> bool {
        matches!(self, Template::Compiled(c) if c.needs_ldctx)
    }

    pub fn render(&self, data: &Data<'_>) -> Arc<str> {
        match self {
            Template::Text(text) => text.clone(),
            Template::Compiled(compiled) => {
                let mut out = scope::render(&compiled.template, &compiled.keys, data);
                out.push_str(&compiled.tail);
                out.into()
            }
        }
    }
}

/// One piece of a template as chevron's tokenizer yields it, after its standalone rule.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Text(&'a str),
    Var { key: &'a str, escape: bool },
    Open { key: &'a str, inverted: bool },
    Close(&'a str),
}

impl Token<'_> {
    fn text(&self) -> &str {
        match self {
            Token::Text(text) => text,
            _ => "",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Variable,
    NoEscape,
    Section,
    Inverted,
    End,
    Comment,
    Partial,
    /// `{{{name}}` without its third brace: chevron yields a tag type it never renders.
    Ignored,
}

/// chevron's `tokenize`, including its standalone rule: a non-variable tag alone on its
/// line (only whitespace around it) takes the rest of its line, newline included, and the
/// spaces before it (tabs stay; a partial keeps them all).
fn tokenize(source: &str) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    let mut rest = source;
    let mut standalone = true;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            tokens.push(Token::Text(rest));
            break;
        };
        let mut literal = &rest[..start];
        if rest.len() == start + 2 {
            // chevron drops a `{{` that ends the template.
            push_text(&mut tokens, literal);
            break;
        }
        standalone = may_be_standalone(literal, standalone);
        let (kind, key, mut after) = parse_tag(&rest[start + 2..])?;
        check_nesting(&mut open, kind, key)?;
        let line = after.split('\n').next().unwrap_or("");
        standalone = standalone
            && !matches!(kind, Kind::Variable | Kind::NoEscape)
            && line.chars().all(is_space);
        if standalone {
            after = after.split_once('\n').map_or(after, |(_, next)| next);
            if kind != Kind::Partial {
                literal = literal.trim_end_matches(' ');
            }
        }
        push_text(&mut tokens, literal);
        tokens.extend(token_for(kind, key));
        rest = after;
    }
    match open.pop() {
        Some(section) => Err(TemplateError::NeverClosed(section.into())),
        None => Ok(tokens),
    }
}

fn push_text<'a>(tokens: &mut Vec<Token<'a>>, text: &'a str) {
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
}

/// chevron's `l_sa_check`: a tag can be standalone when the text before it since the last
/// newline is blank and there is a newline (or the previous tag was standalone).
fn may_be_standalone(literal: &str, previous: bool) -> bool {
    (previous || literal.contains('\n'))
        && literal
            .rsplit('\n')
            .next()
            .unwrap_or("")
            .chars()
            .all(is_space)
}

/// chevron's `parse_tag` on the text after `{{`: the tag's kind, its stripped key and the
/// text after the tag.
fn parse_tag(after: &str) -> Result<(Kind, &str, &str), TemplateError> {
    let end = after.find("}}").ok_or(TemplateError::UnclosedTag)?;
    let (tag, mut rest) = (&after[..end], &after[end + 2..]);
    let first = tag.chars().next().ok_or(TemplateError::EmptyTag)?;
    let body = &tag[first.len_utf8()..];
    let (kind, key) = match first {
        '!' => (Kind::Comment, body),
        '#' => (Kind::Section, body),
        '^' => (Kind::Inverted, body),
        '/' => (Kind::End, body),
        '>' => (Kind::Partial, body),
        '&' => (Kind::NoEscape, body),
        '=' if body.ends_with('=') => return Err(TemplateError::SetDelimiter),
        '=' => return Err(TemplateError::UnclosedSetDelimiter),
        '{' => match rest.strip_prefix('}') {
            Some(after_brace) => {
                rest = after_brace;
                (Kind::NoEscape, body)
            }
            None => (Kind::Ignored, body),
        },
        _ => (Kind::Variable, tag),
    };
    Ok((kind, key.trim_matches(is_space), rest))
}

fn check_nesting<'a>(
    open: &mut Vec<&'a str>,
    kind: Kind,
    key: &'a str,
) -> Result<(), TemplateError> {
    match kind {
        Kind::Section | Kind::Inverted => open.push(key),
        Kind::End => match open.pop() {
            None => return Err(TemplateError::NotOpened(key.into())),
            Some(section) if section != key => {
                return Err(TemplateError::Mismatched {
                    open: section.into(),
                    close: key.into(),
                })
            }
            Some(_) => {}
        },
        _ => {}
    }
    Ok(())
}

fn token_for(kind: Kind, key: &str) -> Option<Token<'_>> {
    match kind {
        Kind::Variable => Some(Token::Var { key, escape: true }),
        Kind::NoEscape => Some(Token::Var { key, escape: false }),
        Kind::Section => Some(Token::Open {
            key,
            inverted: false,
        }),
        Kind::Inverted => Some(Token::Open {
            key,
            inverted: true,
        }),
        Kind::End => Some(Token::Close(key)),
        // Comments render nothing; so do partials (no partial files) and chevron's
        // unrendered half-triple tags.
        Kind::Comment | Kind::Partial | Kind::Ignored => None,
    }
}

/// The ramhorns source for the tokens: text as is (it never contains `{{`, since chevron
/// split it at the first one), and each tag naming placeholder `k{i}` for `keys[i]`.
fn normalize(tokens: &[Token<'_>]) -> (String, Vec<Key>) {
    let mut source = String::new();
    let mut keys = Vec::new();
    let mut open = Vec::new();
    for token in tokens {
        let (sigil, index) = match *token {
            Token::Text(text) => {
                source.push_str(text);
                continue;
            }
            Token::Var { key, escape } => (if escape { "" } else { "&" }, push_key(&mut keys, key)),
            Token::Open { key, inverted } => {
                let index = push_key(&mut keys, key);
                open.push(index);
                (if inverted { "^" } else { "#" }, index)
            }
            Token::Close(_) => ("/", open.pop().unwrap_or_default()),
        };
        source.push_str(&format!("{{{{{sigil}k{index}}}}}"));
    }
    (source, keys)
}

fn push_key(keys: &mut Vec<Key>, key: &str) -> usize {
    keys.push(match key {
        "." => Key::Dot,
        path => Key::Path(path.split('.').map(Box::from).collect()),
    });
    keys.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn render(source: &str, vars: Value) -> String {
        let vars = vars.as_object().cloned().unwrap_or_default();
        let ldctx = vars.get("ldctx").cloned();
        let data = Data {
            vars: Some(&vars),
            ldctx: ldctx.as_ref(),
        };
        Template::compile(source).unwrap().render(&data).to_string()
    }

    /// Every expected string below is what `chevron.render(template, data)` (0.14.0, the
    /// version Python's AI SDK 1.2.0 installs) returns for the same input.
    #[test]
    fn escapes_like_chevron() {
        let name = json!({"name": "<b>&\"'</b>"});
        assert_eq!(
            render("{{name}}", name.clone()),
            "&lt;b&gt;&amp;&quot;'&lt;/b&gt;"
        );
        assert_eq!(
            render("{{{name}}}|{{&name}}", name),
            "<b>&\"'</b>|<b>&\"'</b>"
        );
    }

    #[test]
    fn dotted_names_and_missing_variables() {
        let ctx = json!({"ldctx": {"kind": "user", "key": "u-1"}});
        assert_eq!(
            render("Hi {{ldctx.key}} ({{ ldctx.kind }})", ctx),
            "Hi u-1 (user)"
        );
        assert_eq!(
            render(
                "{{a.b.c}}|{{a.x}}|{{missing}}|{{a.b}}",
                json!({"a": {"b": {"c": 5}}})
            ),
            "5|||{'c': 5}"
        );
        assert_eq!(
            render("{{list.1}}|{{list.-1}}", json!({"list": ["a", "b", "c"]})),
            "b|c"
        );
        assert_eq!(render("{{a b}}", json!({"a b": "AB"})), "AB");
    }

    #[test]
    fn values_render_as_python_str() {
        let vars = json!({"n": 3, "f": 1.0, "z": 0, "zf": 0.0, "t": true, "fa": false,
            "nul": null, "e": "", "big": 1e16, "small": 1e-5, "neg": -2.5e-7,
            "l": [1, "a'b", null, true, 2.5], "el": [], "ed": {}});
        assert_eq!(
            render(
                "{{n}} {{f}} {{z}} {{zf}} {{t}} {{fa}} {{nul}} {{e}} {{big}} {{small}} {{neg}}",
                vars.clone()
            ),
            "3 1.0 0 0.0 True False   1e+16 1e-05 -2.5e-07"
        );
        assert_eq!(
            render("{{l}}|{{el}}|{{ed}}", vars),
            "[1, &quot;a'b&quot;, None, True, 2.5]||"
        );
    }

    #[test]
    fn sections_follow_chevron_scoping() {
        let items = json!({"items": [1, 0, "", "x", null, false, [], {"a": 1}]});
        assert_eq!(
            render("{{#items}}<{{.}}>{{/items}}", items),
            "<1><x><{'a': 1}>"
        );
        assert_eq!(
            render(
                "{{#person}}{{name}} of {{team}}{{/person}}",
                json!({"person": {"name": "Ann"}, "team": "red"})
            ),
            "Ann of red"
        );
        assert_eq!(
            render(
                "{{^missing}}none{{/missing}}{{^e}}empty{{/e}}{{^t}}no{{/t}}",
                json!({"e": [], "t": true})
            ),
            "noneempty"
        );
        assert_eq!(render("{{#s}}{{.}}!{{/s}}", json!({"s": "str"})), "str!");
        assert_eq!(
            render(
                "{{#a}}{{#b}}{{c}}{{/b}}{{/a}}",
                json!({"a": {"c": "outer"}, "b": {"x": 1}})
            ),
            "outer"
        );
        assert_eq!(
            render(
                "{{#z}}Z{{/z}}{{#zero}}0{{/zero}}",
                json!({"z": 0.0, "zero": 0})
            ),
            ""
        );
        let nested = json!({"nested": [{"inner": {"val": 1}}, {"inner": {"val": 2}}], "top": "T"});
        assert_eq!(
            render(
                "{{#nested}}{{#inner}}{{val}}-{{top}}{{/inner}}{{/nested}}",
                nested
            ),
            "1-T2-T"
        );
    }

    #[test]
    fn standalone_lines_and_trailing_whitespace() {
        let show = json!({"show": true, "t": true});
        assert_eq!(
            render("Line1\n{{#show}}\nshown\n{{/show}}\nLine3\n", show.clone()),
            "Line1\nshown\nLine3\n"
        );
        assert_eq!(
            render(
                "Line1\n  {{#show}}  \nshown\n\t{{/show}}\nLine3",
                show.clone()
            ),
            "Line1\nshown\n\tLine3"
        );
        assert_eq!(
            render("x {{#t}}\n y\n {{/t}} z", show.clone()),
            "x \n y\n  z"
        );
        assert_eq!(
            render("\r\n{{#t}}\r\nA\r\n{{/t}}\r\n", show.clone()),
            "\r\nA\r\n"
        );
        assert_eq!(
            render("{{#t}}A{{/t}}\n{{#f}}B{{/f}}\nC", json!({"t": 1, "f": 0})),
            "A\n\nC"
        );
        assert_eq!(
            render("a {{! comment }} b\n{{! standalone }}\nc", show),
            "a  b\nc"
        );
        assert_eq!(render("  {{>partial}}\nafter", json!({})), "  after");
        assert_eq!(
            render("end {{x}} with spaces   \n\n", json!({"x": 1})),
            "end 1 with spaces   \n\n"
        );
    }

    #[test]
    fn chevron_errors_are_errors() {
        let cases = [
            ("{{unclosed", TemplateError::UnclosedTag),
            ("{{#a}}x", TemplateError::NeverClosed("a".into())),
            ("{{/a}}", TemplateError::NotOpened("a".into())),
            ("{{}}", TemplateError::EmptyTag),
            ("{{=<% %>=}}", TemplateError::SetDelimiter),
            (
                "{{#a}}{{/b}}",
                TemplateError::Mismatched {
                    open: "a".into(),
                    close: "b".into(),
                },
            ),
        ];
        for (source, error) in cases {
            assert_eq!(Template::compile(source).err(), Some(error), "{source}");
        }
        assert_eq!(
            render("{{{x}}", json!({"x": 1})),
            "",
            "chevron drops a half-triple tag"
        );
        assert_eq!(render("abc{{", json!({})), "abc", "and a trailing `{{`");
    }

    #[test]
    fn only_templates_that_mention_ldctx_need_it() {
        let needs = |s: &str| Template::compile(s).unwrap().needs_ldctx();
        assert!(needs("Hi {{ldctx.key}}"));
        assert!(needs("{{#ldctx}}{{key}}{{/ldctx}}"));
        assert!(needs("{{.}}"));
        assert!(!needs("Hi {{name}}"));
        assert!(!needs("plain text"));
    }
}
