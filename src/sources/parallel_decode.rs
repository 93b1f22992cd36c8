//! Decoding one file source on several threads (`parallelism:` on a file source):
//! a reader thread cuts the files into blocks that end on a record boundary, workers
//! decode block k on worker k mod N, and the source takes the decoded blocks back in
//! the same round-robin order. The records come out in exactly the order one decoder
//! gives, with the same origins (line, byte offset), so watermarks, late records and
//! checkpoint positions are those of reading the file on one thread.
//!
//! Every block starts on a record boundary, so the reader finds the next boundary by
//! following CSV quoting from the block's start as the CSV parser does: a quote opens a
//! quoted field only at the start of a field, `""` inside one is a quote, and a newline
//! ends a record only outside quotes. (Counting quote characters would be fooled by a
//! stray quote inside an unquoted field, such as `5" screen`.)

use super::decode::Decoding;
use super::decode::{read_csv_header, Decoder, KnownColumns, LineTooLong};
use super::{BadRecord, BlockShare};
use crate::error::{Error, Result};
use crate::format::DataFormat;
use crate::record::{Batch, Origin};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Bytes per block handed to a worker (rounded to the record boundary before it), by
/// default.
pub const BLOCK: usize = 256 * 1024;
/// Bytes per block of a run split by data (`runtime/split.rs`): smaller, since a worker
/// holds a block's records until it has applied the blocks before it, so memory follows
/// the block size (W1 on 2 workers: 47 MiB at 64 KiB, 70 MiB at 256 KiB, the same speed).
pub const SPLIT_BLOCK: usize = 64 * 1024;
/// Records per chunk the source hands on.
const CHUNK: usize = 1024;

/// What the reader deals to the workers, in turn.
enum Task {
    /// Bytes starting at `start` (file, byte offset, lines before it); CSV column
    /// names for blocks after a file's first one (None: the block starts with the
    /// header line, or the file has none).
    Block { bytes: Vec<u8>, start: Origin, end: Origin, header: Option<Vec<String>> },
    /// Every file has been read.
    End,
    /// Reading failed; the worker whose turn it is passes it on in order.
    Failed(Error),
}

/// What comes back from a worker, in block order.
enum Decoded {
    Chunks(Vec<(Batch, Vec<BadRecord>)>),
    End,
    Failed(Error),
}

pub struct ParallelDecoding {
    outputs: Vec<Receiver<Decoded>>,
    next: usize,
    chunks: VecDeque<(Batch, Vec<BadRecord>)>,
    ended: bool,
}

/// The files of a source to read in blocks, from `at` on.
pub struct Files {
    pub paths: Vec<PathBuf>,
    pub decoding: Decoding,
    pub at: Origin,
    pub columns: KnownColumns,
    /// The source's id, for errors.
    pub id: String,
}

impl ParallelDecoding {
    /// Starts decoding `files` on `workers` threads.
    pub fn start(files: Files, workers: usize) -> ParallelDecoding {
        let mut outputs = Vec::new();
        for feed in deal(files, workers, BLOCK) {
            // One block decoded per worker: memory stays a few blocks.
            let (out_tx, out_rx) = bounded::<Decoded>(1);
            std::thread::spawn(move || decode_blocks(FeedShare::new(feed), out_tx));
            outputs.push(out_rx);
        }
        ParallelDecoding { outputs, next: 0, chunks: VecDeque::new(), ended: false }
    }

    /// The next chunk of records (up to `max`) and the bad input after them, in input
    /// order; false once every file has been read.
    pub fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        while self.chunks.is_empty() {
            if self.ended {
                return Ok(false);
            }
            let decoded = self.outputs[self.next]
                .recv()
                .map_err(|_| Error::Internal("a decoding thread stopped early".into()))?;
            self.next = (self.next + 1) % self.outputs.len();
            match decoded {
                Decoded::Chunks(chunks) => self.chunks.extend(chunks),
                Decoded::End => self.ended = true,
                Decoded::Failed(e) => return Err(e),
            }
        }
        if let Some((mut records, failed)) = self.chunks.pop_front() {
            if records.len() > max.max(1) {
                let rest = records.split_off(max.max(1));
                self.chunks.push_front((rest, failed));
            } else {
                bad.extend(failed);
            }
            out.extend(records);
        }
        Ok(!self.chunks.is_empty() || !self.ended)
    }
}

