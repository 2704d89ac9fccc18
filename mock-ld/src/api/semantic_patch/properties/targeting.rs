//! AI Config targeting: the model, the generators and the properties.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use super::rules::{rule_edit, RuleEdit, RuleModel};
use super::{check_refusal, clause, instruction_shaped, kinds, mutate, mutation, stable_id};
use crate::api::semantic_patch::serve::TOTAL_WEIGHT;
use crate::api::semantic_patch::targeting::{Defaults, Instruction};
use crate::api::semantic_patch::tests::{flag, patch, refs};
use crate::api::semantic_patch::{fill_ids, OPERATORS};
use crate::model::{Flag, VariationOrRollout};
use crate::properties::{config, json_value, short_string};

/// The fixture's variations: `disabled`, `basic`, `premium`.
const VARIATIONS: usize = 3;

/// A variation as an instruction names it.
#[derive(Clone, Debug)]
enum By {
    Id(usize),
    Index(usize),
}

impl By {
    fn index(&self) -> i64 {
        match self {
            By::Id(i) | By::Index(i) => *i as i64,
        }
    }

    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        match self {
            By::Id(i) => fields.insert("variationId".into(), refs()[*i].id.clone().into()),
            By::Index(i) => fields.insert("variation".into(), (*i).into()),
        };
        fields
    }
}

fn by() -> impl Strategy<Value = By> {
    prop_oneof![
        (0..VARIATIONS).prop_map(By::Id),
        (0..VARIATIONS).prop_map(By::Index)
    ]
}

/// What a rule or the fallthrough serves.
#[derive(Clone, Debug)]
enum Serve {
    One(By),
    /// `rolloutWeights`, by `_id`.
    Weights(Vec<(usize, i64)>),
    /// `percentageRolloutConfig` or `rollout`, by index.
    Rollout(&'static str, Vec<(usize, i64)>),
}

/// Weights of one to three distinct variations that add up to 100000.
fn weights() -> impl Strategy<Value = Vec<(usize, i64)>> {
    let variations = prop::sample::subsequence((0..VARIATIONS).collect::<Vec<_>>(), 1..=VARIATIONS);
    let cuts = prop::collection::vec(0..=TOTAL_WEIGHT, VARIATIONS - 1);
    (variations, cuts).prop_map(|(variations, mut cuts)| {
        cuts.truncate(variations.len() - 1);
        cuts.sort_unstable();
        let bounds: Vec<i64> = std::iter::once(0)
            .chain(cuts)
            .chain(std::iter::once(TOTAL_WEIGHT))
            .collect();
        variations
            .into_iter()
            .zip(bounds.windows(2).map(|w| w[1] - w[0]))
            .collect()
    })
}

fn serve() -> impl Strategy<Value = Serve> {
    let field = prop::sample::select(vec!["percentageRolloutConfig", "rollout"]);
    prop_oneof![
        by().prop_map(Serve::One),
        weights().prop_map(Serve::Weights),
        (field, weights()).prop_map(|(field, w)| Serve::Rollout(field, w)),
    ]
}

impl Serve {
    fn fields(&self) -> Map<String, Value> {
        match self {
            Serve::One(by) => by.fields(),
            Serve::Weights(weights) => {
                let by_id: Map<String, Value> = weights
                    .iter()
                    .map(|(i, w)| (refs()[*i].id.clone(), json!(w)))
                    .collect();
                [("rolloutWeights".to_owned(), Value::Object(by_id))]
                    .into_iter()
                    .collect()
            }
            Serve::Rollout(field, weights) => {
                let variations: Vec<Value> = weights
                    .iter()
                    .map(|(i, w)| json!({"variation": i, "weight": w}))
                    .collect();
                [((*field).to_owned(), json!({"variations": variations}))]
                    .into_iter()
                    .collect()
            }
        }
    }

