//! Combines the sources' channels into one ordered stream and computes the watermark
//! the contract defines: after each record, per source, the largest event time seen
//! minus `max_out_of_orderness`; overall, the minimum over sources, where a source
//! that has produced nothing counts as -infinity, a finished one as +infinity and an
//! idle one (silent for `idle_timeout`) not at all.
//!
//! With event time, the next record is taken from the source whose next record has
//! the smallest event time (ties: sources in the order written), so results do not
//! depend on thread timing. Without event time, sources are read one after another.

use super::errors::RecordFailure;
use super::lane_lines::EncodedLines;
use super::lane_steps::{marker, Marker};
use super::Message;
use crate::error::{Error, Result};
use crate::record::{Batch, Origin, Record, NO_WATERMARK};
use crate::sources::BadRecord;
use crossbeam_channel::{Receiver, RecvTimeoutError, Select};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Watermark settings of one source, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceClock {
    pub out_of_orderness: i64,
    pub idle_timeout: Option<Duration>,
}

/// The watermark of a source that has seen event times up to `max_ts`: the largest
/// minus the out-of-orderness it allows (none seen yet: no watermark).
pub fn bounded_watermark(max_ts: Option<i64>, out_of_orderness: i64) -> i64 {
    max_ts.map_or(NO_WATERMARK, |ts| ts.saturating_sub(out_of_orderness))
}

/// The one watermark stamper: a source's event-time progress as its records are
/// handed out in order. A record is stamped with the watermark before it; further
/// outputs of the same input (same origin, from steps run on the lane) get the stamp
/// of that input. The merge keeps one per lane (stamping with the watermark over all
/// lanes); a worker of a run split by data one per block (with the block's own).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamper {
    /// The largest event time taken so far.
    pub max_ts: Option<i64>,
    /// The origin of the last input taken and its stamp.
    last: Option<(Origin, i64)>,
}

impl Stamper {
    /// The stamp of a further output of the last input taken, when `origin` is its.
    pub fn continued(&self, origin: Origin) -> Option<i64> {
        match self.last {
            Some((last, stamp)) if last == origin => Some(stamp),
            _ => None,
        }
    }

    /// Takes an input (or a further output of it) with event time `ts`, stamped `stamp`.
    pub fn take(&mut self, origin: Origin, ts: i64, stamp: i64) {
        self.last = Some((origin, stamp));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
    }

    /// This source's watermark when it allows `out_of_orderness`.
    pub fn watermark(&self, out_of_orderness: i64) -> i64 {
        bounded_watermark(self.max_ts, out_of_orderness)
    }
}

/// What a lane sent, in order: its batches are kept whole (records are moved once,
/// when taken), never empty.
enum Item {
    Records(std::vec::IntoIter<Record>),
    Lines(LineCursor),
    Bad(Vec<BadRecord>),
}

/// Lines a lane encoded (`lane_lines`), taken entry by entry.
struct LineCursor {
    lines: EncodedLines,
    /// The next entry to take.
    next: usize,
    /// The text before this byte has been handed out; up to `taken` it is taken.
    handed: usize,
    taken: usize,
}

impl LineCursor {
    /// Moves the taken text to `out`: the whole text, when the batch is all taken at once.
    fn hand(&mut self, out: &mut String) {
        if self.handed == 0 && self.next == self.lines.entries.len() && out.is_empty() {
            *out = std::mem::take(&mut self.lines.text);
        } else {
            out.push_str(&self.lines.text[self.handed..self.taken]);
        }
        self.handed = self.taken;
    }
}

/// The input at the head of a lane: where it came from and its event time.
#[derive(Clone, Copy)]
struct Head {
    origin: Origin,
    event_time: Option<i64>,
}

