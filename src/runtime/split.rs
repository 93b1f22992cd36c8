//! A run split by data: one bounded file source read by N workers that each decode
//! their own blocks of the file, run the stateless head steps, evaluate the `key_by`
//! and keep the windows (or rolling state) of the keys they own, handing the records
//! of other keys to their owners once, through the exchange (`exchange.rs`: one inbox
//! per worker, pieces numbered by block). There is no merge thread in between: a
//! record is decoded, filtered and (for the keys its worker owns) reduced on one core.
//!
//! Blocks are cut by one reader thread on record boundaries and dealt in turn (block
//! k to worker k mod N, `sources::parallel_decode`). A worker reads its block 128
//! records at a time through every stage (decode, event time, head steps, key), keeps
//! its own part and sends the others theirs, then applies to its steps, in block
//! order, the pieces of the blocks before its own and then its own: every worker
//! applies a piece (maybe empty) of every block, followed by the watermark after
//! that block. Records are stamped with the watermark the block's own records give
//! before them; a step's watermark being the largest it has heard, each record is
//! judged against the watermark of reading the file on one thread, so lateness,
//! firing and results are those of one thread (the same multiset; lines of different
//! keys may come in another order), and no worker waits for another's block before
//! reading its own.
//!
//! The main thread keeps the sinks and watches: signals, sinks that closed or failed,
//! the memory limit, progress and metrics, and checkpoints. Checkpoint barriers travel
//! in-band, as through keyed instances: the main thread asks for one, and the next
//! block a worker sends carries it (no worker has applied that block yet, and every
//! worker applies every block in order, so it is the same cut for all). Every worker
//! reports its steps' states there and waits, the sinks get the barrier after the
//! workers' output before it, and the checkpoint holds where that block starts, so a
//! killed run resumes from it at any parallelism.
//! Not split: several sources, followed files, pipelines of other shapes; those run
//! on the executor with keyed instances.

use super::errors::RecordFailure;
use super::exchange::{inboxes, Inbox, Outboxes, Partitioner};
use super::executor::{Barrier, Executor};
use super::keyed::Stats;
use super::lane_steps::{marker, LaneSteps, Marker};
use super::merge::Stamper;
use super::source_thread::READ_CHUNK;
use super::step_runner::StepRunner;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::record::{Batch, Origin, Schema, SchemaMaker, NO_WATERMARK};
use crate::sources::parallel_decode::{Block, BlockFeed};
use crate::sources::BadRecord;
use crate::sources::EventTime as CompiledEventTime;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the workers share with each other and the main thread.
struct Shared {
    barriers: Barriers,
    /// The first block no worker starts (usize::MAX: none). A worker that fails in
    /// block b sets it to b, so the blocks before b are still applied and the error a
    /// single thread would meet first is met; the main thread (a signal, a closed or
    /// failed sink, the memory limit) sets it to 0.
    stop_at: AtomicUsize,
    /// Bytes of input decoded, for progress.
    bytes: AtomicU64,
    /// The watermark worker 0 applied last, for progress.
    watermark: std::sync::atomic::AtomicI64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            barriers: Barriers::default(),
            stop_at: AtomicUsize::new(usize::MAX),
            bytes: AtomicU64::new(0),
            watermark: std::sync::atomic::AtomicI64::new(NO_WATERMARK),
        }
    }
}

impl Shared {
    /// No worker starts block `block` or a later one.
    fn stop_from(&self, block: usize) {
        self.stop_at.fetch_min(block, Ordering::Relaxed);
    }

    fn stops(&self, block: usize) -> bool {
        block >= self.stop_at.load(Ordering::Relaxed)
    }
}

/// The records of one block a worker hands to the owner of their keys, with how far
/// the block takes the input.
struct Piece {
    records: Batch,
    after: Applied,
    /// A checkpoint barrier before the block (its epoch in this run).
    barrier: Option<u64>,
}

/// How far the input a worker has applied goes: where the last block ends, the largest
/// event time in it and the blocks before, and the watermark after it.
#[derive(Clone, Copy, Debug)]
pub struct Applied {
    pub end: Option<Origin>,
    pub max_ts: Option<i64>,
    pub watermark: i64,
}

