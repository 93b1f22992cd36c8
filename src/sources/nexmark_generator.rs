//! The Nexmark event generator, writing each event straight into a record's values.
//!
//! A port of the `nexmark` crate's generator (Apache-2.0; itself a port of the
//! Beam/Flink Nexmark generator), drawing the same random numbers in the same order
//! from the same seeded `SmallRng` per event, so every field equals the crate's but one:
//! the trailing `extra` padding keeps the crate's length, and its letters are a slice,
//! at a random offset, of 256 KiB of random lowercase letters made once per process,
//! where the crate draws a random number per letter and allocates the string (that was
//! most of the generator's time; `extra` is meaningless padding, drawn last, so nothing
//! else changes). A test compares the two on every field. Short strings are built
//! inline, and the fixed ones (cities, channels, URLs) and `extra` are shared statics,
//! so a bid allocates only its value vector, persons and auctions also their long names.

use crate::record::{Str, Value};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use std::fmt::Write;
use std::sync::OnceLock;

/// Of every 50 events, 1 is a person, 3 are auctions and 46 are bids.
const PROPORTION_DENOMINATOR: usize = 50;
const PERSON_PROPORTION: usize = 1;
const AUCTION_PROPORTION: usize = 3;
/// Ids start here (Nexmark's FIRST_PERSON_ID and FIRST_AUCTION_ID).
const FIRST_PERSON_ID: usize = 1000;
const FIRST_AUCTION_ID: usize = 1000;
const FIRST_CATEGORY_ID: usize = 10;
const NUM_CATEGORIES: usize = 5;
const ACTIVE_PEOPLE: usize = 1000;
const IN_FLIGHT_AUCTIONS: usize = 100;
const PERSON_ID_LEAD: usize = 10;
const AUCTION_ID_LEAD: usize = 10;
/// 1 in N sellers, auctions, bidders and channels is not hot.
const HOT_SELLER_RATIO: usize = 4;
const HOT_AUCTION_RATIO: usize = 2;
const HOT_BIDDER_RATIO: usize = 4;
const HOT_CHANNEL_RATIO: usize = 2;
/// Hot ones are the first of each batch of this many.
const HOT_BATCH: usize = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
const CHANNELS: usize = 10_000;
/// Letters of the `extra` pool per 64-bit random number: 8 base-26 digits use 38 of
/// its bits, so each letter's probability is within 10^-7 of 1/26.
const LETTERS_PER_DRAW: usize = 8;
/// The letters every `extra` is cut from: enough that their shares are close to 1/26,
/// few enough to stay in a core's second-level cache.
const EXTRA_POOL_BYTES: usize = 256 * 1024;

const FIRST_NAMES: [&str; 11] =
    ["peter", "paul", "luke", "john", "saul", "vicky", "kate", "julie", "sarah", "deiter", "walter"];
const LAST_NAMES: [&str; 9] = ["shultz", "abrams", "spencer", "white", "bartels", "walton", "smith", "jones", "noris"];
const US_CITIES: [&str; 10] =
    ["phoenix", "los angeles", "san francisco", "boise", "portland", "bend", "redmond", "seattle", "kent", "cheyenne"];
const US_STATES: [&str; 6] = ["az", "ca", "id", "or", "wa", "wy"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// The three kinds of Nexmark event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Person,
    Auction,
    Bid,
}

/// Makes event number `n` of a stream whose ids start at `first_event_id`, spaced in
/// event time as at `rate` events per second from `base_time`.
#[derive(Clone)]
pub struct NexmarkGenerator {
    base_time: u64,
    /// Microseconds between events.
    delay_us: f64,
    first_event_id: usize,
    /// Letters of the string being built.
    scratch: Vec<u8>,
}

impl NexmarkGenerator {
    pub fn new(base_time: u64, rate: u64, first_event_id: usize) -> NexmarkGenerator {
        NexmarkGenerator { base_time, delay_us: 1e6 / rate.max(1) as f64, first_event_id, scratch: Vec::new() }
    }

    pub fn kind(&self, n: u64) -> EventKind {
        match n as usize % PROPORTION_DENOMINATOR {
            r if r < PERSON_PROPORTION => EventKind::Person,
            r if r < PERSON_PROPORTION + AUCTION_PROPORTION => EventKind::Auction,
            _ => EventKind::Bid,
        }
    }

    /// Event time of event `n`, in milliseconds.
    pub fn timestamp(&self, n: u64) -> u64 {
        self.base_time + (n as f64 * self.delay_us / 1000.0).round() as u64
    }

