//! Event time of each record, read by the source thread right after decoding: from a
//! field or expression in the declared format, or (without `event_time:`) the wall
//! clock at read time, which makes windows processing-time windows.

use crate::record::{Record, Value};
use crate::sources::EventTime as CompiledEventTime;
use crate::sources::TimeFormat;

/// Sets `record.event_time`; the error says why the time could not be read.
pub fn assign(record: &mut Record, event_time: Option<&CompiledEventTime>, now_ms: i64) -> Result<(), String> {
    let Some(et) = event_time else {
        record.event_time = Some(now_ms);
        return Ok(());
    };
    let ms = et
        .expr
        .with_value(record, |value| match (value, &et.format) {
            // Epoch milliseconds in an int field: the usual case, without the general path.
            (Value::Int(ms), None | Some(TimeFormat::EpochMillis)) => Ok(*ms),
            (value, format) => to_millis(value, format.as_ref()),
        })
        .map_err(|e| format!("event time: {}", e.message))?
        .map_err(|e| format!("event time `{}`: {e}", et.expr.text()))?;
    record.event_time = Some(ms);
    Ok(())
}

/// Converts a value to epoch milliseconds. Without a format, numbers are epoch
/// milliseconds and strings RFC 3339.
pub fn to_millis(value: &Value, format: Option<&TimeFormat>) -> Result<i64, String> {
    let text = |v: &Value| match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {}", describe(other))),
    };
    match (format, value) {
        (_, Value::Null) => Err("the value is null".into()),
        (_, Value::Timestamp(ms)) => Ok(*ms),
        (None | Some(TimeFormat::EpochMillis), Value::Int(ms)) => Ok(*ms),
        (None | Some(TimeFormat::EpochMillis), Value::Float(ms)) => Ok(*ms as i64),
        (Some(TimeFormat::EpochMillis), Value::Str(s)) => {
            s.trim().parse::<i64>().map_err(|_| format!("`{s}` is not epoch milliseconds"))
        }
        (Some(TimeFormat::EpochSeconds), Value::Int(s)) => {
            s.checked_mul(1000).ok_or_else(|| "out of range".to_string())
        }
        (Some(TimeFormat::EpochSeconds), Value::Float(s)) => Ok((s * 1000.0) as i64),
        (Some(TimeFormat::EpochSeconds), Value::Str(s)) => {
            s.trim().parse::<f64>().map(|s| (s * 1000.0) as i64).map_err(|_| format!("`{s}` is not epoch seconds"))
        }
        (None | Some(TimeFormat::Rfc3339), v) => {
            let s = text(v)?;
            crate::expr::parse_timestamp(&s).ok_or_else(|| format!("`{s}` is not an RFC 3339 timestamp"))
        }
        (Some(TimeFormat::Strftime(pattern)), v) => {
            let s = text(v)?;
            crate::expr::parse_timestamp_with(&s, pattern).ok_or_else(|| format!("`{s}` does not match `{pattern}`"))
        }
        (Some(TimeFormat::EpochMillis | TimeFormat::EpochSeconds), other) => {
            Err(format!("expected a number, got {}", describe(other)))
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("the number {i}"),
        Value::Float(f) => format!("the number {f}"),
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(to_millis(&Value::Int(1500), None), Ok(1500));
        assert_eq!(to_millis(&Value::Int(2), Some(&TimeFormat::EpochSeconds)), Ok(2000));
        assert_eq!(to_millis(&Value::Float(1.5), Some(&TimeFormat::EpochSeconds)), Ok(1500));
        assert_eq!(to_millis(&Value::str("1970-01-01T00:00:01Z"), None), Ok(1000));
        let pattern = TimeFormat::Strftime("%Y-%m-%d %H:%M:%S".into());
        assert_eq!(to_millis(&Value::str("1970-01-01 00:00:02"), Some(&pattern)), Ok(2000));
        assert!(to_millis(&Value::str("yesterday"), None).unwrap_err().contains("RFC 3339"));
        assert!(to_millis(&Value::Null, None).is_err());
        assert!(to_millis(&Value::Int(5), Some(&TimeFormat::Rfc3339)).unwrap_err().contains("expected a string"));
    }
}
