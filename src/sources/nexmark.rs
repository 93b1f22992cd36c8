//! The `nexmark` source: the Nexmark benchmark's person, auction and bid events
//! (1 : 3 : 46), from `nexmark_generator` (a port of the Beam/Flink generator): every
//! event is a pure function of its number, so the stream is deterministic and any
//! position can be resumed. Event time (`date_time`) is spaced as at `rate` events per
//! second (10 000 by default, as in Nexmark) from a fixed base time; `rate` also paces
//! the wall clock, while without it events come as fast as the pipeline takes them.
//!
//! Each event is a flat record with `event_type` (`person`, `auction` or `bid`) and
//! that type's fields, in snake case, as Flink's Nexmark views name them:
//! - person: `id, name, email_address, credit_card, city, state, date_time, extra`
//! - auction: `id, item_name, description, initial_bid, reserve, date_time, expires,
//!   seller, category, extra`
//! - bid: `auction, bidder, price, channel, url, date_time, extra`

use super::nexmark_generator::{EventKind, NexmarkGenerator};
use super::synthetic::Synthetic;
use super::{BadRecord, Source};
use crate::error::Result;
use crate::record::{Batch, Origin, Record, Schema, SchemaMaker, Value};
use std::sync::Arc;

/// Event time of event 0: 2024-01-01T00:00:00Z (fixed, so runs repeat exactly).
pub const BASE_TIME_MS: u64 = 1_704_067_200_000;

/// The event rate Nexmark assumes when none is given.
const DEFAULT_RATE: u64 = 10_000;

/// A `nexmark` source's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NexmarkConfig {
    /// Events in all (None: unbounded).
    pub events: Option<u64>,
    /// Events per second (None: as fast as read).
    pub rate: Option<u64>,
    pub seed: u64,
    /// `parallelism:`: the lanes that generate the stream.
    pub lanes: usize,
}

impl NexmarkConfig {
    /// The source as its lanes, each making its share of the stream.
    pub fn build(&self, origin: Origin) -> Vec<Box<dyn Source>> {
        let lanes = self.lanes as u64;
        (0..lanes)
            .map(|lane| -> Box<dyn Source> {
                Box::new(NexmarkSource::new(self.events, self.rate, self.seed, origin, (lane, lanes)))
            })
            .collect()
    }

    /// One unpaced lane can be cut into blocks ahead of reading.
    pub fn readable_in_blocks(&self) -> bool {
        self.rate.is_none() && self.lanes <= 1
    }
}

pub struct NexmarkSource {
    /// This lane's number and the number of lanes: lane k makes events k, k + n, k + 2n, ...
    lane: (u64, u64),
    generator: NexmarkGenerator,
    synthetic: Synthetic,
    layouts: Layouts,
}

/// The record layout of each event type.
struct Layouts {
    person: SchemaMaker,
    auction: SchemaMaker,
    bid: SchemaMaker,
    types: [Value; 3],
}

impl NexmarkSource {
    /// `seed` shifts the event ids (0: the standard Nexmark stream). `lane` is (k, n):
    /// this source makes every n-th event from event k, its share of `events` and of
    /// `rate`, so n lanes together make the stream one lane makes, with event times
    /// advancing alike on every lane.
    pub fn new(events: Option<u64>, rate: Option<u64>, seed: u64, origin: Origin, lane: (u64, u64)) -> NexmarkSource {
        let (k, n) = (lane.0, lane.1.max(1));
        let first_event_id = (seed as usize).saturating_mul(1_000_000_000);
        let share = |total: u64| total / n + u64::from(k < total % n);
        NexmarkSource {
            lane: (k, n),
            generator: NexmarkGenerator::new(BASE_TIME_MS, rate.unwrap_or(DEFAULT_RATE), first_event_id),
            synthetic: Synthetic::new(events.map(share), rate.map(|r| share(r).max(1)), origin),
            layouts: Layouts::new(),
        }
    }
}

