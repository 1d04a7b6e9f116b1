//! [`StoreError`]: what can go wrong opening, reading or writing a store. An error never carries a
//! stored value or key (values may be ciphertext, keys may hold customer numbers).

use std::fmt;
use std::path::PathBuf;

/// The engine's own error, kept as the source so the cause chain reaches the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the engine was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A get or a scan.
    Read,
    /// A batch write and its flush to disk.
    Write,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Read => "read",
            Operation::Write => "durable write",
        })
    }
}

/// A failure of the store or of its engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory that holds the database could not be created or synced.
    #[error("cannot create or sync the database directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not open the database: held by another process, corrupt, or not a
    /// database of this engine.
    #[error("cannot open the {engine} database at {path}")]
    Open {
        /// The engine's name.
        engine: &'static str,
        /// The database file or directory.
        path: PathBuf,
        /// The engine's reason.
        #[source]
        source: BoxError,
    },
    /// A read or a write failed inside the engine; a failed write changed nothing.
    #[error("{engine} {operation} failed")]
    Engine {
        /// The engine's name.
        engine: &'static str,
        /// What it was doing.
        operation: Operation,
        /// The engine's reason.
        #[source]
        source: BoxError,
    },
    /// A write-ahead log segment could not be created, written, synced, read or deleted, or
    /// holds a damaged record where only whole ones can be.
    #[error("write-ahead log {path}")]
    Journal {
        /// The segment file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine has not taken the journal's writes for a while (its last write failed: see
    /// the log) and the memory they may wait in is full, so no more can be accepted.
    #[error("the database has fallen behind its write-ahead log")]
    EngineBehind,
    /// The operating system refused to start the committer or the flusher thread.
    #[error("cannot start the store's committer thread")]
    StartCommitter(#[source] std::io::Error),
    /// The committer thread is gone (it panicked), so no write can be made durable any more.
    #[error("the store's committer thread has stopped")]
    CommitterStopped,
}

impl StoreError {
    /// Wraps an engine error of `operation`; for `map_err`.
    pub(crate) fn engine<E>(engine: &'static str, operation: Operation) -> impl FnOnce(E) -> Self
    where
        E: Into<BoxError>,
    {
        move |source| StoreError::Engine {
            engine,
            operation,
            source: source.into(),
        }
    }
}
