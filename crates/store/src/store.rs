//! [`Store`]: the handle every process holds. Reads go straight to the engine; writes go through
//! the group committer. It must never acknowledge a commit that the engine has not made durable.

use std::path::Path;
use std::sync::Arc;

use crate::group_commit::Committer;
use crate::{Batch, CacheMib, Engine, EngineKind, Pair, RedbEngine, SledEngine, StoreError};

/// An open database with group commit. Clones share the database and its committer thread;
/// the thread stops, and the database closes, when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
    committer: Arc<Committer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating as needed) the database of `kind` at `path`: a file for redb, a directory
    /// for sled. Only one process may have a database open at a time.
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
        Store::with_engine(engine)
    }

    /// A store over any engine: the seam for another engine (a replicated one) or for a test
    /// engine that injects a fault the real ones cannot produce.
    pub fn with_engine(engine: Arc<dyn Engine>) -> Result<Store, StoreError> {
        let committer = Arc::new(Committer::start(Arc::clone(&engine))?);
        Ok(Store { engine, committer })
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.engine.get(key)
    }

    /// All pairs whose key starts with `prefix`, in ascending key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        self.engine.scan_prefix(prefix)
    }

    /// Pairs with `start <= key < end`, ascending, at most `limit`.
    pub fn scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        self.engine.scan_range(start, end, limit)
    }

    /// The greatest pair whose key starts with `prefix`.
    pub fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        self.engine.last_with_prefix(prefix)
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
