//! A flag's individual targets, kept in LaunchDarkly's shape: `user` keys in `targets`, other
//! kinds in `contextTargets`, and for each `user` entry a placeholder in `contextTargets`
//! (kind `user`, no values). SDKs check `contextTargets` in order when it is not empty and
//! follow a placeholder to `targets`, so the placeholders keep `user` targets in play.

use super::serve::{key_at, VariationRef};
use crate::model::{Flag, Target};

/// The most keys one instruction may add, as in LaunchDarkly.
pub const MAX_KEYS: usize = 1500;

/// The keys of one context kind that one variation serves.
struct Entry {
    kind: String,
    variation: i64,
    values: Vec<String>,
}

/// The targets in evaluation order.
fn read(flag: &Flag) -> Vec<Entry> {
    let mut entries = Vec::new();
    for target in &flag.context_targets {
        let kind = target.context_kind.as_deref().unwrap_or("user");
        if kind == "user" && target.values.is_empty() {
            if let Some(users) = flag
                .targets
                .iter()
                .find(|t| t.variation == target.variation)
            {
                entries.push(entry("user", users.variation, users.values.clone()));
            }
        } else {
            entries.push(entry(kind, target.variation, target.values.clone()));
        }
    }
    // `user` targets without a placeholder: data written without `contextTargets`.
    for users in &flag.targets {
        if !entries
            .iter()
            .any(|e| e.kind == "user" && e.variation == users.variation)
        {
            entries.push(entry("user", users.variation, users.values.clone()));
        }
    }
    entries
}

fn entry(kind: &str, variation: i64, values: Vec<String>) -> Entry {
    Entry {
        kind: kind.to_owned(),
        variation,
        values,
    }
}

fn write(flag: &mut Flag, entries: Vec<Entry>) {
    flag.targets.clear();
    flag.context_targets.clear();
    for Entry {
        kind,
        variation,
        values,
    } in entries.into_iter().filter(|e| !e.values.is_empty())
    {
        if kind != "user" {
            flag.context_targets.push(Target {
                values,
                variation,
                context_kind: Some(kind),
            });
            continue;
        }
        match flag.targets.iter_mut().find(|t| t.variation == variation) {
            Some(users) => users.values.extend(values),
            None => {
                flag.context_targets.push(Target {
                    values: Vec::new(),
                    variation,
                    context_kind: Some(kind),
                });
                flag.targets.push(Target {
                    values,
                    variation,
                    context_kind: None,
                });
            }
        }
    }
}

/// Targets `keys` of `kind` to `variation`. A key already targeted to another variation is an
/// error: SDKs would serve whichever comes first, which is never what was meant.
pub fn add(
    flag: &mut Flag,
    kind: &str,
    variation: i64,
    keys: Vec<String>,
    variations: &[VariationRef],
) -> Result<(), String> {
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "{} keys in one instruction; the limit is {MAX_KEYS}",
            keys.len()
        ));
    }
    let mut entries = read(flag);
    for key in keys {
        if let Some(other) = entries
            .iter()
            .find(|e| e.kind == kind && e.values.contains(&key))
        {
            if other.variation == variation {
                continue;
            }
            return Err(format!(
                "{kind} {key:?} is already targeted to variation {}; remove it there first",
                key_at(variations, other.variation)
            ));
        }
        match entries
            .iter_mut()
            .find(|e| e.kind == kind && e.variation == variation)
        {
            Some(entry) => entry.values.push(key),
            None => entries.push(entry(kind, variation, vec![key])),
        }
    }
    write(flag, entries);
    Ok(())
}

/// Stops targeting `keys` of `kind` to `variation`; keys that are not there are ignored.
pub fn remove(flag: &mut Flag, kind: &str, variation: i64, keys: &[String]) {
    let mut entries = read(flag);
    for entry in entries
        .iter_mut()
        .filter(|e| e.kind == kind && e.variation == variation)
    {
        entry.values.retain(|v| !keys.contains(v));
    }
    write(flag, entries);
}

/// Removes every target, of every kind, of `variation`.
pub fn clear(flag: &mut Flag, variation: i64) {
    let mut entries = read(flag);
    entries.retain(|e| e.variation != variation);
    write(flag, entries);
}

/// Removes every target.
pub fn clear_all(flag: &mut Flag) {
    write(flag, Vec::new());
}
