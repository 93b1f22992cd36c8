//! `window` + `reduce`: per key (and per event-time window) aggregates, with the
//! contract's exact lateness rules.
//!
//! Each record carries the watermark as it stood before it entered the pipeline.
//! Before a record is processed, every window with `end - 1 <= watermark` fires; the
//! record is then too late for a window when `end - 1 + allowed_lateness <= watermark`,
//! is added to the windows it is not too late for (re-emitting those that already
//! fired), and counts as late only when it is too late for all of them. Window state
//! is freed as soon as `end - 1 + allowed_lateness <= watermark`, so memory follows
//! live keys times open windows. Firing order is (end, start, key arrival order), so
//! output does not depend on batch sizes or hash order.

use super::aggregate::Accumulators;
use super::key::{FixedState, Key, KeyMap};
use super::reduce::eval_key;
use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, Value};
use crate::spec::WindowKind;
use crate::validate::Aggregate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A window of one key: start and end (exclusive), epoch ms.
type WindowId = (i64, i64, u64);

/// The windows of a time-based kind that contain `ts`, in ascending start order.
pub fn assign(kind: &Kind, ts: i64) -> Vec<(i64, i64)> {
    match *kind {
        Kind::Tumbling { size } => {
            let start = ts.div_euclid(size) * size;
            vec![(start, start + size)]
        }
        Kind::Sliding { size, slide } => {
            let last = ts.div_euclid(slide) * slide;
            let mut starts = Vec::new();
            let mut start = last;
            while start > ts - size {
                starts.push((start, start + size));
                start -= slide;
            }
            starts.reverse();
            starts
        }
        Kind::Session { gap } => vec![(ts, ts + gap)],
        Kind::Count { .. } => Vec::new(),
    }
}

/// A window kind in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
    Count { size: u64 },
}

impl Kind {
    pub fn from_spec(kind: &WindowKind) -> Kind {
        let ms = |d: &std::time::Duration| d.as_millis() as i64;
        match kind {
            WindowKind::Tumbling(size) => Kind::Tumbling { size: ms(size).max(1) },
            WindowKind::Sliding { size, slide } => Kind::Sliding { size: ms(size).max(1), slide: ms(slide).max(1) },
            WindowKind::Session { gap } => Kind::Session { gap: ms(gap).max(1) },
            WindowKind::Count(n) => Kind::Count { size: *n },
        }
    }
}

