//! `dedup`: one record per key and interval, as Flink SQL's deduplication
//! (`ROW_NUMBER() OVER (PARTITION BY key ORDER BY time) = 1`) bounded by event time.
//!
//! ```yaml
//! - dedup: {key: [user_id, url], within: 1h, keep: first}   # keep: first | last
//! ```
//!
//! A record of a key with no open interval opens `[time, time + within)`. `first`
//! emits it at once and drops the key's later records before the interval's end;
//! `last` keeps the latest of them and emits it, with its own event time, when the
//! watermark passes the end (`end − 1 ≤ watermark`, as windows fire). Either way the
//! key's state is then freed and a later record is judged afresh. A record at or
//! after the end of its key's interval while the watermark has not passed it closes
//! that interval at once (`last` emits its record) and opens the next. Without
//! `within` (`first` only) a key's first record is kept forever. The key is `key:`,
//! else the preceding `key_by`'s; after a `key_by` the step runs on the parallel
//! instances owning its keys (its state is saved and re-split by the `key_by`'s key).

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::key::{Key, KeyMap};
use super::{Operator, StepError};
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::record::{Batch, Origin, Record, Schema, Value};
use crate::spec::fields::{f, Field, Ty};
use crate::spec::model::StepReader;
use crate::spec::{duration::format_duration, ExprSpec, Spanned};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const FIELDS: &[Field] = &[
    f(
        "key",
        Ty::AnyOf(&[Ty::Expr, Ty::List(&Ty::Expr)]),
        "The fields or expressions identifying duplicates (default: the preceding `key_by`'s key).",
    ),
    f(
        "within",
        Ty::Duration,
        "How long after a key's first record later ones count as its duplicates (event time). Without it, forever (`keep: first` only).",
    ),
    f("keep", Ty::Enum(&["first", "last"]), "`first` (default): emit the first record at once; `last`: emit the interval's last record when the watermark passes its end."),
];

pub const TYPE: StepType = StepType {
    field: f("dedup", Ty::Object(FIELDS), "Drop duplicate records: one record per key and interval of event time."),
    parse,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Keep {
    First,
    Last,
}

/// `dedup:` as written.
#[derive(Debug)]
struct DedupConfig {
    key: Vec<ExprSpec>,
    within: Option<Spanned<Duration>>,
    keep: Spanned<Keep>,
}

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    let keep = match reader.text("keep") {
        Some(k) if k.value == "last" => Spanned::new(Keep::Last, k.span),
        Some(k) => Spanned::new(Keep::First, k.span),
        None => Spanned::new(Keep::First, reader.span),
    };
    let key = reader.get("key").map(|k| reader.exprs(k)).unwrap_or_default();
    Some(Arc::new(DedupConfig { key, within: reader.duration("within"), keep }))
}

impl StepConfig for DedupConfig {
    fn kind(&self) -> &'static str {
        "dedup"
    }

    fn describe(&self) -> String {
        let key = match self.key.is_empty() {
            true => "the key_by's key".to_string(),
            false => self.key.iter().map(|e| e.text.as_str()).collect::<Vec<_>>().join(", "),
        };
        let within =
            self.within.as_ref().map_or("forever".to_string(), |w| format!("within {}", format_duration(w.value)));
        format!("keep {} per {key}, {within}", if self.keep.value == Keep::First { "first" } else { "last" })
    }

    fn keyed(&self) -> bool {
        true
    }

    fn relational(&self) -> Relational<'_> {
        let keep_first = Spanned::new(self.keep.value == Keep::First, self.keep.span);
        Relational::Dedup { key: &self.key, within: self.within.as_ref(), keep_first }
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let route: Vec<Expr> = input.key_by.map(|(_, exprs)| exprs.to_vec()).unwrap_or_default();
        if self.key.is_empty() && input.key_by.is_none() {
            diags.error(
                input.span,
                "`dedup` needs a `key` or a `key_by` before it",
                Some("say which records are duplicates: `dedup: {key: [user_id, url], within: 1h}`".into()),
            );
            return None;
        }
        let mut ok = true;
        if let Some(w) = self.within.as_ref().filter(|w| w.value.is_zero()) {
            diags.error(w.span, "`within` must be more than 0", None);
            ok = false;
        }
        if self.keep.value == Keep::Last && self.within.is_none() {
            diags.error(
                self.keep.span,
                "`keep: last` needs `within`",
                Some("the last record of an interval is known only when the interval ends, e.g. `within: 1h`".into()),
            );
            ok = false;
        }
        let own = input.compile_all(&self.key, diags)?;
        let within = self.within.as_ref().map(|w| i64::try_from(w.value.as_millis()).unwrap_or(i64::MAX));
        ok.then(|| Compiled {
            step: Arc::new(DedupStep { route, own, within, keep: self.keep.value }),
            output: Output::Input,
        })
    }
}

