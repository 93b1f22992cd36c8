//! Parallel keyed instances: the steps after a `key_by` (the plan's partition chains)
//! run on N worker threads, each owning the keys that hash to it. The executor thread
//! keeps the merge (which stamps every record with the watermark before it, so
//! lateness is decided exactly as on one thread) and the steps before the exchange,
//! evaluates each record's key and sends it to its instance.
//!
//! Instance 0 runs on the executor thread itself (`Instances::local`): the records it
//! owns never cross a thread, and one thread fewer competes for the cores; the others
//! each have a thread of their own.
//!
//! Watermarks, the end of input and checkpoint barriers travel in-band on every
//! instance's inbox (`exchange.rs`), after the records sent before them, so barriers are aligned by
//! construction: an instance answers a barrier with its state once everything before it
//! has been processed and its output handed to the sinks; only then does the executor
//! pass the barrier on to the sinks. Instances write to the sink channels directly, so
//! results are the same multiset as on one thread, in an order that may differ.

use super::exchange::{inboxes, Inbox, Outboxes, Partitioner};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::record::Batch;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the executor sends to an instance.
pub enum Work {
    /// Records leaving `key_by` step `usize` whose keys this instance owns.
    Batch(usize, Batch),
    /// Event time has progressed to this watermark.
    Watermark(i64),
    /// Every input has ended: fire everything, run `on_end`, then answer.
    End(Sender<Result<()>>),
    /// A checkpoint barrier: answer with every step's state (null for steps the
    /// instance does not run).
    Barrier(Sender<Result<Vec<serde_json::Value>>>),
}

/// The steps one keyed instance runs (an executor running only the keyed steps, or a
/// split run's worker): what the instances need of it.
pub trait KeyedSteps: Send + 'static {
    /// Runs records that `key_by` step `step` sent to this instance.
    fn deliver_from(&mut self, step: usize, batch: Batch) -> Result<()>;
    /// Event time has progressed to `watermark`: fire what is complete.
    fn advance_watermark(&mut self, watermark: i64) -> Result<()>;
    /// Every input has ended: fire everything and run `on_end`.
    fn end_steps(&mut self) -> Result<()>;
    /// Every step's state for a checkpoint (null for steps it does not run).
    fn snapshot_states(&self) -> Vec<serde_json::Value>;
    /// Its counts so far.
    fn stats(&self) -> Stats;
}

/// Counts an instance publishes for the run summary, metrics and the memory limit.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub records_in: u64,
    pub records_out: u64,
    pub late: u64,
    pub late_to_sink: u64,
    pub skipped: u64,
    pub failed: u64,
    pub step_in: Vec<u64>,
    pub step_out: Vec<u64>,
    pub sinks: Vec<u64>,
    pub state_entries: Vec<Option<usize>>,
    pub peak_open_windows: Vec<Option<usize>>,
}

/// How often an instance publishes its counts while busy.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The executor's handle on the instances.
pub struct Instances {
    /// Instance 0, run by direct calls on the executor's thread, and when it last
    /// published its counts (None once stopped: it holds sink senders).
    local: Option<(Box<dyn KeyedSteps>, Instant)>,
    /// To instances 1 to N - 1 (at index i - 1), each on a thread of its own (None once
    /// stopped), and the number of the next message to each.
    to: Option<Outboxes<Work>>,
    sent: Vec<usize>,
    handles: Vec<Option<JoinHandle<Result<()>>>>,
    /// Per instance (the local one first).
    stats: Vec<Arc<Mutex<Stats>>>,
    /// Per step: how a `key_by` whose output goes to the instances deals its records.
    exchanges: Vec<Option<Partitioner>>,
}

