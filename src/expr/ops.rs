//! SQL operators on values: comparison (with numeric promotion), arithmetic (checked,
//! NULL-propagating), string concatenation and three-valued logic.

use std::cmp::Ordering;

use super::EvalError;
use crate::record::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    #[inline]
    pub(crate) fn test(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::NotEq => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::LtEq => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::GtEq => o != Ordering::Less,
        }
    }
}

/// Orders two non-null values; `Ok(None)` when unordered (NaN).
#[inline]
pub(crate) fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => return Err(incompatible(a, b)),
    })
}

fn incompatible(a: &Value, b: &Value) -> EvalError {
    EvalError::new(format!("cannot compare {} with {}", a.type_name(), b.type_name()))
}

/// `a <op> b` in SQL: NULL when either side is NULL.
#[inline]
pub(crate) fn cmp_values(op: CmpOp, a: &Value, b: &Value) -> Result<Option<bool>, EvalError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(op.test(x.cmp(y)))),
        (Value::Null, _) | (_, Value::Null) => Ok(None),
        // Lists and maps only have equality; they compare structurally.
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) if matches!(op, CmpOp::Eq | CmpOp::NotEq) => {
            Ok(Some((a == b) == (op == CmpOp::Eq)))
        }
        _ => Ok(Some(match compare(a, b)? {
            Some(o) => op.test(o),
            None => op == CmpOp::NotEq,
        })),
    }
}

/// SQL `=`: NULL when either side is NULL, numeric promotion (`1 = 1.0`).
pub(crate) fn sql_eq(a: &Value, b: &Value) -> Result<Option<bool>, EvalError> {
    cmp_values(CmpOp::Eq, a, b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

fn division_by_zero() -> EvalError {
    EvalError::new("division by zero")
}

fn overflow(op: ArithOp) -> EvalError {
    EvalError::new(format!("integer overflow in `{}`", op.symbol()))
}

/// `a <op> b`: int op int stays int (checked, `/` truncates toward zero), any float
/// operand gives float, NULL propagates; timestamps shift by int milliseconds and
/// subtract to an int number of milliseconds.
pub(crate) fn arith(op: ArithOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_arith(op, *x, *y).map(Value::Int),
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Float(x), Value::Float(y)) => float_arith(op, *x, *y),
        (Value::Int(x), Value::Float(y)) => float_arith(op, *x as f64, *y),
        (Value::Float(x), Value::Int(y)) => float_arith(op, *x, *y as f64),
        (Value::Timestamp(t), Value::Int(d)) if matches!(op, ArithOp::Add | ArithOp::Sub) => {
            int_arith(op, *t, *d).map(Value::Timestamp)
        }
        (Value::Int(d), Value::Timestamp(t)) if op == ArithOp::Add => int_arith(op, *d, *t).map(Value::Timestamp),
        (Value::Timestamp(x), Value::Timestamp(y)) if op == ArithOp::Sub => int_arith(op, *x, *y).map(Value::Int),
        _ => Err(EvalError::new(format!("cannot apply `{}` to {} and {}", op.symbol(), a.type_name(), b.type_name()))),
    }
}

#[inline]
fn int_arith(op: ArithOp, x: i64, y: i64) -> Result<i64, EvalError> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div | ArithOp::Rem if y == 0 => return Err(division_by_zero()),
        ArithOp::Div => x.checked_div(y),
        ArithOp::Rem => x.checked_rem(y),
    };
    r.ok_or_else(|| overflow(op))
}

fn float_arith(op: ArithOp, x: f64, y: f64) -> Result<Value, EvalError> {
    Ok(Value::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Rem if y == 0.0 => return Err(division_by_zero()),
        ArithOp::Div => x / y,
        ArithOp::Rem => x % y,
    }))
}

/// Unary minus.
pub(crate) fn negate(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| overflow(ArithOp::Sub)),
        Value::Float(f) => Ok(Value::Float(-f)),
        other => Err(EvalError::new(format!("cannot negate {}", other.type_name()))),
    }
}

/// `a || b`: strings concatenate, other values use their text form, NULL propagates.
pub(crate) fn concat(a: &Value, b: &Value) -> Result<Value, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let mut s = String::new();
    a.write_text(&mut s);
    b.write_text(&mut s);
    Ok(Value::Str(crate::record::Str::from(s)))
}