struct Input {
    rx: Receiver<Message>,
    buffer: VecDeque<Item>,
    ended: bool,
    idle: bool,
    /// The records taken in this run and their stamps.
    stamper: Stamper,
    clock: SourceClock,
    /// The origin of the last record or bad input handed out: where a resumed run
    /// continues.
    position: Option<Origin>,
    /// Since when the merge has been waiting for this source (for `idle_timeout`).
    waiting_since: Option<Instant>,
}

impl Input {
    /// This source's watermark; None when it does not count (idle).
    fn watermark(&self) -> Option<i64> {
        if self.ended {
            Some(i64::MAX)
        } else if self.idle {
            None
        } else {
            Some(self.stamper.watermark(self.clock.out_of_orderness))
        }
    }

    /// The record or line at the front of the buffer.
    fn head(&self) -> Option<Head> {
        match self.buffer.front() {
            Some(Item::Records(records)) => {
                records.as_slice().first().map(|r| Head { origin: r.origin, event_time: r.event_time })
            }
            Some(Item::Lines(cursor)) => {
                cursor.lines.entries.get(cursor.next).map(|e| Head { origin: e.origin, event_time: e.event_time })
            }
            _ => None,
        }
    }

    fn head_time(&self) -> Option<i64> {
        self.head().map(|h| h.event_time.unwrap_or(NO_WATERMARK))
    }

    /// Takes the head record out of the buffer.
    fn pop_record(&mut self) -> Option<Record> {
        let Some(Item::Records(records)) = self.buffer.front_mut() else { return None };
        let record = records.next();
        if records.as_slice().is_empty() {
            self.buffer.pop_front();
        }
        record
    }

    /// Takes the head line; its text goes to `out` once its batch is all taken (else
    /// when the caller hands the rest). Whether it is a record (not a tick).
    fn pop_line(&mut self, out: &mut String) -> Option<bool> {
        let Some(Item::Lines(cursor)) = self.buffer.front_mut() else { return None };
        let entry = cursor.lines.entries.get(cursor.next)?;
        let record = entry.record;
        cursor.taken = entry.end;
        cursor.next += 1;
        if cursor.next == cursor.lines.entries.len() {
            cursor.hand(out);
            self.buffer.pop_front();
        }
        Some(record)
    }
}

/// What the merge hands to the executor.
pub enum Merged {
    /// Lines a lane encoded for the one sink its records go to, in order.
    Lines {
        lane: usize,
        text: String,
        /// Input records these came from, and records written.
        inputs: u64,
        records: u64,
    },
    /// Records of one lane, in order, each stamped with the watermark before its
    /// input record.
    Batch {
        lane: usize,
        records: Batch,
        /// Input records these came from (steps run on the lane may drop or multiply).
        inputs: u64,
        /// Records on which steps run on the lane failed.
        failures: Vec<RecordFailure>,
    },
    Bad(Vec<BadRecord>),
    /// Nothing arrived for a while: the executor may take a due checkpoint.
    Idle,
}

pub struct Merge {
    inputs: Vec<Input>,
    by_event_time: bool,
    /// Every source ends by itself: without event time they are read one after another.
    all_bounded: bool,
    batch_size: usize,
    watermark: i64,
    /// The last watermark below +infinity (all sources ended): what a checkpoint keeps,
    /// so that a later run over grown input judges new records against real time.
    finite_watermark: i64,
    /// Set (to the exit code) by SIGINT/SIGTERM: blocking waits give up.
    interrupt: Arc<AtomicUsize>,
}

/// How often a blocked wait looks at the interrupt flag.
const POLL: Duration = Duration::from_millis(100);

impl Merge {
    pub fn new(
        receivers: Vec<Receiver<Message>>,
        clocks: Vec<SourceClock>,
        by_event_time: bool,
        all_bounded: bool,
        batch_size: usize,
        interrupt: Arc<AtomicUsize>,
    ) -> Merge {
        let inputs = receivers
            .into_iter()
            .zip(clocks)
            .map(|(rx, clock)| Input {
                rx,
                buffer: VecDeque::new(),
                ended: false,
                idle: false,
                stamper: Stamper::default(),
                clock,
                position: None,
                waiting_since: None,
            })
            .collect();
        Merge {
            inputs,
            by_event_time,
            all_bounded,
            batch_size: batch_size.max(1),
            watermark: NO_WATERMARK,
            finite_watermark: NO_WATERMARK,
            interrupt,
        }
    }

