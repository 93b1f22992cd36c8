//! Pacing of synthetic sources (`datagen`, `nexmark`) to a `rate` in records per
//! second of wall-clock time; without a rate they run as fast as the pipeline takes.

use std::time::{Duration, Instant};

pub struct Pacer {
    rate: Option<u64>,
    started: Instant,
    /// Records handed out since `started`.
    paced: u64,
}

impl Pacer {
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer { rate, started: Instant::now(), paced: 0 }
    }

    /// How many of `wanted` records may be produced now (at least one), sleeping until
    /// one is due; counts them as produced.
    pub fn take(&mut self, wanted: u64) -> u64 {
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