    /// Person `n`'s fields after `event_type`: id, name, email_address, credit_card,
    /// city, state, date_time, extra.
    pub fn person(&mut self, n: u64, values: &mut Vec<Value>) {
        let event_id = self.first_event_id + n as usize;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let mut name = smol_str::SmolStrBuilder::new();
        let _ = write!(name, "{} {}", pick(rng, &FIRST_NAMES), pick(rng, &LAST_NAMES));
        let name = name.finish();
        let user = self.letters_exact(rng, 7);
        let domain = self.letters_exact(rng, 5);
        let email = smol_str::format_smolstr!("{user}@{domain}.com");
        let card: [i32; 4] = std::array::from_fn(|_| rng.gen_range(0..10000));
        let credit_card = smol_str::format_smolstr!("{:04} {:04} {:04} {:04}", card[0], card[1], card[2], card[3]);
        let city = pick(rng, &US_CITIES);
        let state = pick(rng, &US_STATES);
        let size = 8 + name.len() + email.len() + credit_card.len() + city.len() + state.len();
        let extra = extra(rng, size, AVG_PERSON_BYTES);
        values.extend([
            Value::Int((person_last_id(event_id) + FIRST_PERSON_ID) as i64),
            Value::Str(name),
            Value::Str(email),
            Value::Str(credit_card),
            Value::Str(Str::new_static(city)),
            Value::Str(Str::new_static(state)),
            Value::Timestamp(self.timestamp(n) as i64),
            Value::Str(extra),
        ]);
    }

    /// Auction `n`'s fields after `event_type`: id, item_name, description,
    /// initial_bid, reserve, date_time, expires, seller, category, extra.
    pub fn auction(&mut self, n: u64, values: &mut Vec<Value>) {
        let event_id = self.first_event_id + n as usize;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let item_name = self.letters_exact(rng, 20);
        let description = self.letters_exact(rng, 100);
        let initial_bid = price(rng);
        let reserve = initial_bid + price(rng);
        let time = self.timestamp(n);
        // Auctions last about as long as it takes to start IN_FLIGHT_AUCTIONS more.
        let events_for_auctions = (IN_FLIGHT_AUCTIONS * PROPORTION_DENOMINATOR) / AUCTION_PROPORTION;
        let horizon = self.timestamp(n + events_for_auctions as u64) - time;
        let expires = time + 1 + rng.gen_range(0..(horizon * 2).max(1));
        let seller = if rng.gen_range(0..HOT_SELLER_RATIO) > 0 {
            (person_last_id(event_id) / HOT_BATCH) * HOT_BATCH
        } else {
            person_next_id(event_id, rng)
        };
        let category = FIRST_CATEGORY_ID + rng.gen_range(0..NUM_CATEGORIES);
        let extra = extra(rng, 8 + item_name.len() + description.len() + 8 * 5, AVG_AUCTION_BYTES);
        values.extend([
            Value::Int((auction_last_id(event_id) + FIRST_AUCTION_ID) as i64),
            Value::Str(item_name),
            Value::Str(description),
            Value::Int(initial_bid as i64),
            Value::Int(reserve as i64),
            Value::Timestamp(time as i64),
            Value::Timestamp(expires as i64),
            Value::Int((seller + FIRST_PERSON_ID) as i64),
            Value::Int(category as i64),
            Value::Str(extra),
        ]);
    }

    /// Bid `n`'s fields after `event_type`: auction, bidder, price, channel, url,
    /// date_time, extra.
    pub fn bid(&mut self, n: u64, values: &mut Vec<Value>) {
        let event_id = self.first_event_id + n as usize;
        let rng = &mut SmallRng::seed_from_u64(event_id as u64);
        let auction = if 0 < rng.gen_range(0..HOT_AUCTION_RATIO) {
            (auction_last_id(event_id) / HOT_BATCH) * HOT_BATCH
        } else {
            auction_next_id(event_id, rng)
        };
        let bidder = if 0 < rng.gen_range(0..HOT_BIDDER_RATIO) {
            // The second of the batch, so hot bidders and hot sellers differ.
            (person_last_id(event_id) / HOT_BATCH) * HOT_BATCH + 1
        } else {
            person_next_id(event_id, rng)
        };
        let price = price(rng);
        let (channel, url) = if rng.gen_range(0..HOT_CHANNEL_RATIO) > 0 {
            let hot = rng.gen_range(0..HOT_CHANNELS.len());
            (HOT_CHANNELS[hot], hot_urls()[hot])
        } else {
            pick(rng, channel_urls())
        };
        let extra = extra(rng, 8 * 4, AVG_BID_BYTES);
        values.extend([
            Value::Int((auction + FIRST_AUCTION_ID) as i64),
            Value::Int((bidder + FIRST_PERSON_ID) as i64),
            Value::Int(price as i64),
            Value::Str(Str::new_static(channel)),
            Value::Str(Str::new_static(url)),
            Value::Timestamp(self.timestamp(n) as i64),
            Value::Str(extra),
        ]);
    }

