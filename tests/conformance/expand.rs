//! Turning one data file into the suites it describes.
//!
//! The sdk-test-harness data format (its `docs/data_files.md`): a file may declare
//! `constants` and `parameters`, and refers to both as `<NAME>`. `parameters` is either a
//! list of sets (one suite per set) or a list of lists of sets (one suite per combination,
//! taking one set from each list). A string that is exactly `<NAME>` becomes the typed value;
//! `<NAME>` inside a longer string (a flag key, a test name) is replaced by the value's text.
//!
//! The harness does this by text replacement before parsing; here it is done on the parsed
//! YAML tree, which gives the same result for this data and cannot produce broken YAML.

use std::path::Path;

use yaml_serde::{Mapping, Value};

/// How deep placeholders may refer to placeholders (a parameter set to `<IS_MATCH>`, a
/// constant that contains `<TYPE_DEFAULT>`); deeper means a cycle in the data.
const MAX_NESTING: usize = 16;

/// One suite: a data file with one parameter set applied.
pub struct Instance {
    pub file: String,
    /// `NAME=value, …` of the parameter set; empty for a file without parameters.
    pub params: String,
    /// The substituted document, without its `constants` and `parameters`.
    pub doc: serde_json::Value,
}

/// Every suite one data file describes.
pub fn load(path: &Path) -> Result<Vec<Instance>, String> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let mut doc: Value = yaml_serde::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    // `<<: *base_flag` merge keys; yaml_serde keeps them as plain `<<` keys unless asked.
    doc.apply_merge().map_err(|e| format!("{file}: {e}"))?;
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| format!("{file}: the document is not a map"))?;
    let constants = match root.remove("constants") {
        Some(Value::Mapping(m)) => m,
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => return Err(format!("{file}: constants is not a map")),
    };
    let sets = match root.remove("parameters") {
        Some(Value::Sequence(list)) => parameter_sets(&list).map_err(|e| format!("{file}: {e}"))?,
        None | Some(Value::Null) => vec![Mapping::new()],
        Some(_) => return Err(format!("{file}: parameters is not a list")),
    };
    sets.iter()
        .map(|set| {
            let vars = Vars {
                constants: &constants,
                params: set,
            };
            let doc = vars.substitute(&doc, 0)?;
            Ok(Instance {
                file: file.clone(),
                params: vars.label(),
                doc: serde_json::to_value(&doc).map_err(|e| format!("{file}: {e}"))?,
            })
        })
        .collect()
}

/// The parameter sets of `parameters`: the list itself, or every combination of its lists.
fn parameter_sets(list: &[Value]) -> Result<Vec<Mapping>, String> {
    match list.first() {
        None => Ok(vec![Mapping::new()]),
        Some(Value::Mapping(_)) => list.iter().map(as_set).collect(),
        Some(Value::Sequence(_)) => {
            let lists = list
                .iter()
                .map(|l| match l {
                    Value::Sequence(sets) if !sets.is_empty() => sets.iter().map(as_set).collect(),
                    _ => Err("parameters mixes sets and lists, or has an empty list".to_owned()),
                })
                .collect::<Result<Vec<Vec<Mapping>>, String>>()?;
            Ok(combinations(&lists))
        }
        Some(_) => Err("parameters must be a list of maps or a list of lists".to_owned()),
    }
}

fn as_set(value: &Value) -> Result<Mapping, String> {
    value
        .as_mapping()
        .cloned()
        .ok_or_else(|| "a parameter set is not a map".to_owned())
}

/// Every way to pick one set from each list, merged; the first list varies fastest, as in
/// the harness, so suites come in the same order.
fn combinations(lists: &[Vec<Mapping>]) -> Vec<Mapping> {
    let mut indices = vec![0; lists.len()];
    let mut result = Vec::new();
    loop {
        let mut merged = Mapping::new();
        for (list, &i) in lists.iter().zip(&indices) {
            merged.extend(list[i].clone());
        }
        result.push(merged);
        // Advance like an odometer whose lowest digit is the first list.
        let mut pos = 0;
        while pos < lists.len() {
            indices[pos] += 1;
            if indices[pos] < lists[pos].len() {
                break;
            }
            indices[pos] = 0;
            pos += 1;
        }
        if pos == lists.len() {
            return result;
        }
    }
}