    /// Per source: the position after the last record handed out, and the largest
    /// event time seen (what a checkpoint records).
    pub fn positions(&self) -> Vec<(Option<Origin>, Option<i64>)> {
        self.inputs.iter().map(|i| (i.position, i.stamper.max_ts)).collect()
    }

    /// Continues from a checkpoint: per source the position resumed from and the
    /// event time seen, and the watermark.
    pub fn restore(&mut self, sources: &[(Option<Origin>, Option<i64>)], watermark: i64) {
        for (input, (position, ts)) in self.inputs.iter_mut().zip(sources) {
            input.position = *position;
            input.stamper.max_ts = *ts;
        }
        self.watermark = watermark;
        self.finite_watermark = watermark;
    }

    /// Per lane: its watermark (None while idle) and the batches queued on its channel.
    pub fn lanes(&self) -> Vec<(Option<i64>, usize)> {
        self.inputs.iter().map(|i| (i.watermark(), i.rx.len())).collect()
    }

    /// The watermark a checkpoint records (never +infinity).
    pub fn finite_watermark(&self) -> i64 {
        self.finite_watermark
    }

    fn check_interrupt(&self) -> Result<()> {
        match self.interrupt.load(Ordering::Relaxed) {
            0 => Ok(()),
            code => Err(Error::Interrupted(code as i32)),
        }
    }