impl Instances {
    /// Keeps the first instance executor on this thread and starts one thread for
    /// each of the others; `exchanges` gives, per step, the key expressions of the
    /// `key_by` steps that feed the instances.
    pub fn start(
        executors: Vec<Box<dyn KeyedSteps>>,
        exchanges: Vec<Option<Vec<Expr>>>,
        channel_capacity: usize,
    ) -> Result<Instances> {
        let mut executors = executors.into_iter();
        let local = executors.next().ok_or_else(|| Error::Internal("no keyed instance".into()))?;
        let count = executors.len() + 1;
        let exchanges = exchanges.into_iter().map(|e| e.map(|exprs| Partitioner::new(exprs, count))).collect();
        let (to, inboxes) = inboxes(count - 1, Some(channel_capacity));
        let mut instances = Instances {
            local: Some((local, Instant::now())),
            to: Some(to),
            sent: vec![0; count - 1],
            handles: Vec::new(),
            stats: vec![Arc::new(Mutex::new(Stats::default()))],
            exchanges,
        };
        for ((n, exec), rx) in executors.enumerate().map(|(i, exec)| (i + 1, exec)).zip(inboxes) {
            let inbox = Inbox::new(rx, 1);
            let stats = Arc::new(Mutex::new(Stats::default()));
            let published = stats.clone();
            let handle = std::thread::Builder::new()
                .name(format!("keyed-{n}"))
                .spawn(move || work(exec, inbox, published))
                .map_err(|e| Error::Internal(format!("cannot start a keyed instance: {e}")))?;
            instances.handles.push(Some(handle));
            instances.stats.push(stats);
        }
        Ok(instances)
    }

    /// Whether step `step`'s output goes to the instances.
    pub fn feeds(&self, step: usize) -> bool {
        self.exchanges.get(step).is_some_and(Option::is_some)
    }

    /// Sends each record of `batch` (the output of `key_by` step `step`) to the
    /// instance owning its key. A key that cannot be evaluated goes to instance 0,
    /// whose step reports the error as it would on one thread.
    pub fn route(&mut self, step: usize, batch: Batch) -> Result<()> {
        let Some(Some(partitioner)) = self.exchanges.get_mut(step) else { return Ok(()) };
        let parts = partitioner.split(batch);
        for (i, part) in parts.into_iter().enumerate() {
            if !part.is_empty() {
                self.send(i, Work::Batch(step, part))?;
            }
        }
        Ok(())
    }

    /// How many instances there are (the local one too).
    fn count(&self) -> usize {
        self.sent.len() + 1
    }

    pub fn watermark(&mut self, watermark: i64) -> Result<()> {
        for i in 0..self.count() {
            self.send(i, Work::Watermark(watermark))?;
        }
        Ok(())
    }

    /// Ends every instance's steps and waits until they have sent their output.
    pub fn end(&mut self) -> Result<()> {
        let mut replies = Vec::new();
        for i in 0..self.count() {
            let (tx, rx) = bounded(1);
            self.send(i, Work::End(tx))?;
            replies.push(rx);
        }
        for (i, rx) in replies.iter().enumerate() {
            self.await_reply(i, rx)??;
        }
        Ok(())
    }

    /// A checkpoint barrier: per instance, every step's state.
    pub fn barrier(&mut self) -> Result<Vec<Vec<serde_json::Value>>> {
        let mut replies = Vec::new();
        for i in 0..self.count() {
            let (tx, rx) = bounded(1);
            self.send(i, Work::Barrier(tx))?;
            replies.push(rx);
        }
        let mut states = Vec::new();
        for (i, rx) in replies.iter().enumerate() {
            states.push(self.await_reply(i, rx)??);
        }
        Ok(states)
    }

    /// Per instance with a thread (1 to N - 1): the messages queued on its channel
    /// (for the channel-fill metric).
    pub fn queued(&self) -> Vec<(usize, usize)> {
        match &self.to {
            Some(to) => (0..to.receivers()).map(|i| (i + 1, to.queued(i))).collect(),
            None => Vec::new(),
        }
    }

    /// The counts every instance published last.
    pub fn stats(&self) -> Vec<Stats> {
        published(&self.stats)
    }

    /// Stops the instances (the local one is dropped, the channels close: none holds
    /// a sink sender any more) and returns the first error one of them stopped with.
    pub fn stop(&mut self) -> Option<Error> {
        if let Some((exec, _)) = self.local.take() {
            publish(exec.as_ref(), &self.stats[0]);
        }
        self.to = None;
        let mut first = None;
        // Instances 1 to N - 1, by their threads.
        for i in 1..=self.handles.len() {
            if let Some(e) = self.join(i) {
                first.get_or_insert(e);
            }
        }
        first
    }

