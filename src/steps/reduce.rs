//! `reduce` without a window: a rolling aggregate, as Flink's `KeyedStream.reduce`.
//! Every input record emits its key's updated result (key fields, then aggregates);
//! without `key_by` there is one global key and only the aggregates are emitted.

use super::aggregate::Accumulators;
use super::key::{Key, KeyMap};
use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker};
use crate::steps::aggregate::Aggregate;
use std::sync::Arc;

pub struct RollingReduce {
    key_exprs: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    schema: SchemaMaker,
    state: KeyMap<Accumulators>,
    seq: u64,
}

impl RollingReduce {
    pub fn new(key_names: Vec<Arc<str>>, key_exprs: Vec<Expr>, aggregates: Vec<Aggregate>) -> RollingReduce {
        let mut names = key_names;
        names.extend(aggregates.iter().map(|a| a.name.clone()));
        RollingReduce {
            key_exprs,
            aggregates,
            schema: SchemaMaker::new(&Schema::new(names)),
            state: KeyMap::default(),
            seq: 0,
        }
    }
}

/// The fingerprint of a `reduce` (see `CompiledStep::fingerprint`): its aggregates as
/// written (`name = call`), the key expressions of the `key_by` before it and the
/// windows it keeps. The text is the one checkpoints have held since version 1.
pub fn fingerprint(
    aggregates: &[(&str, &str)],
    key_exprs: &[Expr],
    window: Option<&super::window::WindowConfig>,
) -> String {
    let aggregates: Vec<String> = aggregates.iter().map(|(name, call)| format!("{name} = {call}")).collect();
    let keys: Vec<&str> = key_exprs.iter().map(Expr::text).collect();
    let mut s = format!("{} | key: {}", aggregates.join(", "), keys.join(", "));
    if let Some(w) = window {
        s.push_str(&format!(" | window: {}, lateness {}ms", w.kind.describe(), w.allowed_lateness.as_millis()));
    }
    s
}

/// Evaluates the key expressions of a record.
pub fn eval_key(exprs: &[Expr], record: &Record) -> Result<Key, crate::expr::EvalError> {
    let values = exprs.iter().map(|e| e.eval(record)).collect::<Result<Vec<_>, _>>()?;
    Ok(Key(Arc::from(values)))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    seq: u64,
    keys: Vec<(Vec<crate::record::Value>, Accumulators)>,
}

impl Operator for RollingReduce {
    fn state_entries(&self) -> Option<usize> {
        Some(self.state.len())
    }

    fn snapshot(&self) -> serde_json::Value {
        let keys = self.state.iter().map(|(k, a)| (k.0.to_vec(), a.clone())).collect();
        serde_json::to_value(Snapshot { seq: self.seq, keys }).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let s: Snapshot = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.seq = s.seq;
        self.state = s.keys.into_iter().map(|(k, a)| (Key(Arc::from(k)), a)).collect();
        Ok(())
    }

    fn rescale(&self, parts: Vec<serde_json::Value>, n: usize) -> Result<Vec<serde_json::Value>, String> {
        let mut split: Vec<Snapshot> = (0..n).map(|_| Snapshot { seq: 0, keys: Vec::new() }).collect();
        for part in parts.into_iter().filter(|p| !p.is_null()) {
            let s: Snapshot = serde_json::from_value(part).map_err(|e| e.to_string())?;
            for (key, acc) in s.keys {
                let i = Key(Arc::from(key.as_slice())).instance(n);
                split[i].keys.push((key, acc));
            }
            split.iter_mut().for_each(|p| p.seq = p.seq.max(s.seq));
        }
        split.into_iter().map(|s| serde_json::to_value(s).map_err(|e| e.to_string())).collect()
    }

    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let key = match eval_key(&self.key_exprs, &record) {
            Ok(k) => k,
            Err(error) => return Err(StepError { error, record }),
        };
        self.seq += 1;
        let aggregates = &self.aggregates;
        let accs = self.state.entry(key.clone()).or_insert_with(|| Accumulators::new(aggregates));
        if let Err(error) = accs.add(aggregates, &record, self.seq) {
            return Err(StepError { error, record });
        }
        let mut values: Vec<_> = key.0.iter().cloned().collect();
        values.extend(accs.values());
        out.push(record.with_fields(self.schema.for_record(), values));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{compile, Scope};
    use crate::steps::aggregate::AggFunc;

    #[test]
    fn rescaled_state_continues_every_key() {
        let scope = Scope::open();
        let (k, v) = (compile("k", &scope).unwrap(), compile("v", &scope).unwrap());
        let make = || {
            let aggregates = vec![
                Aggregate { name: Arc::from("n"), func: AggFunc::Count, arg: None },
                Aggregate { name: Arc::from("last"), func: AggFunc::Last, arg: Some(v.clone()) },
            ];
            RollingReduce::new(vec![Arc::from("k")], vec![k.clone()], aggregates)
        };
        let record = |key: i64, value: i64| {
            Record::from_pairs(vec![("k", crate::record::Value::Int(key)), ("v", crate::record::Value::Int(value))])
        };
        let mut one = make();
        let mut out = Vec::new();
        for i in 0..40 {
            one.process(record(i % 7, i), &mut out).unwrap();
        }
        let states = make().rescale(vec![one.snapshot()], 3).unwrap();
        let mut three: Vec<RollingReduce> = states
            .into_iter()
            .map(|s| {
                let mut op = make();
                op.restore(s).unwrap();
                op
            })
            .collect();
        assert_eq!(three.iter().map(|o| o.state.len()).sum::<usize>(), 7, "every key in exactly one instance");
        let mut after = Vec::new();
        for key in 0..7 {
            let r = record(key, 100 + key);
            let owner = crate::steps::key::instance_of(std::slice::from_ref(&k), &r, 3).unwrap();
            three[owner].process(r, &mut after).unwrap();
        }
        let mut lines: Vec<String> = after.iter().map(Record::to_json).collect();
        lines.sort();
        let expected: Vec<String> = (0..7)
            .map(|key| format!("{{\"k\":{key},\"n\":{},\"last\":{}}}", 40 / 7 + 1 + i64::from(key < 40 % 7), 100 + key))
            .collect();
        assert_eq!(lines, expected);
    }
}
