//! `CAST(x AS type)` / `TRY_CAST`: the SQL type names accepted, the conversions between
//! values, and timestamp text parsing (shared with `to_timestamp`).
//!
//! Values are 64-bit, but a narrower SQL type is a range check: `CAST(100000 AS
//! SMALLINT)` is an error, as in PostgreSQL. `DECIMAL(p, s)` is a float rounded half
//! away from zero to `s` places whose integer part has at most `p - s` digits (a float
//! holds about 15 significant digits exactly); a bare `DECIMAL` is a float.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use sqlparser::ast::DataType;

use super::EvalError;
use crate::record::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastTarget {
    Int,
    /// TINYINT, SMALLINT or INT: an int within that many bits.
    NarrowInt {
        bits: u32,
        name: &'static str,
    },
    Float,
    /// DECIMAL(precision, scale).
    Decimal {
        precision: u32,
        scale: u32,
    },
    Str,
    Bool,
    Timestamp,
}

impl CastTarget {
    /// Maps a SQL type name; the error says why a type cannot be a target.
    pub(crate) fn from_sql(t: &DataType) -> Result<CastTarget, String> {
        use sqlparser::ast::ExactNumberInfo as N;
        use DataType as D;
        let narrow = |bits, name| CastTarget::NarrowInt { bits, name };
        Ok(match t {
            D::BigInt(_) | D::Int8(_) | D::Int64 => CastTarget::Int,
            D::Int(_) | D::Integer(_) | D::Int4(_) | D::Int32 => narrow(32, "INT"),
            D::SmallInt(_) | D::Int2(_) | D::Int16 => narrow(16, "SMALLINT"),
            D::TinyInt(_) => narrow(8, "TINYINT"),
            D::Double(_) | D::DoublePrecision | D::Float(_) | D::Real | D::Float4 | D::Float8 => CastTarget::Float,
            D::Float32 | D::Float64 => CastTarget::Float,
            D::Decimal(info) | D::Numeric(info) | D::Dec(info) => match *info {
                N::None => CastTarget::Float,
                N::Precision(p) => decimal(p, 0)?,
                N::PrecisionAndScale(p, s) => decimal(p, u64::try_from(s).unwrap_or(u64::MAX))?,
            },
            D::Varchar(_) | D::String(_) | D::Text | D::Char(_) | D::Character(_) => CastTarget::Str,
            D::CharacterVarying(_) | D::CharVarying(_) | D::Nvarchar(_) => CastTarget::Str,
            D::Boolean | D::Bool => CastTarget::Bool,
            D::Timestamp(_, _) | D::TimestampNtz(_) | D::Datetime(_) => CastTarget::Timestamp,
            _ => return Err(format!("cannot cast to `{t}`")),
        })
    }

    fn name(self) -> String {
        match self {
            CastTarget::Int => "BIGINT".into(),
            CastTarget::NarrowInt { name, .. } => name.into(),
            CastTarget::Float => "DOUBLE".into(),
            CastTarget::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            CastTarget::Str => "VARCHAR".into(),
            CastTarget::Bool => "BOOLEAN".into(),
            CastTarget::Timestamp => "TIMESTAMP".into(),
        }
    }
}

/// The largest DECIMAL precision (as in PostgreSQL's default maximum for typmods
/// and most SQL engines).
const MAX_DECIMAL_PRECISION: u64 = 38;

fn decimal(precision: u64, scale: u64) -> Result<CastTarget, String> {
    if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) || scale > precision {
        return Err(format!(
            "DECIMAL({precision},{scale}): the precision must be 1 to {MAX_DECIMAL_PRECISION} and the scale 0 to the precision"
        ));
    }
    // Both fit: at most 38.
    Ok(CastTarget::Decimal { precision: precision as u32, scale: scale as u32 })
}

/// Rounds `f` half away from zero to `scale` places; `None` when its integer part
/// has more than `precision - scale` digits, or it is not finite.
fn to_decimal(f: f64, precision: u32, scale: u32) -> Option<f64> {
    let factor = 10f64.powi(scale as i32);
    let rounded = (f * factor).round() / factor;
    let limit = 10f64.powi((precision - scale) as i32);
    (rounded.is_finite() && rounded.abs() < limit).then_some(rounded)
}

