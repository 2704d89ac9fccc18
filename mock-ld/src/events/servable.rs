//! Events in a form every reader can parse.
//!
//! `/bulk` keeps each event's raw JSON, and `/admin/events` returns it byte for byte. Raw
//! JSON can be valid yet unreadable by the usual parsers: a lone UTF-16 surrogate escape
//! (`"\ud800"`, which Python's `json.dumps` writes), a number beyond f64 (`1e999`) or
//! nesting deeper than serde_json's limit of 128. LaunchDarkly's intake (Go) stores such
//! events, so mock-ld stores them too, rewritten:
//! - a lone surrogate escape becomes `\ufffd`, as Go's `encoding/json` decodes it;
//! - a number beyond f64 becomes a string holding its text;
//! - a value nested deeper than [`MAX_DEPTH`] becomes a string holding its raw JSON text.
//!
//! The input is JSON that serde_json already accepted, so the scan only tracks strings,
//! brackets and numbers. Events that need no rewrite (all of them, in practice) are not
//! copied.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// The deepest nesting an event keeps. `/admin/events` wraps each event three levels deep
/// (`{"items":[{"event":…}]}`), and readers such as serde_json stop at 128.
pub const MAX_DEPTH: usize = 100;

/// `raw` rewritten as the module doc says, or borrowed unchanged when it needs nothing.
pub fn servable(raw: &str) -> Cow<'_, str> {
    let mut out = Rewrite::new(raw);
    let bytes = raw.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        i = match bytes[i] {
            b'"' => out.string(i),
            b'{' | b'[' if depth == MAX_DEPTH => {
                let end = value_end(bytes, i);
                out.replace(i, end, &quoted(&raw[i..end]));
                end
            }
            b'{' | b'[' => {
                depth += 1;
                i + 1
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'-' | b'0'..=b'9' => out.number(i),
            _ => i + 1,
        };
    }
    out.finish()
}

/// A copy of the input made only once the first edit happens.
struct Rewrite<'a> {
    raw: &'a str,
    out: Option<String>,
    copied_to: usize,
}

impl<'a> Rewrite<'a> {
    fn new(raw: &'a str) -> Self {
        Rewrite {
            raw,
            out: None,
            copied_to: 0,
        }
    }

    /// Replaces `raw[start..end]` (edits come in order and never overlap).
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let out = self.out.get_or_insert_with(String::new);
        out.push_str(&self.raw[self.copied_to..start]);
        out.push_str(with);
        self.copied_to = end;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.raw),
            Some(mut out) => {
                out.push_str(&self.raw[self.copied_to..]);
                Cow::Owned(out)
            }
        }
    }

    /// Scans the string starting at the quote at `start`, fixing lone surrogate escapes;
    /// returns the index just past its closing quote.
    fn string(&mut self, start: usize) -> usize {
        let bytes = self.raw.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => return i + 1,
                b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                    let unit = hex4(bytes, i + 2);
                    let escape_follows = bytes.get(i + 6..i + 8) == Some(&b"\\u"[..]);
                    let next = hex4(bytes, i + 8).filter(|_| escape_follows);
                    match (unit, next) {
                        (Some(0xD800..=0xDBFF), Some(0xDC00..=0xDFFF)) => i += 12,
                        (Some(0xD800..=0xDFFF), _) => {
                            self.replace(i, i + 6, "\\ufffd");
                            i += 6;
                        }
                        _ => i += 6,
                    }
                }
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        bytes.len()
    }

    /// Scans the number at `start`, quoting it if f64 cannot hold it; returns its end.
    fn number(&mut self, start: usize) -> usize {
        let bytes = self.raw.as_bytes();
        let end = (start..bytes.len())
            .find(|&i| !matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            .unwrap_or(bytes.len());
        let text = &self.raw[start..end];
        // Short numbers without an exponent always fit; only the others are parsed.
        let may_overflow = text.len() > 300 || text.contains(['e', 'E']);
        if may_overflow && !text.parse::<f64>().is_ok_and(f64::is_finite) {
            self.replace(start, end, &quoted(text));
        }
        end
    }
}

/// The four hex digits at `at` as a UTF-16 code unit.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// The index just past the object or array that opens at `start`.
fn value_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i),
            b'{' | b'[' => {
                depth += 1;
                i += 1
            }
            b'}' | b']' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index just past the closing quote of the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `raw` rewritten as the module doc says, or `None` when it needs nothing.
pub fn servable_raw(raw: &RawValue) -> Option<Box<RawValue>> {
    match servable(raw.get()) {
        Cow::Borrowed(_) => None,
        // The rewrite of valid JSON is valid; should it not be, the text itself is served.
        Cow::Owned(text) => RawValue::from_string(text)
            .or_else(|_| RawValue::from_string(quoted(raw.get())))
            .ok(),
    }
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(raw: &str) -> Value {
        let out = servable(raw);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"))
    }

    #[test]
    fn ordinary_events_are_borrowed_unchanged() {
        let raw = r#"{"kind":"custom","key":"k","metricValue":-1.5e3,"data":{"s":"a\"b\\\u00e9 😀 \ud83d\ude00","n":[1,2.5,1e308]}}"#;
        assert!(matches!(servable(raw), Cow::Borrowed(_)));
    }

    #[test]
    fn a_lone_surrogate_becomes_the_replacement_character() {
        let v = parsed(r#"{"a":"x\ud800y","b":"\udc00","c":"\ud83d\ude00","d":"\uD800\u0041"}"#);
        assert_eq!(v["a"], "x\u{fffd}y");
        assert_eq!(v["b"], "\u{fffd}");
        assert_eq!(v["c"], "😀", "a valid pair is kept");
        assert_eq!(v["d"], "\u{fffd}A");
    }

    #[test]
    fn numbers_beyond_f64_become_their_text() {
        let v = parsed(r#"{"big":1e999,"neg":-1E+400,"ok":1e308,"tiny":1e-999,"list":[1e999]}"#);
        assert_eq!(v["big"], "1e999");
        assert_eq!(v["neg"], "-1E+400");
        assert_eq!(v["ok"], 1e308);
        assert_eq!(v["tiny"], 0.0);
        assert_eq!(v["list"][0], "1e999");
        let long = format!("[{}]", "9".repeat(400));
        assert_eq!(parsed(&long)[0], "9".repeat(400));
    }

    #[test]
    fn nesting_beyond_the_limit_becomes_its_text() {
        let deep = format!(
            r#"{{"kind":"custom","data":{}"x]"{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let v = parsed(&deep);
        assert_eq!(v["kind"], "custom");
        let mut inner = &v["data"];
        for _ in 0..MAX_DEPTH - 1 {
            inner = &inner[0];
        }
        let text = inner.as_str().expect("the deep part is a string");
        assert!(text.starts_with("[[[") && text.contains("\"x]\""), "{text}");
        let wrapped = format!(r#"{{"items":[{{"event":{}}}]}}"#, servable(&deep));
        serde_json::from_str::<Value>(&wrapped).expect("a listing of it parses");
    }
}