/// The state of a `WindowReduce` in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    watermark: i64,
    next_key: u64,
    seq: u64,
    keys: Vec<(u64, Vec<Value>)>,
    windows: Vec<SavedWindow>,
    counts: Vec<SavedCount>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedWindow {
    key: u64,
    start: i64,
    end: i64,
    fired: bool,
    acc: Accumulators,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedCount {
    key: u64,
    acc: Accumulators,
    n: u64,
    min_ts: i64,
    max_ts: i64,
}

struct Open {
    acc: Accumulators,
    fired: bool,
}

struct CountWindow {
    acc: Accumulators,
    n: u64,
    min_ts: i64,
    max_ts: i64,
}

pub struct WindowReduce {
    key_exprs: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    kind: Kind,
    lateness: i64,
    schema: Arc<Schema>,
    /// Keys get ids in arrival order; ids order simultaneous firings.
    key_ids: KeyMap<u64>,
    keys: HashMap<u64, (Key, usize), FixedState>,
    next_key: u64,
    windows: HashMap<(u64, i64), (i64, Open), FixedState>,
    /// Not yet fired, by (end, start, key).
    pending: BTreeSet<WindowId>,
    /// Fired, kept for allowed lateness, by (end, start, key).
    retained: BTreeSet<WindowId>,
    /// Session starts per key (sessions of one key never overlap).
    sessions: HashMap<u64, BTreeMap<i64, i64>, FixedState>,
    counts: BTreeMap<u64, CountWindow>,
    seq: u64,
    watermark: i64,
    /// The last watermark below +infinity: what a checkpoint taken at the end of
    /// bounded input keeps, so the next run's records are judged against real time.
    finite_watermark: i64,
    late: Vec<Record>,
    open: usize,
    peak: usize,
}

impl WindowReduce {
    pub fn new(
        key_names: Vec<Arc<str>>,
        key_exprs: Vec<Expr>,
        aggregates: Vec<Aggregate>,
        kind: &WindowKind,
        allowed_lateness: std::time::Duration,
    ) -> WindowReduce {
        let mut names = key_names;
        names.push(Arc::from("window_start"));
        names.push(Arc::from("window_end"));
        names.extend(aggregates.iter().map(|a| a.name.clone()));
        WindowReduce {
            key_exprs,
            aggregates,
            kind: Kind::from_spec(kind),
            lateness: allowed_lateness.as_millis() as i64,
            schema: Schema::new(names),
            key_ids: KeyMap::default(),
            keys: HashMap::default(),
            next_key: 0,
            windows: HashMap::default(),
            pending: BTreeSet::new(),
            retained: BTreeSet::new(),
            sessions: HashMap::default(),
            counts: BTreeMap::new(),
            seq: 0,
            watermark: crate::record::NO_WATERMARK,
            finite_watermark: crate::record::NO_WATERMARK,
            late: Vec::new(),
            open: 0,
            peak: 0,
        }
    }

    fn key_id(&mut self, key: Key) -> u64 {
        if let Some(id) = self.key_ids.get(&key) {
            return *id;
        }
        let id = self.next_key;
        self.next_key += 1;
        self.key_ids.insert(key.clone(), id);
        self.keys.insert(id, (key, 0));
        id
    }

    fn opened(&mut self, key: u64) {
        self.open += 1;
        self.peak = self.peak.max(self.open);
        if let Some((_, n)) = self.keys.get_mut(&key) {
            *n += 1;
        }
    }

    fn closed(&mut self, key: u64) {
        self.closed_keep_key(key);
        self.release_if_unused(key);
    }

    /// Forgets a key that has no open window (its id is not reused).
    fn release_if_unused(&mut self, key: u64) {
        if self.keys.get(&key).is_some_and(|(_, n)| *n == 0) {
            if let Some((k, _)) = self.keys.remove(&key) {
                self.key_ids.remove(&k);
            }
            self.sessions.remove(&key);
        }
    }

    fn too_late(&self, end: i64, watermark: i64) -> bool {
        end.saturating_sub(1).saturating_add(self.lateness) <= watermark
    }

    fn result(&self, key: u64, start: i64, end: i64, acc: &Accumulators) -> Record {
        let mut values: Vec<Value> =
            self.keys.get(&key).map(|(k, _)| k.0.iter().cloned().collect()).unwrap_or_default();
        values.push(Value::Int(start));
        values.push(Value::Int(end));
        values.extend(acc.values());
        let mut r = Record::new(self.schema.clone(), values);
        r.event_time = Some(end - 1);
        r.watermark = self.watermark;
        r
    }

    /// Fires every window with `end - 1 <= watermark` and frees those past lateness.
    fn advance(&mut self, watermark: i64, out: &mut Batch) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        if watermark != i64::MAX {
            self.finite_watermark = watermark;
        }
        while let Some(&(end, start, key)) = self.pending.first() {
            if end.saturating_sub(1) > watermark {
                break;
            }
            self.pending.pop_first();
            if self.too_late(end, watermark) {
                // Fired and past its lateness at once (the usual case without
                // `allowed_lateness`): emit and forget without keeping it.
                if let Some((_, open)) = self.windows.remove(&(key, start)) {
                    out.push(self.result(key, start, end, &open.acc));
                }
                if let Some(s) = self.sessions.get_mut(&key) {
                    s.remove(&start);
                }
                self.closed(key);
                continue;
            }
            if let Some((_, open)) = self.windows.get_mut(&(key, start)) {
                open.fired = true;
            }
            if let Some((_, open)) = self.windows.get(&(key, start)) {
                out.push(self.result(key, start, end, &open.acc));
            }
            self.retained.insert((end, start, key));
        }
        while let Some(&(end, start, key)) = self.retained.first() {
            if !self.too_late(end, watermark) {
                break;
            }
            self.retained.pop_first();
            self.windows.remove(&(key, start));
            if let Some(s) = self.sessions.get_mut(&key) {
                s.remove(&start);
            }
            self.closed(key);
        }
    }

    /// Adds a record to a time window (tumbling, sliding); emits at once when the
    /// window already fired.
    fn add_to_window(&mut self, key: u64, start: i64, end: i64, arguments: &[Option<Value>], out: &mut Batch) {
        let seq = self.seq;
        let aggregates = &self.aggregates;
        let created = !self.windows.contains_key(&(key, start));
        let (_, open) = self
            .windows
            .entry((key, start))
            .or_insert_with(|| (end, Open { acc: Accumulators::new(aggregates), fired: false }));
        open.acc.add_arguments(arguments.iter().cloned(), seq);
        let fired = open.fired || end.saturating_sub(1) <= self.watermark;
        if created {
            self.opened(key);
            if fired {
                if let Some((_, o)) = self.windows.get_mut(&(key, start)) {
                    o.fired = true;
                }
                self.retained.insert((end, start, key));
            } else {
                self.pending.insert((end, start, key));
            }
        }
        if fired {
            if let Some((_, open)) = self.windows.get(&(key, start)) {
                out.push(self.result(key, start, end, &open.acc));
            }
        }
    }

    fn add_to_session(
        &mut self,
        key: u64,
        ts: i64,
        gap: i64,
        (record, arguments): (Record, Vec<Option<Value>>),
        out: &mut Batch,
    ) {
        let (mut start, mut end) = (ts, ts.saturating_add(gap));
        let touching: Vec<(i64, i64)> = self
            .sessions
            .get(&key)
            .map(|s| {
                s.range(..=end)
                    .filter(|(s_start, s_end)| **s_start <= end && ts <= **s_end)
                    .map(|(a, b)| (*a, *b))
                    .collect()
            })
            .unwrap_or_default();
        for (s, e) in &touching {
            start = start.min(*s);
            end = end.max(*e);
        }
        if self.too_late(end, self.watermark) {
            self.late.push(record);
            return;
        }
        let mut acc = Accumulators::new(&self.aggregates);
        for (s, e) in &touching {
            if let Some((_, old)) = self.windows.remove(&(key, *s)) {
                acc.merge(old.acc);
            }
            self.pending.remove(&(*e, *s, key));
            self.retained.remove(&(*e, *s, key));
            if let Some(list) = self.sessions.get_mut(&key) {
                list.remove(s);
            }
            self.closed_keep_key(key);
        }
        acc.add_arguments(arguments, self.seq);
        let fired = end.saturating_sub(1) <= self.watermark;
        self.sessions.entry(key).or_default().insert(start, end);
        self.windows.insert((key, start), (end, Open { acc, fired }));
        self.opened(key);
        if fired {
            self.retained.insert((end, start, key));
            if let Some((_, open)) = self.windows.get(&(key, start)) {
                out.push(self.result(key, start, end, &open.acc));
            }
        } else {
            self.pending.insert((end, start, key));
        }
    }

    /// Closes a window that is being merged into another of the same key.
    fn closed_keep_key(&mut self, key: u64) {
        self.open -= 1;
        if let Some((_, n)) = self.keys.get_mut(&key) {
            *n -= 1;
        }
    }

    fn add_to_count(&mut self, key: u64, size: u64, ts: i64, arguments: Vec<Option<Value>>, out: &mut Batch) {
        let aggregates = &self.aggregates;
        let created = !self.counts.contains_key(&key);
        let w = self.counts.entry(key).or_insert_with(|| CountWindow {
            acc: Accumulators::new(aggregates),
            n: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        });
        w.acc.add_arguments(arguments, self.seq);
        w.n += 1;
        w.min_ts = w.min_ts.min(ts);
        w.max_ts = w.max_ts.max(ts);
        let full = w.n >= size;
        if created {
            self.opened(key);
        }
        if full {
            if let Some(w) = self.counts.remove(&key) {
                out.push(self.result(key, w.min_ts, w.max_ts + 1, &w.acc));
            }
            self.closed(key);
        }
    }
}

