//! Writing to stdout and stderr like a good Unix tool: a reader that went away
//! (`flowctl plan p.yaml | head -1`) or a closed stream is not a crash. `print!` and
//! friends panic on any write error (exit 101); these macros write through the locked
//! stream instead. A broken pipe on stdout is ignored (the command still ends with the
//! exit code of what it did); another stdout error is reported on stderr; errors
//! writing to stderr, the last resort, are ignored.

use std::io::Write;

/// Writes `args` to stdout; see the module documentation for errors.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            stderr(format_args!("flowctl: cannot write to stdout: {e}\n"));
        }
    }
}

/// Writes `args` to stderr, ignoring errors.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that survives a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that survives a closed stdout.
macro_rules! outln {
    () => { $crate::cli::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that survives a closed stderr.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that survives a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {err, errln, out, outln};
