//! Synthetic contexts: who the users are, generated one at a time from the seed and an
//! index, so a million contexts cost no memory and a rerun sees the same people.

use std::collections::BTreeMap;

use launchdarkly_server_sdk::{AttributeValue, Context, ContextBuilder, MultiContextBuilder};
use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use super::rules;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Distinct contexts; request `i` uses context `i % count`.
    pub count: u64,
    /// Context kinds and their attributes; two or more kinds make multi-kind contexts.
    /// Without any, contexts are plain users.
    #[serde(default)]
    pub kinds: BTreeMap<String, KindSpec>,
    /// Named contexts placed first (QA accounts, beta testers).
    #[serde(default)]
    pub fixed: Vec<FixedContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSpec {
    /// Keys are `PREFIX-N`; by default the kind's name.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// How many distinct contexts of this kind exist (e.g. 200 organizations shared by all
    /// users); by default one per context.
    #[serde(default)]
    pub distinct: Option<u64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Attribute>,
}

/// How one attribute's value is chosen; exactly one field is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// A string chosen with these relative weights.
    #[serde(default)]
    pub weighted: Option<BTreeMap<String, f64>>,
    /// An integer, uniform in [min, max].
    #[serde(default)]
    pub range: Option<[i64; 2]>,
    /// A number, uniform in [min, max).
    #[serde(default)]
    pub uniform: Option<[f64; 2]>,
    /// A semantic version `MAJOR.MINOR.PATCH`, each part uniform in its [min, max].
    #[serde(default)]
    pub semver: Option<SemverRange>,
    /// `true` with this probability.
    #[serde(default)]
    pub chance: Option<f64>,
    /// The same value for everyone.
    #[serde(default)]
    pub value: Option<toml::Value>,
}