    /// What it serves, as (variation, weight) pairs in variation order.
    fn pairs(&self) -> Vec<(i64, i64)> {
        let mut pairs: Vec<(i64, i64)> = match self {
            Serve::One(by) => vec![(by.index(), TOTAL_WEIGHT)],
            Serve::Weights(w) | Serve::Rollout(_, w) => {
                w.iter().map(|(i, w)| (*i as i64, *w)).collect()
            }
        };
        pairs.sort_unstable();
        pairs
    }
}

/// What `served` serves as (variation, weight) pairs, if it is something SDKs can serve:
/// one variation in range, or a rollout over distinct variations in order whose weights
/// add up to 100000.
fn served(served: &VariationOrRollout) -> Result<Vec<(i64, i64)>, TestCaseError> {
    let pairs = match (&served.variation, &served.rollout) {
        (Some(index), None) => vec![(*index, TOTAL_WEIGHT)],
        (None, Some(rollout)) => rollout
            .variations
            .iter()
            .map(|w| (w.variation, w.weight))
            .collect(),
        _ => return Err(TestCaseError::fail(format!("serves nothing: {served:?}"))),
    };
    prop_assert!(pairs.windows(2).all(|p| p[0].0 < p[1].0), "{:?}", pairs);
    prop_assert!(pairs
        .iter()
        .all(|(i, w)| (0..VARIATIONS as i64).contains(i) && (0..=TOTAL_WEIGHT).contains(w)));
    prop_assert_eq!(pairs.iter().map(|p| p.1).sum::<i64>(), TOTAL_WEIGHT);
    Ok(pairs)
}

/// Keys of one kind for one variation.
#[derive(Clone, Debug)]
struct Targets {
    /// The `contextKind` sent; absent and `""` mean `user`.
    kind: Option<&'static str>,
    keys: Vec<String>,
    variation: By,
}

fn targets() -> impl Strategy<Value = Targets> {
    let kind = prop::option::of(prop::sample::select(vec!["", "user", "organization"]));
    (kind, prop::collection::vec(short_string(), 0..4), by()).prop_map(|(kind, keys, variation)| {
        Targets {
            kind,
            keys,
            variation,
        }
    })
}

/// A variation as `updateDefaultVariation` names it: key, `_id`, index or value.
#[derive(Clone, Debug)]
enum DefaultRef {
    Key(usize),
    Id(usize),
    Index(usize),
    Value(usize),
}

impl DefaultRef {
    fn variation(&self) -> usize {
        match self {
            DefaultRef::Key(i)
            | DefaultRef::Id(i)
            | DefaultRef::Index(i)
            | DefaultRef::Value(i) => *i,
        }
    }

