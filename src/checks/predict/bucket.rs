//! LaunchDarkly's bucketing (`shared/spec/ld-sdk-protocol.md` §5.3): SHA-1 of
//! `{seed}.{value}` or `{key}.{salt}.{value}`, the first 15 hex digits over `0xFFFFFFFFFFFFFFF`.
//!
//! Buckets, weights and their running sums are single precision, as in LaunchDarkly's Go and
//! Rust SDKs, so a context that lands exactly on a boundary is placed as the SDK places it.

use serde_json::Value;
use sha1::{Digest, Sha1};

use super::context::Context;
use super::reference::Reference;

const SCALE: f32 = 0x0FFF_FFFF_FFFF_FFFF_i64 as f32;
/// Largest integer an f64 holds exactly.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_991.0;

/// What the hash starts with.
pub enum Prefix<'a> {
    KeyAndSalt(&'a str, &'a str),
    Seed(i64),
}

/// A context's bucket in [0, 1), and whether the context lacked the kind to bucket by (it
/// then gets bucket 0). `Err` for an invalid `bucketBy`.
pub fn bucket(
    context: &Context,
    by: &Reference,
    kind: &str,
    prefix: &Prefix<'_>,
) -> Result<(f32, bool), String> {
    if let Some(error) = by.error() {
        return Err(error.to_owned());
    }
    let Some(part) = context.part(kind) else {
        return Ok((0.0, true));
    };
    let bucket = part
        .value(by)
        .and_then(bucketable)
        .map_or(0.0, |id| hash(prefix, &id));
    Ok((bucket, false))
}

/// Strings, and numbers that are whole, bucket; anything else gets bucket 0.
fn bucketable(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            let f = n.as_f64()?;
            (f.abs() <= MAX_EXACT_INT && f.fract() == 0.0).then(|| (f as i64).to_string())
        }
        _ => None,
    }
}

fn hash(prefix: &Prefix<'_>, id: &str) -> f32 {
    let mut sha = Sha1::new();
    match prefix {
        Prefix::KeyAndSalt(key, salt) => {
            sha.update(key.as_bytes());
            sha.update(b".");
            sha.update(salt.as_bytes());
        }
        Prefix::Seed(seed) => sha.update(seed.to_string().as_bytes()),
    }
    sha.update(b".");
    sha.update(id.as_bytes());
    let digest = sha.finalize();
    // The first 15 hex digits are the first 60 bits.
    let first8 = u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"));
    (first8 >> 4) as i64 as f32 / SCALE
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(key: &str) -> Context {
        Context::from_json(&json!({"kind": "user", "key": key, "n": 42, "f": 1.5})).unwrap()
    }

    /// The vectors of LaunchDarkly's evaluation tests (`rust-server-sdk-evaluation`
    /// `variation.rs`), which the conformance data does not pin down: its rollouts use
    /// weights of 1 and 99999.
    #[test]
    fn known_buckets_from_launchdarklys_own_tests() {
        let key = Reference::literal("key");
        let salted = Prefix::KeyAndSalt("hashKey", "saltyA");
        let cases = [
            ("userKeyA", &salted, 0.421_575_87),
            ("userKeyB", &salted, 0.670_848_5),
            ("userKeyC", &salted, 0.103_431_06),
            ("userKeyA", &Prefix::Seed(61), 0.098_012_07),
            ("userKeyB", &Prefix::Seed(61), 0.144_837_77),
            ("userKeyC", &Prefix::Seed(61), 0.924_264_1),
            ("userKeyA", &Prefix::Seed(60), 0.700_881_6),
        ];
        for (user_key, prefix, expected) in cases {
            let (b, _) = bucket(&user(user_key), &key, "user", prefix).unwrap();
            assert!((b - expected).abs() < 1e-7, "{user_key}: {b} != {expected}");
        }
    }

    #[test]
    fn unbucketable_values_and_missing_kinds_give_zero() {
        let prefix = Prefix::Seed(61);
        assert_eq!(
            bucket(&user("a"), &Reference::literal("f"), "user", &prefix).unwrap(),
            (0.0, false)
        );
        assert_eq!(
            bucket(&user("a"), &Reference::literal("key"), "org", &prefix).unwrap(),
            (0.0, true)
        );
        assert_ne!(
            bucket(&user("a"), &Reference::literal("n"), "user", &prefix)
                .unwrap()
                .0,
            0.0
        );
        assert!(bucket(&user("a"), &Reference::parse("//"), "user", &prefix).is_err());
    }
}