/// Starts a reader thread cutting `files` into blocks of about `block` bytes dealt in
/// turn to `workers` feeds: feed k gets blocks k, k + workers, ... and decodes them
/// where it is read.
pub fn deal(files: Files, workers: usize, block: usize) -> Vec<BlockFeed> {
    let Files { paths, decoding, at, columns, id } = files;
    let mut inputs = Vec::new();
    let mut feeds = Vec::new();
    // Blocks decoded go back to the reader to be read into again: its reads then
    // fill memory it has used before, not fresh pages.
    let (spent_tx, spent_rx) = bounded::<Vec<u8>>(2 * workers);
    for _ in 0..workers {
        // One block queued per worker.
        let (task_tx, task_rx) = bounded::<Task>(1);
        inputs.push(task_tx);
        feeds.push(BlockFeed {
            tasks: task_rx,
            spent: spent_tx.clone(),
            decoding: decoding.clone(),
            columns: columns.clone(),
        });
    }
    std::thread::spawn(move || {
        let mut reader = BlockReader { inputs, next: 0, block, spent: spent_rx };
        if let Err(e) = reader.cut(&paths, &decoding, at, &id) {
            reader.deal(Task::Failed(e));
        }
    });
    feeds
}

/// One worker's share of the blocks of a file source, decoded on the worker's thread.
pub struct BlockFeed {
    tasks: Receiver<Task>,
    /// Where decoded blocks' memory goes back to the reader.
    spent: Sender<Vec<u8>>,
    decoding: Decoding,
    columns: KnownColumns,
}

/// A decoder of a block's bytes.
pub type BlockDecoder = Decoder<std::io::Cursor<Vec<u8>>>;

/// One block of input: bytes starting on a record boundary.
pub struct Block {
    bytes: Vec<u8>,
    start: Origin,
    /// Where the block ends: the origin of its last record (where a run that has read
    /// it continues).
    pub end: Origin,
    header: Option<Vec<String>>,
}

impl Block {
    /// Its length in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes.len() as u64
    }
}

impl BlockFeed {
    /// The next of this feed's blocks; None after the last one.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        match self.tasks.recv() {
            Ok(Task::Block { bytes, start, end, header }) => Ok(Some(Block { bytes, start, end, header })),
            Ok(Task::End) | Err(_) => Ok(None),
            Ok(Task::Failed(e)) => Err(e),
        }
    }

    /// A decoder of `block`'s records, with their origins in the input.
    pub fn decoder(&self, block: Block) -> BlockDecoder {
        let Block { bytes, start, header, .. } = block;
        Decoder::in_memory(bytes, &self.decoding, start, self.columns.clone(), header)
    }

    /// Hands a decoded block's memory back to the reader.
    pub fn recycle(&self, decoder: BlockDecoder) {
        let _ = self.spent.try_send(decoder.into_bytes());
    }
}

/// The reader thread's side: cuts files into blocks and deals them out in turn.
struct BlockReader {
    inputs: Vec<Sender<Task>>,
    next: usize,
    /// Bytes per block.
    block: usize,
    /// The memory of blocks the workers have decoded.
    spent: Receiver<Vec<u8>>,
}

impl BlockReader {
    /// Sends `item` to the worker whose turn it is; false when the source has gone.
    fn deal(&mut self, item: Task) -> bool {
        let sent = self.inputs[self.next].send(item).is_ok();
        self.next = (self.next + 1) % self.inputs.len();
        sent
    }