fn cannot(v: &Value, t: CastTarget) -> EvalError {
    let shown = match v {
        Value::Str(s) => format!("string '{s}'"),
        other => other.type_name().to_string(),
    };
    EvalError::new(format!("cannot cast {shown} to {}", t.name()))
}

fn out_of_range(v: &Value, t: CastTarget) -> EvalError {
    EvalError::new(format!("{} is out of range for {}", v.to_text(), t.name()))
}

/// Converts `v`; NULL stays NULL, a value that does not convert is an error.
pub(crate) fn cast(v: &Value, t: CastTarget) -> Result<Value, EvalError> {
    match t {
        CastTarget::NarrowInt { bits, .. } => {
            return match cast(v, CastTarget::Int)? {
                Value::Int(i) if i >= -(1i64 << (bits - 1)) && i < (1i64 << (bits - 1)) => Ok(Value::Int(i)),
                Value::Int(_) => Err(out_of_range(v, t)),
                other => Ok(other),
            }
        }
        CastTarget::Decimal { precision, scale } => {
            return match cast(v, CastTarget::Float).map_err(|_| cannot(v, t))? {
                Value::Float(f) => to_decimal(f, precision, scale).map(Value::Float).ok_or_else(|| out_of_range(v, t)),
                other => Ok(other),
            }
        }
        _ => {}
    }
    let out = match (t, v) {
        (_, Value::Null) => Some(Value::Null),
        (CastTarget::Int, Value::Int(_)) => Some(v.clone()),
        (CastTarget::Int, Value::Float(f)) => float_to_int(*f).map(Value::Int),
        (CastTarget::Int, Value::Str(s)) => s.trim().parse::<i64>().ok().map(Value::Int),
        (CastTarget::Int, Value::Bool(b)) => Some(Value::Int(i64::from(*b))),
        (CastTarget::Int, Value::Timestamp(ms)) => Some(Value::Int(*ms)),
        (CastTarget::Float, Value::Int(i)) => Some(Value::Float(*i as f64)),
        (CastTarget::Float, Value::Float(_)) => Some(v.clone()),
        (CastTarget::Float, Value::Str(s)) => s.trim().parse::<f64>().ok().map(Value::Float),
        (CastTarget::Float, Value::Bool(b)) => Some(Value::Float(if *b { 1.0 } else { 0.0 })),
        (CastTarget::Float, Value::Timestamp(ms)) => Some(Value::Float(*ms as f64)),
        (CastTarget::Str, Value::Str(_)) => Some(v.clone()),
        (CastTarget::Str, other) => Some(Value::Str(crate::record::Str::from(other.to_text()))),
        (CastTarget::Bool, Value::Bool(_)) => Some(v.clone()),
        (CastTarget::Bool, Value::Int(i)) => Some(Value::Bool(*i != 0)),
        (CastTarget::Bool, Value::Float(f)) => Some(Value::Bool(*f != 0.0)),
        (CastTarget::Bool, Value::Str(s)) => parse_bool(s).map(Value::Bool),
        (CastTarget::Timestamp, Value::Timestamp(_)) => Some(v.clone()),
        (CastTarget::Timestamp, Value::Int(ms)) => Some(Value::Timestamp(*ms)),
        (CastTarget::Timestamp, Value::Float(f)) => float_to_int(*f).map(Value::Timestamp),
        (CastTarget::Timestamp, Value::Str(s)) => parse_timestamp(s).map(Value::Timestamp),
        _ => None,
    };
    out.ok_or_else(|| cannot(v, t))
}