/// Three-valued `AND` of an already evaluated left side and a lazily evaluated right.
#[inline]
pub(crate) fn and3(
    a: Option<bool>,
    b: impl FnOnce() -> Result<Option<bool>, EvalError>,
) -> Result<Option<bool>, EvalError> {
    if a == Some(false) {
        return Ok(Some(false));
    }
    Ok(match (a, b()?) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    })
}

/// Three-valued `OR`, lazily evaluating the right side.
#[inline]
pub(crate) fn or3(
    a: Option<bool>,
    b: impl FnOnce() -> Result<Option<bool>, EvalError>,
) -> Result<Option<bool>, EvalError> {
    if a == Some(true) {
        return Ok(Some(true));
    }
    Ok(match (a, b()?) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_promotes_numbers_and_propagates_null() {
        assert_eq!(cmp_values(CmpOp::Eq, &Value::Int(1), &Value::Float(1.0)).unwrap(), Some(true));
        assert_eq!(cmp_values(CmpOp::Lt, &Value::Float(0.5), &Value::Int(1)).unwrap(), Some(true));
        assert_eq!(cmp_values(CmpOp::Eq, &Value::Null, &Value::Int(1)).unwrap(), None);
        assert_eq!(cmp_values(CmpOp::Gt, &Value::str("b"), &Value::str("a")).unwrap(), Some(true));
        assert_eq!(cmp_values(CmpOp::GtEq, &Value::Timestamp(5), &Value::Timestamp(5)).unwrap(), Some(true));
        assert_eq!(cmp_values(CmpOp::NotEq, &Value::Bool(true), &Value::Bool(false)).unwrap(), Some(true));
        assert_eq!(cmp_values(CmpOp::NotEq, &Value::Float(f64::NAN), &Value::Float(f64::NAN)).unwrap(), Some(true));
        let e = cmp_values(CmpOp::Eq, &Value::str("a"), &Value::Int(1)).unwrap_err();
        assert_eq!(e.message, "cannot compare string with int");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(arith(ArithOp::Div, &Value::Int(-7), &Value::Int(2)).unwrap(), Value::Int(-3));
        assert_eq!(arith(ArithOp::Rem, &Value::Int(-7), &Value::Int(2)).unwrap(), Value::Int(-1));
        assert_eq!(arith(ArithOp::Mul, &Value::Int(2), &Value::Float(1.5)).unwrap(), Value::Float(3.0));
        assert_eq!(arith(ArithOp::Add, &Value::Null, &Value::Int(1)).unwrap(), Value::Null);
        assert_eq!(arith(ArithOp::Div, &Value::Int(1), &Value::Int(0)).unwrap_err().message, "division by zero");
        assert_eq!(
            arith(ArithOp::Rem, &Value::Float(1.0), &Value::Float(0.0)).unwrap_err().message,
            "division by zero"
        );
        assert!(arith(ArithOp::Add, &Value::Int(i64::MAX), &Value::Int(1)).is_err());
        assert!(arith(ArithOp::Div, &Value::Int(i64::MIN), &Value::Int(-1)).is_err());
        assert_eq!(arith(ArithOp::Add, &Value::Timestamp(1000), &Value::Int(5)).unwrap(), Value::Timestamp(1005));
        assert_eq!(arith(ArithOp::Sub, &Value::Timestamp(1000), &Value::Timestamp(400)).unwrap(), Value::Int(600));
        assert_eq!(
            arith(ArithOp::Add, &Value::str("a"), &Value::Int(1)).unwrap_err().message,
            "cannot apply `+` to string and int"
        );
        assert!(negate(&Value::Int(i64::MIN)).is_err());
    }

    #[test]
    fn three_valued_logic() {
        let t = || Ok(Some(true));
        let n = || Ok(None);
        let f = || Ok(Some(false));
        assert_eq!(and3(None, f).unwrap(), Some(false));
        assert_eq!(and3(None, t).unwrap(), None);
        assert_eq!(and3(Some(false), || Err(EvalError::new("not evaluated"))).unwrap(), Some(false));
        assert_eq!(or3(None, t).unwrap(), Some(true));
        assert_eq!(or3(Some(false), n).unwrap(), None);
        assert_eq!(or3(Some(false), f).unwrap(), Some(false));
    }

    #[test]
    fn concat_uses_text_forms() {
        assert_eq!(concat(&Value::str("a"), &Value::Int(1)).unwrap(), Value::str("a1"));
        assert_eq!(concat(&Value::str("a"), &Value::Null).unwrap(), Value::Null);
    }
}