    /// Reads every file from `at` on, in blocks ending on record boundaries.
    fn cut(&mut self, paths: &[PathBuf], decoding: &Decoding, at: Origin, id: &str) -> Result<()> {
        let csv = (decoding.format == DataFormat::Csv).then_some((decoding.csv.quote, decoding.csv.delimiter));
        for (index, path) in paths.iter().enumerate().skip(at.file as usize) {
            let cannot = |what: &str, e: std::io::Error| {
                Error::io(format!("source `{id}`: cannot {what} {}", path.display()), e)
            };
            let mut file = std::fs::File::open(path).map_err(|e| cannot("open", e))?;
            let (mut offset, mut line) = if index == at.file as usize { (at.offset, at.line) } else { (0, 0) };
            let header = if csv.is_some() && decoding.csv.header {
                read_csv_header(std::fs::File::open(path).map_err(|e| cannot("open", e))?, decoding)
            } else {
                None
            };
            file.seek(SeekFrom::Start(offset)).map_err(|e| cannot("seek in", e))?;
            let mut carry: Vec<u8> = Vec::new();
            // How far the carried bytes (no record boundary in them) have been scanned.
            let mut scan = Scan::default();
            let mut at_end = false;
            while !at_end {
                // A decoded block's memory, unless a long record is carried over
                // (that one grows where it is).
                let mut bytes = match self.spent.try_recv() {
                    Ok(mut reused) if carry.len() <= self.block / 8 => {
                        reused.clear();
                        reused.append(&mut carry);
                        reused
                    }
                    _ => std::mem::take(&mut carry),
                };
                // Read into spare capacity: no zeroing of the block first. With room
                // for the longest carry a block leaves, a reused block need not grow;
                // a long record carried on grows by doubling, not a block at a time.
                if bytes.len() > self.block / 8 {
                    bytes.reserve(self.block);
                } else {
                    bytes.reserve_exact(self.block + self.block / 8);
                }
                let want = self.block as u64;
                let n = (&mut file).take(want).read_to_end(&mut bytes).map_err(|e| cannot("read", e))?;
                at_end = (n as u64) < want;
                if bytes.is_empty() {
                    break;
                }
                let boundary = record_boundary(&bytes, csv, &mut scan);
                let too_long = |line| LineTooLong { line, limit: decoding.max_line }.in_file(id, path);
                if (bytes.len() - boundary) as u64 > decoding.max_line {
                    // The record after the boundary is too long: refused before it is
                    // read whole (a file without newlines is not read into memory).
                    let before = memchr::memchr_iter(b'\n', &bytes[..boundary]).count() as u64;
                    return Err(too_long(line + before + 1));
                }
                let cut = if at_end { bytes.len() } else { boundary };
                if cut == 0 {
                    // No boundary in a whole block (a long record): read on.
                    carry = bytes;
                    continue;
                }
                scan = Scan::default();
                carry = bytes.split_off(cut);
                // Its lines, each checked against the limit (as one thread reading the
                // file checks them).
                let (mut lines, mut line_start) = (0u64, 0usize);
                for newline in memchr::memchr_iter(b'\n', &bytes) {
                    if (newline - line_start) as u64 > decoding.max_line {
                        return Err(too_long(line + lines + 1));
                    }
                    lines += 1;
                    line_start = newline + 1;
                }
                if (bytes.len() - line_start) as u64 > decoding.max_line {
                    return Err(too_long(line + lines + 1));
                }
                let start = Origin { file: index as u32, line, offset, ..at };
                // The first block of a file with a header line reads it itself.
                let block_header = if offset == 0 { None } else { header.clone() };
                offset += bytes.len() as u64;
                line += lines;
                let end = Origin { offset, line, ..start };
                if !self.deal(Task::Block { bytes, start, end, header: block_header }) {
                    return Ok(());
                }
            }
        }
        self.deal(Task::End);
        Ok(())
    }
}

/// Where [`record_boundary`] stopped in bytes with no boundary (a long record carried
/// into the next read): the bytes scanned and the CSV state after them, so that each
/// byte of a long record is scanned once.
#[derive(Clone, Copy, Default)]
struct Scan {
    scanned: usize,
    state: State,
}

/// Where the CSV state machine of [`record_boundary`] is.
#[derive(Clone, Copy, Default, PartialEq)]
enum State {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of `""`.
    QuoteInQuoted,
}

/// The length of the longest prefix of `bytes` (which starts a record) that ends on
/// a record boundary, just after a newline; 0 when there is none. `csv`: the quote and
/// delimiter characters (None: JSON lines or text, where every newline ends a record).
/// `scan` says how much of `bytes` an earlier call found no boundary in (its state
/// there); it is left at the end of `bytes`.
fn record_boundary(bytes: &[u8], csv: Option<(u8, u8)>, scan: &mut Scan) -> usize {
    let from = scan.scanned.min(bytes.len());
    let new = &bytes[from..];
    scan.scanned = bytes.len();
    let last_newline = || memchr::memrchr(b'\n', new).map_or(0, |i| from + i + 1);
    let Some((quote, delimiter)) = csv else {
        return last_newline();
    };
    // Without quotes (and not inside one) every newline ends a record (the usual case,
    // found in bulk).
    let outside_quotes = matches!(scan.state, State::FieldStart | State::Unquoted);
    if outside_quotes && memchr::memchr(quote, new).is_none() {
        scan.state = match new.last() {
            None => scan.state,
            Some(&b) if b == b'\n' || b == b'\r' || b == delimiter => State::FieldStart,
            Some(_) => State::Unquoted,
        };
        return last_newline();
    }
    let mut state = scan.state;
    let mut boundary = 0;
    for (i, &b) in new.iter().enumerate().map(|(i, b)| (from + i, b)) {
        state = match (state, b) {
            (State::Quoted, _) if b == quote => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, _) if b == quote => State::Quoted,
            (State::FieldStart, _) if b == quote => State::Quoted,
            (_, b'\n') => {
                boundary = i + 1;
                State::FieldStart
            }
            // A carriage return ends a record too (CRLF or CR terminators).
            (_, b'\r') => State::FieldStart,
            (_, _) if b == delimiter => State::FieldStart,
            _ => State::Unquoted,
        };
    }
    scan.state = state;
    boundary
}