/// A compiled `dedup`.
#[derive(Debug)]
struct DedupStep {
    /// The preceding `key_by`'s key (the parallel instances are split by it).
    route: Vec<Expr>,
    /// The step's own `key:` (empty: the `key_by`'s alone).
    own: Vec<Expr>,
    /// Milliseconds; None: forever.
    within: Option<i64>,
    keep: Keep,
}

impl BuiltStep for DedupStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(Dedup {
            route: self.route.clone(),
            own: self.own.clone(),
            within: self.within,
            keep: self.keep,
            open: KeyMap::default(),
            ends: BTreeMap::new(),
            seq: 0,
            watermark: crate::record::NO_WATERMARK,
        })
    }

    fn exprs(&self) -> Vec<&Expr> {
        self.route.iter().chain(&self.own).collect()
    }

    fn fingerprint(&self) -> String {
        let texts = |exprs: &[Expr]| exprs.iter().map(|e| e.text()).collect::<Vec<_>>().join(", ");
        format!(
            "route [{}] key [{}] within {:?} keep {:?}",
            texts(&self.route),
            texts(&self.own),
            self.within,
            self.keep
        )
    }

    fn holds_back(&self) -> Option<i64> {
        (self.keep == Keep::Last).then_some(self.within.unwrap_or_default())
    }

    fn state(&self) -> &'static str {
        "an interval per key"
    }
}

/// A key's open interval.
#[derive(Clone, Debug)]
struct Interval {
    end: i64,
    /// Orders intervals ending together (and names this one in `ends`).
    seq: u64,
    /// `keep: last`: the latest record so far.
    last: Option<Record>,
}

struct Dedup {
    route: Vec<Expr>,
    own: Vec<Expr>,
    within: Option<i64>,
    keep: Keep,
    /// The open interval of each key (its values: the route's, then the own key's).
    open: KeyMap<Interval>,
    /// Open intervals by (end, seq), for freeing them in order as the watermark passes.
    ends: BTreeMap<(i64, u64), Key>,
    seq: u64,
    watermark: i64,
}

impl Dedup {
    fn key(&self, record: &Record) -> Result<Key, crate::expr::EvalError> {
        let values = self.route.iter().chain(&self.own).map(|e| e.eval(record)).collect::<Result<Vec<_>, _>>()?;
        Ok(Key(Arc::from(values)))
    }

    /// Frees the intervals that end at or before `watermark` + 1, in order; `last`
    /// emits their records.
    fn advance(&mut self, watermark: i64, out: &mut Batch) {
        self.watermark = self.watermark.max(watermark);
        while let Some((&(end, seq), _)) = self.ends.first_key_value() {
            if end.saturating_sub(1) > self.watermark {
                break;
            }
            if let Some(key) = self.ends.remove(&(end, seq)) {
                self.close(&key, out);
            }
        }
    }

    /// Frees `key`'s interval (`last`: emits its record).
    fn close(&mut self, key: &Key, out: &mut Batch) {
        if let Some(interval) = self.open.remove(key) {
            self.ends.remove(&(interval.end, interval.seq));
            out.extend(interval.last);
        }
    }
}

