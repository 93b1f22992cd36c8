//! What a source lane does with the records it reads, before the executor sees them:
//! stamp event times, run the pipeline's head steps (`lane_steps`), encode for the one
//! sink that reads it (`lane_lines`), and send in batches. [`LaneWork`] does that for
//! any reader into any [`Outbox`]; [`SourceThread`] is a source read on its own
//! thread into the executor's channel, `block_lanes` one read by several.

use super::{event_time, lane_lines, lane_steps, Message, Outbox};
use crate::error::{Error, Result};
use crate::record::Batch;
use crate::sources::EventTime as CompiledEventTime;
use crate::sources::{self, BadRecord};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Records a lane reads, stamps and runs its steps on at a time: few enough that they
/// are still in the core's first-level cache when the next pass over them comes (W1:
/// 128 decoded rows are ~25 KiB). They are sent in batches of `batch_size`.
pub const READ_CHUNK: usize = 128;

/// Starts a thread reading a source, named `name` (for `top -H`; Linux keeps 15
/// characters). Detached: the run does not wait for it, and a source blocked reading
/// stdin must not keep the process alive.
pub fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot start a source thread: {e}")))
}

/// How a reader's records become a lane's messages.
pub struct LaneWork {
    pub stop: Arc<AtomicBool>,
    pub batch_size: usize,
    pub event_time: Option<CompiledEventTime>,
    /// The pipeline's head steps, when they run on the lane (see `lane_steps`).
    pub steps: Option<lane_steps::LaneSteps>,
    /// The line format of the one sink the lane's outputs go to, when the lane encodes
    /// them itself (see `lane_lines`).
    pub lines: Option<lane_lines::LaneLines>,
}

/// How pumping a reader ended.
pub enum Pumped {
    /// The reader has nothing more; everything read was sent.
    Done,
    /// Stopped (a signal), or the receiver has gone.
    Stopped,
    /// Reading failed; everything read before was sent.
    Failed(crate::error::Error),
}

impl LaneWork {
    /// Reads with `read` (up to a number of records into a batch, bad input into a
    /// list; false once it has no more) until it has no more, and sends the outputs
    /// to `out`.
    pub fn pump(
        &mut self,
        mut read: impl FnMut(usize, &mut Batch, &mut Vec<BadRecord>) -> Result<bool>,
        out: &mut impl Outbox,
    ) -> Pumped {
        let chunk = self.batch_size.min(READ_CHUNK);
        // Outputs waiting to be sent, and how many records they were read from.
        let mut pending = Vec::with_capacity(self.batch_size);
        let mut read_since_sent = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Pumped::Stopped;
            }
            let mut batch = Vec::with_capacity(chunk);
            let mut bad = Vec::new();
            match read(chunk, &mut batch, &mut bad) {
                Ok(more) => {
                    // A short read means the reader has nothing more for now: what is
                    // pending goes out at once (latency), as it does before bad input.
                    let full = batch.len() == chunk;
                    read_since_sent += batch.len();
                    if !self.process_in_order(batch, bad, &mut pending, out) {
                        return Pumped::Stopped;
                    }
                    if !more || !full || read_since_sent >= self.batch_size {
                        if !self.send(&mut pending, out) {
                            return Pumped::Stopped;
                        }
                        read_since_sent = 0;
                    }
                    if !more {
                        return Pumped::Done;
                    }
                }
                Err(e) => {
                    return match self.send(&mut pending, out) {
                        true => Pumped::Failed(e),
                        false => Pumped::Stopped,
                    };
                }
            }
        }
    }

    /// Stamps event times and runs the steps the lane runs, adding the outputs to
    /// `pending`; bad input is sent in input order, after what is pending: a record
    /// whose event time cannot be read becomes bad input at its place. False when the
    /// receiver has gone.
    fn process_in_order(
        &mut self,
        mut batch: Batch,
        bad: Vec<BadRecord>,
        pending: &mut Batch,
        out: &mut impl Outbox,
    ) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        // Stamped in place; only a batch with records whose time cannot be read is
        // split around them.
        let mut failures = Vec::new();
        for (i, record) in batch.iter_mut().enumerate() {
            if let Err(error) = event_time::assign(record, self.event_time.as_ref(), now) {
                failures.push((i, error));
            }
        }
        if !failures.is_empty() {
            let mut failures = failures.into_iter().peekable();
            let mut good = Vec::with_capacity(batch.len());
            for (i, record) in batch.into_iter().enumerate() {
                let Some((_, error)) = failures.next_if(|(at, _)| *at == i) else {
                    good.push(record);
                    continue;
                };
                let failed = BadRecord { origin: record.origin, raw: record.to_json(), error };
                self.run_steps(std::mem::take(&mut good), pending);
                if !self.send(pending, out) || !out.put(Message::Bad(vec![failed])) {
                    return false;
                }
            }
            batch = good;
        }
        self.run_steps(batch, pending);
        bad.is_empty() || (self.send(pending, out) && out.put(Message::Bad(bad)))
    }

    /// Runs the lane's steps on records, adding their outputs to `pending`.
    fn run_steps(&mut self, mut records: Batch, pending: &mut Batch) {
        match &mut self.steps {
            Some(steps) if !records.is_empty() => steps.run(&mut records, pending),
            _ => pending.append(&mut records),
        }
    }

    /// Sends what is pending; false when the receiver has gone.
    fn send(&mut self, pending: &mut Batch, out: &mut impl Outbox) -> bool {
        if pending.is_empty() {
            return true;
        }
        if let Some(lines) = &mut self.lines {
            return lines.send(pending, out);
        }
        let records = std::mem::replace(pending, Vec::with_capacity(self.batch_size));
        out.put(Message::Batch(records))
    }
}

/// Reads one source on its own thread into the executor's channel.
pub struct SourceThread {
    pub source: Box<dyn sources::Source>,
    pub work: LaneWork,
    pub tx: Sender<Message>,
}

impl SourceThread {
    pub fn run(mut self) {
        let source = &mut self.source;
        let end = match self.work.pump(|max, out, bad| source.read_batch(max, out, bad), &mut self.tx) {
            Pumped::Done => Message::End,
            Pumped::Failed(e) => Message::Failed(e),
            Pumped::Stopped => return,
        };
        let _ = self.tx.send(end);
    }
}