    fn json(&self) -> Value {
        let refs = refs();
        match self {
            DefaultRef::Key(i) => refs[*i].key.clone().into(),
            DefaultRef::Id(i) => refs[*i].id.clone().into(),
            DefaultRef::Index(i) => (*i).into(),
            DefaultRef::Value(i) => refs[*i].value.clone(),
        }
    }
}

fn default_variation() -> impl Strategy<Value = DefaultRef> {
    let i = 0..VARIATIONS;
    prop_oneof![
        i.clone().prop_map(DefaultRef::Key),
        i.clone().prop_map(DefaultRef::Id),
        i.clone().prop_map(DefaultRef::Index),
        i.prop_map(DefaultRef::Value),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    AddRule(Vec<Value>, Serve, Option<Index>),
    Rule(RuleEdit),
    RuleServe(Index, Serve),
    RuleTrackEvents(Index, bool),
    ReplaceRules(Vec<(Vec<Value>, Serve)>),
    AddTargets(Targets),
    RemoveTargets(Targets),
    ReplaceTargets(Vec<Targets>),
    ClearTargets(By),
    Fallthrough(Serve),
    OffVariation(By),
    Defaults(Option<DefaultRef>, Option<DefaultRef>),
    TrackEvents(bool),
    TrackEventsFallthrough(bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    let clauses = || prop::collection::vec(clause(), 0..3);
    prop_oneof![
        (clauses(), serve(), prop::option::of(any::<Index>()))
            .prop_map(|(c, s, before)| Edit::AddRule(c, s, before)),
        rule_edit().prop_map(Edit::Rule),
        (any::<Index>(), serve()).prop_map(|(r, s)| Edit::RuleServe(r, s)),
        (any::<Index>(), any::<bool>()).prop_map(|(r, t)| Edit::RuleTrackEvents(r, t)),
        prop::collection::vec((clauses(), serve()), 0..3).prop_map(Edit::ReplaceRules),
        targets().prop_map(Edit::AddTargets),
        targets().prop_map(Edit::RemoveTargets),
        prop::collection::vec(targets(), 0..3).prop_map(Edit::ReplaceTargets),
        by().prop_map(Edit::ClearTargets),
        serve().prop_map(Edit::Fallthrough),
        by().prop_map(Edit::OffVariation),
        (
            prop::option::of(default_variation()),
            prop::option::of(default_variation())
        )
            .prop_map(|(on, off)| Edit::Defaults(on, off)),
        any::<bool>().prop_map(Edit::TrackEvents),
        any::<bool>().prop_map(Edit::TrackEventsFallthrough),
    ]
}

/// What the instructions so far said the flag and defaults are.
#[derive(Debug)]
struct Model {
    /// What each rule serves, as [`Serve::pairs`].
    rules: RuleModel<Vec<(i64, i64)>>,
    /// (kind, key) → variation index.
    targets: BTreeMap<(String, String), i64>,
    fallthrough: Option<Vec<(i64, i64)>>,
    off_variation: Option<i64>,
    defaults: Defaults,
    track_events: bool,
    track_events_fallthrough: bool,
}

/// The fixture's flag with two rules whose ids the model knows.
fn start() -> Flag {
    let mut flag = flag();
    flag.rules = serde_json::from_value(json!([
        {"clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["pro"]},
                     {"contextKind": "user", "attribute": "country", "op": "in", "values": ["FR"]}],
         "variation": 1},
        {"clauses": [{"op": "segmentMatch", "values": ["beta"]}], "variation": 2},
    ]))
    .unwrap();
    fill_ids(&mut flag.rules);
    flag
}

impl Model {
    fn new(flag: &mut Flag) -> Self {
        Model {
            rules: RuleModel::of(&mut flag.rules, |rule| {
                served(&VariationOrRollout {
                    variation: rule.variation,
                    rollout: rule.rollout.clone(),
                })
                .expect("the start serves")
            }),
            targets: BTreeMap::new(),
            fallthrough: None,
            off_variation: flag.off_variation,
            defaults: Defaults {
                on: "id-disabled".into(),
                off: "id-disabled".into(),
            },
            track_events: false,
            track_events_fallthrough: false,
        }
    }

    /// The instruction for `edit` in the model's state, or `None` when it could name nothing.
    fn realize(&mut self, edit: Edit) -> Option<Value> {
        let with = |kind: &str, fields: Map<String, Value>| {
            let mut object = fields;
            object.insert("kind".into(), kind.into());
            Value::Object(object)
        };
        Some(match edit {
            Edit::AddRule(clauses, serve, before) => {
                let mut fields = serve.fields();
                fields.insert("clauses".into(), clauses.into());
                if let Some(id) = self.rules.add(before.as_ref(), serve.pairs()) {
                    fields.insert("beforeRuleId".into(), id.into());
                }
                with("addRule", fields)
            }
            Edit::Rule(edit) => self.rules.realize(edit)?,
            Edit::RuleServe(r, serve) => {
                let position = self.rules.pick(&r)?;
                self.rules.rules[position].data = serve.pairs();
                let mut fields = serve.fields();
                fields.insert("ruleId".into(), self.rules.id(position).into());
                with("updateRuleVariationOrRollout", fields)
            }
            Edit::RuleTrackEvents(r, on) => {
                let id = self.rules.id(self.rules.pick(&r)?);
                json!({"kind": "updateRuleTrackEvents", "ruleId": id, "trackEvents": on})
            }
            Edit::ReplaceRules(rules) => {
                self.rules.rules.clear();
                let rules: Vec<Value> = rules
                    .into_iter()
                    .map(|(clauses, serve)| {
                        self.rules.add(None, serve.pairs());
                        let mut fields = serve.fields();
                        fields.insert("clauses".into(), clauses.into());
                        Value::Object(fields)
                    })
                    .collect();
                json!({"kind": "replaceRules", "rules": rules})
            }
            Edit::AddTargets(targets) => with("addTargets", self.add_targets(targets)),
            Edit::RemoveTargets(targets) => {
                let (kind, variation) = (kind_of(&targets), targets.variation.index());
                for key in &targets.keys {
                    let entry = (kind.clone(), key.clone());
                    if self.targets.get(&entry) == Some(&variation) {
                        self.targets.remove(&entry);
                    }
                }
                with("removeTargets", target_fields(&targets))
            }
            Edit::ReplaceTargets(list) => {
                self.targets.clear();
                let list: Vec<Value> = list
                    .into_iter()
                    .map(|t| Value::Object(self.add_targets(t)))
                    .collect();
                json!({"kind": "replaceTargets", "targets": list})
            }
            Edit::ClearTargets(by) => {
                self.targets.retain(|_, v| *v != by.index());
                with("clearTargets", by.fields())
            }
            Edit::Fallthrough(serve) => {
                self.fallthrough = Some(serve.pairs());
                with("updateFallthroughVariationOrRollout", serve.fields())
            }
            Edit::OffVariation(by) => {
                self.off_variation = Some(by.index());
                with("updateOffVariation", by.fields())
            }
            Edit::Defaults(on, off) => {
                let (on, off) = match (on, off) {
                    (None, None) => (Some(DefaultRef::Key(0)), None),
                    pair => pair,
                };
                let mut instruction = json!({"kind": "updateDefaultVariation"});
                if let Some(on) = on {
                    self.defaults.on = refs()[on.variation()].id.clone();
                    instruction["onVariationValue"] = on.json();
                }
                if let Some(off) = off {
                    self.defaults.off = refs()[off.variation()].id.clone();
                    instruction["offVariationValue"] = off.json();
                }
                instruction
            }
            Edit::TrackEvents(on) => {
                self.track_events = on;
                json!({"kind": "updateTrackEvents", "trackEvents": on})
            }
            Edit::TrackEventsFallthrough(on) => {
                self.track_events_fallthrough = on;
                json!({"kind": "updateTrackEventsFallthrough", "trackEvents": on})
            }
        })
    }

    /// Targets the keys that are not targeted to another variation already (which would be
    /// refused), and returns the instruction's fields for them.
    fn add_targets(&mut self, mut targets: Targets) -> Map<String, Value> {
        let (kind, variation) = (kind_of(&targets), targets.variation.index());
        targets.keys.retain(|key| {
            let entry = (kind.clone(), key.clone());
            match self.targets.get(&entry) {
                Some(other) => *other == variation,
                None => {
                    self.targets.insert(entry, variation);
                    true
                }
            }
        });
        target_fields(&targets)
    }

    /// The patched flag and defaults: what SDKs need, and what the model says.
    fn check(&self, flag: &mut Flag, defaults: &Defaults) -> Result<(), TestCaseError> {
        self.rules.check(&mut flag.rules, |rule, pairs| {
            let rule = VariationOrRollout {
                variation: rule.variation,
                rollout: rule.rollout.clone(),
            };
            prop_assert_eq!(&served(&rule)?, pairs);
            Ok(())
        })?;
        if let Some(expected) = &self.fallthrough {
            prop_assert_eq!(&served(&flag.fallthrough)?, expected);
        }
        prop_assert_eq!(flag.off_variation, self.off_variation);
        prop_assert_eq!(defaults, &self.defaults);
        prop_assert_eq!(flag.track_events, self.track_events);
        prop_assert_eq!(flag.track_events_fallthrough, self.track_events_fallthrough);
        prop_assert_eq!(&read_targets(flag)?, &self.targets);
        Ok(())
    }
}

fn kind_of(targets: &Targets) -> String {
    match targets.kind {
        None | Some("") => "user".to_owned(),
        Some(kind) => kind.to_owned(),
    }
}

fn target_fields(targets: &Targets) -> Map<String, Value> {
    let mut fields = targets.variation.fields();
    fields.insert("values".into(), targets.keys.clone().into());
    if let Some(kind) = targets.kind {
        fields.insert("contextKind".into(), kind.into());
    }
    fields
}

/// The flag's targets as (kind, key) → variation, checking LaunchDarkly's shape: `user`
/// keys in `targets`, each with one empty placeholder in `contextTargets`; other kinds in
/// `contextTargets`; no empty lists, no key of a kind targeted twice.
fn read_targets(flag: &Flag) -> Result<BTreeMap<(String, String), i64>, TestCaseError> {
    let mut map = BTreeMap::new();
    let mut placeholders = Vec::new();
    for target in &flag.context_targets {
        prop_assert!((0..VARIATIONS as i64).contains(&target.variation));
        match target.context_kind.as_deref() {
            Some("user") => {
                prop_assert!(target.values.is_empty(), "user keys in contextTargets");
                placeholders.push(target.variation);
            }
            Some(kind) => {
                prop_assert!(!target.values.is_empty(), "an empty {} target", kind);
                for key in &target.values {
                    let twice = map.insert((kind.to_owned(), key.clone()), target.variation);
                    prop_assert!(twice.is_none(), "{} {:?} targeted twice", kind, key);
                }
            }
            None => prop_assert!(false, "a context target without a kind"),
        }
    }
    let mut users = Vec::new();
    for target in &flag.targets {
        prop_assert!(target.context_kind.is_none() && !target.values.is_empty());
        users.push(target.variation);
        for key in &target.values {
            let twice = map.insert(("user".to_owned(), key.clone()), target.variation);
            prop_assert!(twice.is_none(), "user {:?} targeted twice", key);
        }
    }
    placeholders.sort_unstable();
    users.sort_unstable();
    prop_assert_eq!(placeholders, users, "one placeholder per user target");
    Ok(map)
}

/// A valid instruction list for [`start`], and the model of what it leaves.
fn valid_patch() -> impl Strategy<Value = (Vec<Value>, Model)> {
    prop::collection::vec(edit(), 1..12).prop_map(|edits| {
        let mut model = Model::new(&mut start());
        let mut instructions: Vec<Value> =
            edits.into_iter().filter_map(|e| model.realize(e)).collect();
        if instructions.is_empty() {
            instructions.push(model.realize(Edit::TrackEvents(true)).unwrap());
        }
        (instructions, model)
    })
}

/// An instruction that is refused whatever came before it, and the kind a refusal names.
fn invalid_instruction() -> impl Strategy<Value = Value> {
    let not_an_op =
        "[a-zA-Z]{0,10}".prop_filter("an operator", |op| !OPERATORS.contains(&op.as_str()));
    let not_an_index = prop_oneof![i64::MIN..0, VARIATIONS as i64..=i64::MAX];
    let not_the_total = any::<i64>().prop_filter("the total", |w| *w != TOTAL_WEIGHT);
    prop_oneof![
        "[a-z]{0,8}".prop_map(|k| json!({"kind": format!("turnFlag{k}")})),
        json_value(0).prop_map(|kind| json!({"kind": kind, "values": ["a"]})),
        prop::sample::select(vec!["turnTargetingOn", "turnTargetingOff"])
            .prop_map(|k| json!({"kind": k})),
        not_an_index.prop_map(|i| json!({"kind": "updateOffVariation", "variation": i})),
        not_the_total.prop_map(|w| json!({"kind": "updateFallthroughVariationOrRollout",
                                          "rolloutWeights": {"id-basic": w}})),
        not_an_op.prop_map(|op| json!({"kind": "addRule", "variation": 0,
                                       "clauses": [{"attribute": "a", "op": op, "values": []}]})),
        Just(json!({"kind": "updateRuleDescription", "ruleId": "no-such-rule", "description": ""})),
        Just(json!({"kind": "addTargets", "variationId": "id-none", "values": ["a"]})),
        Just(json!({"kind": "addTargets", "variationId": "id-basic"})),
        Just(json!({"kind": "addRule", "clauses": "tier", "variation": 0})),
        Just(json!({"kind": "updateDefaultVariation"})),
    ]
}

/// The flag and defaults with the ids the patch made replaced by a placeholder.
fn stable(flag: &Flag, defaults: &Defaults) -> (Flag, Defaults) {
    let mut flag = flag.clone();
    for rule in &mut flag.rules {
        rule.id = stable_id(&rule.id);
        for clause in &mut rule.clauses {
            clause.id = clause.id.as_deref().map(stable_id);
        }
    }
    (flag, defaults.clone())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_valid_patch_applies_as_the_model_says((instructions, model) in valid_patch()) {
        let (mut flag, defaults) = patch(&start(), json!(instructions))
            .map_err(|e| TestCaseError::fail(format!("{e} in {instructions:#?}")))?;
        model.check(&mut flag, &defaults)?;
    }

    #[test]
    fn applying_is_deterministic((instructions, _) in valid_patch()) {
        let (a, a_defaults) = patch(&start(), json!(instructions)).unwrap();
        let (b, b_defaults) = patch(&start(), json!(instructions)).unwrap();
        prop_assert_eq!(stable(&a, &a_defaults), stable(&b, &b_defaults));
    }

    #[test]
    fn an_invalid_instruction_is_refused_by_index(
        (mut instructions, _) in valid_patch(),
        bad in invalid_instruction(),
        at in any::<Index>(),
    ) {
        let at = at.index(instructions.len() + 1);
        instructions.insert(at, bad);
        let error = patch(&start(), json!(instructions)).unwrap_err();
        prop_assert_eq!(error.index, at, "{}", error);
        check_refusal(&instructions, &error)?;
    }

    #[test]
    fn a_mutated_patch_is_applied_or_refused_by_index(
        (mut instructions, _) in valid_patch(),
        mutations in prop::collection::vec(mutation(plausible()), 1..3),
    ) {
        for m in &mutations {
            mutate(&mut instructions, m);
        }
        if let Err(error) = patch(&start(), json!(instructions)) {
            check_refusal(&instructions, &error)?;
        }
    }

    #[test]
    fn instruction_shaped_json_is_applied_or_refused_by_index(
        instructions in prop::collection::vec(
            instruction_shaped(kinds::<Instruction>(), plausible()),
            0..6,
        ),
    ) {
        if let Err(error) = patch(&start(), json!(instructions)) {
            check_refusal(&instructions, &error)?;
        }
    }
}

/// Values that fit some field of some instruction of [`start`]'s flag.
fn plausible() -> Vec<Value> {
    vec![
        json!("rule-0"),
        json!("rule-0-clause-1"),
        json!("id-basic"),
        json!(["rule-1", "rule-0"]),
        json!([{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["x"]}]),
        json!({"id-basic": 50000, "id-premium": 50000}),
        json!({"variations": [{"variation": 1, "weight": 100000}]}),
        json!(["a", "b"]),
        json!(2),
    ]
}
