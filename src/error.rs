//! One error type for the library: every variant says what went wrong and, where there is one, the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Gpu(String),
    #[error("model folder {path}: {msg}")]
    Model { path: PathBuf, msg: String },
    #[error("weight `{name}`: {msg}")]
    Weight { name: String, msg: String },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("graph: {0}")]
    Graph(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Valid input that would take more work than a limit the caller set allows.
    #[error("too large: {0}")]
    TooLarge(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    pub fn model(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn weight(name: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Weight {
            name: name.into(),
            msg: msg.into(),
        }
    }
}