impl Operator for WindowReduce {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        self.advance(record.watermark, out);
        let key = match eval_key(&self.key_exprs, &record) {
            Ok(k) => k,
            Err(error) => return Err(StepError { error, record }),
        };
        let arguments = match Accumulators::arguments(&self.aggregates, &record) {
            Ok(a) => a,
            Err(error) => return Err(StepError { error, record }),
        };
        self.seq += 1;
        let ts = record.event_time.unwrap_or(self.watermark);
        match self.kind {
            Kind::Count { size } => {
                let id = self.key_id(key);
                self.add_to_count(id, size, ts, arguments, out);
            }
            Kind::Session { gap } => {
                let id = self.key_id(key);
                self.add_to_session(id, ts, gap, (record, arguments), out);
                self.release_if_unused(id);
            }
            kind => {
                let windows: Vec<(i64, i64)> =
                    assign(&kind, ts).into_iter().filter(|(_, end)| !self.too_late(*end, self.watermark)).collect();
                if windows.is_empty() {
                    self.late.push(record);
                    return Ok(());
                }
                let id = self.key_id(key);
                for (start, end) in windows {
                    self.add_to_window(id, start, end, &arguments, out);
                }
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Batch) {
        self.advance(watermark, out);
    }

    fn on_end(&mut self, out: &mut Batch) {
        self.advance(i64::MAX, out);
        let keys: Vec<u64> = self.counts.keys().copied().collect();
        for key in keys {
            if let Some(w) = self.counts.remove(&key) {
                out.push(self.result(key, w.min_ts, w.max_ts + 1, &w.acc));
                self.closed(key);
            }
        }
        self.watermark = self.finite_watermark;
    }

    fn snapshot(&self) -> serde_json::Value {
        let mut windows: Vec<SavedWindow> = self
            .windows
            .iter()
            .map(|(&(key, start), (end, open))| SavedWindow {
                key,
                start,
                end: *end,
                fired: open.fired,
                acc: open.acc.clone(),
            })
            .collect();
        windows.sort_by_key(|w| (w.end, w.start, w.key));
        let mut keys: Vec<(u64, Vec<Value>)> = self.keys.iter().map(|(id, (k, _))| (*id, k.0.to_vec())).collect();
        keys.sort_by_key(|(id, _)| *id);
        let counts = self
            .counts
            .iter()
            .map(|(&key, w)| SavedCount { key, acc: w.acc.clone(), n: w.n, min_ts: w.min_ts, max_ts: w.max_ts })
            .collect();
        let snapshot =
            Snapshot { watermark: self.watermark, next_key: self.next_key, seq: self.seq, keys, windows, counts };
        serde_json::to_value(snapshot).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let s: Snapshot = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.watermark = s.watermark;
        self.finite_watermark = s.watermark;
        self.next_key = s.next_key;
        self.seq = s.seq;
        for (id, values) in s.keys {
            let key = Key(Arc::from(values));
            self.key_ids.insert(key.clone(), id);
            self.keys.insert(id, (key, 0));
        }
        for w in s.windows {
            self.windows.insert((w.key, w.start), (w.end, Open { acc: w.acc, fired: w.fired }));
            if w.fired {
                self.retained.insert((w.end, w.start, w.key));
            } else {
                self.pending.insert((w.end, w.start, w.key));
            }
            if matches!(self.kind, Kind::Session { .. }) {
                self.sessions.entry(w.key).or_default().insert(w.start, w.end);
            }
            self.opened(w.key);
        }
        for c in s.counts {
            self.counts.insert(c.key, CountWindow { acc: c.acc, n: c.n, min_ts: c.min_ts, max_ts: c.max_ts });
            self.opened(c.key);
        }
        Ok(())
    }

    /// Merges the instances' states (key ids renumbered part after part), then
    /// hands every key with its windows to the instance its key belongs to.
    fn rescale(&self, parts: Vec<serde_json::Value>, n: usize) -> Result<Vec<serde_json::Value>, String> {
        let empty = |watermark| Snapshot {
            watermark,
            next_key: 0,
            seq: 0,
            keys: Vec::new(),
            windows: Vec::new(),
            counts: Vec::new(),
        };
        let mut split: Vec<Snapshot> = (0..n).map(|_| empty(crate::record::NO_WATERMARK)).collect();
        let mut offset = 0;
        for part in parts.into_iter().filter(|p| !p.is_null()) {
            let s: Snapshot = serde_json::from_value(part).map_err(|e| e.to_string())?;
            let mut owner = HashMap::<u64, usize, FixedState>::default();
            for (id, values) in s.keys {
                let i = Key(Arc::from(values.as_slice())).instance(n);
                owner.insert(id, i);
                split[i].keys.push((id + offset, values));
            }
            for mut w in s.windows {
                let i = *owner.get(&w.key).ok_or("a window of an unknown key")?;
                w.key += offset;
                split[i].windows.push(w);
            }
            for mut c in s.counts {
                let i = *owner.get(&c.key).ok_or("a count window of an unknown key")?;
                c.key += offset;
                split[i].counts.push(c);
            }
            offset += s.next_key;
            for p in &mut split {
                p.watermark = p.watermark.max(s.watermark);
                p.seq = p.seq.max(s.seq);
            }
        }
        for p in &mut split {
            p.next_key = offset;
        }
        split.into_iter().map(|s| serde_json::to_value(s).map_err(|e| e.to_string())).collect()
    }

    fn take_late(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.late)
    }

    fn peak_open_windows(&self) -> Option<usize> {
        Some(self.peak)
    }

    fn state_entries(&self) -> Option<usize> {
        Some(self.windows.len() + self.counts.len())
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