/// The placeholders of one suite.
struct Vars<'a> {
    constants: &'a Mapping,
    params: &'a Mapping,
}

impl Vars<'_> {
    /// Constants shadow parameters: the harness substitutes constants first.
    fn get(&self, name: &str) -> Option<&Value> {
        self.constants.get(name).or_else(|| self.params.get(name))
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.constants
            .keys()
            .chain(self.params.keys())
            .filter_map(Value::as_str)
    }

    fn label(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or("?"), text_of(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `value` with every placeholder replaced, recursively.
    fn substitute(&self, value: &Value, depth: usize) -> Result<Value, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "placeholders nest more than {MAX_NESTING} deep (a cycle?)"
            ));
        }
        Ok(match value {
            Value::String(s) => match whole_placeholder(s).and_then(|name| self.get(name)) {
                // The replacement may itself hold placeholders (`EXPECT: <IS_MATCH>`).
                Some(replacement) => self.substitute(replacement, depth + 1)?,
                None => Value::String(self.interpolate(s)?),
            },
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|v| self.substitute(v, depth))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    // Keys are only ever interpolated: `off-variation-too-low-<TYPE_NAME>`.
                    let key = match k {
                        Value::String(s) => Value::String(self.interpolate(s)?),
                        other => other.clone(),
                    };
                    out.insert(key, self.substitute(v, depth)?);
                }
                Value::Mapping(out)
            }
            Value::Tagged(tagged) => self.substitute(&tagged.value, depth)?,
            other => other.clone(),
        })
    }

    /// `s` with every `<NAME>` inside it replaced by the value's text, repeated until nothing
    /// changes (a parameter's text may name a constant). Unknown names stay as they are, as
    /// in the harness (e.g. `<VALUE2>` in the date files).
    fn interpolate(&self, s: &str) -> Result<String, String> {
        let mut current = s.to_owned();
        for _ in 0..MAX_NESTING {
            let mut next = current.clone();
            for name in self.names() {
                let placeholder = format!("<{name}>");
                if next.contains(&placeholder) {
                    let value = self.get(name).expect("names() lists defined names");
                    next = next.replace(&placeholder, &text_of(value));
                }
            }
            if next == current {
                return Ok(current);
            }
            current = next;
        }
        Err(format!(
            "placeholders in {s:?} nest more than {MAX_NESTING} deep (a cycle?)"
        ))
    }
}

/// `NAME` if `s` is exactly `<NAME>`.
fn whole_placeholder(s: &str) -> Option<&str> {
    let name = s.strip_prefix('<')?.strip_suffix('>')?;
    (!name.is_empty() && !name.contains(['<', '>'])).then_some(name)
}

/// A value as it reads inside a string: a string as itself, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn whole_values_are_typed_and_inner_ones_are_text() {
        let constants = yaml("IS_MATCH: {value: true}\nDEF: {value: <T>}")
            .as_mapping()
            .unwrap()
            .clone();
        let params = yaml("T: 1.5\nN: x\nE: <IS_MATCH>")
            .as_mapping()
            .unwrap()
            .clone();
        let vars = Vars {
            constants: &constants,
            params: &params,
        };
        let doc = yaml("key-<N>-<T>: [\"<T>\", <E>, <DEF>, <UNKNOWN>]");
        let out = serde_json::to_value(vars.substitute(&doc, 0).unwrap()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"key-x-1.5": [1.5, {"value": true}, {"value": 1.5}, "<UNKNOWN>"]})
        );
    }

    #[test]
    fn lists_of_lists_give_every_combination_first_list_fastest() {
        let list = yaml("- [{A: 1}, {A: 2}]\n- [{B: x}, {B: y}, {B: z}]");
        let sets = parameter_sets(list.as_sequence().unwrap()).unwrap();
        assert_eq!(sets.len(), 6);
        assert_eq!(sets[1].get("A"), Some(&Value::from(2)));
        assert_eq!(sets[1].get("B"), Some(&Value::from("x")));
    }
}
