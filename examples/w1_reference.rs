//! The W1 job written by hand, single-threaded, as the baseline of the benchmark and
//! the reference of the W1 test: `filter: status = 200`, `key_by: user_id`, 10 s
//! tumbling event-time windows with 2 s out-of-orderness on `ts`, then count and sum
//! of bytes. It follows the contract's watermark definition (every record read
//! advances the watermark, also those filtered out) and drops late records.
//!
//! Usage: `w1_reference FILE.csv` prints `user_id,window_start,window_end,count,bytes`
//! lines as windows fire, and the number of late records on stderr.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

const SIZE: i64 = 10_000;
const OUT_OF_ORDERNESS: i64 = 2_000;

/// Runs W1 over CSV text, handing each window's line to `emit` as it fires; returns
/// the number of late records.
pub fn w1(input: impl BufRead, mut emit: impl FnMut(String)) -> u64 {
    let mut windows: HashMap<(String, i64), (u64, i64)> = HashMap::new();
    let mut by_end: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut max_ts = i64::MIN;
    let mut late = 0;
    for line in input.lines().skip(1) {
        let line = line.expect("readable input");
        let mut fields = line.split(',');
        let (Some(ts), Some(user), Some(_url), Some(bytes), Some(status)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let ts: i64 = ts.parse().expect("ts");
        let watermark = if max_ts == i64::MIN { i64::MIN } else { max_ts - OUT_OF_ORDERNESS };
        max_ts = max_ts.max(ts);
        // Fire every window with end - 1 <= watermark.
        while let Some((&end, _)) = by_end.first_key_value() {
            if end - 1 > watermark {
                break;
            }
            for user in by_end.pop_first().map(|(_, users)| users).unwrap_or_default() {
                if let Some((count, sum)) = windows.remove(&(user.clone(), end - SIZE)) {
                    emit(format!("{user},{},{end},{count},{sum}", end - SIZE));
                }
            }
        }
        if status != "200" {
            continue;
        }
        let start = ts.div_euclid(SIZE) * SIZE;
        if start + SIZE - 1 <= watermark {
            late += 1;
            continue;
        }
        let bytes: i64 = bytes.parse().expect("bytes");
        let entry = windows.entry((user.to_string(), start)).or_insert_with(|| {
            by_end.entry(start + SIZE).or_default().push(user.to_string());
            (0, 0)
        });
        entry.0 += 1;
        entry.1 += bytes;
    }
    for (end, users) in by_end {
        for user in users {
            if let Some((count, sum)) = windows.remove(&(user.clone(), end - SIZE)) {
                emit(format!("{user},{},{end},{count},{sum}", end - SIZE));
            }
        }
    }
    late
}

#[allow(dead_code)]
fn main() {
    let path = std::env::args().nth(1).expect("usage: w1_reference FILE.csv");
    let file = std::fs::File::open(&path).expect("open input");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let late = w1(std::io::BufReader::with_capacity(256 * 1024, file), |line| {
        use std::io::Write;
        writeln!(out, "{line}").expect("write");
    });
    eprintln!("late: {late}");
}