    fn send(&mut self, i: usize, work: Work) -> Result<()> {
        if i == 0 {
            let (exec, published) =
                self.local.as_mut().ok_or_else(|| Error::Internal("keyed instance 0 has stopped".into()))?;
            handle(exec.as_mut(), work, &self.stats[0])?;
            if published.elapsed() >= PUBLISH_EVERY {
                publish(exec.as_ref(), &self.stats[0]);
                *published = Instant::now();
            }
            return Ok(());
        }
        let seq = self.sent[i - 1];
        if self.to.as_ref().is_some_and(|to| to.send(i - 1, seq, work)) {
            self.sent[i - 1] += 1;
            return Ok(());
        }
        // The instance stopped: its own error says why.
        Err(self.join(i).unwrap_or_else(|| Error::Internal(format!("keyed instance {i} stopped early"))))
    }

    fn await_reply<T>(&mut self, i: usize, rx: &Receiver<T>) -> Result<T> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(reply) => return Ok(reply),
                Err(RecvTimeoutError::Timeout)
                    if i > 0 && !self.handles[i - 1].as_ref().is_some_and(|h| h.is_finished()) => {}
                Err(_) => {
                    return Err(self
                        .join(i)
                        .unwrap_or_else(|| Error::Internal(format!("keyed instance {i} stopped before answering"))))
                }
            }
        }
    }

    /// Waits for instance `i` (1 to N - 1) to stop; its error, if it failed.
    fn join(&mut self, i: usize) -> Option<Error> {
        match self.handles.get_mut(i.checked_sub(1)?)?.take()?.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(Error::Internal(format!("keyed instance {i} panicked"))),
        }
    }
}

/// The counts last published in each of `stats`.
pub fn published(stats: &[Arc<Mutex<Stats>>]) -> Vec<Stats> {
    stats.iter().map(|s| s.lock().map(|s| s.clone()).unwrap_or_default()).collect()
}

/// Publishes an instance's (or a split run's worker's) counts.
pub fn publish(exec: &dyn KeyedSteps, stats: &Mutex<Stats>) {
    if let Ok(mut s) = stats.lock() {
        *s = exec.stats();
    }
}

/// Runs one piece of work on an instance, publishing its counts before it answers;
/// Ok(false) when the instance is done (its steps failed at the end of input: the
/// failure went in the reply).
fn handle(exec: &mut dyn KeyedSteps, work: Work, stats: &Mutex<Stats>) -> Result<bool> {
    match work {
        Work::Batch(step, batch) => exec.deliver_from(step, batch)?,
        Work::Watermark(w) => exec.advance_watermark(w)?,
        Work::End(reply) => {
            let outcome = exec.end_steps();
            publish(exec, stats);
            let failed = outcome.is_err();
            let _ = reply.send(outcome);
            return Ok(!failed);
        }
        Work::Barrier(reply) => {
            publish(exec, stats);
            let _ = reply.send(Ok(exec.snapshot_states()));
        }
    }
    Ok(true)
}

/// An instance's thread: runs its steps on what arrives until the channel closes.
fn work(mut exec: Box<dyn KeyedSteps>, mut inbox: Inbox<Work>, stats: Arc<Mutex<Stats>>) -> Result<()> {
    let mut published = Instant::now();
    // One sender (the executor), numbering its messages from 0.
    let mut seq = 0;
    while let Some(work) = inbox.take(seq, 0) {
        seq += 1;
        if !handle(exec.as_mut(), work, &stats)? {
            return Ok(());
        }
        // Before waiting for more work, and every PUBLISH_EVERY under load.
        if inbox.is_empty() || published.elapsed() >= PUBLISH_EVERY {
            publish(exec.as_ref(), &stats);
            published = Instant::now();
        }
    }
    publish(exec.as_ref(), &stats);
    Ok(())
}
