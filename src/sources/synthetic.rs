//! What the synthetic sources (`datagen`, `nexmark`) share: numbering records (the
//! position a checkpoint records is the count handed out), an optional total `count`,
//! and pacing to a `rate` in records per second of wall-clock time; without a rate
//! they run as fast as the pipeline takes them.

use crate::record::{Batch, Origin, Record};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Synthetic {
    /// The number of the next record (records handed out so far).
    pub next: u64,
    count: Option<u64>,
    rate: Option<u64>,
    started: Instant,
    /// Records handed out since `started`.
    paced: u64,
    origin: Origin,
}

impl Synthetic {
    pub fn new(count: Option<u64>, rate: Option<u64>, origin: Origin) -> Synthetic {
        Synthetic { next: 0, count, rate, started: Instant::now(), paced: 0, origin }
    }

    pub fn bounded(&self) -> bool {
        self.count.is_some()
    }

    /// How many records there are in all, when bounded.
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// Whether records are paced to a rate.
    pub fn paced(&self) -> bool {
        self.rate.is_some()
    }

    /// The origin of record `number` (its line and offset are the count handed out
    /// with it, where a run that has read it continues).
    pub fn origin_of(&self, number: u64) -> Origin {
        Origin { line: number + 1, offset: number + 1, ..self.origin }
    }

    /// Appends up to `max` records made by `make(number)` (fewer when the `rate` does
    /// not allow more yet; at least one, after sleeping until it is due); a record
    /// `make` cannot make goes to `bad` with its error. False once `count` records were
    /// made.
    pub fn fill(
        &mut self,
        max: usize,
        out: &mut Batch,
        bad: &mut Vec<super::BadRecord>,
        mut make: impl FnMut(u64) -> Result<Record, String>,
    ) -> bool {
        let mut n = max as u64;
        if let Some(count) = self.count {
            n = n.min(count.saturating_sub(self.next));
            if n == 0 {
                return false;
            }
        }
        for _ in 0..self.pace(n) {
            match make(self.next) {
                Ok(mut record) => {
                    record.origin = self.origin_of(self.next);
                    out.push(record);
                }
                Err(error) => {
                    bad.push(super::BadRecord { origin: self.origin_of(self.next), raw: String::new(), error })
                }
            }
            self.next += 1;
        }
        self.count.is_none_or(|c| self.next < c)
    }

    /// How many of `wanted` records may be made now, sleeping until one is due.
    fn pace(&mut self, wanted: u64) -> u64 {
        let Some(rate) = self.rate else { return wanted };
        let due = |elapsed: Duration| (elapsed.as_secs_f64() * rate as f64) as u64;
        while due(self.started.elapsed()) <= self.paced {
            std::thread::sleep(Duration::from_millis(5).min(Duration::from_secs_f64(1.0 / rate as f64)));
        }
        let n = wanted.min(due(self.started.elapsed()) - self.paced).max(1);
        self.paced += n;
        n
    }
}
