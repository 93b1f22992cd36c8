//! `window` + `reduce`: per key (and per event-time window) aggregates, with the
//! contract's exact lateness rules.
//!
//! Each record carries the watermark as it stood before it entered the pipeline.
//! Before a record is processed, every window with `end - 1 <= watermark` fires; the
//! record is then too late for a window when `end - 1 + allowed_lateness <= watermark`,
//! is added to the windows it is not too late for (re-emitting those that already
//! fired), and counts as late only when it is too late for all of them. Window state
//! is freed as soon as `end - 1 + allowed_lateness <= watermark`, so memory follows
//! live keys times open windows. Firing order is (end, start, arrival): for tumbling
//! and sliding windows ([`Panes`]) the order in which keys first reached the window,
//! for sessions and count windows the order keys became live, so output does not
//! depend on batch sizes or hash order.

use super::aggregate::Accumulators;
use super::key::{key_hash, FixedState, Key};
use super::live_keys::{LiveKeys, Slot};
use super::panes::Panes;
use super::results::Results;
use super::window_queue::WindowQueue;
use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, Value};
use crate::sinks::encode::LineEncoder;
use crate::spec::duration::format_duration;
use crate::steps::aggregate::Aggregate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// A window's kind as configured (`window:` in a pipeline).
#[derive(Clone, Debug, PartialEq)]
pub enum WindowKind {
    Tumbling(Duration),
    Sliding { size: Duration, slide: Duration },
    Session { gap: Duration },
    Count(u64),
}

impl WindowKind {
    /// The kind in words (`tumbling 1m`). Checkpoint fingerprints contain it, so its
    /// text stays as it is (`flowctl plan` shows it too).
    pub fn describe(&self) -> String {
        match self {
            WindowKind::Tumbling(size) => format!("tumbling {}", format_duration(*size)),
            WindowKind::Sliding { size, slide } => {
                format!("sliding {} every {}", format_duration(*size), format_duration(*slide))
            }
            WindowKind::Session { gap } => format!("session gap {}", format_duration(*gap)),
            WindowKind::Count(n) => format!("count {n}"),
        }
    }
}

/// A `window` step built: what the `reduce` after it runs by (which sink takes late
/// records is the graph's `late_sinks`).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowConfig {
    pub kind: WindowKind,
    pub allowed_lateness: Duration,
}

impl WindowConfig {
    /// The `window` step's own fingerprint (it keeps no state; the `reduce` after it
    /// fingerprints the windows it keeps).
    pub fn fingerprint(&self) -> String {
        let mut s = self.kind.describe();
        if !self.allowed_lateness.is_zero() {
            s.push_str(&format!(", allowed lateness {}", format_duration(self.allowed_lateness)));
        }
        s
    }
}

