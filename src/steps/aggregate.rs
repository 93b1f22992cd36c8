//! Accumulators of `reduce`: one per aggregate and window (or key), updated per
//! record, mergeable (session windows merge), and read out as a value.

use super::key::HashableValue;
use crate::expr::EvalError;
use crate::expr::Expr;
use crate::record::{Record, Value};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

/// Aggregate functions of `reduce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    Collect,
}

impl AggFunc {
    pub const ALL: &'static [(&'static str, AggFunc, &'static str)] = &[
        ("count", AggFunc::Count, "count() counts records; count(x) counts non-null x"),
        ("count_distinct", AggFunc::CountDistinct, "count_distinct(x): distinct non-null values"),
        ("sum", AggFunc::Sum, "sum(x): int when all inputs are ints, else float; null when none"),
        ("min", AggFunc::Min, "min(x): smallest non-null value"),
        ("max", AggFunc::Max, "max(x): largest non-null value"),
        ("avg", AggFunc::Avg, "avg(x): float mean of non-null values"),
        ("first", AggFunc::First, "first(x): value of the first record (arrival order)"),
        ("last", AggFunc::Last, "last(x): value of the last record (arrival order)"),
        ("collect", AggFunc::Collect, "collect(x): list of the values in arrival order"),
    ];

    pub fn parse(name: &str) -> Option<AggFunc> {
        AggFunc::ALL.iter().find(|(n, _, _)| *n == name).map(|(_, f, _)| *f)
    }
}

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub name: Arc<str>,
    pub func: AggFunc,
    /// None for `count()`.
    pub arg: Option<Expr>,
}

/// The state of one aggregate. `First`, `Last` and `Collect` keep the arrival number
/// of each value so that merged sessions keep arrival order.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Acc {
    Count(i64),
    CountDistinct(HashSet<HashableValue>),
    Sum { int: i64, float: f64, is_float: bool, any: bool },
    Min(Option<Value>),
    Max(Option<Value>),
    Avg { sum: f64, n: i64 },
    First(Option<(u64, Value)>),
    Last(Option<(u64, Value)>),
    Collect(Vec<(u64, Value)>),
}

impl Acc {
    pub fn new(func: AggFunc) -> Acc {
        match func {
            AggFunc::Count => Acc::Count(0),
            AggFunc::CountDistinct => Acc::CountDistinct(HashSet::new()),
            AggFunc::Sum => Acc::Sum { int: 0, float: 0.0, is_float: false, any: false },
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggFunc::First => Acc::First(None),
            AggFunc::Last => Acc::Last(None),
            AggFunc::Collect => Acc::Collect(Vec::new()),
        }
    }

    /// Adds one input. `value` is None for `count()` (counts records); NULL inputs are
    /// ignored by every aggregate except `first`, `last` and `collect`. It is cloned
    /// only where it is kept (a value moved in is copied through memory, which stalls
    /// on store forwarding).
    pub fn add(&mut self, value: Option<&Value>, seq: u64) -> Result<(), EvalError> {
        let Some(v) = value else {
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        };
        match self {
            Acc::Count(n) => {
                if !v.is_null() {
                    *n += 1
                }
            }
            Acc::CountDistinct(set) => {
                if !v.is_null() {
                    set.insert(HashableValue(v.clone()));
                }
            }
            Acc::Sum { int, float, is_float, any } => match v {
                Value::Null => {}
                &Value::Int(i) => {
                    *any = true;
                    if *is_float {
                        *float += i as f64;
                    } else if let Some(s) = int.checked_add(i) {
                        *int = s;
                    } else {
                        // On overflow, continue in floating point rather than fail.
                        *float = *int as f64 + i as f64;
                        *is_float = true;
                    }
                }
                &Value::Float(f) => {
                    *any = true;
                    if !*is_float {
                        *float += *int as f64;
                        *is_float = true;
                    }
                    *float += f;
                }
                other => return Err(EvalError { message: format!("sum() needs numbers, got {}", other.type_name()) }),
            },
            Acc::Min(cur) => replace_if(cur, v, Ordering::Less),
            Acc::Max(cur) => replace_if(cur, v, Ordering::Greater),
            Acc::Avg { sum, n } => match v {
                Value::Null => {}
                &Value::Int(i) => {
                    *sum += i as f64;
                    *n += 1;
                }
                &Value::Float(f) => {
                    *sum += f;
                    *n += 1;
                }
                other => return Err(EvalError { message: format!("avg() needs numbers, got {}", other.type_name()) }),
            },
            Acc::First(cur) => {
                if cur.as_ref().is_none_or(|(s, _)| seq < *s) {
                    *cur = Some((seq, v.clone()));
                }
            }
            Acc::Last(cur) => {
                if cur.as_ref().is_none_or(|(s, _)| seq >= *s) {
                    *cur = Some((seq, v.clone()));
                }
            }
            Acc::Collect(items) => items.push((seq, v.clone())),
        }
        Ok(())
    }

