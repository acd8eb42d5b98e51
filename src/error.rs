//! One error type for the whole crate: bad input (exit 2) versus everything else (exit 1).
use std::fmt;
use std::path::Path;

/// The crate's error: `Input` is the user's to fix (exit code 2); `Internal` is ours or the system's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a config field, a file, a value. The message names which.
    #[error("{0}")]
    Input(String),
    /// Anything else: I/O failure, a libtorch error, a bug.
    #[error("{0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Bad input in the named field, option or file.
    pub fn input(what: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::Input(format!("{what}: {msg}"))
    }

    /// Bad input in a file (the message names the path).
    pub fn file(path: &Path, msg: impl fmt::Display) -> Self {
        Error::Input(format!("{}: {msg}", path.display()))
    }

    /// An internal failure with context.
    pub fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Internal(_) => 1,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("i/o error: {e}"))
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Internal(format!("libtorch: {e}"))
    }
}

impl From<polars::prelude::PolarsError> for Error {
    fn from(e: polars::prelude::PolarsError) -> Self {
        Error::Internal(format!("polars: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}