impl Operator for Dedup {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        self.advance(record.watermark, out);
        let key = match self.key(&record) {
            Ok(key) => key,
            Err(error) => return Err(StepError { error, record }),
        };
        let time = record.event_time.unwrap_or(self.watermark);
        match self.open.get_mut(&key) {
            Some(interval) if time < interval.end => {
                if self.keep == Keep::Last {
                    interval.last = Some(record);
                }
                return Ok(());
            }
            Some(_) => self.close(&key, out),
            None => {}
        }
        self.seq += 1;
        let end = self.within.map_or(i64::MAX, |w| time.saturating_add(w));
        let last = match self.keep {
            Keep::First => {
                out.push(record);
                None
            }
            Keep::Last => Some(record),
        };
        if self.within.is_some() {
            self.ends.insert((end, self.seq), key.clone());
        }
        self.open.insert(key, Interval { end, seq: self.seq, last });
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Batch) {
        self.advance(watermark, out);
    }

    fn state_entries(&self) -> Option<usize> {
        Some(self.open.len())
    }

    fn snapshot(&self) -> serde_json::Value {
        let mut entries: Vec<SavedInterval> = self
            .open
            .iter()
            .map(|(key, i)| SavedInterval {
                key: key.0.to_vec(),
                end: i.end,
                seq: i.seq,
                last: i.last.as_ref().map(SavedRecord::of),
            })
            .collect();
        entries.sort_by_key(|e| e.seq);
        let snapshot = Snapshot { seq: self.seq, watermark: self.watermark, route: self.route.len(), entries };
        serde_json::to_value(snapshot).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let s: Snapshot = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.seq = s.seq;
        self.watermark = s.watermark;
        for e in s.entries {
            let key = Key(Arc::from(e.key));
            if self.within.is_some() {
                self.ends.insert((e.end, e.seq), key.clone());
            }
            self.open.insert(key, Interval { end: e.end, seq: e.seq, last: e.last.map(SavedRecord::record) });
        }
        Ok(())
    }

    fn rescale(&self, parts: Vec<serde_json::Value>, n: usize) -> Result<Vec<serde_json::Value>, String> {
        let mut split: Vec<Snapshot> = (0..n).map(|_| Snapshot::default()).collect();
        for part in parts.into_iter().filter(|p| !p.is_null()) {
            let s: Snapshot = serde_json::from_value(part).map_err(|e| e.to_string())?;
            for e in s.entries {
                // Instances own the keys of the `key_by` before the step.
                let route = Key(Arc::from(&e.key[..s.route.min(e.key.len())]));
                split[route.instance(n)].entries.push(e);
            }
            for p in &mut split {
                p.seq = p.seq.max(s.seq);
                p.watermark = p.watermark.max(s.watermark);
                p.route = s.route;
            }
        }
        split.iter_mut().for_each(|p| p.entries.sort_by_key(|e| e.seq));
        split.into_iter().map(|s| serde_json::to_value(s).map_err(|e| e.to_string())).collect()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    seq: u64,
    watermark: i64,
    /// How many of a key's values are the `key_by`'s (routing on restore).
    route: usize,
    entries: Vec<SavedInterval>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot { seq: 0, watermark: crate::record::NO_WATERMARK, route: 0, entries: Vec::new() }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedInterval {
    key: Vec<Value>,
    end: i64,
    seq: u64,
    last: Option<SavedRecord>,
}

/// A record kept by `keep: last`, as saved in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedRecord {
    fields: Vec<(String, Value)>,
    event_time: Option<i64>,
    watermark: i64,
    origin: (u32, u32, u64, u64),
}

impl SavedRecord {
    fn of(r: &Record) -> SavedRecord {
        let o = r.origin;
        SavedRecord {
            fields: r.fields().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            event_time: r.event_time,
            watermark: r.watermark,
            origin: (o.source, o.file, o.line, o.offset),
        }
    }