/// A feed read block by block, decoded where it is read.
pub struct FeedShare {
    feed: BlockFeed,
    current: Option<BlockDecoder>,
}

impl FeedShare {
    pub fn new(feed: BlockFeed) -> FeedShare {
        FeedShare { feed, current: None }
    }
}

impl BlockShare for FeedShare {
    fn next_block(&mut self) -> Result<bool> {
        if let Some(done) = self.current.take() {
            self.feed.recycle(done);
        }
        let Some(block) = self.feed.next_block()? else { return Ok(false) };
        self.current = Some(self.feed.decoder(block));
        Ok(true)
    }

    fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        match &mut self.current {
            Some(decoder) => decoder.read(max, out, bad).map_err(|e| Error::io("cannot decode", e)),
            None => Ok(false),
        }
    }
}

/// A worker: decodes blocks into chunks of records until the reader ends.
fn decode_blocks(mut share: FeedShare, out: Sender<Decoded>) {
    loop {
        let decoded = match share.next_block() {
            Ok(true) => match decode_block(&mut share) {
                Ok(chunks) => Decoded::Chunks(chunks),
                Err(e) => Decoded::Failed(e),
            },
            Ok(false) => Decoded::End,
            Err(e) => Decoded::Failed(e),
        };
        let last = !matches!(decoded, Decoded::Chunks(_));
        if out.send(decoded).is_err() || last {
            return;
        }
    }
}

/// Decodes the share's current block into chunks of records and bad input.
fn decode_block(share: &mut FeedShare) -> Result<Vec<(Batch, Vec<BadRecord>)>> {
    let mut chunks = Vec::new();
    loop {
        let (mut records, mut bad) = (Vec::with_capacity(CHUNK), Vec::new());
        let more = share.read(CHUNK, &mut records, &mut bad)?;
        if !records.is_empty() || !bad.is_empty() {
            chunks.push((records, bad));
        }
        if !more {
            return Ok(chunks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{record_boundary, Scan};

    fn boundary(bytes: &[u8], csv: Option<(u8, u8)>) -> usize {
        record_boundary(bytes, csv, &mut Scan::default())
    }

    #[test]
    fn a_block_ends_after_the_last_newline_outside_quotes() {
        let csv = Some((b'"', b','));
        assert_eq!(boundary(b"a,b\nc,d\ne,f", csv), 8);
        // The last newline is inside a quoted field: the record before it ends the block.
        assert_eq!(boundary(b"a,b\nc,\"d\ne", csv), 4);
        // Doubled quotes inside a quoted field.
        assert_eq!(boundary(b"a,\"x\"\"y\"\nb,\"p\nq", csv), 9);
        // A stray quote inside an unquoted field opens nothing.
        assert_eq!(boundary(b"5\" screen,1\nb,2\nc", csv), 16);
        assert_eq!(boundary(b"a,\"quoted\r\nstill\",x\r\nnext", csv), 21);
        assert_eq!(boundary(b"no newline at all", csv), 0);
        // JSON lines and text: any newline.
        assert_eq!(boundary(b"{\"a\": \"\\\"\"}\n{\"b\"", None), 12);
    }

    /// A long record read on in pieces (each call sees the bytes so far, with the scan
    /// the calls before left) gives at every call the boundary a scan from the start
    /// gives, until one is found.
    #[test]
    fn scanning_a_carried_record_on_finds_the_same_boundary() {
        let inputs: [&[u8]; 5] = [
            b"aaaa,bbbb,\"cc\ncc\",dd\nnext",
            b"x,\"q\"\"\nq\",y\r\nz",
            b"plain,line,without,quotes\nmore",
            b"a,5\" screen,\"b\n\"\nc",
            b"\"open\nnever closed",
        ];
        for input in inputs {
            for csv in [Some((b'"', b',')), None] {
                for step in 1..input.len() {
                    let mut scan = Scan::default();
                    for end in (step..input.len()).step_by(step).chain([input.len()]) {
                        let found = record_boundary(&input[..end], csv, &mut scan);
                        assert_eq!(found, boundary(&input[..end], csv), "{input:?} up to {end}, step {step}");
                        if found > 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
}
