//! Attribute references: `name`, or `/a/b` with `~1` for `/` and `~0` for `~`. A clause or
//! rollout with a `contextKind` uses this syntax; one without (pre-contexts data) names a
//! top-level attribute literally, even when the name starts with `/`.

/// A parsed reference, or why it is invalid (an invalid one makes the flag malformed).
#[derive(Clone, Debug, PartialEq)]
pub struct Reference(Result<Vec<String>, String>);

impl Reference {
    /// The reference syntax.
    pub fn parse(text: &str) -> Reference {
        if text.is_empty() || text == "/" {
            return Reference(Err("empty attribute reference".into()));
        }
        let Some(path) = text.strip_prefix('/') else {
            return Reference(Ok(vec![text.to_owned()]));
        };
        let components = path
            .split('/')
            .map(|part| {
                if part.is_empty() {
                    return Err(format!(
                        "attribute reference {text:?} has a double or trailing slash"
                    ));
                }
                unescape(part)
                    .ok_or_else(|| format!("attribute reference {text:?} has an invalid escape"))
            })
            .collect();
        Reference(components)
    }

    /// A literal attribute name (no `contextKind` in the data). An empty name is invalid.
    pub fn literal(name: &str) -> Reference {
        if name.is_empty() {
            return Reference(Err("empty attribute name".into()));
        }
        Reference(Ok(vec![name.to_owned()]))
    }

    /// `parse` when the data names a context kind, else `literal`.
    pub fn for_data(text: &str, has_context_kind: bool) -> Reference {
        if has_context_kind {
            Reference::parse(text)
        } else {
            Reference::literal(text)
        }
    }

    pub fn components(&self) -> Option<&[String]> {
        self.0.as_deref().ok()
    }

    pub fn error(&self) -> Option<&str> {
        self.0.as_ref().err().map(String::as_str)
    }

    /// A reference to the context's kinds (`kind` or `/kind`), which clauses test against
    /// every kind of the context.
    pub fn is_kind(&self) -> bool {
        self.components()
            .is_some_and(|c| c.len() == 1 && c[0] == "kind")
    }
}

fn unescape(part: &str) -> Option<String> {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '0' => out.push('~'),
            '1' => out.push('/'),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escapes_and_errors() {
        assert_eq!(
            Reference::parse("/a~1b/c~0").components(),
            Some(&["a/b".to_owned(), "c~".to_owned()][..])
        );
        assert_eq!(
            Reference::parse("plain/name").components(),
            Some(&["plain/name".to_owned()][..])
        );
        assert_eq!(
            Reference::literal("/x").components(),
            Some(&["/x".to_owned()][..])
        );
        for bad in ["", "/", "//", "/a//b", "/a/", "/~3", "/a~"] {
            assert!(Reference::parse(bad).error().is_some(), "{bad}");
        }
        assert!(Reference::parse("/kind").is_kind() && Reference::literal("kind").is_kind());
    }
}