    /// `length` letters drawn one by one, as the crate draws them.
    fn letters_exact(&mut self, rng: &mut SmallRng, length: usize) -> Str {
        self.scratch.clear();
        self.scratch.resize(length, 0);
        for letter in &mut self.scratch {
            *letter = rng.gen_range(b'a'..=b'z');
        }
        Str::new(std::str::from_utf8(&self.scratch).expect("letters are ASCII"))
    }
}

/// Padding that brings an event of `size` bytes to about `average` bytes: the
/// crate's length (within a fifth of the shortfall), random letters from the pool.
fn extra(rng: &mut SmallRng, size: usize, average: usize) -> Str {
    if size > average {
        return Str::default();
    }
    let wanted = average - size;
    let delta = (wanted + 2) / 5;
    let length = wanted - delta + if delta == 0 { 0 } else { rng.gen_range(0..2 * delta) };
    let pool = extra_pool();
    let start = (rng.next_u64() % (pool.len() - length + 1) as u64) as usize;
    Str::new_static(&pool[start..start + length])
}

/// Random lowercase letters, the same in every process (a fixed seed), made once.
fn extra_pool() -> &'static str {
    static POOL: OnceLock<&'static str> = OnceLock::new();
    POOL.get_or_init(|| {
        let rng = &mut SmallRng::seed_from_u64(0x006e_6578_6d61_726b);
        let bytes: Vec<u8> = (0..EXTRA_POOL_BYTES / LETTERS_PER_DRAW).flat_map(|_| letters(rng.next_u64())).collect();
        leak(String::from_utf8(bytes).expect("letters are ASCII"))
    })
}

/// Eight letters from 64 random bits: the leading base-26 digits of the fraction
/// bits / 2^64, two at a time (each multiplication by 26^2 shifts the next pair into the
/// high word).
fn letters(mut bits: u64) -> [u8; LETTERS_PER_DRAW] {
    let mut out = [0; LETTERS_PER_DRAW];
    for pair in out.chunks_exact_mut(2) {
        let shifted = bits as u128 * 676;
        pair.copy_from_slice(&LETTER_PAIRS[(shifted >> 64) as usize]);
        bits = shifted as u64;
    }
    out
}

/// The 26^2 pairs of lowercase letters, in order.
const LETTER_PAIRS: [[u8; 2]; 676] = {
    let mut pairs = [[0; 2]; 676];
    let mut i = 0;
    while i < 676 {
        pairs[i] = [b'a' + (i / 26) as u8, b'a' + (i % 26) as u8];
        i += 1;
    }
    pairs
};

/// One of `items`, drawn as the crate's `choose` draws it.
fn pick<T: Copy>(rng: &mut SmallRng, items: &[T]) -> T {
    *items.choose(rng).expect("a fixed non-empty list")
}

/// A price in cents, log-uniform from $1 to $1M.
fn price(rng: &mut SmallRng) -> usize {
    (10.0_f32.powf(rng.gen::<f32>() * 6.0) * 100.0).round() as usize
}

/// The last person id (from 0) at event `event_id`: the current one for a person
/// (each group of `PROPORTION_DENOMINATOR` events starts with its one person).
fn person_last_id(event_id: usize) -> usize {
    event_id / PROPORTION_DENOMINATOR
}

/// A random recent person (from 0), possibly a few not yet created.
fn person_next_id(event_id: usize, rng: &mut SmallRng) -> usize {
    let people = person_last_id(event_id) + 1;
    let active = people.min(ACTIVE_PEOPLE);
    people - active + rng.gen_range(0..active + PERSON_ID_LEAD)
}

