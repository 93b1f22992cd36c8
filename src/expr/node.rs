//! The compiled form of an expression: boxed closures over `&Record`, plus the field
//! accessors and borrowed operands that let hot paths avoid cloning values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::EvalError;
use crate::record::{Record, Schema, Value};

/// A compiled expression that produces a value.
pub(crate) type ValFn = Box<dyn Fn(&Record) -> Result<Value, EvalError> + Send + Sync>;
/// A compiled expression known to produce a bool or NULL (`None`); predicates stay in
/// this form so that `AND`/`OR` chains never build `Value`s.
pub(crate) type BoolFn = Box<dyn Fn(&Record) -> Result<Option<bool>, EvalError> + Send + Sync>;

/// Returned by reference for absent fields, so lookups never allocate.
pub(crate) static NULL: Value = Value::Null;

/// One literal step into a nested value (`.name`, `['key']`, `[2]`).
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Key(Arc<str>),
    /// 1-based list index.
    Index(i64),
}

impl Step {
    #[inline]
    pub(crate) fn apply<'v>(&self, v: &'v Value) -> &'v Value {
        match (self, v) {
            (Step::Key(k), Value::Map(_)) => v.get_field(k).unwrap_or(&NULL),
            (Step::Index(i), Value::List(items)) => list_item(items, *i),
            _ => &NULL,
        }
    }
}

/// SQL lists are 1-based; anything out of range reads as NULL.
pub(crate) fn list_item(items: &[Value], i: i64) -> &Value {
    i.checked_sub(1).and_then(|i| usize::try_from(i).ok()).and_then(|i| items.get(i)).unwrap_or(&NULL)
}

/// A (possibly nested) field reference resolved as far as compile time allows.
#[derive(Debug)]
pub(crate) struct FieldRef {
    pub name: Arc<str>,
    /// Index of `name` in the schema the scope promised; used when the record carries
    /// that schema or a twin of it (same id), otherwise the name is looked up.
    pub slot: Option<(Arc<Schema>, usize)>,
    pub steps: Vec<Step>,
    /// The last lookup by name: the schema's id and where `name` was in it, so records
    /// of shapes no scope promised (several event types from one source, JSON) are
    /// looked up once per change of shape, not per record.
    pub cache: ShapeCache,
}

impl Clone for FieldRef {
    fn clone(&self) -> FieldRef {
        FieldRef {
            name: self.name.clone(),
            slot: self.slot.clone(),
            steps: self.steps.clone(),
            cache: ShapeCache::default(),
        }
    }
}

impl FieldRef {
    pub(crate) fn new(name: Arc<str>, slot: Option<(Arc<Schema>, usize)>, steps: Vec<Step>) -> FieldRef {
        FieldRef { name, slot, steps, cache: ShapeCache::default() }
    }

    #[inline]
    pub(crate) fn get<'r>(&self, r: &'r Record) -> &'r Value {
        let top = self.index_in(r.schema()).and_then(|i| r.values().get(i)).unwrap_or(&NULL);
        self.steps.iter().fold(top, |v, s| s.apply(v))
    }

    /// Where the top-level field is in `schema` (None: it has no such field).
    #[inline]
    pub(crate) fn index_in(&self, schema: &Arc<Schema>) -> Option<usize> {
        match &self.slot {
            Some((promised, i)) if Schema::same(schema, promised) => Some(*i),
            _ => self.cache.get(schema.id()).unwrap_or_else(|| {
                let index = schema.index_of(&self.name);
                self.cache.set(schema.id(), index);
                index
            }),
        }
    }
}

/// One remembered (schema id, field index or absent) pair in a single atomic word, so
/// compiled expressions stay `Sync` and a stale read is impossible: the id and the
/// index are read together. Schema ids up to 2^48 and indexes below 2^16 - 1 fit;
/// others are simply not remembered.
#[derive(Debug, Default)]
pub(crate) struct ShapeCache(AtomicU64);

/// The low 16 bits saying "the schema has no such field".
const ABSENT: u64 = 0xffff;

impl ShapeCache {
    fn get(&self, schema_id: u64) -> Option<Option<usize>> {
        let packed = self.0.load(Ordering::Relaxed);
        if packed >> 16 != schema_id {
            return None;
        }
        Some(match packed & 0xffff {
            ABSENT => None,
            index => Some(index as usize),
        })
    }

    fn set(&self, schema_id: u64, index: Option<usize>) {
        let low = match index {
            None => ABSENT,
            Some(i) if (i as u64) < ABSENT => i as u64,
            Some(_) => return,
        };
        if schema_id < 1 << 48 {
            self.0.store(schema_id << 16 | low, Ordering::Relaxed);
        }
    }
}

/// A compiled subexpression; the variants let parents specialise (constants and plain
/// field reads are borrowed, never cloned, by comparisons and function calls).
pub(crate) enum Node {
    Const(Value),
    Field(FieldRef),
    Val(ValFn),
    Bool(BoolFn),
}

impl Node {
    #[inline]
    pub(crate) fn eval(&self, r: &Record) -> Result<Value, EvalError> {
        match self {
            Node::Const(v) => Ok(v.clone()),
            Node::Field(f) => Ok(f.get(r).clone()),
            Node::Val(f) => f(r),
            Node::Bool(f) => f(r).map(bool_value),
        }
    }

    pub(crate) fn is_const(&self) -> bool {
        matches!(self, Node::Const(_))
    }

    pub(crate) fn into_operand(self) -> Operand {
        match self {
            Node::Const(v) => Operand::Const(v),
            Node::Field(f) => Operand::Field(f),
            Node::Val(f) => Operand::Dyn(f),
            Node::Bool(f) => Operand::Dyn(Box::new(move |r| f(r).map(bool_value))),
        }
    }

    /// This node as a predicate; `what` names the consumer in the type error
    /// ("`AND` expects bool operands, got int").
    pub(crate) fn into_bool(self, what: &'static str) -> BoolFn {
        match self {
            Node::Bool(f) => f,
            Node::Const(v) => {
                let b = as_bool(&v, what);
                Box::new(move |_| b.clone())
            }
            Node::Field(f) => Box::new(move |r| as_bool(f.get(r), what)),
            Node::Val(f) => Box::new(move |r| as_bool(&f(r)?, what)),
        }
    }
}

/// An operand that parents read by reference.
pub(crate) enum Operand {
    Const(Value),
    Field(FieldRef),
    Dyn(ValFn),
}

impl Operand {
    /// Runs `k` on this operand's value without cloning constants or fields.
    #[inline]
    pub(crate) fn with<R>(&self, r: &Record, k: impl FnOnce(&Value) -> Result<R, EvalError>) -> Result<R, EvalError> {
        match self {
            Operand::Const(v) => k(v),
            Operand::Field(f) => k(f.get(r)),
            Operand::Dyn(f) => k(&f(r)?),
        }
    }

    pub(crate) fn eval(&self, r: &Record) -> Result<Value, EvalError> {
        match self {
            Operand::Const(v) => Ok(v.clone()),
            Operand::Field(f) => Ok(f.get(r).clone()),
            Operand::Dyn(f) => f(r),
        }
    }
}

pub(crate) fn bool_value(b: Option<bool>) -> Value {
    b.map_or(Value::Null, Value::Bool)
}

pub(crate) fn as_bool(v: &Value, what: &str) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(EvalError::new(format!("{what} expects a bool, got {}", other.type_name()))),
    }
}
