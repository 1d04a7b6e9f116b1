//! [`Store`]: the handle every process holds. Writes go through the group committer, to the
//! journal (a store opened on a file) or straight to the engine ([`Store::with_engine`]); reads
//! look in the journal's overlay, then in the engine. It must never acknowledge a commit that is
//! not durable.

use std::path::Path;
use std::sync::Arc;

use crate::group_commit::{self, Committer};
use crate::journal::{self, Journal};
use crate::overlay::Overlay;
use crate::{Batch, CacheMib, Engine, EngineKind, Pair, RedbEngine, SledEngine, StoreError};

/// An open database with group commit. Clones share the database and its committer thread;
/// the thread stops, and the database closes, when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
    /// Durable writes the engine does not hold yet (always empty without a journal).
    overlay: Arc<Overlay>,
    committer: Arc<Committer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating as needed) the database of `kind` at `path`: a file for redb, a directory
    /// for sled, with its write-ahead log beside it (`<path>.wal/`). What a crash left in the log
    /// is written to the database before this returns. Only one process may have a database open
    /// at a time.
    pub fn open(kind: EngineKind, path: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(kind, path, CacheMib::DEFAULT)
    }

    /// [`Store::open`] with a page cache of `cache`.
    pub fn open_with_cache(
        kind: EngineKind,
        path: &Path,
        cache: CacheMib,
    ) -> Result<Store, StoreError> {
        let engine: Arc<dyn Engine> = match kind {
            EngineKind::Redb => Arc::new(RedbEngine::open_with_cache(path, cache)?),
            EngineKind::Sled => Arc::new(SledEngine::open_with_cache(path, cache)?),
        };
        let (journal, overlay) = Journal::open(Arc::clone(&engine), &journal::dir_for(path))?;
        let committer = Arc::new(Committer::start(journal, group_commit::PACE)?);
        Ok(Store {
            engine,
            overlay,
            committer,
        })
    }

    /// A store over any engine, without a journal: each group commit is one durable engine write.
    /// The seam for another engine (a replicated one) or for a test engine that injects a fault
    /// the real ones cannot produce.
    pub fn with_engine(engine: Arc<dyn Engine>) -> Result<Store, StoreError> {
        let committer = Arc::new(Committer::start(Arc::clone(&engine), group_commit::PACE)?);
        Ok(Store {
            engine,
            overlay: Arc::default(),
            committer,
        })
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.overlay.get(&*self.engine, key)
    }

    /// All pairs whose key starts with `prefix`, in ascending key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        self.overlay.scan_prefix(&*self.engine, prefix)
    }

    /// Pairs with `start <= key < end`, ascending, at most `limit`.
    pub fn scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        self.overlay.scan_range(&*self.engine, start, end, limit)
    }

    /// The greatest pair whose key starts with `prefix`.
    pub fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        self.overlay.last_with_prefix(&*self.engine, prefix)
    }

    /// Applies `batch` atomically; durable when this returns `Ok`. Batches committed concurrently
    /// share one engine write (one fsync). Cancelling the future does not cancel the write.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.committer.commit(batch).await
    }

    /// [`Store::commit`] for threads outside async code (`spawn_blocking`, command-line tools).
    ///
    /// # Panics
    /// When called from inside an async task, like every tokio blocking call: use `commit` there.
    pub fn commit_blocking(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.committer.commit_blocking(batch)
    }
}
