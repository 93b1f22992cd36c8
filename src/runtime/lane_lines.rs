//! Lines a source lane encodes itself for the one sink its records go to (a
//! stateless pipeline into a sink that writes text, or the `blackhole`), so that a
//! record is made, encoded and freed on one core and the sink only writes: operator
//! chaining as Flink does it, source to sink in one task. The text travels with each
//! record's origin and event time, which the merge needs for positions and watermarks.
//!
//! Failure markers of the lane's steps still travel as records, in order between the
//! lines (a run that stops on a failure has written exactly the lines before it).

use super::lane_steps::{is_failure, is_tick};
use super::Message;
use super::Outbox;
use crate::record::{Batch, Origin};
use crate::sinks::encode::LineEncoder;

/// One output (or tick) of a lane, in order: where its input came from, its event
/// time, and where its line ends in the text.
pub struct LineEntry {
    pub origin: Origin,
    pub event_time: Option<i64>,
    /// The byte after its line in [`EncodedLines::text`] (a tick has an empty line).
    pub end: usize,
    /// Whether it is a record (counted as written), not a tick.
    pub record: bool,
}

/// A lane's records as lines, in order.
pub struct EncodedLines {
    pub text: String,
    pub entries: Vec<LineEntry>,
}

/// Encodes a lane's outputs for its sink.
pub struct LaneLines {
    encoder: LineEncoder,
    /// The text of the last batch, in bytes: the next one's first allocation.
    size_hint: usize,
}

impl LaneLines {
    pub fn new(encoder: LineEncoder) -> LaneLines {
        LaneLines { encoder, size_hint: 0 }
    }

    /// Sends the lane's outputs (records, ticks and failure markers, in order) as
    /// lines, failure markers as batches of their own between them; the records are
    /// freed here. False when the executor has gone.
    pub fn send(&mut self, records: &mut Batch, out: &mut impl Outbox) -> bool {
        let mut lines = self.start(records.len());
        for record in records.drain(..) {
            if is_failure(&record) {
                if !lines.entries.is_empty() {
                    let done = std::mem::replace(&mut lines, self.start(0));
                    if !out.put(Message::Lines(done)) {
                        return false;
                    }
                }
                if !out.put(Message::Batch(vec![record])) {
                    return false;
                }
                continue;
            }
            let tick = is_tick(&record);
            if !tick {
                self.encoder.encode(&record, &mut lines.text);
            }
            let end = lines.text.len();
            lines.entries.push(LineEntry { origin: record.origin, event_time: record.event_time, end, record: !tick });
        }
        self.size_hint = lines.text.len();
        lines.entries.is_empty() || out.put(Message::Lines(lines))
    }

    fn start(&self, records: usize) -> EncodedLines {
        EncodedLines { text: String::with_capacity(self.size_hint), entries: Vec::with_capacity(records) }
    }
}