/// Puts the windows of a time-based kind that contain `ts` into `out`, in ascending
/// start order.
pub fn assign(kind: &Kind, ts: i64, out: &mut Vec<(i64, i64)>) {
    out.clear();
    match *kind {
        Kind::Tumbling { size } => {
            let start = ts.div_euclid(size) * size;
            out.push((start, start + size));
        }
        Kind::Sliding { size, slide } => {
            let last = ts.div_euclid(slide) * slide;
            let mut start = last;
            while start > ts - size {
                out.push((start, start + size));
                start -= slide;
            }
            out.reverse();
        }
        Kind::Session { gap } => out.push((ts, ts + gap)),
        Kind::Count { .. } => {}
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
    end: i64,
    acc: Accumulators,
    fired: bool,
    key: Slot,
}

struct CountWindow {
    acc: Accumulators,
    n: u64,
    min_ts: i64,
    max_ts: i64,
    key: Slot,
}

pub struct WindowReduce {
    key_exprs: Vec<Expr>,
    /// Tumbling and sliding windows keyed by distinct bare fields take the key's
    /// values out of the record (which they keep no further) instead of cloning them,
    /// putting them back when the record is late.
    takes_keys: bool,
    aggregates: Vec<Aggregate>,
    kind: Kind,
    lateness: i64,
    results: Results,
    /// The windows of tumbling and sliding kinds.
    panes: Panes,
    /// Session and count windows below: keys with an open window; a key is forgotten
    /// when its last window closes.
    keys: LiveKeys,
    /// Open sessions by (key id, start).
    windows: HashMap<(u64, i64), Open, FixedState>,
    /// Sessions not yet fired.
    pending: WindowQueue,
    /// Sessions fired, kept for allowed lateness.
    retained: WindowQueue,
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
    /// Per-record scratch, reused so that a record costs no allocation of its own:
    /// the key's values, the aggregates' arguments, the windows it falls into.
    key_values: Vec<Value>,
    arguments: Vec<Option<Value>>,
    assigned: Vec<(i64, i64)>,
}

impl WindowReduce {
    pub fn new(
        key_names: Vec<Arc<str>>,
        key_exprs: Vec<Expr>,
        aggregates: Vec<Aggregate>,
        kind: &WindowKind,
        allowed_lateness: Duration,
    ) -> WindowReduce {
        let mut names = key_names;
        names.push(Arc::from("window_start"));
        names.push(Arc::from("window_end"));
        names.extend(aggregates.iter().map(|a| a.name.clone()));
        let fields: Vec<Option<&str>> = key_exprs.iter().map(Expr::bare_field_name).collect();
        let distinct_fields = fields.iter().enumerate().all(|(i, f)| f.is_some() && !fields[..i].contains(f));
        let kind = Kind::from_spec(kind);
        WindowReduce {
            panes: Panes::new(key_exprs.len(), &aggregates),
            takes_keys: distinct_fields && matches!(kind, Kind::Tumbling { .. } | Kind::Sliding { .. }),
            key_exprs,
            aggregates,
            kind,
            lateness: allowed_lateness.as_millis() as i64,
            results: Results::new(&Schema::new(names)),
            keys: LiveKeys::default(),
            windows: HashMap::default(),
            pending: WindowQueue::default(),
            retained: WindowQueue::default(),
            sessions: HashMap::default(),
            counts: BTreeMap::new(),
            seq: 0,
            watermark: crate::record::NO_WATERMARK,
            finite_watermark: crate::record::NO_WATERMARK,
            late: Vec::new(),
            open: 0,
            peak: 0,
            key_values: Vec::new(),
            arguments: Vec::new(),
            assigned: Vec::new(),
        }
    }

    /// The slot and id of the key in `key_values`, giving a new key the next id.
    fn key_id(&mut self) -> (u64, Slot) {
        let slot = self.keys.find_or_add(&self.key_values);
        (self.keys.id(slot), slot)
    }

    fn opened(&mut self, key: Slot) {
        self.open += 1;
        self.peak = self.peak.max(self.open);
        self.keys.opened(key);
    }

    fn closed(&mut self, key: Slot) {
        self.closed_keep_key(key);
        self.release_if_unused(key);
    }

    /// Forgets a key that has no open window (its id is not reused).
    fn release_if_unused(&mut self, key: Slot) {
        if let Some(id) = self.keys.release_if_unused(key) {
            if !self.sessions.is_empty() {
                self.sessions.remove(&id);
            }
        }
    }

    /// Closes a window that is being merged into another of the same key.
    fn closed_keep_key(&mut self, key: Slot) {
        self.open -= 1;
        self.keys.closed(key);
    }

    fn too_late(&self, end: i64, watermark: i64) -> bool {
        too_late(end, self.lateness, watermark)
    }

    /// Emits the result of a window of a live key, stamped with `watermark`: the one
    /// its downstream steps judge it by (before a record: the record's; fired by a
    /// watermark advance: the watermark before it, so a window over these results
    /// counts none of them late for having been released by it).
    fn emit(&mut self, out: &mut Batch, key: Slot, start: i64, end: i64, acc: &Accumulators, watermark: i64) {
        self.results.push(out, watermark, &self.keys.key(key).0, (start, end), &acc.0);
    }

    /// Fires every window with `end - 1 <= watermark` and frees those past lateness.
    fn advance(&mut self, watermark: i64, out: &mut Batch) {
        if watermark <= self.watermark {
            return;
        }
        // What the results fired here are stamped with.
        let before = self.watermark;
        self.watermark = watermark;
        if watermark != i64::MAX {
            self.finite_watermark = watermark;
        }
        while let Some((end, due)) = self.pending.pop_due(|end| end.saturating_sub(1) <= watermark) {
            // Past its lateness as it fires (the usual case without `allowed_lateness`):
            // emitted and forgotten without being kept.
            let gone = self.too_late(end, watermark);
            for (start, id) in due {
                if gone {
                    if let Some(open) = self.windows.remove(&(id, start)) {
                        self.emit(out, open.key, start, end, &open.acc, before);
                        self.forget_session(id, start);
                        self.closed(open.key);
                    }
                } else if let Some(open) = self.windows.get_mut(&(id, start)) {
                    open.fired = true;
                    self.results.push(out, before, &self.keys.key(open.key).0, (start, end), &open.acc.0);
                    self.retained.insert((end, start, id));
                }
            }
        }
        let lateness = self.lateness;
        while let Some((_, expired)) = self.retained.pop_due(|end| too_late(end, lateness, watermark)) {
            for (start, id) in expired {
                if let Some(open) = self.windows.remove(&(id, start)) {
                    self.forget_session(id, start);
                    self.closed(open.key);
                }
            }
        }
        let results = &mut self.results;
        self.panes.fire(
            |(end, _)| end.saturating_sub(1) <= watermark,
            |(end, _)| too_late(end, lateness, watermark),
            |(end, start), w| results.push(out, before, w.key, (start, end), w.accs),
        );
        self.panes.expire(|(end, _)| too_late(end, lateness, watermark));
    }

    fn forget_session(&mut self, id: u64, start: i64) {
        if self.sessions.is_empty() {
            return;
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.remove(&start);
        }
    }

    fn add_to_session(&mut self, (id, key): (u64, Slot), ts: i64, gap: i64, record: Record, out: &mut Batch) {
        let (mut start, mut end) = (ts, ts.saturating_add(gap));
        let touching: Vec<(i64, i64)> = self
            .sessions
            .get(&id)
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
            if let Some(old) = self.windows.remove(&(id, *s)) {
                acc.merge(old.acc);
            }
            self.pending.remove((*e, *s, id));
            self.retained.remove((*e, *s, id));
            if let Some(list) = self.sessions.get_mut(&id) {
                list.remove(s);
            }
            self.closed_keep_key(key);
        }
        acc.add_arguments(self.arguments.iter().map(Option::as_ref), self.seq);
        let fired = end.saturating_sub(1) <= self.watermark;
        self.sessions.entry(id).or_default().insert(start, end);
        if fired {
            self.retained.insert((end, start, id));
            self.emit(out, key, start, end, &acc, self.watermark);
        } else {
            self.pending.insert((end, start, id));
        }
        self.windows.insert((id, start), Open { end, acc, fired, key });
        self.opened(key);
    }

    fn add_to_count(&mut self, (id, key): (u64, Slot), size: u64, ts: i64, out: &mut Batch) {
        let aggregates = &self.aggregates;
        let mut created = false;
        let w = self.counts.entry(id).or_insert_with(|| {
            created = true;
            CountWindow { acc: Accumulators::new(aggregates), n: 0, min_ts: i64::MAX, max_ts: i64::MIN, key }
        });
        w.acc.add_arguments(self.arguments.iter().map(Option::as_ref), self.seq);
        w.n += 1;
        w.min_ts = w.min_ts.min(ts);
        w.max_ts = w.max_ts.max(ts);
        let full = w.n >= size;
        if created {
            self.opened(key);
        }
        if full {
            if let Some(w) = self.counts.remove(&id) {
                self.emit(out, key, w.min_ts, w.max_ts + 1, &w.acc, self.watermark);
            }
            self.closed(key);
        }
    }

    /// Evaluates the record's key into `key_values` and its aggregates' arguments
    /// into `arguments`, changing no state when either fails.
    fn read(&mut self, record: &mut Record) -> Result<(), crate::expr::EvalError> {
        self.key_values.clear();
        if !self.takes_keys {
            crate::record::extend_or_first_error(&mut self.key_values, self.key_exprs.iter().map(|e| e.eval(record)))?;
            return Accumulators::arguments_into(&self.aggregates, record, &mut self.arguments);
        }
        // Reading a field cannot fail, so evaluating the arguments first (they may read
        // the key's fields too) reports the same errors.
        Accumulators::arguments_into(&self.aggregates, record, &mut self.arguments)?;
        let taken = self.key_exprs.iter().map(|e| match e.field_index(record.schema()) {
            Some(Some(i)) => record.take_value(i),
            _ => Value::Null,
        });
        self.key_values.extend(taken);
        Ok(())
    }

    /// Gives a late record back the key values [`WindowReduce::read`] took.
    fn restore_keys(&mut self, record: &mut Record) {
        if !self.takes_keys {
            return;
        }
        for (e, value) in self.key_exprs.iter().zip(self.key_values.drain(..)) {
            if let Some(Some(i)) = e.field_index(record.schema()) {
                record.put_value(i, value);
            }
        }
    }
}

