//! The rule and clause edits flags and segments share, as a model of which rules and
//! clauses a generated instruction can name.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use super::clause;
use crate::api::semantic_patch::rules::Rule;
use crate::properties::{json_value, short_string};

/// A rule as the model knows it: its id and the ids of its clauses, when an instruction can
/// name them, and what else the model follows (`data`: what a flag rule serves, a segment
/// rule's weight). Rules and clauses a patch creates get fresh UUIDs, which a generated list
/// cannot know in advance; the model keeps their place but never names them.
#[derive(Clone, Debug)]
pub struct KnownRule<T> {
    pub id: Option<String>,
    pub clauses: Vec<String>,
    pub data: T,
}

#[derive(Clone, Debug)]
pub struct RuleModel<T> {
    pub rules: Vec<KnownRule<T>>,
}

/// An edit of an existing rule; each index picks among the rules (or clauses) the model can
/// name, and an edit with nothing to pick is dropped.
#[derive(Clone, Debug)]
pub enum RuleEdit {
    Remove(Index),
    /// Rotate the rules by this much, and reverse them if the flag is set.
    Reorder(Index, bool),
    Description(Index, String),
    AddClauses(Index, Vec<Value>),
    RemoveClause(Index, Index),
    UpdateClause(Index, Index, Value),
    AddValues(Index, Index, Vec<Value>),
    RemoveValues(Index, Index, Vec<Value>),
}

pub fn rule_edit() -> impl Strategy<Value = RuleEdit> {
    let values = || prop::collection::vec(json_value(1), 0..3);
    prop_oneof![
        any::<Index>().prop_map(RuleEdit::Remove),
        (any::<Index>(), any::<bool>()).prop_map(|(by, flip)| RuleEdit::Reorder(by, flip)),
        (any::<Index>(), "\\PC{0,8}").prop_map(|(r, text)| RuleEdit::Description(r, text)),
        (any::<Index>(), prop::collection::vec(clause(), 0..3))
            .prop_map(|(r, clauses)| RuleEdit::AddClauses(r, clauses)),
        (any::<Index>(), any::<Index>()).prop_map(|(r, c)| RuleEdit::RemoveClause(r, c)),
        (any::<Index>(), any::<Index>(), clause())
            .prop_map(|(r, c, clause)| RuleEdit::UpdateClause(r, c, clause)),
        // Strings, which a clause of any operator takes (`segmentMatch` only those).
        (
            any::<Index>(),
            any::<Index>(),
            prop::collection::vec(short_string(), 0..3)
        )
            .prop_map(|(r, c, v)| RuleEdit::AddValues(
                r,
                c,
                v.into_iter().map(Value::from).collect()
            )),
        (any::<Index>(), any::<Index>(), values())
            .prop_map(|(r, c, v)| RuleEdit::RemoveValues(r, c, v)),
    ]
}