impl Applied {
    /// After one more block: its end, its largest event time and watermark.
    fn then(self, end: Origin, max_ts: Option<i64>, watermark: i64) -> Applied {
        Applied { end: Some(end), max_ts: self.max_ts.max(max_ts), watermark: self.watermark.max(watermark) }
    }
}

/// What a worker reports at a checkpoint barrier and at its end: its steps' states
/// and how far it has applied the input.
struct Report {
    states: Vec<serde_json::Value>,
    applied: Applied,
}

/// A block a worker has read: per worker, the records of its keys; the block's largest
/// event time and the watermark after it; its bad records and failures; how many
/// inputs it held.
struct ReadBlock {
    parts: Vec<Batch>,
    max_ts: Option<i64>,
    watermark: i64,
    failures: Vec<RecordFailure>,
    inputs: u64,
}

/// How a worker ended.
enum Ended {
    /// Every block was applied and the steps ended: the final checkpoint's report.
    Done(Report),
    /// Stopped early: asked to, or another worker stopped.
    Stopped,
}

/// Checkpoint barriers of a split run. The main thread asks for barrier n (`asked`);
/// the first worker to send a block after that places it there (`placed`) by marking
/// the block's pieces; each worker, about to apply a marked piece, reports and waits
/// until the checkpoint is written (`released`).
#[derive(Default)]
struct Barriers {
    asked: AtomicU64,
    placed: AtomicU64,
    /// The placed barrier's reports, per worker.
    reports: Mutex<Vec<Option<Report>>>,
    /// The last barrier whose checkpoint is written or given up.
    released: Mutex<u64>,
    changed: Condvar,
}

impl Barriers {
    /// Places the barrier asked for, if any is waiting: its epoch.
    fn place(&self) -> Option<u64> {
        let (asked, placed) = (self.asked.load(Ordering::SeqCst), self.placed.load(Ordering::SeqCst));
        (asked > placed && self.placed.compare_exchange(placed, asked, Ordering::SeqCst, Ordering::SeqCst).is_ok())
            .then_some(asked)
    }

    /// Lets the workers waiting at barrier `epoch` (or an earlier one) go on.
    fn release(&self, epoch: u64) {
        if let Ok(mut released) = self.released.lock() {
            *released = (*released).max(epoch);
        }
        self.changed.notify_all();
    }
}

/// One worker: its blocks, the head steps, its share of the keyed steps.
struct Worker {
    index: usize,
    count: usize,
    /// The number of this worker's next block (index, index + count, ...).
    own: usize,
    feed: BlockFeed,
    event_time: Option<CompiledEventTime>,
    out_of_orderness: i64,
    head: Option<LaneSteps>,
    /// The `key_by` step feeding the keyed steps, and how it deals records to workers.
    key_by: usize,
    partitioner: Partitioner,
    /// To every worker's inbox (pieces numbered by block), and this worker's (None
    /// once it has no more blocks of its own).
    to: Option<Outboxes<Piece>>,
    inbox: Inbox<Piece>,
    /// Pieces' records, once adopted (values moved out), go back to the worker that made
    /// them (its index here) to be freed there; this worker's come back on `spent`, emptied into `spare`.
    returns: Vec<Sender<Batch>>,
    spent: Receiver<Batch>,
    spare: Vec<Batch>,
    adopter: Adopter,
    exec: StepRunner,
    stats: Arc<Mutex<Stats>>,
    shared: Arc<Shared>,
    published: Instant,
    applied: Applied,
}

/// Moves records another worker made into this worker's memory (see
/// [`Record::move_to_own`]), with twins of its own of their schemas: then every value
/// vector is allocated and freed by one thread, and the memory a worker reuses is in
/// its own core's caches rather than last written by the other core.
#[derive(Default)]
struct Adopter {
    maker: Option<SchemaMaker>,
}

impl Adopter {
    fn adopt(&mut self, records: &mut Batch) -> Batch {
        records
            .iter_mut()
            .map(|record| {
                let mut maker = match self.maker.take() {
                    Some(maker) if Schema::same(maker.schema(), record.schema()) => maker,
                    _ => SchemaMaker::new(record.schema()),
                };
                let adopted = record.move_to_own(maker.for_record());
                self.maker = Some(maker);
                adopted
            })
            .collect()
    }
}

