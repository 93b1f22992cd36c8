//! The `flowctl` binary: parse the command line, run it, map the outcome to an exit code.

use clap::Parser;

/// Records are allocated on source threads and freed on others; mimalloc handles that
/// pattern far better than the system allocator (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = flowctl::cli::Cli::parse();
    std::process::exit(flowctl::cli::run(cli));
}