/// Whether a window ending at `end` is past its allowed lateness at `watermark`.
fn too_late(end: i64, lateness: i64, watermark: i64) -> bool {
    end.saturating_sub(1).saturating_add(lateness) <= watermark
}

impl Operator for WindowReduce {
    fn process(&mut self, mut record: Record, out: &mut Batch) -> Result<(), StepError> {
        self.advance(record.watermark, out);
        if let Err(error) = self.read(&mut record) {
            return Err(StepError { error, record });
        }
        self.seq += 1;
        let ts = record.event_time.unwrap_or(self.watermark);
        match self.kind {
            Kind::Count { size } => {
                let (id, key) = self.key_id();
                self.add_to_count((id, key), size, ts, out);
            }
            Kind::Session { gap } => {
                let (id, key) = self.key_id();
                self.add_to_session((id, key), ts, gap, record, out);
                self.release_if_unused(key);
            }
            kind => {
                let mut assigned = std::mem::take(&mut self.assigned);
                assign(&kind, ts, &mut assigned);
                assigned.retain(|(_, end)| !self.too_late(*end, self.watermark));
                if assigned.is_empty() {
                    self.restore_keys(&mut record);
                    self.late.push(record);
                } else {
                    let hash = key_hash(&self.key_values);
                    for &(start, end) in &assigned {
                        let fired = end.saturating_sub(1) <= self.watermark;
                        let bounds = (end, start);
                        let (key, arguments) = (&self.key_values, &self.arguments);
                        if let Some(window) = self.panes.add(bounds, fired, hash, key, arguments, self.seq) {
                            self.results.push(out, self.watermark, window.key, (start, end), window.accs);
                        }
                    }
                }
                self.assigned = assigned;
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Batch) {
        self.advance(watermark, out);
    }

    fn on_end(&mut self, out: &mut Batch) {
        self.advance(i64::MAX, out);
        for (_, w) in std::mem::take(&mut self.counts) {
            self.emit(out, w.key, w.min_ts, w.max_ts + 1, &w.acc, self.finite_watermark);
            self.closed(w.key);
        }
        self.watermark = self.finite_watermark;
    }

    fn snapshot(&self) -> serde_json::Value {
        let mut windows: Vec<SavedWindow> = self
            .windows
            .iter()
            .map(|(&(key, start), open)| SavedWindow {
                key,
                start,
                end: open.end,
                fired: open.fired,
                acc: open.acc.clone(),
            })
            .collect();
        let mut keys: Vec<(u64, Vec<Value>)> = self.keys.iter().map(|(id, k)| (id, k.0.to_vec())).collect();
        keys.sort_by_key(|(id, _)| *id);
        // A key of its own per time window, numbered in arrival order within a pane.
        let mut next_key = self.keys.next_id();
        for ((end, start), fired, window) in self.panes.iter() {
            keys.push((next_key, window.key.to_vec()));
            windows.push(SavedWindow { key: next_key, start, end, fired, acc: Accumulators(window.accs.to_vec()) });
            next_key += 1;
        }
        windows.sort_by_key(|w| (w.end, w.start, w.key));
        let counts = self
            .counts
            .iter()
            .map(|(&key, w)| SavedCount { key, acc: w.acc.clone(), n: w.n, min_ts: w.min_ts, max_ts: w.max_ts })
            .collect();
        let snapshot = Snapshot { watermark: self.watermark, next_key, seq: self.seq, keys, windows, counts };
        serde_json::to_value(snapshot).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let s: Snapshot = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.watermark = s.watermark;
        self.finite_watermark = s.watermark;
        self.keys.set_next_id(s.next_key);
        self.seq = s.seq;
        if matches!(self.kind, Kind::Tumbling { .. } | Kind::Sliding { .. }) {
            let keys: HashMap<u64, Vec<Value>, FixedState> = s.keys.into_iter().collect();
            let mut windows = s.windows;
            windows.sort_by_key(|w| (w.end, w.start, w.key));
            for w in windows {
                let key = keys.get(&w.key).ok_or_else(|| format!("a window of unknown key {}", w.key))?;
                self.panes.restore((w.end, w.start), w.fired, key, w.acc);
            }
            return Ok(());
        }
        let mut by_id = HashMap::<u64, Slot, FixedState>::default();
        for (id, values) in s.keys {
            by_id.insert(id, self.keys.restore(Key(Arc::from(values)), id));
        }
        let key_of = |id: u64| by_id.get(&id).copied().ok_or_else(|| format!("a window of unknown key {id}"));
        for w in s.windows {
            let key = key_of(w.key)?;
            if w.fired {
                self.retained.insert((w.end, w.start, w.key));
            } else {
                self.pending.insert((w.end, w.start, w.key));
            }
            if matches!(self.kind, Kind::Session { .. }) {
                self.sessions.entry(w.key).or_default().insert(w.start, w.end);
            }
            self.opened(key);
            self.windows.insert((w.key, w.start), Open { end: w.end, acc: w.acc, fired: w.fired, key });
        }
        for c in s.counts {
            let key = key_of(c.key)?;
            self.opened(key);
            self.counts.insert(c.key, CountWindow { acc: c.acc, n: c.n, min_ts: c.min_ts, max_ts: c.max_ts, key });
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

    fn write_lines(&mut self, format: LineEncoder) -> bool {
        self.results.write_lines(format);
        true
    }

    fn take_lines(&mut self) -> Option<(String, u64)> {
        self.results.take_lines()
    }

    fn peak_open_windows(&self) -> Option<usize> {
        Some(self.peak.max(self.panes.peak()))
    }

    fn state_entries(&self) -> Option<usize> {
        Some(self.windows.len() + self.counts.len() + self.panes.len())
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
