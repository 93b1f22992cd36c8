//! The W1 job written by hand, as the baseline of the benchmark and the reference of
//! the W1 test: `filter: status = 200`, `key_by: user_id`, 10 s tumbling event-time
//! windows with 2 s out-of-orderness on `ts`, then count and sum of bytes. It follows
//! the contract's watermark definition (every record read advances the watermark,
//! also those filtered out) and drops late records.
//!
//! Usage: `w1_reference FILE.csv` prints `user_id,window_start,window_end,count,bytes`
//! lines as windows fire (single-threaded, `w1`), and the number of late records on
//! stderr. Two-thread versions measure what a hand-written program makes of two cores,
//! the yardstick for flowctl's parallel runs:
//! - `--two-threads`: a two-stage pipeline, parsing on one thread and windows on the
//!   other (`w1_two_threads`);
//! - `--two-workers`: split by data, each thread parsing every other block of the file
//!   and keeping the windows of half the users (`w1_two_workers`).

use smol_str::SmolStr as Str;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};

const SIZE: i64 = 10_000;
const OUT_OF_ORDERNESS: i64 = 2_000;

/// Open windows by (user, start) with their count and sum, and the users of each
/// window end, in end order.
#[derive(Default)]
struct Windows {
    open: HashMap<(String, i64), (u64, i64)>,
    by_end: BTreeMap<i64, Vec<String>>,
}

impl Windows {
    /// Fires every window with `end - 1 <= watermark`, handing its line to `emit`.
    fn fire(&mut self, watermark: i64, emit: &mut impl FnMut(String)) {
        while let Some((&end, _)) = self.by_end.first_key_value() {
            if end - 1 > watermark {
                break;
            }
            for user in self.by_end.pop_first().map(|(_, users)| users).unwrap_or_default() {
                if let Some((count, sum)) = self.open.remove(&(user.clone(), end - SIZE)) {
                    emit(format!("{user},{},{end},{count},{sum}", end - SIZE));
                }
            }
        }
    }

    fn add(&mut self, user: &str, start: i64, bytes: i64) {
        let entry = self.open.entry((user.to_string(), start)).or_insert_with(|| {
            self.by_end.entry(start + SIZE).or_default().push(user.to_string());
            (0, 0)
        });
        entry.0 += 1;
        entry.1 += bytes;
    }
}

/// The watermark after the largest event time `max_ts` (none before the first row).
fn watermark(max_ts: i64) -> i64 {
    if max_ts == i64::MIN {
        i64::MIN
    } else {
        max_ts - OUT_OF_ORDERNESS
    }
}