impl Layouts {
    fn new() -> Layouts {
        Layouts {
            person: SchemaMaker::new(&Schema::from_names(&[
                "event_type",
                "id",
                "name",
                "email_address",
                "credit_card",
                "city",
                "state",
                "date_time",
                "extra",
            ])),
            auction: SchemaMaker::new(&Schema::from_names(&[
                "event_type",
                "id",
                "item_name",
                "description",
                "initial_bid",
                "reserve",
                "date_time",
                "expires",
                "seller",
                "category",
                "extra",
            ])),
            bid: SchemaMaker::new(&Schema::from_names(&[
                "event_type",
                "auction",
                "bidder",
                "price",
                "channel",
                "url",
                "date_time",
                "extra",
            ])),
            types: [Value::str("person"), Value::str("auction"), Value::str("bid")],
        }
    }

    /// Makers of the same shapes (twins: the same schema ids), for another thread: the
    /// compiled expressions both threads run remember one shape per field, and shapes
    /// of their own would overwrite each other's there on every lookup.
    fn twins(&self) -> Layouts {
        Layouts {
            person: SchemaMaker::new(self.person.schema()),
            auction: SchemaMaker::new(self.auction.schema()),
            bid: SchemaMaker::new(self.bid.schema()),
            types: self.types.clone(),
        }
    }

    /// Event `n` as a record of its type's layout.
    fn record(&mut self, generator: &mut NexmarkGenerator, n: u64) -> Record {
        type Make = fn(&mut NexmarkGenerator, u64, &mut Vec<Value>);
        let (maker, event_type, make): (&mut SchemaMaker, &Value, Make) = match generator.kind(n) {
            EventKind::Person => (&mut self.person, &self.types[0], NexmarkGenerator::person),
            EventKind::Auction => (&mut self.auction, &self.types[1], NexmarkGenerator::auction),
            EventKind::Bid => (&mut self.bid, &self.types[2], NexmarkGenerator::bid),
        };
        let schema = maker.for_record();
        let mut values = Vec::with_capacity(schema.len());
        values.push(event_type.clone());
        make(generator, n, &mut values);
        Record::new(schema, values)
    }
}

impl Source for NexmarkSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        let (generator, layouts, (k, n)) = (&mut self.generator, &mut self.layouts, self.lane);
        Ok(self.synthetic.fill(max, out, bad, |i| Ok(layouts.record(generator, k + i * n))))
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![Arc::from("<nexmark>")]
    }

    fn bounded(&self) -> bool {
        self.synthetic.bounded()
    }

    fn replayable(&self) -> bool {
        true
    }

    fn lane(&self) -> Option<String> {
        let (k, n) = self.lane;
        (n > 1).then(|| format!("{k}/{n}"))
    }

    fn fixed_lanes(&self) -> bool {
        true
    }

    fn seek(&mut self, position: &Origin) -> Result<()> {
        self.synthetic.next = position.offset;
        Ok(())
    }

    /// A single lane's stream from where it stands, in blocks of [`BLOCK_EVENTS`]
    /// events, block k made by share k mod `workers`; not when it is paced to a rate
    /// (it is not short of cores then) or made by several lanes.
    fn block_shares(&self, workers: usize) -> Option<Vec<Box<dyn super::BlockShare>>> {
        if self.synthetic.paced() || self.lane.1 > 1 {
            return None;
        }
        let share = |k: usize| -> Box<dyn super::BlockShare> {
            Box::new(NexmarkShare {
                generator: self.generator.clone(),
                layouts: self.layouts.twins(),
                numbering: self.synthetic.clone(),
                from: self.synthetic.next,
                end: self.synthetic.count(),
                block: k as u64,
                workers: workers as u64,
                next: 0,
                block_end: 0,
            })
        };
        Some((0..workers).map(share).collect())
    }
}

/// Events per block of a stream made by several threads.
const BLOCK_EVENTS: u64 = 8192;

/// One thread's share of a Nexmark stream: blocks `block`, `block + workers`, ... of
/// the events from `from` on.
struct NexmarkShare {
    generator: NexmarkGenerator,
    layouts: Layouts,
    /// Numbers records as the single lane does.
    numbering: Synthetic,
    from: u64,
    /// The number of events in all, when bounded.
    end: Option<u64>,
    /// The next block to make, counted from `from`.
    block: u64,
    workers: u64,
    /// The next event of the current block, and the end of the block.
    next: u64,
    block_end: u64,
}

