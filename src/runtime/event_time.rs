//! Event time of each record, read by the source thread right after decoding: from a
//! field or expression in the declared format, or (without `event_time:`) the wall
//! clock at read time, which makes windows processing-time windows. An event time
//! outside the range of timestamps flowctl can show (chrono's: about years -262,000 to
//! 262,000), or a number that is not finite, makes the record bad: windows and
//! watermarks never see it.

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
            (Value::Int(ms), None | Some(TimeFormat::EpochMillis)) if in_range(*ms) => Ok(*ms),
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
    let ms = to_millis_unchecked(value, format)?;
    if in_range(ms) {
        Ok(ms)
    } else {
        Err(format!("{} is outside the supported range of timestamps", describe(value)))
    }
}

/// The earliest and latest event time, epoch milliseconds: what a timestamp can show.
const MIN_MS: i64 = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_millis();
const MAX_MS: i64 = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();

fn in_range(ms: i64) -> bool {
    (MIN_MS..=MAX_MS).contains(&ms)
}

/// A float number of `unit` milliseconds as whole milliseconds; not finite or
/// beyond 64 bits is an error (a cast would saturate, and NaN become 0).
fn float_millis(f: f64, unit: f64, what: &str) -> Result<i64, String> {
    let ms = f * unit;
    if !ms.is_finite() {
        return Err(format!("{} is not a finite number of {what}", describe(&Value::Float(f))));
    }
    // i64::MAX as f64 rounds up to 2^63, itself out of range.
    if ms >= i64::MAX as f64 || ms < i64::MIN as f64 {
        return Err(format!("{} is outside the supported range of timestamps", describe(&Value::Float(f))));
    }
    Ok(ms as i64)
}

fn to_millis_unchecked(value: &Value, format: Option<&TimeFormat>) -> Result<i64, String> {
    let text = |v: &Value| match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {}", describe(other))),
    };
    match (format, value) {
        (_, Value::Null) => Err("the value is null".into()),
        (_, Value::Timestamp(ms)) => Ok(*ms),
        (None | Some(TimeFormat::EpochMillis), Value::Int(ms)) => Ok(*ms),
        (None | Some(TimeFormat::EpochMillis), Value::Float(ms)) => float_millis(*ms, 1.0, "epoch milliseconds"),
        (Some(TimeFormat::EpochMillis), Value::Str(s)) => {
            s.trim().parse::<i64>().map_err(|_| format!("`{s}` is not epoch milliseconds"))
        }
        (Some(TimeFormat::EpochSeconds), Value::Int(s)) => s
            .checked_mul(1000)
            .ok_or_else(|| format!("{} is outside the supported range of timestamps", describe(value))),
        (Some(TimeFormat::EpochSeconds), Value::Float(s)) => float_millis(*s, 1000.0, "epoch seconds"),
        (Some(TimeFormat::EpochSeconds), Value::Str(s)) => {
            let seconds = s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not epoch seconds"))?;
            float_millis(seconds, 1000.0, "epoch seconds").map_err(|e| format!("`{s}`: {e}"))
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
        let seconds = Some(&TimeFormat::EpochSeconds);
        for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, -1e300] {
            assert!(to_millis(&Value::Float(bad), seconds).is_err(), "{bad}");
            assert!(to_millis(&Value::Float(bad), None).is_err(), "{bad}");
        }
        for bad in ["inf", "NaN", "1e300", "-infinity"] {
            assert!(to_millis(&Value::str(bad), seconds).is_err(), "{bad}");
        }
        assert!(to_millis(&Value::Int(i64::MAX), None).unwrap_err().contains("outside the supported range"));
        assert!(to_millis(&Value::Int(i64::MAX / 1000), seconds).is_err());
    }
}