/// Truncates toward zero, as SQL `CAST(1.9 AS BIGINT)` = 1; NaN and out-of-range fail.
fn float_to_int(f: f64) -> Option<i64> {
    // i64::MAX as f64 rounds up to 2^63, which is itself out of range, hence `<`.
    (f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f.trunc() as i64)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Some(true),
        "false" | "f" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

/// Parses RFC 3339 (`2024-01-02T03:04:05Z`, with offset) or the SQL form
/// `2024-01-02 03:04:05[.fff]` / `2024-01-02` (naive, read as UTC) to epoch millis.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// Parses with a strftime pattern: with an offset (`%z`) when the pattern has one,
/// otherwise as a naive time in UTC, or a bare date at midnight.
pub(crate) fn parse_timestamp_with(s: &str, fmt: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_str(s, fmt) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
        return Some(t.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(s, fmt).ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_between_scalars() {
        assert_eq!(cast(&Value::str(" 42 "), CastTarget::Int).unwrap(), Value::Int(42));
        assert_eq!(cast(&Value::Float(-1.9), CastTarget::Int).unwrap(), Value::Int(-1));
        assert_eq!(cast(&Value::Int(3), CastTarget::Float).unwrap(), Value::Float(3.0));
        assert_eq!(cast(&Value::Float(2.5), CastTarget::Str).unwrap(), Value::str("2.5"));
        assert_eq!(cast(&Value::str("TRUE"), CastTarget::Bool).unwrap(), Value::Bool(true));
        assert_eq!(cast(&Value::Int(0), CastTarget::Bool).unwrap(), Value::Bool(false));
        assert_eq!(cast(&Value::Null, CastTarget::Int).unwrap(), Value::Null);
        assert_eq!(cast(&Value::Int(1500), CastTarget::Timestamp).unwrap(), Value::Timestamp(1500));
        assert_eq!(cast(&Value::Timestamp(1500), CastTarget::Int).unwrap(), Value::Int(1500));
        assert_eq!(cast(&Value::Timestamp(0), CastTarget::Str).unwrap(), Value::str("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn failed_casts_name_the_value() {
        assert_eq!(
            cast(&Value::str("abc"), CastTarget::Int).unwrap_err().message,
            "cannot cast string 'abc' to BIGINT"
        );
        assert!(cast(&Value::Float(f64::NAN), CastTarget::Int).is_err());
        assert!(cast(&Value::Float(1e30), CastTarget::Int).is_err());
        assert!(cast(&Value::List(std::sync::Arc::new(vec![])), CastTarget::Float).is_err());
    }

    #[test]
    fn narrow_ints_and_decimals_check_their_range() {
        let small = CastTarget::NarrowInt { bits: 16, name: "SMALLINT" };
        assert_eq!(cast(&Value::Int(32767), small).unwrap(), Value::Int(32767));
        assert_eq!(cast(&Value::Int(-32768), small).unwrap(), Value::Int(-32768));
        assert_eq!(cast(&Value::Int(100000), small).unwrap_err().message, "100000 is out of range for SMALLINT");
        assert!(cast(&Value::str("128"), CastTarget::NarrowInt { bits: 8, name: "TINYINT" }).is_err());
        assert_eq!(cast(&Value::Null, small).unwrap(), Value::Null);
        let d = CastTarget::Decimal { precision: 3, scale: 1 };
        assert_eq!(cast(&Value::Float(12.345), d).unwrap(), Value::Float(12.3));
        assert_eq!(cast(&Value::Float(-12.25), d).unwrap(), Value::Float(-12.3));
        assert_eq!(cast(&Value::Int(99), d).unwrap(), Value::Float(99.0));
        assert_eq!(cast(&Value::Float(99.96), d).unwrap_err().message, "99.96 is out of range for DECIMAL(3,1)");
        assert!(cast(&Value::Float(f64::NAN), d).is_err());
        assert!(cast(&Value::str("abc"), d).unwrap_err().message.contains("cannot cast string 'abc' to DECIMAL(3,1)"));
    }

    #[test]
    fn timestamps_parse_in_sql_and_rfc3339_forms() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.250"), Some(1250));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp_with("02/01/1970 00:00", "%d/%m/%Y %H:%M"), Some(86_400_000));
        assert_eq!(parse_timestamp_with("1970-01-01 00:00:00 +0100", "%Y-%m-%d %H:%M:%S %z"), Some(-3_600_000));
    }
}
