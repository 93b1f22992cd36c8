//! The `flowctl` binary: parse the command line, run it, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = flowctl::cli::Cli::parse();
    std::process::exit(flowctl::cli::run(cli));
}