/// The fields W1 reads from a CSV line: ts, user, bytes (unparsed), status.
fn fields(line: &str) -> Option<(i64, &str, &str, &str)> {
    let mut fields = line.split(',');
    let (Some(ts), Some(user), Some(_url), Some(bytes), Some(status)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    Some((ts.parse().expect("ts"), user, bytes, status))
}

/// The window start of a row, or None when the row is late at `watermark`.
fn window_start(ts: i64, watermark: i64) -> Option<i64> {
    let start = ts.div_euclid(SIZE) * SIZE;
    (start + SIZE - 1 > watermark).then_some(start)
}

/// Runs W1 over CSV text, handing each window's line to `emit` as it fires; returns
/// the number of late records.
pub fn w1(input: impl BufRead, mut emit: impl FnMut(String)) -> u64 {
    let mut windows = Windows::default();
    let mut max_ts = i64::MIN;
    let mut late = 0;
    for line in input.lines().skip(1) {
        let line = line.expect("readable input");
        let Some((ts, user, bytes, status)) = fields(&line) else { continue };
        let watermark = watermark(max_ts);
        max_ts = max_ts.max(ts);
        windows.fire(watermark, &mut emit);
        if status != "200" {
            continue;
        }
        match window_start(ts, watermark) {
            Some(start) => windows.add(user, start, bytes.parse().expect("bytes")),
            None => late += 1,
        }
    }
    windows.fire(i64::MAX, &mut emit);
    late
}

/// A row that passed the filter and is not late: user, window start, bytes, and the
/// watermark before it. Rows cross threads in vectors of 1,024 on channels of 4, like
/// flowctl's batches, with the user inline (`SmolStr`, as flowctl's string values):
/// with a `String` of its own per row, allocated on one thread and freed on the other
/// by the system allocator, these programs took 1.7-1.9x the single-threaded CPU time
/// instead of 1.1-1.2x (with mimalloc, as flowctl uses, the `String` cost nothing).
type Kept = (Str, i64, i64, i64);

/// The filter and lateness decisions of the threads that parse: the largest event
/// time so far (every row read counts) and the late rows.
struct Judge {
    max_ts: i64,
    late: u64,
}

impl Judge {
    /// The row as a kept row, or None when it is filtered out or late.
    fn keep(&mut self, (ts, user, bytes, status): (i64, &str, &str, &str)) -> Option<Kept> {
        let watermark = watermark(self.max_ts);
        self.max_ts = self.max_ts.max(ts);
        if status != "200" {
            return None;
        }
        let Some(start) = window_start(ts, watermark) else {
            self.late += 1;
            return None;
        };
        Some((Str::new(user), start, bytes.parse().expect("bytes"), watermark))
    }
}

/// Adds kept rows to `windows`, firing what their watermarks close first.
fn add_kept(windows: &mut Windows, rows: Vec<Kept>, emit: &mut impl FnMut(String)) {
    for (user, start, bytes, watermark) in rows {
        windows.fire(watermark, emit);
        windows.add(&user, start, bytes);
    }
}

/// `w1` on two threads: this one reads, parses, filters and decides lateness (it
/// knows the watermark before every row); the other keeps the windows, fires them
/// and hands the lines to `emit`. The same windows as `w1`.
pub fn w1_two_threads(input: impl BufRead, mut emit: impl FnMut(String) + Send) -> u64 {
    let (tx, rx) = sync_channel::<Vec<Kept>>(4);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut windows = Windows::default();
            for rows in rx {
                add_kept(&mut windows, rows, &mut emit);
            }
            windows.fire(i64::MAX, &mut emit);
        });
        let mut judge = Judge { max_ts: i64::MIN, late: 0 };
        let mut rows = Vec::with_capacity(1024);
        for line in input.lines().skip(1) {
            let line = line.expect("readable input");
            rows.extend(fields(&line).and_then(|row| judge.keep(row)));
            if rows.len() == 1024 {
                tx.send(std::mem::replace(&mut rows, Vec::with_capacity(1024))).expect("window thread");
            }
        }
        tx.send(rows).expect("window thread");
        // The window thread ends when the channel closes.
        drop(tx);
        judge.late
    })
}

/// Bytes of the file per block of `w1_two_workers`.
const BLOCK: u64 = 1 << 20;

/// The largest event time of every block parsed so far, shared by the workers: the
/// watermark before a block's first row follows from the blocks before it.
struct BlockMaxima {
    maxima: Mutex<Vec<Option<i64>>>,
    posted: Condvar,
}

impl BlockMaxima {
    fn post(&self, block: usize, max: i64) {
        self.maxima.lock().expect("lock")[block] = Some(max);
        self.posted.notify_all();
    }

    /// The largest event time before `block` (waits for the blocks before it).
    fn before(&self, block: usize) -> i64 {
        let mut maxima = self.maxima.lock().expect("lock");
        while !maxima[..block].iter().all(Option::is_some) {
            maxima = self.posted.wait(maxima).expect("lock");
        }
        maxima[..block].iter().flatten().copied().max().unwrap_or(i64::MIN)
    }
}

/// The lines starting in block `b` of the file, the header left out: those after
/// the first newline at or after the block's start that start before its end.
fn block_text(file: &std::fs::File, b: usize, size: u64) -> String {
    use std::os::unix::fs::FileExt;
    let from = (b as u64 * BLOCK).saturating_sub(1);
    let to = ((b as u64 + 1) * BLOCK + 4096).min(size);
    let mut buf = vec![0; (to - from) as usize];
    file.read_exact_at(&mut buf, from).expect("read block");
    let end = (((b as u64 + 1) * BLOCK - from) as usize).min(buf.len());
    let first = buf.iter().position(|&c| c == b'\n').map_or(buf.len(), |i| i + 1);
    // The last line starting before the end runs to the next newline.
    let last = if first >= end {
        first
    } else {
        buf[end - 1..].iter().position(|&c| c == b'\n').map_or(buf.len(), |i| end + i)
    };
    String::from_utf8(buf[first..last].to_vec()).expect("UTF-8")
}

