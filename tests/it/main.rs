//! Integration tests: every test drives the `flowctl` binary end to end.

#![allow(clippy::unwrap_used)]

mod block_lanes;
mod checkpoints;
mod cli;
mod common;
mod dedup;
mod docs;
mod examples;
mod export;
mod file_sink;
mod flink;
mod floats;
mod fuzz;
mod invalid;
mod kafka;
mod metric_counts;
mod on_error;
mod parallel;
mod plans;
mod projection;
mod robust;
mod services;
mod signals;
mod split;
mod sql;
mod streaming;
mod time_after_step;
mod w1;
