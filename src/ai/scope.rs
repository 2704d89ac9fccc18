//! chevron's scope rules as a ramhorns [`Content`], over JSON values.
//!
//! chevron keeps a stack of scopes (the data, then each open section's value). A name is
//! looked up in each scope from the innermost out, and the whole dotted path must resolve
//! within one scope. What it finds renders with Python's `str()`: `0` and `False` print,
//! other falsy values print nothing. Sections iterate lists (skipping falsy items), enter
//! any other truthy value and skip falsy ones; inverted sections render when the value is
//! falsy or missing.
//!
//! Every [`Scope`] carries its parent chain and resolves a name against the whole chain, so
//! ramhorns' own four-deep content stack never loses an outer scope.

use ramhorns::encoding::Encoder;
use ramhorns::traits::ContentSequence;
use ramhorns::{Content, Section, Template};
use serde_json::{Map, Value};

use super::pystr::{is_truthy, PyDict, PyStr};

/// The data a template renders with: the caller's variables, and `ldctx` (the context as
/// LaunchDarkly JSON), which shadows a variable of that name as in Python.
pub(crate) struct Data<'a> {
    pub vars: Option<&'a Map<String, Value>>,
    pub ldctx: Option<&'a Value>,
}

/// A name in a tag: `.` (the current scope) or a dotted path.
#[derive(Debug, PartialEq)]
pub(crate) enum Key {
    Dot,
    Path(Box<[Box<str>]>),
}

/// Renders a compiled template whose placeholder `k{i}` stands for `keys[i]` (without the
/// trailing whitespace ramhorns trims).
pub(crate) fn render(template: &Template<'static>, keys: &[Key], data: &Data<'_>) -> String {
    let root = Scope {
        frame: Frame::Root,
        parent: None,
        keys,
        data,
    };
    template.render(&root)
}

#[derive(Clone, Copy)]
enum Frame<'a> {
    /// The variables plus `ldctx`.
    Root,
    Value(&'a Value),
}

#[derive(Clone, Copy)]
struct Scope<'a> {
    frame: Frame<'a>,
    parent: Option<&'a Scope<'a>>,
    keys: &'a [Key],
    data: &'a Data<'a>,
}

impl<'a> Scope<'a> {
    fn child(&'a self, value: &'a Value) -> Scope<'a> {
        Scope {
            frame: Frame::Value(value),
            parent: Some(self),
            ..*self
        }
    }

    /// The key a placeholder (`k{i}`) stands for.
    fn key(&self, name: &str) -> Option<&'a Key> {
        let index: usize = name.strip_prefix('k')?.parse().ok()?;
        self.keys.get(index)
    }

    /// chevron's `_get_key`: the innermost scope in which the whole path resolves.
    fn lookup(&self, name: &str) -> Option<Frame<'a>> {
        let path = match self.key(name)? {
            Key::Dot => return Some(self.dot()),
            Key::Path(path) => path,
        };
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some(found) = s.resolve(path) {
                return Some(Frame::Value(found));
            }
            scope = s.parent;
        }
        None
    }

    /// `.` is the current scope, except that chevron swaps a bare `True` for the scope
    /// below it (the value an inverted section pushes).
    fn dot(&self) -> Frame<'a> {
        match (self.frame, self.parent) {
            (Frame::Value(Value::Bool(true)), Some(parent)) => parent.frame,
            (frame, _) => frame,
        }
    }

    fn resolve(&self, path: &[Box<str>]) -> Option<&'a Value> {
        let (first, rest) = path.split_first()?;
        let start = match self.frame {
            Frame::Root if &**first == "ldctx" => self.data.ldctx?,
            Frame::Root => self.data.vars?.get(&**first)?,
            Frame::Value(value) => child(value, first)?,
        };
        rest.iter()
            .try_fold(start, |value, segment| child(value, segment))
    }

    fn render_frame<E: Encoder>(
        &self,
        frame: Frame<'a>,
        escape: bool,
        encoder: &mut E,
    ) -> Result<(), E::Error> {
        let value = match frame {
            Frame::Value(value) => value,
            Frame::Root => return self.render_root(escape, encoder),
        };
        let zero_or_false = matches!(value, Value::Bool(false))
            || matches!(value, Value::Number(n) if n.as_f64() == Some(0.0));
        if !is_truthy(value) && !zero_or_false {
            return Ok(());
        }
        match (value, escape) {
            (Value::String(s), true) => encoder.write_escaped(s),
            (Value::String(s), false) => encoder.write_unescaped(s),
            (other, true) => encoder.format_escaped(PyStr(other)),
            (other, false) => encoder.format_unescaped(PyStr(other)),
        }
    }

    /// `{{.}}` on the data itself prints the variables dict with `ldctx` last, as Python
    /// builds it (`{**variables, 'ldctx': context.to_dict()}`).
    fn render_root<E: Encoder>(&self, escape: bool, encoder: &mut E) -> Result<(), E::Error> {
        let vars = self.data.vars.into_iter().flatten();
        let mut entries: Vec<(&str, &Value)> = vars
            .filter(|(k, _)| *k != "ldctx")
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        entries.extend(self.data.ldctx.map(|ctx| ("ldctx", ctx)));
        match escape {
            true => encoder.format_escaped(PyDict(&entries)),
            false => encoder.format_unescaped(PyDict(&entries)),
        }
    }
}

/// One step of chevron's path walk: a dict key, or a list index (Python's, so `-1` is the
/// last item). chevron's fallbacks to Python attributes and string indexing are not
/// reproduced.
fn child<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => {
            let index: i64 = segment.trim().parse().ok()?;
            let index = if index < 0 {
                index + items.len() as i64
            } else {
                index
            };
            items.get(usize::try_from(index).ok()?)
        }
        _ => None,
    }
}

impl Content for Scope<'_> {
    fn capacity_hint(&self, template: &Template) -> usize {
        template.capacity_hint() + 64
    }

    fn render_field_escaped<E: Encoder>(
        &self,
        _: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.render_field(name, true, encoder)
    }

    fn render_field_unescaped<E: Encoder>(
        &self,
        _: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.render_field(name, false, encoder)
    }

    fn render_field_section<C, E>(
        &self,
        _: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error>
    where
        C: ContentSequence,
        E: Encoder,
    {
        let value = match self.lookup(name) {
            None => return Ok(false),
            Some(Frame::Root) => return section.render(encoder).map(|()| true),
            Some(Frame::Value(value)) => value,
        };
        match value {
            Value::Array(items) => {
                for item in items.iter().filter(|item| is_truthy(item)) {
                    section.with(&self.child(item)).render(encoder)?;
                }
            }
            value if is_truthy(value) => section.with(&self.child(value)).render(encoder)?,
            _ => {}
        }
        Ok(true)
    }

    fn render_field_inverse<C, E>(
        &self,
        _: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error>
    where
        C: ContentSequence,
        E: Encoder,
    {
        match self.lookup(name) {
            None => Ok(false),
            Some(Frame::Value(value)) if !is_truthy(value) => {
                section.render(encoder).map(|()| true)
            }
            Some(_) => Ok(true),
        }
    }
}

impl Scope<'_> {
    fn render_field<E: Encoder>(
        &self,
        name: &str,
        escape: bool,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        match self.lookup(name) {
            Some(frame) => self.render_frame(frame, escape, encoder).map(|()| true),
            None => Ok(false),
        }
    }
}