impl<T> RuleModel<T> {
    /// The model of `rules` as they stand: every id known.
    pub fn of<R: Rule>(rules: &mut [R], data: impl Fn(&R) -> T) -> Self {
        RuleModel {
            rules: rules
                .iter_mut()
                .map(|rule| KnownRule {
                    data: data(rule),
                    id: Some(rule.id().to_owned()),
                    clauses: rule
                        .clauses_mut()
                        .iter()
                        .filter_map(|c| c.id.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    /// The position of a rule an instruction can name.
    pub fn pick(&self, index: &Index) -> Option<usize> {
        let named: Vec<usize> = (0..self.rules.len())
            .filter(|&i| self.rules[i].id.is_some())
            .collect();
        (!named.is_empty()).then(|| named[index.index(named.len())])
    }

    pub fn id(&self, position: usize) -> String {
        self.rules[position]
            .id
            .clone()
            .expect("picked rules have ids")
    }

    /// A rule the patch creates, before the rule `before` picks (or last); returns the
    /// `beforeRuleId` to send.
    pub fn add(&mut self, before: Option<&Index>, data: T) -> Option<String> {
        let position = before.and_then(|b| self.pick(b));
        let fresh = KnownRule {
            id: None,
            clauses: Vec::new(),
            data,
        };
        match position {
            Some(position) => {
                self.rules.insert(position, fresh);
                Some(self.id(position + 1))
            }
            None => {
                self.rules.push(fresh);
                None
            }
        }
    }

    /// The instruction for `edit`, or `None` when there is nothing it could name.
    pub fn realize(&mut self, edit: RuleEdit) -> Option<Value> {
        let clause_of = |model: &Self, r: &Index, c: &Index| {
            let position = model.pick(r)?;
            let clauses = &model.rules[position].clauses;
            (!clauses.is_empty()).then(|| (position, clauses[c.index(clauses.len())].clone()))
        };
        Some(match edit {
            RuleEdit::Remove(r) => {
                let position = self.pick(&r)?;
                let id = self.id(position);
                self.rules.remove(position);
                json!({"kind": "removeRule", "ruleId": id})
            }
            RuleEdit::Reorder(by, flip) => {
                if self.rules.iter().any(|r| r.id.is_none()) {
                    return None;
                }
                let by = by.index(self.rules.len().max(1));
                self.rules.rotate_left(by);
                if flip {
                    self.rules.reverse();
                }
                let ids: Vec<String> = (0..self.rules.len()).map(|i| self.id(i)).collect();
                json!({"kind": "reorderRules", "ruleIds": ids})
            }
            RuleEdit::Description(r, text) => {
                let id = self.id(self.pick(&r)?);
                json!({"kind": "updateRuleDescription", "ruleId": id, "description": text})
            }
            RuleEdit::AddClauses(r, clauses) => {
                let id = self.id(self.pick(&r)?);
                json!({"kind": "addClauses", "ruleId": id, "clauses": clauses})
            }
            RuleEdit::RemoveClause(r, c) => {
                let (position, clause) = clause_of(self, &r, &c)?;
                self.rules[position].clauses.retain(|id| *id != clause);
                let id = self.id(position);
                json!({"kind": "removeClauses", "ruleId": id, "clauseIds": [clause]})
            }
            RuleEdit::UpdateClause(r, c, new) => {
                let (position, clause) = clause_of(self, &r, &c)?;
                let id = self.id(position);
                json!({"kind": "updateClause", "ruleId": id, "clauseId": clause, "clause": new})
            }
            RuleEdit::AddValues(r, c, values) => {
                let (position, clause) = clause_of(self, &r, &c)?;
                let id = self.id(position);
                json!({"kind": "addValuesToClause", "ruleId": id, "clauseId": clause, "values": values})
            }
            RuleEdit::RemoveValues(r, c, values) => {
                let (position, clause) = clause_of(self, &r, &c)?;
                let id = self.id(position);
                json!({"kind": "removeValuesFromClause", "ruleId": id, "clauseId": clause, "values": values})
            }
        })
    }

    /// Rules as the patch left them: as many as the model has, the named ones where the
    /// model has them, every id (rule, and clause within its rule) present and distinct,
    /// and what `same` says of the rest.
    pub fn check<R: Rule>(
        &self,
        rules: &mut [R],
        same: impl Fn(&R, &T) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(rules.len(), self.rules.len());
        let mut ids = BTreeSet::new();
        for (rule, known) in rules.iter_mut().zip(&self.rules) {
            same(rule, &known.data)?;
            prop_assert!(!rule.id().is_empty());
            prop_assert!(
                ids.insert(rule.id().to_owned()),
                "rule id {} twice",
                rule.id()
            );
            if let Some(id) = &known.id {
                prop_assert_eq!(rule.id(), id.as_str());
            }
            let clauses = rule.clauses_mut();
            let clause_ids: BTreeSet<_> = clauses.iter().map(|c| c.id.clone()).collect();
            prop_assert_eq!(clause_ids.len(), clauses.len(), "a clause id twice");
            for clause in clauses.iter() {
                super::check_clause(clause)?;
            }
            for id in &known.clauses {
                prop_assert!(clause_ids.contains(&Some(id.clone())), "clause {} lost", id);
            }
        }
        Ok(())
    }
}