impl Attribute {
    /// The TOML type of the values it makes (`string`, `integer`, `float`, `boolean`).
    pub fn value_kind(&self) -> Option<&'static str> {
        if self.weighted.is_some() || self.semver.is_some() {
            Some("string")
        } else if self.range.is_some() {
            Some("integer")
        } else if self.uniform.is_some() {
            Some("float")
        } else if self.chance.is_some() {
            Some("boolean")
        } else {
            self.value.as_ref().map(toml::Value::type_str)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemverRange {
    pub major: [u32; 2],
    pub minor: [u32; 2],
    pub patch: [u32; 2],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedContext {
    pub key: String,
    #[serde(default = "user_kind")]
    pub kind: String,
    #[serde(default)]
    pub attributes: toml::Table,
}

fn user_kind() -> String {
    "user".to_owned()
}

/// A sampler built once per run from a [`Population`].
pub struct Generator {
    seed: u64,
    kinds: Vec<(String, KindGenerator)>,
    fixed: Vec<Context>,
    count: u64,
}

struct KindGenerator {
    prefix: String,
    distinct: Option<u64>,
    attributes: Vec<(String, Sampler)>,
}

enum Sampler {
    Weighted(Vec<String>, WeightedIndex<f64>),
    Range(i64, i64),
    Uniform(f64, f64),
    Semver([[u32; 2]; 3]),
    Chance(f64),
    Value(AttributeValue),
}

impl Generator {
    /// Fails with a message naming the kind or attribute when a kind breaks LaunchDarkly's
    /// rules, an attribute is one a context cannot set, or a distribution is unusable; the
    /// scenario loader checks the same first, pointing at the value in the file.
    pub fn new(population: &Population, seed: u64) -> Result<Self, String> {
        let mut kinds = Vec::new();
        for (kind, spec) in &population.kinds {
            rules::check_kind(kind).map_err(|e| format!("population.kinds.{kind}: {e}"))?;
            let mut attributes = Vec::new();
            for (name, attribute) in &spec.attributes {
                rules::check_attribute_name(name, attribute.value_kind())
                    .map_err(|e| format!("population.kinds.{kind}.attributes.{name}: {e}"))?;
                let sampler = Sampler::new(attribute)
                    .map_err(|e| format!("population.kinds.{kind}.attributes.{name}: {e}"))?;
                attributes.push((name.clone(), sampler));
            }
            let prefix = spec.key_prefix.clone().unwrap_or_else(|| kind.clone());
            kinds.push((
                kind.clone(),
                KindGenerator {
                    prefix,
                    distinct: spec.distinct,
                    attributes,
                },
            ));
        }
        if kinds.is_empty() {
            kinds.push((
                "user".to_owned(),
                KindGenerator {
                    prefix: "user".into(),
                    distinct: None,
                    attributes: Vec::new(),
                },
            ));
        }
        let fixed = population
            .fixed
            .iter()
            .map(fixed_context)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Generator {
            seed,
            kinds,
            fixed,
            count: population.count,
        })
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many of the first contexts are the fixed ones; every later context has the
    /// population's generated kinds.
    pub fn fixed_count(&self) -> u64 {
        self.fixed.len() as u64
    }

    /// Context number `index % count`: a fixed one first, else generated. [`Generator::new`]
    /// refuses what LaunchDarkly would, so this fails only if the SDK's rules ever grow
    /// stricter than the loader's; the runner then counts the request as failed.
    pub fn context(&self, index: u64) -> Result<Context, String> {
        let index = index % self.count.max(1);
        if let Some(fixed) = self.fixed.get(index as usize) {
            return Ok(fixed.clone());
        }
        let mut parts = Vec::with_capacity(self.kinds.len());
        for (kind, g) in &self.kinds {
            parts.push(g.context(kind, self.seed, index)?);
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        let mut multi = MultiContextBuilder::new();
        for part in parts {
            multi.add_context(part);
        }
        multi.build().map_err(|e| format!("context {index}: {e}"))
    }
}

impl KindGenerator {
    fn context(&self, kind: &str, seed: u64, index: u64) -> Result<Context, String> {
        // A shared kind (organizations) maps many contexts onto few; scatter the mapping so
        // neighbours do not share one.
        let n = match self.distinct {
            Some(distinct) => mix(seed ^ 0x9e37_79b9_7f4a_7c15, index) % distinct.max(1),
            None => index,
        };
        let mut rng = SmallRng::seed_from_u64(mix(seed ^ fnv(kind), n));
        let mut builder = ContextBuilder::new(format!("{}-{n}", self.prefix));
        builder.kind(kind);
        for (name, sampler) in &self.attributes {
            builder.set_value(name, sampler.sample(&mut rng));
        }
        builder
            .build()
            .map_err(|e| format!("context {index} of kind {kind:?}: {e}"))
    }
}

impl Sampler {
    fn new(a: &Attribute) -> Result<Self, String> {
        let set = [
            a.weighted.is_some(),
            a.range.is_some(),
            a.uniform.is_some(),
            a.semver.is_some(),
            a.chance.is_some(),
            a.value.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(
                "set exactly one of weighted, range, uniform, semver, chance, value".into(),
            );
        }
        Ok(if let Some(weights) = &a.weighted {
            if let Some((value, w)) = weights.iter().find(|(_, w)| !w.is_finite()) {
                return Err(format!("weight {w} of {value:?} is not a finite number"));
            }
            let index = WeightedIndex::new(weights.values().copied())
                .map_err(|e| format!("weights must be non-negative and not all zero ({e})"))?;
            Sampler::Weighted(weights.keys().cloned().collect(), index)
        } else if let Some([lo, hi]) = a.range {
            if lo > hi {
                return Err(format!("range [{lo}, {hi}] is empty"));
            }
            Sampler::Range(lo, hi)
        } else if let Some([lo, hi]) = a.uniform {
            // Written so that NaN bounds are rejected too.
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(format!("uniform [{lo}, {hi}) is empty"));
            }
            // rand refuses (panics on) a range whose width is not finite.
            if !(hi - lo).is_finite() {
                return Err(format!("uniform [{lo}, {hi}) is wider than a number holds"));
            }
            Sampler::Uniform(lo, hi)
        } else if let Some(s) = &a.semver {
            for (part, [lo, hi]) in [("major", s.major), ("minor", s.minor), ("patch", s.patch)] {
                if lo > hi {
                    return Err(format!("semver {part} [{lo}, {hi}] is empty"));
                }
            }
            Sampler::Semver([s.major, s.minor, s.patch])
        } else if let Some(p) = a.chance {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("chance {p} is not a probability"));
            }
            Sampler::Chance(p)
        } else {
            Sampler::Value(attribute_value(
                a.value.as_ref().expect("one field is set"),
            )?)
        })
    }

    fn sample(&self, rng: &mut SmallRng) -> AttributeValue {
        match self {
            Sampler::Weighted(values, index) => {
                AttributeValue::String(values[index.sample(rng)].clone())
            }
            Sampler::Range(lo, hi) => AttributeValue::Number(rng.random_range(*lo..=*hi) as f64),
            Sampler::Uniform(lo, hi) => AttributeValue::Number(rng.random_range(*lo..*hi)),
            Sampler::Semver(parts) => {
                let [a, b, c] = parts.map(|[lo, hi]| rng.random_range(lo..=hi));
                AttributeValue::String(format!("{a}.{b}.{c}"))
            }
            Sampler::Chance(p) => AttributeValue::Bool(rng.random_bool(*p)),
            Sampler::Value(v) => v.clone(),
        }
    }
}

fn fixed_context(fixed: &FixedContext) -> Result<Context, String> {
    rules::check_kind(&fixed.kind).map_err(|e| format!("population.fixed {}: {e}", fixed.key))?;
    let mut builder = ContextBuilder::new(&fixed.key);
    builder.kind(&fixed.kind);
    for (name, value) in &fixed.attributes {
        rules::check_attribute_name(name, Some(value.type_str()))
            .map_err(|e| format!("population.fixed {}: {e}", fixed.key))?;
        builder.set_value(
            name,
            attribute_value(value)
                .map_err(|e| format!("population.fixed {}: {name}: {e}", fixed.key))?,
        );
    }
    builder
        .build()
        .map_err(|e| format!("population.fixed {}: {e}", fixed.key))
}

fn attribute_value(value: &toml::Value) -> Result<AttributeValue, String> {
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    Ok(AttributeValue::from(&json))
}

/// SplitMix64 of `seed + index`: independent, well-spread seeds per context.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, to give each kind its own stream of attributes.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population(text: &str) -> Population {
        toml::from_str(text).unwrap()
    }

    fn attribute(context: &Context, kind: &str, name: &str) -> AttributeValue {
        let json = serde_json::to_value(context).unwrap();
        let part = if json["kind"] == "multi" {
            json[kind].clone()
        } else {
            json
        };
        AttributeValue::from(&part[name])
    }

    #[test]
    fn contexts_are_deterministic_and_weighted() {
        let p = population("count = 20000\n[kinds.user.attributes]\ntier = { weighted = { free = 60, pro = 30, premium = 10 } }\n");
        let a = Generator::new(&p, 7).unwrap();
        let b = Generator::new(&p, 7).unwrap();
        assert_eq!(
            serde_json::to_value(a.context(123).unwrap()).unwrap(),
            serde_json::to_value(b.context(123).unwrap()).unwrap()
        );
        let premium = (0..20_000)
            .filter(|i| {
                attribute(&a.context(*i).unwrap(), "user", "tier")
                    == AttributeValue::String("premium".into())
            })
            .count();
        // 10 % of 20,000, within 5 standard deviations (sd ≈ 42).
        assert!((1790..=2210).contains(&premium), "{premium}");
        assert_eq!(
            a.context(20_000).unwrap().key(),
            a.context(0).unwrap().key(),
            "index wraps at count"
        );
    }

    #[test]
    fn two_kinds_make_multi_contexts_with_shared_organizations() {
        let p = population("count = 1000\n[kinds.user]\n[kinds.organization]\ndistinct = 10\n[kinds.organization.attributes]\nplan = { weighted = { free = 1, enterprise = 1 } }\n");
        let g = Generator::new(&p, 1).unwrap();
        let json = serde_json::to_value(g.context(5).unwrap()).unwrap();
        assert_eq!(json["kind"], "multi");
        assert_eq!(json["user"]["key"], "user-5");
        let orgs: std::collections::HashSet<String> = (0..1000)
            .map(|i| {
                serde_json::to_value(g.context(i).unwrap()).unwrap()["organization"]["key"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(orgs.len(), 10);
    }

    #[test]
    fn fixed_contexts_come_first() {
        let p = population(
            "count = 5\n[[fixed]]\nkey = \"qa-alice\"\nattributes = { tier = \"premium\" }\n",
        );
        let g = Generator::new(&p, 1).unwrap();
        assert_eq!(g.context(0).unwrap().key(), "qa-alice");
        assert_eq!(
            attribute(&g.context(0).unwrap(), "user", "tier"),
            AttributeValue::String("premium".into())
        );
        assert_eq!(g.context(1).unwrap().key(), "user-1");
    }

    #[test]
    fn bad_distributions_name_the_attribute() {
        let p = population("count = 5\n[kinds.user.attributes]\nage = { range = [9, 1] }\n");
        let e = Generator::new(&p, 1).err().unwrap();
        assert!(
            e.contains("population.kinds.user.attributes.age") && e.contains("empty"),
            "{e}"
        );
        let p = population("count = 5\n[kinds.user.attributes]\nx = { chance = 0.5, value = 1 }\n");
        assert!(Generator::new(&p, 1).err().unwrap().contains("exactly one"));
    }

    #[test]
    fn semver_and_ranges_stay_in_bounds() {
        let p = population("count = 100\n[kinds.user.attributes]\napp = { semver = { major = [1, 2], minor = [0, 3], patch = [0, 9] } }\nage = { range = [18, 80] }\n");
        let g = Generator::new(&p, 3).unwrap();
        for i in 0..100 {
            let AttributeValue::String(v) = attribute(&g.context(i).unwrap(), "user", "app") else {
                panic!()
            };
            let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
            assert!(
                (1..=2).contains(&parts[0]) && parts[1] <= 3 && parts[2] <= 9,
                "{v}"
            );
            let AttributeValue::Number(age) = attribute(&g.context(i).unwrap(), "user", "age")
            else {
                panic!()
            };
            assert!((18.0..=80.0).contains(&age));
        }
    }
}