    /// Folds another accumulator of the same aggregate into this one.
    pub fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::CountDistinct(a), Acc::CountDistinct(b)) => a.extend(b),
            (Acc::Sum { int, float, is_float, any }, Acc::Sum { int: i2, float: f2, is_float: fl2, any: a2 }) => {
                *any |= a2;
                let total_float = (if *is_float { *float } else { *int as f64 }) + if fl2 { f2 } else { i2 as f64 };
                match (*is_float || fl2, int.checked_add(i2)) {
                    (false, Some(s)) => *int = s,
                    _ => {
                        *float = total_float;
                        *is_float = true;
                    }
                }
            }
            (Acc::Min(a), Acc::Min(Some(b))) => replace_if(a, &b, Ordering::Less),
            (Acc::Max(a), Acc::Max(Some(b))) => replace_if(a, &b, Ordering::Greater),
            (Acc::Avg { sum, n }, Acc::Avg { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (Acc::First(a), Acc::First(Some((s, v)))) if a.as_ref().is_none_or(|(x, _)| s < *x) => *a = Some((s, v)),
            (Acc::Last(a), Acc::Last(Some((s, v)))) if a.as_ref().is_none_or(|(x, _)| s >= *x) => *a = Some((s, v)),
            (Acc::Collect(a), Acc::Collect(b)) => {
                a.extend(b);
                a.sort_by_key(|(s, _)| *s);
            }
            _ => {}
        }
    }

    #[inline]
    pub fn value(&self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(*n),
            Acc::CountDistinct(set) => Value::Int(set.len() as i64),
            Acc::Sum { any: false, .. } => Value::Null,
            Acc::Sum { float, is_float: true, .. } => Value::Float(*float),
            Acc::Sum { int, .. } => Value::Int(*int),
            Acc::Min(v) | Acc::Max(v) => v.clone().unwrap_or_default(),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum, n } => Value::Float(sum / *n as f64),
            Acc::First(v) | Acc::Last(v) => v.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
            Acc::Collect(items) => Value::List(Arc::new(items.iter().map(|(_, v)| v.clone()).collect())),
        }
    }
}

fn replace_if(cur: &mut Option<Value>, v: &Value, wanted: Ordering) {
    if v.is_null() {
        return;
    }
    if cur.as_ref().is_none_or(|c| total_cmp(v, c) == wanted) {
        *cur = Some(v.clone());
    }
}

/// SQL ordering where it is defined (numbers promote), else by type, so `min`/`max`
/// over mixed input are still deterministic.
pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
    match crate::expr::compare(a, b) {
        Ok(Some(o)) => o,
        _ => rank(a).cmp(&rank(b)),
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Timestamp(_) => 3,
        Value::Str(_) => 4,
        Value::List(_) => 5,
        Value::Map(_) => 6,
    }
}

/// The accumulators of one `reduce` for one key and window.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Accumulators(pub Vec<Acc>);

/// Whether `value` suits the aggregate `func` (sums and averages need numbers).
fn check(func: AggFunc, value: Option<&Value>) -> Result<(), EvalError> {
    match (func, value) {
        (AggFunc::Sum, Some(v)) if !matches!(v, Value::Null | Value::Int(_) | Value::Float(_)) => {
            Err(EvalError { message: format!("sum() needs numbers, got {}", v.type_name()) })
        }
        (AggFunc::Avg, Some(v)) if !matches!(v, Value::Null | Value::Int(_) | Value::Float(_)) => {
            Err(EvalError { message: format!("avg() needs numbers, got {}", v.type_name()) })
        }
        _ => Ok(()),
    }
}

impl Accumulators {
    pub fn new(aggregates: &[Aggregate]) -> Accumulators {
        Accumulators(aggregates.iter().map(|a| Acc::new(a.func)).collect())
    }

    /// Evaluates and checks every aggregate's argument for `record` (None for
    /// `count()`), before any state changes: a failing record changes nothing.
    pub fn arguments(aggregates: &[Aggregate], record: &Record) -> Result<Vec<Option<Value>>, EvalError> {
        let mut arguments = Vec::with_capacity(aggregates.len());
        Accumulators::arguments_into(aggregates, record, &mut arguments)?;
        Ok(arguments)
    }