    /// The current watermark (after the last record handed out).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    fn recompute_watermark(&mut self) {
        let candidate = if self.by_event_time {
            self.inputs.iter().filter_map(Input::watermark).min()
        } else {
            // Processing time: how far the wall clock has been seen.
            self.inputs.iter().filter_map(|i| i.stamper.max_ts).max()
        };
        if let Some(w) = candidate {
            // Watermarks never go back (an idle source returning cannot undo firing).
            self.watermark = self.watermark.max(w);
            if self.watermark < i64::MAX {
                self.finite_watermark = self.watermark;
            }
        }
    }

    fn accept(&mut self, i: usize, message: std::result::Result<Message, RecvTimeoutError>) -> Result<()> {
        let input = &mut self.inputs[i];
        match message {
            Ok(Message::Batch(batch)) => {
                input.idle = false;
                if !batch.is_empty() {
                    input.buffer.push_back(Item::Records(batch.into_iter()));
                }
            }
            Ok(Message::Lines(lines)) => {
                input.idle = false;
                if !lines.entries.is_empty() {
                    input.buffer.push_back(Item::Lines(LineCursor { lines, next: 0, handed: 0, taken: 0 }));
                }
            }
            Ok(Message::Bad(bad)) => {
                input.idle = false;
                input.buffer.push_back(Item::Bad(bad));
            }
            Ok(Message::End) => input.ended = true,
            Ok(Message::Failed(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => input.idle = true,
            Err(RecvTimeoutError::Disconnected) => {
                input.ended = true;
                return Err(Error::Internal("a source stopped without ending".into()));
            }
        }
        if self.inputs[i].buffer.front().is_none() || self.inputs[i].idle || self.inputs[i].ended {
            self.recompute_watermark();
        }
        Ok(())
    }

    /// Waits up to `POLL` until source `i` has something buffered, ended, or (when
    /// `allow_idle`) went idle; false when it is still waiting. Gives up on an interrupt.
    fn fill(&mut self, i: usize, allow_idle: bool) -> Result<bool> {
        let idle_after = self.inputs[i].clock.idle_timeout.filter(|_| allow_idle);
        if self.inputs[i].buffer.is_empty() && !self.inputs[i].ended && !self.inputs[i].idle {
            self.check_interrupt()?;
            let since = *self.inputs[i].waiting_since.get_or_insert_with(Instant::now);
            match self.inputs[i].rx.recv_timeout(POLL) {
                Err(RecvTimeoutError::Timeout) => {
                    if idle_after.is_some_and(|t| since.elapsed() >= t) {
                        self.accept(i, Err(RecvTimeoutError::Timeout))?;
                    } else {
                        return Ok(false);
                    }
                }
                message => self.accept(i, message)?,
            }
        }
        self.inputs[i].waiting_since = None;
        Ok(true)
    }

    /// Non-blocking: brings idle sources back when they have sent something.
    fn poll_idle(&mut self) -> Result<()> {
        for i in 0..self.inputs.len() {
            if self.inputs[i].idle && !self.inputs[i].ended {
                if let Ok(message) = self.inputs[i].rx.try_recv() {
                    self.accept(i, Ok(message))?;
                }
            }
        }
        Ok(())
    }

    /// Waits up to `POLL` until any unfinished source sends something; false when
    /// none did. Gives up on an interrupt.
    fn wait_any(&mut self) -> Result<bool> {
        self.check_interrupt()?;
        let open: Vec<usize> = (0..self.inputs.len()).filter(|&i| !self.inputs[i].ended).collect();
        let received = {
            let mut select = Select::new();
            for &i in &open {
                select.recv(&self.inputs[i].rx);
            }
            select.select_timeout(POLL).ok().map(|op| {
                let i = open[op.index()];
                (i, op.recv(&self.inputs[i].rx).map_err(|_| RecvTimeoutError::Disconnected))
            })
        };
        match received {
            Some((i, message)) => self.accept(i, message).map(|_| true),
            None => Ok(false),
        }
    }

    /// The next batch or bad input; None when every source has ended.
    pub fn next(&mut self) -> Result<Option<Merged>> {
        loop {
            if !self.by_event_time && self.all_bounded {
                let Some(i) =
                    (0..self.inputs.len()).find(|&i| !self.inputs[i].ended || !self.inputs[i].buffer.is_empty())
                else {
                    return Ok(None);
                };
                if !self.fill(i, false)? {
                    return Ok(Some(Merged::Idle));
                }
                match self.take(i, None) {
                    Some(m) => return Ok(Some(m)),
                    None => continue,
                }
            }
            if !self.by_event_time {
                // An unbounded source without event time: records in arrival order.
                for i in 0..self.inputs.len() {
                    while let Ok(message) = self.inputs[i].rx.try_recv() {
                        self.accept(i, Ok(message))?;
                    }
                }
                if let Some(i) = (0..self.inputs.len()).find(|&i| !self.inputs[i].buffer.is_empty()) {
                    if let Some(m) = self.take(i, None) {
                        return Ok(Some(m));
                    }
                }
                if self.inputs.iter().all(|i| i.ended) {
                    return Ok(None);
                }
                if !self.wait_any()? {
                    return Ok(Some(Merged::Idle));
                }
                continue;
            }
            self.poll_idle()?;
            for i in 0..self.inputs.len() {
                if !self.fill(i, true)? {
                    return Ok(Some(Merged::Idle));
                }
            }
            if let Some(i) =
                (0..self.inputs.len()).find(|&i| matches!(self.inputs[i].buffer.front(), Some(Item::Bad(_))))
            {
                if let Some(m) = self.take(i, None) {
                    return Ok(Some(m));
                }
            }
            let heads: Vec<(i64, usize)> =
                (0..self.inputs.len()).filter_map(|i| self.inputs[i].head_time().map(|t| (t, i))).collect();
            let Some(&(_, first)) = heads.iter().min() else {
                if self.inputs.iter().all(|i| i.ended) {
                    return Ok(None);
                }
                // Every unfinished source is idle: wait for any of them.
                if !self.wait_any()? {
                    return Ok(Some(Merged::Idle));
                }
                continue;
            };
            let limit = heads.iter().filter(|(_, i)| *i != first).min().copied();
            if let Some(m) = self.take(first, limit) {
                return Ok(Some(m));
            }
        }
    }

    /// Takes records (or lines) from source `i` while they come before `limit` (event
    /// time, then source order), stamping each record with the watermark before it.
    fn take(&mut self, i: usize, limit: Option<(i64, usize)>) -> Option<Merged> {
        match self.inputs[i].buffer.front() {
            Some(Item::Bad(_)) => {
                let Some(Item::Bad(bad)) = self.inputs[i].buffer.pop_front() else { return None };
                if let Some(last) = bad.last() {
                    self.inputs[i].position = Some(last.origin);
                }
                Some(Merged::Bad(bad))
            }
            Some(Item::Lines(_)) => self.take_lines(i, limit),
            _ => self.take_records(i, limit),
        }
    }

    fn take_records(&mut self, i: usize, limit: Option<(i64, usize)>) -> Option<Merged> {
        let buffered = match self.inputs[i].buffer.front() {
            Some(Item::Records(records)) => records.len(),
            _ => 0,
        };
        let mut records = Vec::with_capacity(buffered.min(self.batch_size));
        let (mut failures, mut inputs, mut taken) = (Vec::new(), 0, 0);
        while let Some(stamp) = self.admit(i, limit, taken, &mut inputs, |item| matches!(item, Item::Records(_))) {
            let Some(mut record) = self.inputs[i].pop_record() else { break };
            taken += 1;
            record.watermark = stamp;
            match marker(&record) {
                None => records.push(record),
                Some(Marker::Tick) => {}
                Some(Marker::Failure(f)) => failures.push(f),
            }
        }
        (taken > 0).then_some(Merged::Batch { lane: i, records, inputs, failures })
    }

    fn take_lines(&mut self, i: usize, limit: Option<(i64, usize)>) -> Option<Merged> {
        let mut text = String::new();
        let (mut inputs, mut taken, mut written) = (0, 0, 0);
        while self.admit(i, limit, taken, &mut inputs, |item| matches!(item, Item::Lines(_))).is_some() {
            let Some(record) = self.inputs[i].pop_line(&mut text) else { break };
            taken += 1;
            written += u64::from(record);
        }
        // The rest of a batch taken in part.
        if let Some(Item::Lines(cursor)) = self.inputs[i].buffer.front_mut() {
            cursor.hand(&mut text);
        }
        (taken > 0).then_some(Merged::Lines { lane: i, text, inputs, records: written })
    }

    /// Whether source `i`'s head (in an item of the kind `of_kind` accepts) is taken
    /// next, after `taken` others: a further output of the input taken last always
    /// (the outputs of one input are never split between batches), a new input while
    /// the batch has room and it comes before `limit`. Then counts it (a new input
    /// adds to `inputs`), advances the source's position and the watermark, and
    /// returns the watermark its input is stamped with.
    fn admit(
        &mut self,
        i: usize,
        limit: Option<(i64, usize)>,
        taken: usize,
        inputs: &mut u64,
        of_kind: impl Fn(&Item) -> bool,
    ) -> Option<i64> {
        let input = &self.inputs[i];
        if !input.buffer.front().is_some_and(of_kind) {
            return None;
        }
        let head = input.head()?;
        let ts = head.event_time.unwrap_or(NO_WATERMARK);
        let continued = input.stamper.continued(head.origin);
        if continued.is_none() && (taken >= self.batch_size || limit.is_some_and(|l| (ts, i) > l)) {
            return None;
        }
        let stamp = continued.unwrap_or(self.watermark);
        *inputs += u64::from(continued.is_none());
        let input = &mut self.inputs[i];
        input.stamper.take(head.origin, ts, stamp);
        input.position = Some(head.origin);
        self.recompute_watermark();
        Some(stamp)
    }
}