/// The last auction id (from 0) at event `event_id`: the current one for an auction.
fn auction_last_id(event_id: usize) -> usize {
    let mut epoch = event_id / PROPORTION_DENOMINATOR;
    let mut offset = event_id % PROPORTION_DENOMINATOR;
    if offset < PERSON_PROPORTION {
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if PERSON_PROPORTION + AUCTION_PROPORTION <= offset {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

/// A random auction (from 0) among those in flight, possibly a few not yet created.
fn auction_next_id(event_id: usize, rng: &mut SmallRng) -> usize {
    let max = auction_last_id(event_id);
    let min = max.saturating_sub(IN_FLIGHT_AUCTIONS);
    min + rng.gen_range(0..max - min + 1 + AUCTION_ID_LEAD)
}

/// An item URL with three random path segments.
fn base_url(seed: u64) -> String {
    let rng = &mut SmallRng::seed_from_u64(seed);
    let mut segment = || -> String {
        let length = rng.gen_range(3..5usize);
        (0..length)
            .map(|_| if rng.gen_range(0..13i32) == 0 { '_' } else { rng.gen_range(b'a'..=b'z') as char })
            .collect()
    };
    let (a, b, c) = (segment(), segment(), segment());
    format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
}

/// The URLs of the four hot channels.
fn hot_urls() -> &'static [&'static str; 4] {
    static URLS: OnceLock<[&'static str; 4]> = OnceLock::new();
    URLS.get_or_init(|| std::array::from_fn(|i| leak(base_url(i as u64))))
}

/// The other channels, `channel-N`, and their URLs: made once per process and kept
/// for its life (about 700 KB), so events share them without reference counting.
fn channel_urls() -> &'static [(&'static str, &'static str)] {
    static CHANNELS_URLS: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    CHANNELS_URLS.get_or_init(|| {
        (0..CHANNELS)
            .map(|i| {
                let mut url = base_url(i as u64);
                if SmallRng::seed_from_u64(i as u64).gen_range(0..10i32) > 0 {
                    let _ = write!(url, "&channel_id={}", ((i as i32).reverse_bits() as i64).abs());
                }
                (leak(format!("channel-{i}")), leak(url))
            })
            .collect()
    })
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmark::config::NexmarkConfig;
    use nexmark::event::Event;

    fn ours(generator: &mut NexmarkGenerator, n: u64) -> Vec<Value> {
        let mut values = Vec::new();
        match generator.kind(n) {
            EventKind::Person => generator.person(n, &mut values),
            EventKind::Auction => generator.auction(n, &mut values),
            EventKind::Bid => generator.bid(n, &mut values),
        }
        values
    }

    fn crates(event: Event) -> Vec<Value> {
        let (int, time, text) = (|v: usize| Value::Int(v as i64), |v: u64| Value::Timestamp(v as i64), Value::str);
        match event {
            Event::Person(p) => vec![
                int(p.id),
                text(&p.name),
                text(&p.email_address),
                text(&p.credit_card),
                text(&p.city),
                text(&p.state),
                time(p.date_time),
                text(&p.extra),
            ],
            Event::Auction(a) => vec![
                int(a.id),
                text(&a.item_name),
                text(&a.description),
                int(a.initial_bid),
                int(a.reserve),
                time(a.date_time),
                time(a.expires),
                int(a.seller),
                int(a.category),
                text(&a.extra),
            ],
            Event::Bid(b) => vec![
                int(b.auction),
                int(b.bidder),
                int(b.price),
                text(&b.channel),
                text(&b.url),
                time(b.date_time),
                text(&b.extra),
            ],
        }
    }

    /// Every field equals the `nexmark` crate's, `extra` in length and alphabet only;
    /// event numbers past 2^24 / 100 are left out, where the crate's single-precision
    /// event time starts to round differently from ours.
    #[test]
    fn events_equal_the_nexmark_crates_but_for_extras_letters() {
        for (base, first_event_id) in [(1_704_067_200_000, 0), (1_000, 1_000_000_000)] {
            let config = NexmarkConfig {
                base_time: base,
                first_rate: 10_000,
                next_rate: 10_000,
                first_event_id,
                ..NexmarkConfig::default()
            };
            let mut generator = NexmarkGenerator::new(base, 10_000, first_event_id);
            let mut letters = [0usize; 26];
            for (n, event) in nexmark::EventGenerator::new(config).take(150_000).enumerate() {
                let (mut mine, mut theirs) = (ours(&mut generator, n as u64), crates(event));
                let (Some(Value::Str(a)), Some(Value::Str(b))) = (mine.pop(), theirs.pop()) else { panic!() };
                assert_eq!(mine, theirs, "event {n}");
                assert_eq!(a.len(), b.len(), "extra of event {n}");
                for c in a.bytes() {
                    letters[(c - b'a') as usize] += 1;
                }
            }
            let total: usize = letters.iter().sum();
            for count in letters {
                let share = count as f64 / total as f64;
                assert!((share - 1.0 / 26.0).abs() < 0.001, "{letters:?}");
            }
        }
    }
}