/// A worker's error, with the block it happened in (the run reports the earliest).
type BlockError = (usize, Error);

impl Worker {
    fn run(mut self) -> std::result::Result<Ended, BlockError> {
        let outcome = self.blocks();
        self.publish();
        // The others wait for no block of this worker's from here on.
        if let Some(to) = self.to.take() {
            to.end(self.index, self.own);
        }
        // The others may be waiting for this worker's blocks: they stop there too.
        match &outcome {
            Ok(Ended::Done(_)) => {}
            Ok(Ended::Stopped) => self.shared.stop_from(self.own),
            Err((block, _)) => self.shared.stop_from(*block),
        }
        outcome
    }

    fn blocks(&mut self) -> std::result::Result<Ended, BlockError> {
        // The next block (in file order) whose records this worker applies.
        let mut next = 0;
        loop {
            let own = self.own;
            if self.shared.stops(own) {
                return Ok(Ended::Stopped);
            }
            self.free_spent();
            let block = match self.feed.next_block() {
                Ok(Some(block)) => block,
                Ok(None) => break,
                Err(e) => return Err((own, e)),
            };
            self.shared.bytes.fetch_add(block.bytes(), Ordering::Relaxed);
            let end = block.end;
            let ReadBlock { parts, max_ts, watermark, failures, inputs } = self.read(block).map_err(|e| (own, e))?;
            let after = Applied { end: Some(end), max_ts, watermark };
            let barrier = self.shared.barriers.place();
            let mut mine = Vec::new();
            for (owner, part) in parts.into_iter().enumerate() {
                match (owner == self.index, &self.to) {
                    (true, _) => mine = part,
                    (false, Some(to)) if to.send(owner, own, Piece { records: part, after, barrier }) => {}
                    (false, _) => return Ok(Ended::Stopped),
                }
            }
            while next < own {
                if self.shared.stops(next) || !self.apply_from_owner(next)? {
                    return Ok(Ended::Stopped);
                }
                next += 1;
            }
            if barrier.is_some_and(|epoch| !self.pass_barrier(epoch, own)) {
                return Ok(Ended::Stopped);
            }
            self.exec.count_read(inputs);
            for f in failures {
                self.exec.failure(f).map_err(|e| (own, e))?;
            }
            self.apply(own, mine, after)?;
            next = own + 1;
            self.own += self.count;
            if self.exec.all_closed() {
                return Ok(Ended::Stopped);
            }
        }
        // No more blocks of this worker's: the others learn it after the pieces it
        // sent, and it applies theirs up to the end of the input.
        if let Some(to) = self.to.take() {
            to.end(self.index, self.own);
        }
        while next % self.count != self.index {
            if self.shared.stops(next) {
                return Ok(Ended::Stopped);
            }
            if !self.apply_from_owner(next)? {
                break;
            }
            next += 1;
        }
        if self.shared.stops(next) {
            return Ok(Ended::Stopped);
        }
        self.exec.end_steps().map_err(|e| (next, e))?;
        Ok(Ended::Done(Report { states: self.exec.snapshot_states(), applied: self.applied }))
    }

    /// Reports this worker's state at barrier `epoch`, before block `block`, and waits
    /// until the checkpoint is written; false when the run stops.
    fn pass_barrier(&mut self, epoch: u64, block: usize) -> bool {
        let barriers = &self.shared.barriers;
        let report = Report { states: self.exec.snapshot_states(), applied: self.applied };
        match barriers.reports.lock() {
            Ok(mut reports) => reports[self.index] = Some(report),
            Err(_) => return false,
        }
        let Ok(mut released) = barriers.released.lock() else { return false };
        while *released < epoch {
            if self.shared.stops(block) {
                return false;
            }
            released = match barriers.changed.wait_timeout(released, Duration::from_millis(50)) {
                Ok((r, _)) => r,
                Err(_) => return false,
            };
        }
        !self.shared.stops(block)
    }

