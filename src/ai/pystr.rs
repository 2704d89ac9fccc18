//! Python's `str()`, `repr()`, `int()` and truthiness for JSON values.
//!
//! chevron, the Mustache renderer of Python's AI SDK, writes every non-string value with
//! `str()` and decides sections by truthiness, so `true` must render as `True`, `1e16` as
//! `1e+16` and `{"a": 1}` as `{'a': 1}` for prompts to match Python's byte for byte.

use std::fmt::{self, Write};

use serde_json::{Map, Number, Value};

/// Python's `bool(value)`.
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `int(value)` for the JSON types: floats truncate, booleans are 0 and 1, strings
/// are parsed. `None` where Python raises.
pub(crate) fn to_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim_matches(is_space).parse().ok(),
        _ => None,
    }
}

/// Python's `str.isspace()` for one character: Rust's whitespace plus the four ASCII
/// separators (U+001C..U+001F) that Python also counts.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Displays a value as Python's `str()` does.
pub(crate) struct PyStr<'a>(pub &'a Value);

impl fmt::Display for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::String(s) => f.write_str(s),
            other => write_repr(f, other),
        }
    }
}

/// Displays a dict whose entries are given separately, as Python's `str()` does.
pub(crate) struct PyDict<'a>(pub &'a [(&'a str, &'a Value)]);

impl fmt::Display for PyDict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_entries(f, self.0.iter().copied())
    }
}

fn write_repr(f: &mut fmt::Formatter<'_>, value: &Value) -> fmt::Result {
    match value {
        Value::Null => f.write_str("None"),
        Value::Bool(true) => f.write_str("True"),
        Value::Bool(false) => f.write_str("False"),
        Value::Number(n) => write_number(f, n),
        Value::String(s) => write_str_repr(f, s),
        Value::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_repr(f, item)?;
            }
            f.write_char(']')
        }
        Value::Object(map) => write_object(f, map),
    }
}

/// serde_json keeps object keys sorted (no `preserve_order`), so a whole object renders in
/// key order where Python keeps insertion order.
fn write_object(f: &mut fmt::Formatter<'_>, map: &Map<String, Value>) -> fmt::Result {
    write_entries(f, map.iter().map(|(k, v)| (k.as_str(), v)))
}

fn write_entries<'a>(
    f: &mut fmt::Formatter<'_>,
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
) -> fmt::Result {
    f.write_char('{')?;
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_str_repr(f, key)?;
        f.write_str(": ")?;
        write_repr(f, value)?;
    }
    f.write_char('}')
}

fn write_number(f: &mut fmt::Formatter<'_>, n: &Number) -> fmt::Result {
    if let Some(i) = n.as_i64() {
        write!(f, "{i}")
    } else if let Some(u) = n.as_u64() {
        write!(f, "{u}")
    } else {
        write_float(f, n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip (Rust's `{:e}` gives the
/// same digits), positional for decimal exponents -4..=15 with at least one fractional
/// digit, scientific with a signed two-digit exponent otherwise.
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    f.write_str(sign)?;
    let point = exponent + 1;
    if !(-3..=16).contains(&point) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return write!(f, "{first}{dot}{rest}e{exp_sign}{:02}", exponent.abs());
    }
    let len = digits.len() as i32;
    if point <= 0 {
        write!(f, "0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= len {
        write!(f, "{digits}{}.0", "0".repeat((point - len) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        write!(f, "{int}.{frac}")
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`, backslash
/// escapes for the quote, `\\`, `\t`, `\n`, `\r` and for characters Python does not print.
fn write_str_repr(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if !is_printable(c) => match c as u32 {
                n @ 0..=0xff => write!(f, "\\x{n:02x}")?,
                n @ 0x100..=0xffff => write!(f, "\\u{n:04x}")?,
                n => write!(f, "\\U{n:08x}")?,
            },
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// Python's `str.isprintable()` for one character, without Unicode tables: controls,
/// separators other than the space, the common format characters and private use are
/// unprintable. Unassigned code points (also unprintable in Python) are not detected.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let n = c as u32;
    let format = matches!(n, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb | 0xe0001 | 0xe0020..=0xe007f);
    let private = matches!(n, 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    !(c.is_control() || c.is_whitespace() || format || private)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: Value) -> String {
        PyStr(&v).to_string()
    }

    /// Expected strings are what CPython 3.11 prints for `str(json.loads(...))`.
    #[test]
    fn scalars_print_as_python_str() {
        assert_eq!(s(json!("plain")), "plain");
        assert_eq!(s(json!(3)), "3");
        assert_eq!(s(json!(-7)), "-7");
        assert_eq!(s(json!(true)), "True");
        assert_eq!(s(json!(false)), "False");
        assert_eq!(s(json!(null)), "None");
    }

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (12.5, "12.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1.5e300, "1.5e+300"),
        ];
        for (x, python) in cases {
            assert_eq!(s(json!(x)), python, "{x:?}");
        }
    }

    #[test]
    fn containers_print_as_python_repr() {
        assert_eq!(
            s(json!([1, "a'b", null, true, 2.5])),
            r#"[1, "a'b", None, True, 2.5]"#
        );
        assert_eq!(s(json!({"k": "v", "n": [1]})), "{'k': 'v', 'n': [1]}");
        assert_eq!(
            s(json!({"s": "it's \"q\"\n\t\\ \u{1} \u{7f} é \u{a0} \u{2028}"})),
            r#"{'s': 'it\'s "q"\n\t\\ \x01 \x7f é \xa0 \u2028'}"#
        );
    }

    #[test]
    fn truthiness_and_int_follow_python() {
        for falsy in [
            json!(null),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!is_truthy(&falsy), "{falsy}");
        }
        for truthy in [
            json!(1),
            json!(-0.5),
            json!("0"),
            json!([0]),
            json!({"a": 0}),
        ] {
            assert!(is_truthy(&truthy), "{truthy}");
        }
        assert_eq!(to_int(&json!(2)), Some(2));
        assert_eq!(to_int(&json!(2.9)), Some(2));
        assert_eq!(to_int(&json!(" 3 ")), Some(3));
        assert_eq!(to_int(&json!(true)), Some(1));
        assert_eq!(to_int(&json!("v2")), None);
        assert_eq!(to_int(&json!(null)), None);
    }
}
