//! Rule and clause edits that flags and segments share: find a rule by `ruleId`, insert,
//! remove, reorder, and edit its clauses by `clauseId`.

use serde::Deserialize;
use serde_json::Value;

use super::clauses::{check_values, new_clauses, ClauseInput};
use crate::model::{Clause, FlagRule, SegmentRule};

/// A flag rule or a segment rule, as far as instructions are concerned.
pub trait Rule {
    fn id(&self) -> &str;
    fn set_id(&mut self, id: String);
    fn clauses_mut(&mut self) -> &mut Vec<Clause>;
    fn set_description(&mut self, description: String);
}

impl Rule for FlagRule {
    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn clauses_mut(&mut self) -> &mut Vec<Clause> {
        &mut self.clauses
    }
    fn set_description(&mut self, description: String) {
        self.description = Some(description);
    }
}

impl Rule for SegmentRule {
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or("")
    }
    fn set_id(&mut self, id: String) {
        self.id = Some(id);
    }
    fn clauses_mut(&mut self) -> &mut Vec<Clause> {
        &mut self.clauses
    }
    fn set_description(&mut self, description: String) {
        self.description = Some(description);
    }
}

/// `removeRule`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRef {
    pub rule_id: String,
}

/// `reorderRules`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleOrder {
    pub rule_ids: Vec<String>,
}

/// `addClauses`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleClauses {
    pub rule_id: String,
    pub clauses: Vec<ClauseInput>,
}

/// `removeClauses`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseRefs {
    pub rule_id: String,
    pub clause_ids: Vec<String>,
}

/// `updateClause`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseUpdate {
    pub rule_id: String,
    pub clause_id: String,
    pub clause: ClauseInput,
}

/// `addValuesToClause` and `removeValuesFromClause`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseValues {
    pub rule_id: String,
    pub clause_id: String,
    pub values: Vec<Value>,
}

/// `updateRuleDescription`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDescription {
    pub rule_id: String,
    pub description: String,
}

fn ids<R: Rule>(rules: &[R]) -> String {
    if rules.is_empty() {
        return "there are no rules".into();
    }
    let ids: Vec<&str> = rules.iter().map(Rule::id).collect();
    format!("the rules are {}", ids.join(", "))
}

pub fn find<'a, R: Rule>(rules: &'a mut [R], id: &str) -> Result<&'a mut R, String> {
    match rules.iter().position(|r| r.id() == id) {
        Some(index) => Ok(&mut rules[index]),
        None => Err(format!("unknown ruleId {id:?}; {}", ids(rules))),
    }
}

/// Inserts `rule` before the rule `before`, or last.
pub fn insert<R: Rule>(rules: &mut Vec<R>, rule: R, before: Option<&str>) -> Result<(), String> {
    let index = match before {
        None => rules.len(),
        Some(id) => rules
            .iter()
            .position(|r| r.id() == id)
            .ok_or_else(|| format!("unknown beforeRuleId {id:?}; {}", ids(rules)))?,
    };
    rules.insert(index, rule);
    Ok(())
}

/// Removes a rule; removing an absent rule is a no-op.
pub fn remove<R: Rule>(rules: &mut Vec<R>, id: &str) {
    rules.retain(|r| r.id() != id);
}

/// Puts the rules in the order of `order`, which must name each rule exactly once.
pub fn reorder<R: Rule>(rules: &mut [R], order: &[String]) -> Result<(), String> {
    let mut wanted: Vec<&str> = order.iter().map(String::as_str).collect();
    let mut current: Vec<&str> = rules.iter().map(Rule::id).collect();
    wanted.sort_unstable();
    current.sort_unstable();
    if wanted != current {
        return Err(format!(
            "ruleIds must name every rule exactly once; got {}, but {}",
            order.join(", "),
            ids(rules)
        ));
    }
    rules.sort_by_key(|r| order.iter().position(|id| id == r.id()));
    Ok(())
}

fn clause_mut<'a>(rule: &'a mut impl Rule, id: &str) -> Result<&'a mut Clause, String> {
    let rule_id = rule.id().to_owned();
    let clauses = rule.clauses_mut();
    match clauses.iter().position(|c| c.id.as_deref() == Some(id)) {
        Some(index) => Ok(&mut clauses[index]),
        None => Err(format!(
            "rule {rule_id:?} has no clause with clauseId {id:?}"
        )),
    }
}

pub fn add_clauses<R: Rule>(rules: &mut [R], edit: RuleClauses) -> Result<(), String> {
    let rule = find(rules, &edit.rule_id)?;
    let clauses = new_clauses(edit.clauses)?;
    rule.clauses_mut().extend(clauses);
    Ok(())
}

pub fn remove_clauses<R: Rule>(rules: &mut [R], edit: ClauseRefs) -> Result<(), String> {
    let rule = find(rules, &edit.rule_id)?;
    for id in &edit.clause_ids {
        clause_mut(rule, id)?;
    }
    rule.clauses_mut()
        .retain(|c| !edit.clause_ids.iter().any(|id| c.id.as_ref() == Some(id)));
    Ok(())
}

/// Replaces a clause, which keeps its `_id`.
pub fn update_clause<R: Rule>(rules: &mut [R], edit: ClauseUpdate) -> Result<(), String> {
    let clause = clause_mut(find(rules, &edit.rule_id)?, &edit.clause_id)?;
    *clause = edit.clause.into_clause_with_id(edit.clause_id)?;
    Ok(())
}

pub fn add_values<R: Rule>(rules: &mut [R], edit: ClauseValues) -> Result<(), String> {
    let clause = clause_mut(find(rules, &edit.rule_id)?, &edit.clause_id)?;
    check_values(&clause.op, &edit.values)?;
    for value in edit.values {
        if !clause.values.contains(&value) {
            clause.values.push(value);
        }
    }
    Ok(())
}

pub fn remove_values<R: Rule>(rules: &mut [R], edit: ClauseValues) -> Result<(), String> {
    let clause = clause_mut(find(rules, &edit.rule_id)?, &edit.clause_id)?;
    clause.values.retain(|v| !edit.values.contains(v));
    Ok(())
}

pub fn update_description<R: Rule>(rules: &mut [R], edit: RuleDescription) -> Result<(), String> {
    find(rules, &edit.rule_id)?.set_description(edit.description);
    Ok(())
}

/// Gives each rule and clause that has no id (seed data, the admin API) one derived from its
/// position, so the ids a GET shows name the same things in the PATCH that follows it.
pub fn fill_ids<R: Rule>(rules: &mut [R]) {
    for (index, rule) in rules.iter_mut().enumerate() {
        if rule.id().is_empty() {
            rule.set_id(format!("rule-{index}"));
        }
        let rule_id = rule.id().to_owned();
        for (position, clause) in rule.clauses_mut().iter_mut().enumerate() {
            clause
                .id
                .get_or_insert_with(|| format!("{rule_id}-clause-{position}"));
        }
    }
}