    /// Applies the piece of block `block` its owner sent; false when the owner has no
    /// such block (it ended) or stopped.
    fn apply_from_owner(&mut self, block: usize) -> std::result::Result<bool, BlockError> {
        let owner = block % self.count;
        let Some(mut piece) = self.inbox.take(block, owner) else { return Ok(false) };
        if piece.barrier.is_some_and(|epoch| !self.pass_barrier(epoch, block)) {
            return Ok(false);
        }
        let records = self.adopter.adopt(&mut piece.records);
        // The owner may have ended: then its records are freed here.
        let _ = self.returns[owner].send(piece.records);
        self.apply(block, records, piece.after)?;
        Ok(true)
    }

    /// Frees the records the others have adopted, keeping the batches for parts.
    fn free_spent(&mut self) {
        while let Ok(mut batch) = self.spent.try_recv() {
            batch.clear();
            if self.spare.len() < 2 * self.count {
                self.spare.push(batch);
            }
        }
    }

    /// Hands a block's records of this worker's keys to its steps, then its watermark.
    fn apply(&mut self, block: usize, records: Batch, after: Applied) -> std::result::Result<(), BlockError> {
        self.exec.count_through(self.key_by, records.len() as u64);
        let applied = match records.is_empty() {
            true => Ok(()),
            false => self.exec.deliver_from(self.key_by, records),
        };
        applied.and_then(|_| self.exec.advance_watermark(after.watermark)).map_err(|e| (block, e))?;
        self.applied = self.applied.then(after.end.unwrap_or_default(), after.max_ts, after.watermark);
        if self.index == 0 {
            self.shared.watermark.store(self.applied.watermark, Ordering::Relaxed);
        }
        if self.published.elapsed() >= Duration::from_millis(100) {
            self.publish();
        }
        Ok(())
    }

    /// Reads a block a chunk at a time (each chunk passes every stage while it is in
    /// the core's caches): decodes it, stamps event times (a record whose time cannot
    /// be read becomes bad input, as on a source thread), runs the head steps, stamps
    /// every output with the watermark before its input and puts it in the part of
    /// the worker owning its key.
    ///
    /// Watermarks are the block's own: the largest event time of the blocks before
    /// it reaches every worker's steps as the watermark after each of those blocks
    /// (every worker applies a piece of every block, in order), and a step's watermark
    /// is the largest it has heard, so a record's is that of reading the file on one
    /// thread without waiting for the blocks before it.
    fn read(&mut self, block: Block) -> Result<ReadBlock> {
        let mut decoder = self.feed.decoder(block);
        let now = chrono::Utc::now().timestamp_millis();
        let mut parts = self.partitioner.parts(&mut self.spare);
        let (mut failures, mut inputs) = (Vec::new(), 0);
        let mut stamper = Stamper::default();
        let (mut records, mut bad, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            // As many records at a time as a source thread reads.
            let more = decoder.read(READ_CHUNK, &mut records, &mut bad).map_err(|e| Error::io("cannot decode", e))?;
            inputs += (records.len() + bad.len()) as u64;
            records.retain_mut(|record| match super::event_time::assign(record, self.event_time.as_ref(), now) {
                Ok(()) => true,
                Err(error) => {
                    failures.push(RecordFailure::from(BadRecord {
                        origin: record.origin,
                        raw: record.to_json(),
                        error,
                    }));
                    false
                }
            });
            failures.extend(bad.drain(..).map(RecordFailure::from));
            match &mut self.head {
                Some(head) if !records.is_empty() => head.run(&mut records, &mut outputs),
                _ => outputs.append(&mut records),
            }
            for mut record in outputs.drain(..) {
                let ts = record.event_time.unwrap_or(NO_WATERMARK);
                record.watermark =
                    stamper.continued(record.origin).unwrap_or_else(|| stamper.watermark(self.out_of_orderness));
                stamper.take(record.origin, ts, record.watermark);
                match marker(&record) {
                    None => self.partitioner.deal(record, &mut parts),
                    Some(Marker::Tick) => {}
                    Some(Marker::Failure(f)) => failures.push(f),
                }
            }
            if !more {
                self.feed.recycle(decoder);
                self.partitioner.dealt(&parts);
                let (max_ts, watermark) = (stamper.max_ts, stamper.watermark(self.out_of_orderness));
                return Ok(ReadBlock { parts, max_ts, watermark, failures, inputs });
            }
        }
    }