    fn record(self) -> Record {
        let names: Vec<Arc<str>> = self.fields.iter().map(|(n, _)| Arc::from(n.as_str())).collect();
        let mut record = Record::new(Schema::new(names), self.fields.into_iter().map(|(_, v)| v).collect());
        record.event_time = self.event_time;
        record.watermark = self.watermark;
        let (source, file, line, offset) = self.origin;
        record.origin = Origin { source, file, line, offset };
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{compile, Scope};

    fn dedup(keep: Keep, within: Option<i64>) -> Box<dyn Operator> {
        let key = compile("k", &Scope::open()).unwrap();
        DedupStep { route: Vec::new(), own: vec![key], within, keep }.operator()
    }

    fn record(k: i64, time: i64, watermark: i64) -> Record {
        let mut r = Record::from_pairs(vec![("k", Value::Int(k)), ("t", Value::Int(time))]);
        r.event_time = Some(time);
        r.watermark = watermark;
        r
    }

    fn times(out: &Batch) -> Vec<(Option<&Value>, Option<i64>)> {
        out.iter().map(|r| (r.get("k"), r.event_time)).collect()
    }

    #[test]
    fn first_emits_a_key_once_per_interval_and_judges_afresh_after_it() {
        let mut d = dedup(Keep::First, Some(10));
        let mut out = Vec::new();
        for (k, t, wm) in [(1, 0, 0), (1, 5, 5), (2, 6, 6), (1, 9, 9), (1, 10, 10), (1, 15, 15), (1, 25, 25)] {
            d.process(record(k, t, wm), &mut out).unwrap();
        }
        let one = Some(&Value::Int(1));
        let two = Some(&Value::Int(2));
        // Record 9 comes with the watermark at 9: [0, 10) has passed, so it opens the
        // next interval [9, 19), which 10 and 15 fall into.
        assert_eq!(times(&out), vec![(one, Some(0)), (two, Some(6)), (one, Some(9)), (one, Some(25))]);
    }

    #[test]
    fn last_emits_the_latest_record_when_the_watermark_passes_the_end() {
        let mut d = dedup(Keep::Last, Some(10));
        let mut out = Vec::new();
        d.process(record(1, 0, 0), &mut out).unwrap();
        d.process(record(1, 4, 4), &mut out).unwrap();
        d.process(record(2, 5, 5), &mut out).unwrap();
        d.process(record(1, 8, 8), &mut out).unwrap();
        assert!(out.is_empty());
        d.on_watermark(9, &mut out);
        assert_eq!(times(&out), vec![(Some(&Value::Int(1)), Some(8))]);
        d.on_watermark(i64::MAX, &mut out);
        assert_eq!(times(&out)[1], (Some(&Value::Int(2)), Some(5)));
        assert_eq!(d.state_entries(), Some(0));
    }

    #[test]
    fn state_saved_and_split_for_other_parallelism_continues_every_key() {
        let mut one = dedup(Keep::Last, Some(100));
        let mut out = Vec::new();
        for i in 0..40 {
            one.process(record(i % 7, i, i), &mut out).unwrap();
        }
        let parts = one.rescale(vec![one.snapshot()], 3).unwrap();
        let mut restored: Vec<Box<dyn Operator>> = Vec::new();
        for part in parts {
            let mut d = dedup(Keep::Last, Some(100));
            d.restore(part).unwrap();
            restored.push(d);
        }
        assert_eq!(restored.iter().map(|d| d.state_entries().unwrap()).sum::<usize>(), 7);
        let (mut whole, mut split) = (Vec::new(), Vec::new());
        one.on_watermark(i64::MAX, &mut whole);
        for d in &mut restored {
            d.on_watermark(i64::MAX, &mut split);
        }
        let mut a: Vec<i64> = whole.iter().map(|r| r.event_time.unwrap()).collect();
        let mut b: Vec<i64> = split.iter().map(|r| r.event_time.unwrap()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(a, vec![33, 34, 35, 36, 37, 38, 39]);
    }
}