    /// [`Accumulators::arguments`] into a buffer the caller reuses.
    pub fn arguments_into(
        aggregates: &[Aggregate],
        record: &Record,
        arguments: &mut Vec<Option<Value>>,
    ) -> Result<(), EvalError> {
        arguments.clear();
        let values = aggregates.iter().map(|agg| {
            let value = agg.arg.as_ref().map(|e| e.eval(record)).transpose()?;
            check(agg.func, value.as_ref())?;
            Ok(value)
        });
        crate::record::extend_or_first_error(arguments, values)
    }

    /// Adds one record's arguments (from [`Accumulators::arguments`]).
    pub fn add_arguments<'v>(&mut self, arguments: impl IntoIterator<Item = Option<&'v Value>>, seq: u64) {
        add_arguments(&mut self.0, arguments, seq);
    }

    /// Adds a record: `arguments`, then `add_arguments`.
    pub fn add(&mut self, aggregates: &[Aggregate], record: &Record, seq: u64) -> Result<(), EvalError> {
        let arguments = Accumulators::arguments(aggregates, record)?;
        self.add_arguments(arguments.iter().map(Option::as_ref), seq);
        Ok(())
    }

    pub fn merge(&mut self, other: Accumulators) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            a.merge(b);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.0.iter().map(Acc::value)
    }
}

/// Adds one record's arguments (from [`Accumulators::arguments`]) to the accumulators
/// of one key and window.
pub fn add_arguments<'v>(accs: &mut [Acc], arguments: impl IntoIterator<Item = Option<&'v Value>>, seq: u64) {
    for (acc, value) in accs.iter_mut().zip(arguments) {
        // Checked by `arguments`, so this cannot fail.
        let _ = acc.add(value, seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(func: AggFunc, values: &[Value]) -> Value {
        let mut acc = Acc::new(func);
        for (i, v) in values.iter().enumerate() {
            acc.add(Some(v), i as u64).unwrap();
        }
        acc.value()
    }

    #[test]
    fn sums_stay_int_until_a_float_arrives() {
        assert_eq!(fold(AggFunc::Sum, &[Value::Int(1), Value::Int(2)]), Value::Int(3));
        assert_eq!(fold(AggFunc::Sum, &[Value::Int(1), Value::Float(0.5)]), Value::Float(1.5));
        assert_eq!(fold(AggFunc::Sum, &[Value::Null]), Value::Null);
        assert_eq!(fold(AggFunc::Sum, &[Value::Int(i64::MAX), Value::Int(1)]), Value::Float(i64::MAX as f64 + 1.0));
    }

    #[test]
    fn nulls_are_ignored_but_counted_by_count_star() {
        let mut acc = Acc::new(AggFunc::Count);
        acc.add(None, 0).unwrap();
        acc.add(None, 1).unwrap();
        assert_eq!(acc.value(), Value::Int(2));
        assert_eq!(fold(AggFunc::Count, &[Value::Null, Value::Int(1)]), Value::Int(1));
        assert_eq!(fold(AggFunc::Avg, &[Value::Null, Value::Int(1), Value::Int(2)]), Value::Float(1.5));
        assert_eq!(fold(AggFunc::CountDistinct, &[Value::Int(1), Value::Int(1), Value::str("1")]), Value::Int(2));
    }

    #[test]
    fn min_max_first_last_collect() {
        let v = [Value::Int(3), Value::Float(1.5), Value::Int(7)];
        assert_eq!(fold(AggFunc::Min, &v), Value::Float(1.5));
        assert_eq!(fold(AggFunc::Max, &v), Value::Int(7));
        assert_eq!(fold(AggFunc::First, &v), Value::Int(3));
        assert_eq!(fold(AggFunc::Last, &v), Value::Int(7));
        assert_eq!(fold(AggFunc::Collect, &v), Value::List(Arc::new(v.to_vec())));
    }

    #[test]
    fn merging_keeps_arrival_order() {
        let mut a = Acc::new(AggFunc::Collect);
        a.add(Some(&Value::Int(2)), 2).unwrap();
        let mut b = Acc::new(AggFunc::Collect);
        b.add(Some(&Value::Int(1)), 1).unwrap();
        b.add(Some(&Value::Int(3)), 3).unwrap();
        a.merge(b);
        assert_eq!(a.value(), Value::List(Arc::new(vec![Value::Int(1), Value::Int(2), Value::Int(3)])));
        let mut f = Acc::new(AggFunc::First);
        f.add(Some(&Value::Int(9)), 5).unwrap();
        let mut g = Acc::new(AggFunc::First);
        g.add(Some(&Value::Int(8)), 4).unwrap();
        f.merge(g);
        assert_eq!(f.value(), Value::Int(8));
    }
}
