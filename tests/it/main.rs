//! Integration tests: every test drives the `flowctl` binary end to end.

mod cli;
mod common;
mod examples;
mod invalid;
mod on_error;
