//! The `datagen` source: synthetic records from typed field generators. Record `i`
//! is a pure function of the seed and `i` (a counter-based generator), so runs are
//! reproducible and the source resumes from a checkpoint by record number. Bounded
//! with `count`, paced by `rate` (records per second).

use super::{BadRecord, Source};
use crate::error::{Error, Result};
use crate::record::{Batch, Origin, Record, Schema, SchemaMaker, Value};
use std::sync::Arc;

/// A `datagen` source's configuration.
#[derive(Clone, Debug)]
pub struct DatagenConfig {
    pub fields: Vec<FieldGenerator>,
    /// Records per second (None: as fast as read).
    pub rate: Option<u64>,
    /// Records in all (None: unbounded).
    pub count: Option<u64>,
    pub seed: u64,
}

impl DatagenConfig {
    /// Opens the source; its records' origins start from `origin`.
    pub fn build(&self, id: &str, origin: Origin) -> Result<Box<dyn Source>> {
        Ok(Box::new(DatagenSource::new(&self.fields, self.rate, self.count, self.seed, origin, id)?))
    }
}

/// One field and its generator as configured: `type:` and the generator's settings.
#[derive(Clone, Debug)]
pub struct FieldGenerator {
    pub field: String,
    pub kind: String,
    /// The generator's settings (`min:`, `values:`, ...) as a map.
    pub settings: Value,
}

/// One field's generator.
enum Gen {
    Sequence { start: i64, step: i64 },
    UniformInt { min: i64, max: i64 },
    UniformFloat { min: f64, max: f64 },
    Choice(Vec<Value>),
    Timestamp { start: i64, step: i64 },
    Constant(Value),
}

/// SplitMix64: a well-mixed hash of a counter, so any record can be generated alone.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Gen {
    fn parse(g: &FieldGenerator, id: &str) -> Result<Gen> {
        let n = &g.settings;
        let int = |key: &str, default: i64| {
            n.get_field(key).cloned().map_or(Ok(default), |v| match v {
                Value::Int(i) => Ok(i),
                other => Err(Error::Usage(format!(
                    "source `{id}`: `{key}` of field `{}` must be an integer, found {}",
                    g.field,
                    other.type_name()
                ))),
            })
        };
        let float = |key: &str, default: f64| match n.get_field(key).cloned() {
            None => Ok(default),
            Some(Value::Int(i)) => Ok(i as f64),
            Some(Value::Float(f)) => Ok(f),
            Some(other) => Err(Error::Usage(format!(
                "source `{id}`: `{key}` of field `{}` must be a number, found {}",
                g.field,
                other.type_name()
            ))),
        };
        Ok(match g.kind.as_str() {
            "sequence" => Gen::Sequence { start: int("start", 0)?, step: int("step", 1)? },
            "uniform_int" => {
                let (min, max) = (int("min", 0)?, int("max", 100)?);
                if min > max {
                    return Err(Error::Usage(format!(
                        "source `{id}`: field `{}` (uniform_int) needs `min` at most `max`; found {min} and {max}",
                        g.field
                    )));
                }
                Gen::UniformInt { min, max }
            }
            "uniform_float" => Gen::UniformFloat { min: float("min", 0.0)?, max: float("max", 1.0)? },
            "choice" => match n.get_field("values").cloned() {
                Some(Value::List(items)) if !items.is_empty() => Gen::Choice(items.to_vec()),
                _ => {
                    return Err(Error::Usage(format!(
                        "source `{id}`: field `{}` (choice) needs a non-empty `values:` list",
                        g.field
                    )))
                }
            },
            "timestamp" => {
                Gen::Timestamp { start: int("start", chrono::Utc::now().timestamp_millis())?, step: int("step", 1000)? }
            }
            _ => Gen::Constant(n.get_field("value").cloned().unwrap_or_default()),
        })
    }

    /// Record `i`'s value; a sequence or timestamp that leaves 64 bits (or, for a
    /// timestamp, the range a timestamp can show) is an error, never a wrapped value.
    fn value(&self, i: u64, salt: u64) -> Result<Value, String> {
        let r = mix(salt ^ mix(i));
        let nth = |start: i64, step: i64| {
            i64::try_from(i)
                .ok()
                .and_then(|i| step.checked_mul(i))
                .and_then(|d| start.checked_add(d))
                .ok_or_else(|| format!("{start} + {i} × {step} overflows a 64-bit integer"))
        };
        Ok(match self {
            Gen::Sequence { start, step } => Value::Int(nth(*start, *step)?),
            Gen::UniformInt { min, max } => {
                // max - min + 1 values, modulo 2^64: 0 stands for the whole i64 range.
                let span = (max.wrapping_sub(*min) as u64).wrapping_add(1);
                let offset = if span == 0 { r } else { r % span };
                Value::Int(min.wrapping_add(offset as i64))
            }
            Gen::UniformFloat { min, max } => {
                Value::Float(min + (max - min) * ((r >> 11) as f64 / (1u64 << 53) as f64))
            }
            Gen::Choice(values) => values[(r % values.len() as u64) as usize].clone(),
            Gen::Timestamp { start, step } => {
                let ms = nth(*start, *step)?;
                if chrono::DateTime::from_timestamp_millis(ms).is_none() {
                    return Err(format!("{start} + {i} × {step} ms is outside the range of timestamps"));
                }
                Value::Timestamp(ms)
            }
            Gen::Constant(v) => v.clone(),
        })
    }
}

