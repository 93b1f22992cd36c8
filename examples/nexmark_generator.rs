//! The `nexmark` crate's generator alone (the Rust port of Beam's that flowctl's own
//! generator draws the same events as): events per second with nothing else, the
//! baseline for the Nexmark queries in `scripts/bench`.
//!
//!   nexmark_generator N    generates N events, prints how many were bids

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let config = nexmark::config::NexmarkConfig { base_time: 1_704_067_200_000, ..Default::default() };
    let bids =
        nexmark::EventGenerator::new(config).take(n).filter(|e| matches!(e, nexmark::event::Event::Bid(_))).count();
    println!("{bids}");
}
