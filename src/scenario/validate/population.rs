//! The population: its size and what the generator refuses.

use super::{Checker, Seg};
use crate::scenario::error::ScenarioError;
use crate::scenario::rules;
use crate::scenario::Scenario;

/// Kinds and attribute names of the population, where they are written.
pub(super) fn check_population(s: &Scenario, c: &Checker<'_>) -> Result<(), ScenarioError> {
    let p = Seg::Key("population");
    for (kind, spec) in &s.population.kinds {
        let at = |rest: &[Seg<'static>]| {
            [&[p, Seg::Key("kinds"), Seg::Key(kind.as_str())][..], rest].concat()
        };
        rules::check_kind(kind).map_err(|e| c.error(&at(&[]), e))?;
        for (name, attribute) in &spec.attributes {
            rules::check_attribute_name(name, attribute.value_kind()).map_err(|e| {
                c.error(
                    &[
                        &at(&[Seg::Key("attributes")])[..],
                        &[Seg::Key(name.as_str())],
                    ]
                    .concat(),
                    e,
                )
            })?;
        }
    }
    for (i, fixed) in s.population.fixed.iter().enumerate() {
        let at = |k| [p, Seg::Key("fixed"), Seg::Index(i), Seg::Key(k)];
        if fixed.key.is_empty() {
            return Err(c.error(&at("key"), "a context needs a key"));
        }
        rules::check_kind(&fixed.kind).map_err(|e| c.error(&at("kind"), e))?;
        for (name, value) in &fixed.attributes {
            rules::check_attribute_name(name, Some(value.type_str())).map_err(|e| {
                c.error(
                    &[&at("attributes")[..], &[Seg::Key(name.as_str())]].concat(),
                    e,
                )
            })?;
        }
    }
    Ok(())
}