/// `w1` on two workers splitting the data: worker w parses blocks w, w + 2, ...,
/// decides filter and lateness, keeps the rows of its own users (by a hash of the
/// user) and sends the others' to the other worker; each worker adds rows to its
/// windows in block order. The same windows as `w1`; lines go to `out` in pieces of
/// 64 KiB or more. Returns the number of late records.
pub fn w1_two_workers(path: &str, out: &Mutex<impl Write + Send>) -> u64 {
    let file = std::fs::File::open(path).expect("open input");
    let size = file.metadata().expect("stat input").len();
    let blocks = size.div_ceil(BLOCK) as usize;
    let maxima = BlockMaxima { maxima: Mutex::new(vec![None; blocks]), posted: Condvar::new() };
    let worker = |w: usize, to_other: SyncSender<Vec<Kept>>, from_other: Receiver<Vec<Kept>>| {
        let mut windows = Windows::default();
        let mut text = String::new();
        let mut emit = |line: String| {
            text.push_str(&line);
            text.push('\n');
            if text.len() >= 64 * 1024 {
                out.lock().expect("lock").write_all(text.as_bytes()).expect("write");
                text.clear();
            }
        };
        let mut late = 0;
        for b in (w..blocks).step_by(2) {
            let block = block_text(&file, b, size);
            let rows: Vec<_> = block.lines().filter_map(fields).collect();
            maxima.post(b, rows.iter().map(|r| r.0).max().unwrap_or(i64::MIN));
            let mut judge = Judge { max_ts: maxima.before(b), late: 0 };
            let (mut mine, mut theirs) = (Vec::new(), Vec::new());
            for row in rows.into_iter().filter_map(|row| judge.keep(row)) {
                let owner = row.0.bytes().fold(0usize, |h, c| h.wrapping_mul(31).wrapping_add(usize::from(c))) % 2;
                if owner == w {
                    mine.push(row);
                } else {
                    theirs.push(row);
                }
            }
            late += judge.late;
            to_other.send(theirs).expect("other worker");
            // The other worker's rows of the block before this one, then this one's.
            if b > 0 {
                add_kept(&mut windows, from_other.recv().expect("other worker"), &mut emit);
            }
            add_kept(&mut windows, mine, &mut emit);
        }
        drop(to_other);
        // The other worker's last block, when it comes after this worker's last.
        for rows in from_other {
            add_kept(&mut windows, rows, &mut emit);
        }
        windows.fire(i64::MAX, &mut emit);
        out.lock().expect("lock").write_all(text.as_bytes()).expect("write");
        late
    };
    let (to_0, from_1) = sync_channel(4);
    let (to_1, from_0) = sync_channel(4);
    std::thread::scope(|scope| {
        let one = scope.spawn(|| worker(1, to_0, from_0));
        worker(0, to_1, from_1) + one.join().expect("worker 1")
    })
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: w1_reference [--two-threads | --two-workers] FILE.csv";
    let (mode, path) = match args.as_slice() {
        [path] => ("", path),
        [mode, path] => (mode.as_str(), path),
        _ => panic!("{usage}"),
    };
    let late = if mode == "--two-workers" {
        w1_two_workers(path, &Mutex::new(std::io::stdout()))
    } else {
        let file = std::fs::File::open(path).expect("open input");
        let input = std::io::BufReader::with_capacity(256 * 1024, file);
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let emit = |line: String| writeln!(out, "{line}").expect("write");
        match mode {
            "" => w1(input, emit),
            "--two-threads" => w1_two_threads(input, emit),
            _ => panic!("{usage}"),
        }
    };
    eprintln!("late: {late}");
}