    fn publish(&mut self) {
        super::keyed::publish(&self.exec, &self.stats);
        self.published = Instant::now();
    }
}

/// What a run split by data needs beyond the executor: set up by `runtime::run`.
pub struct Split {
    pub feeds: Vec<BlockFeed>,
    pub event_time: Option<CompiledEventTime>,
    pub out_of_orderness: i64,
    /// The head steps per worker (None: the source feeds the `key_by` directly).
    pub heads: Vec<Option<LaneSteps>>,
    pub key_by: usize,
    pub exprs: Vec<Expr>,
    pub instances: Vec<StepRunner>,
    /// Where the input starts: a checkpoint's position, event time and watermark.
    pub start: Applied,
}

/// Runs the workers to the end of the input (or until they stop), watching signals,
/// sinks, the memory limit and checkpoints from this thread; `exec` keeps the sinks
/// and writes the checkpoints.
pub fn run(exec: &mut Executor, split: Split, interrupt: &AtomicUsize) -> Result<()> {
    let count = split.feeds.len();
    let shared = Arc::new(Shared::default());
    if let Ok(mut reports) = shared.barriers.reports.lock() {
        *reports = (0..count).map(|_| None).collect();
    }
    let (outboxes, inboxes) = inboxes::<Piece>(count, None);
    let (returns, mut spent): (Vec<Sender<Batch>>, Vec<Receiver<Batch>>) = (0..count).map(|_| unbounded()).unzip();
    let stats: Vec<Arc<Mutex<Stats>>> = (0..count).map(|_| Arc::new(Mutex::new(Stats::default()))).collect();
    exec.count_workers(stats.clone());
    let (done_tx, done_rx) = bounded(count);
    let mut handles = Vec::new();
    let parts = split.feeds.into_iter().zip(split.heads).zip(split.instances).zip(inboxes).enumerate();
    for (index, (((feed, head), mut instance), inbox)) in parts {
        // As the merge stamps the first record after a restore.
        if split.start.watermark > NO_WATERMARK {
            instance.advance_watermark(split.start.watermark)?;
        }
        let worker = Worker {
            index,
            count,
            own: index,
            feed,
            event_time: split.event_time.clone(),
            out_of_orderness: split.out_of_orderness,
            head,
            key_by: split.key_by,
            partitioner: Partitioner::new(split.exprs.clone(), count),
            to: Some(outboxes.clone()),
            inbox: Inbox::new(inbox, count),
            returns: returns.clone(),
            spent: spent.remove(0),
            spare: Vec::new(),
            adopter: Adopter::default(),
            exec: instance,
            stats: stats[index].clone(),
            shared: shared.clone(),
            published: Instant::now(),
            applied: split.start,
        };
        let done = done_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let ended = worker.run();
                let _ = done.send(());
                ended
            })
            .map_err(|e| Error::Internal(format!("cannot start a worker thread: {e}")))?;
        handles.push(handle);
    }
    drop(done_tx);
    // The workers hold the senders now: an inbox closes when they have all gone.
    drop(outboxes);
    let mut watched = Ok(());
    // A checkpoint barrier asked for (its epoch, when), and the signal that asked for it.
    let mut barrier: Option<(u64, Instant)> = None;
    let mut interrupted = None;
    let mut finished = 0;
    while finished < count {
        let wait = if barrier.is_some() { 2 } else { 50 };
        match done_rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(()) => finished += 1,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if let Some((epoch, started)) = barrier {
            match complete_barrier(exec, &shared, epoch, started, finished == count) {
                Ok(false) => {}
                Ok(true) => {
                    barrier = None;
                    if let Some(code) = interrupted {
                        shared.stop_from(0);
                        watched = Err(Error::Interrupted(code));
                    }
                }
                Err(e) => {
                    barrier = None;
                    shared.stop_from(0);
                    shared.barriers.release(epoch);
                    watched = Err(e);
                }
            }
        }
        if !shared.stops(0) && interrupted.is_none() {
            match watch(exec, interrupt) {
                Ok(true) if barrier.is_none() && exec.checkpoint_due() => barrier = Some(ask_barrier(&shared)),
                Ok(true) => {}
                Ok(false) => shared.stop_from(0),
                // A signal with checkpoints: a last one, then the workers stop.
                Err(Error::Interrupted(code)) if exec.checkpointing.is_some() => {
                    interrupted = Some(code);
                    barrier = barrier.or_else(|| Some(ask_barrier(&shared)));
                }
                Err(e) => {
                    shared.stop_from(0);
                    watched = Err(e);
                }
            }
        }
        let watermark = shared.watermark.load(Ordering::Relaxed);
        report_progress(exec, &stats, &shared, watermark, false);
        // The source's lane: no channel, its records go to the steps on the worker.
        exec.publish(watermark, &[(Some(watermark), 0)]);
    }
    // The earliest block's error is the one a single thread would have met first.
    let mut first: Option<BlockError> = None;
    let mut reports = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(Ended::Done(report))) => reports.push(report),
            Ok(Ok(Ended::Stopped)) => {}
            Ok(Err((block, e))) => {
                if first.as_ref().is_none_or(|(b, _)| block < *b) {
                    first = Some((block, e));
                }
            }
            Err(_) => {
                first.get_or_insert((usize::MAX, Error::Internal(format!("worker {i} panicked"))));
            }
        }
    }
    watched?;
    if let Some((_, e)) = first {
        return Err(e);
    }
    if reports.len() == count {
        report_progress(exec, &stats, &shared, i64::MAX, true);
        if exec.checkpointing.is_some() {
            checkpoint(exec, reports, true, Instant::now())?;
        }
    }
    Ok(())
}

