//! Error domains and their exit codes: a bad spec or bad input is the user's to fix
//! (exit 2 for specs, 1 for data), an I/O or service failure is external (1), and
//! anything else is our bug (3).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The spec or the command line is invalid (already rendered for the user).
    #[error("{0}")]
    Usage(String),
    /// Input data that cannot be processed under `on_error: fail`.
    #[error("{0}")]
    Data(String),
    /// Files, sockets, brokers, databases.
    #[error("{0}")]
    External(String),
    /// A bug in flowctl.
    #[error("internal error: {0}")]
    Internal(String),
    /// Stopped by a signal; carries the exit code (130 SIGINT, 143 SIGTERM).
    #[error("interrupted")]
    Interrupted(i32),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Data(_) | Error::External(_) => 1,
            Error::Internal(_) => 3,
            Error::Interrupted(code) => *code,
        }
    }

    /// An I/O error with the place it happened.
    pub fn io(context: impl std::fmt::Display, e: std::io::Error) -> Error {
        Error::External(format!("{context}: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
