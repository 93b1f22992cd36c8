//! Keys of `key_by`: the values of the key expressions, hashed and compared by type
//! and value (int 1, float 1.0 and string "1" are three different keys), with a fixed
//! hash seed so that a key maps to the same partition on every run and machine.

use crate::record::Value;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// A key: one value per key expression (empty for a global aggregate).
#[derive(Clone, Debug, PartialEq)]
pub struct Key(pub Arc<[Value]>);

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef(&self.0).hash(state);
    }
}

/// A key's values, borrowed: looks a [`Key`] up in a [`KeyMap`] without building one
/// (hashes and compares as the `Key` of the same values).
#[derive(Clone, Copy)]
pub struct KeyRef<'a>(pub &'a [Value]);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for v in self.0 {
            hash_value(v, state);
        }
    }
}

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.0 == *key.0
    }
}

impl From<&KeyRef<'_>> for Key {
    fn from(key: &KeyRef<'_>) -> Key {
        Key(Arc::from(key.0))
    }
}

/// Hashes a value structurally; floats by their bits (so NaN keys are stable).
pub fn hash_value<H: Hasher>(v: &Value, state: &mut H) {
    std::mem::discriminant(v).hash(state);
    match v {
        Value::Null => {}
        Value::Bool(b) => b.hash(state),
        Value::Int(i) | Value::Timestamp(i) => i.hash(state),
        Value::Float(f) => f.to_bits().hash(state),
        Value::Str(s) => s.hash(state),
        Value::List(items) => {
            state.write_usize(items.len());
            items.iter().for_each(|i| hash_value(i, state));
        }
        Value::Map(fields) => {
            state.write_usize(fields.len());
            for (k, v) in fields.iter() {
                k.hash(state);
                hash_value(v, state);
            }
        }
    }
}

/// A `Value` usable as a hash-map key (for `count_distinct`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HashableValue(pub Value);

impl Eq for HashableValue {}

impl Hash for HashableValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(&self.0, state);
    }
}

/// The hasher for keys: fast, and seeded with constants rather than per process, so
/// partition assignment is reproducible.
#[derive(Clone, Default)]
pub struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = ahash::AHasher;
    fn build_hasher(&self) -> ahash::AHasher {
        ahash::RandomState::with_seeds(
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7344,
            0xa409_3822_299f_31d0,
            0x082e_fa98_ec4e_6c89,
        )
        .build_hasher()
    }
}

pub type KeyMap<V> = hashbrown::HashMap<Key, V, FixedState>;

/// The fixed-seed hash of a key's values: that of its [`Key`] (a `Key` hashes as the
/// `KeyRef` of its values), without building one.
pub fn key_hash(values: &[Value]) -> u64 {
    FixedState.hash_one(KeyRef(values))
}

impl Key {
    /// The partition (0..n) this key belongs to: the hash modulo n (the Kafka sink's
    /// `partition_by`; stable across versions).
    pub fn partition(&self, n: usize) -> usize {
        (key_hash(&self.0) % n.max(1) as u64) as usize
    }

    /// The keyed instance (0..n) that owns this key, from the hash's high bits (hash
    /// maps index by the low bits, which then stay evenly spread within an instance).
    pub fn instance(&self, n: usize) -> usize {
        instance_of_hash(key_hash(&self.0), n)
    }
}

/// [`Key::instance`] of the key a record's key expressions give, without building
/// the key (values are borrowed where they can be).
pub fn instance_of(
    exprs: &[crate::expr::Expr],
    record: &crate::record::Record,
    n: usize,
) -> Result<usize, crate::expr::EvalError> {
    let mut state = FixedState.build_hasher();
    // As `Key::hash` does: the length, then each value.
    state.write_usize(exprs.len());
    for e in exprs {
        e.with_value(record, |value| hash_value(value, &mut state))?;
    }
    Ok(instance_of_hash(state.finish(), n))
}

fn instance_of_hash(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n.max(1) as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_types() {
        let a = Key(Arc::from(vec![Value::Int(1)]));
        let b = Key(Arc::from(vec![Value::str("1")]));
        let c = Key(Arc::from(vec![Value::Float(1.0)]));
        let mut m: KeyMap<u8> = KeyMap::default();
        m.insert(a.clone(), 1);
        m.insert(b, 2);
        m.insert(c, 3);
        assert_eq!(m.len(), 3);
        assert_eq!(m[&a], 1);
    }

    #[test]
    fn instance_of_a_record_is_that_of_its_key() {
        let scope = crate::expr::Scope::open();
        let exprs = vec![crate::expr::compile("user", &scope).unwrap(), crate::expr::compile("n + 1", &scope).unwrap()];
        for i in 0..200 {
            let r =
                crate::record::Record::from_pairs(vec![("user", Value::str(&format!("u{i}"))), ("n", Value::Int(i))]);
            let key = Key(Arc::from(vec![Value::str(&format!("u{i}")), Value::Int(i + 1)]));
            assert_eq!(instance_of(&exprs, &r, 3).unwrap(), key.instance(3));
        }
    }

    #[test]
    fn partitions_are_stable() {
        let k = Key(Arc::from(vec![Value::str("user-42")]));
        assert_eq!(k.partition(8), k.clone().partition(8));
        assert!(k.partition(8) < 8);
    }
}