impl super::BlockShare for NexmarkShare {
    fn next_block(&mut self) -> Result<bool> {
        let start = self.from + self.block * BLOCK_EVENTS;
        let end = (start + BLOCK_EVENTS).min(self.end.unwrap_or(u64::MAX));
        if start >= end {
            return Ok(false);
        }
        (self.next, self.block_end, self.block) = (start, end, self.block + self.workers);
        Ok(true)
    }

    fn read(&mut self, max: usize, out: &mut Batch, _bad: &mut Vec<BadRecord>) -> Result<bool> {
        let until = self.block_end.min(self.next + max as u64);
        for n in self.next..until {
            let mut record = self.layouts.record(&mut self.generator, n);
            record.origin = self.numbering.origin_of(n);
            out.push(record);
        }
        self.next = until;
        Ok(self.next < self.block_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(source: &mut NexmarkSource, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        source.read_batch(n, &mut out, &mut Vec::new()).unwrap();
        out.iter().map(Record::to_json).collect()
    }

    #[test]
    fn the_stream_is_deterministic_resumable_and_in_nexmark_proportions() {
        let new = || NexmarkSource::new(Some(100), None, 0, Origin::default(), (0, 1));
        let mut a = new();
        let first = take(&mut a, 100);
        let mut b = new();
        assert_eq!(take(&mut b, 100), first);
        let mut resumed = new();
        resumed.seek(&Origin { offset: 40, ..Origin::default() }).unwrap();
        assert_eq!(take(&mut resumed, 60), first[40..]);
        let count = |t: &str| first.iter().filter(|r| r.contains(&format!("\"event_type\":\"{t}\""))).count();
        assert_eq!((count("person"), count("auction"), count("bid")), (2, 6, 92));
        assert!(first[0].contains("\"date_time\":\"2024-01-01T00:00:00.000Z\""), "{}", first[0]);
    }

    #[test]
    fn lanes_share_the_stream_and_resume_on_their_own() {
        let lane = |k, n| NexmarkSource::new(Some(100), None, 0, Origin::default(), (k, n));
        let one = take(&mut lane(0, 1), 100);
        let lanes: Vec<Vec<String>> = (0..3).map(|k| take(&mut lane(k, 3), 100)).collect();
        assert_eq!(lanes.iter().map(Vec::len).collect::<Vec<_>>(), [34, 33, 33]);
        let interleaved: Vec<String> = (0..100).map(|i| lanes[i % 3][i / 3].clone()).collect();
        assert_eq!(interleaved, one);
        let mut resumed = lane(1, 3);
        resumed.seek(&Origin { offset: 10, ..Origin::default() }).unwrap();
        assert_eq!(take(&mut resumed, 100), lanes[1][10..]);
        assert_eq!((resumed.lane().as_deref(), lane(0, 1).lane()), (Some("1/3"), None));
    }

    /// Blocks taken from each share in turn are the single lane's records, origins
    /// included, from where the source stands.
    #[test]
    fn block_shares_in_turn_make_the_stream_from_its_position() {
        let events = 3 * BLOCK_EVENTS + 100;
        let mut source = NexmarkSource::new(Some(events), None, 0, Origin::default(), (0, 1));
        source.seek(&Origin { offset: 50, ..Origin::default() }).unwrap();
        let mut shares = source.block_shares(2).unwrap();
        let mut made = Vec::new();
        'blocks: for turn in 0.. {
            let share = &mut shares[turn % 2];
            if !share.next_block().unwrap() {
                break 'blocks;
            }
            while share.read(1000, &mut made, &mut Vec::new()).unwrap() {}
        }
        let mut whole = Vec::new();
        while source.read_batch(1000, &mut whole, &mut Vec::new()).unwrap() {}
        assert_eq!(made.len() as u64, events - 50);
        let shown = |records: &[Record]| records.iter().map(|r| (r.origin, r.to_json())).collect::<Vec<_>>();
        assert!(shown(&made) == shown(&whole), "the shares' stream differs");
        let paced = NexmarkSource::new(Some(events), Some(1000), 0, Origin::default(), (0, 1));
        assert!(paced.block_shares(2).is_none());
    }
}