pub struct DatagenSource {
    gens: Vec<Gen>,
    schema: SchemaMaker,
    seed: u64,
    synthetic: super::synthetic::Synthetic,
}

impl DatagenSource {
    pub fn new(
        fields: &[FieldGenerator],
        rate: Option<u64>,
        count: Option<u64>,
        seed: u64,
        origin: Origin,
        id: &str,
    ) -> Result<Self> {
        let gens = fields.iter().map(|g| Gen::parse(g, id)).collect::<Result<Vec<_>>>()?;
        let schema = SchemaMaker::new(&Schema::new(fields.iter().map(|g| Arc::from(g.field.as_str())).collect()));
        Ok(DatagenSource { gens, schema, seed, synthetic: super::synthetic::Synthetic::new(count, rate, origin) })
    }
}

impl Source for DatagenSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        let (gens, schema, seed) = (&self.gens, &mut self.schema, self.seed);
        let names = schema.for_record();
        Ok(self.synthetic.fill(max, out, bad, |i| {
            let values = gens
                .iter()
                .enumerate()
                .map(|(f, g)| {
                    g.value(i, mix(seed.wrapping_add(f as u64)))
                        .map_err(|e| format!("field `{}`: {e}", names.names()[f]))
                })
                .collect::<std::result::Result<Vec<Value>, String>>()?;
            Ok(Record::new(schema.for_record(), values))
        }))
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![Arc::from("<datagen>")]
    }

    fn bounded(&self) -> bool {
        self.synthetic.bounded()
    }

    fn replayable(&self) -> bool {
        true
    }

    fn seek(&mut self, position: &Origin) -> Result<()> {
        self.synthetic.next = position.offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_pure_functions_of_seed_and_index() {
        let g = Gen::UniformInt { min: 1, max: 6 };
        let a: Vec<Value> = (0..100).map(|i| g.value(i, 7).unwrap()).collect();
        let b: Vec<Value> = (0..100).map(|i| g.value(i, 7).unwrap()).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| matches!(v, Value::Int(1..=6))));
        assert!((1..=6).all(|k| a.contains(&Value::Int(k))), "all faces appear: {a:?}");
        assert_eq!(Gen::Sequence { start: 10, step: 5 }.value(3, 0), Ok(Value::Int(25)));
        assert!(Gen::Sequence { start: i64::MAX, step: 1 }.value(1, 0).unwrap_err().contains("overflows"));
        let whole = Gen::UniformInt { min: i64::MIN, max: i64::MAX };
        let values: Vec<Value> = (0..64).map(|i| whole.value(i, 3).unwrap()).collect();
        assert!(values.iter().any(|v| matches!(v, Value::Int(i) if *i < i64::MIN / 2)), "{values:?}");
    }
}