/// Reports progress: the records the workers have read, the bytes of the blocks.
fn report_progress(exec: &mut Executor, stats: &[Arc<Mutex<Stats>>], shared: &Shared, watermark: i64, force: bool) {
    let records_in = stats.iter().filter_map(|s| s.lock().ok().map(|s| s.records_in)).sum();
    exec.report(records_in, shared.bytes.load(Ordering::Relaxed), watermark, force);
}

/// Asks for the next checkpoint barrier: its epoch, and when.
fn ask_barrier(shared: &Shared) -> (u64, Instant) {
    (shared.barriers.asked.fetch_add(1, Ordering::SeqCst) + 1, Instant::now())
}

/// Writes the checkpoint of barrier `epoch` once every worker has reported (true;
/// then the workers go on), or gives it up when the workers have all ended without
/// meeting it (no block was read after it was asked for: the final checkpoint follows).
fn complete_barrier(
    exec: &mut Executor,
    shared: &Shared,
    epoch: u64,
    started: Instant,
    all_ended: bool,
) -> Result<bool> {
    let barriers = &shared.barriers;
    let reports = {
        let Ok(mut reports) = barriers.reports.lock() else { return Ok(true) };
        if !reports.iter().all(Option::is_some) {
            drop(reports);
            if all_ended {
                barriers.release(epoch);
                return Ok(true);
            }
            return Ok(false);
        }
        reports.iter_mut().map(Option::take).collect::<Option<Vec<Report>>>().unwrap_or_default()
    };
    let written = checkpoint(exec, reports, false, started);
    barriers.release(epoch);
    written.map(|_| true)
}

/// Writes a checkpoint from the workers' reports: their states, and where they all
/// stand in the input.
fn checkpoint(exec: &mut Executor, reports: Vec<Report>, completed: bool, started: Instant) -> Result<()> {
    let applied = reports.first().map(|r| r.applied).ok_or_else(|| Error::Internal("no worker reported".into()))?;
    let states = reports.into_iter().map(|r| r.states).collect();
    let at = Barrier { positions: vec![(applied.end, applied.max_ts)], watermark: applied.watermark, completed };
    exec.write_checkpoint(Some(states), at, started)
}

/// The main thread's watch while the workers run: a signal or the memory limit stops
/// the run with an error; Ok(false) when every sink has closed or one failed (the
/// failure is reported when the executor finishes), so the workers stop.
fn watch(exec: &mut Executor, interrupt: &AtomicUsize) -> Result<bool> {
    match interrupt.load(Ordering::Relaxed) {
        0 => {}
        code => return Err(Error::Interrupted(code as i32)),
    }
    exec.check_memory_now()?;
    exec.poll_sinks();
    Ok(!exec.sink_failed() && !exec.all_closed())
}
