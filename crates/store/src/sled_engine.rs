//! The sled 0.34 engine: the database's default tree; each write is one `apply_batch` followed by
//! a flush. sled flushes with `sync_file_range`, which survives a process crash but does not
//! promise durability across power loss (see README.md); this module must not claim more.
//!
//! sled applies a batch atomically, but its iterators lock per step, so a scan running while a
//! batch lands could see part of it. Scans therefore hold `applying` shared and batch application
//! holds it exclusive; the flush runs outside it, so readers never wait for the disk.

use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use crate::error::Operation;
use crate::{Batch, CacheMib, Engine, Op, Pair, StoreError};

const NAME: &str = "sled";

/// A sled database directory; the data lives in its default tree.
#[derive(Debug)]
pub struct SledEngine {
    db: sled::Db,
    /// Held exclusive while a batch is applied and shared during a scan (see the module comment).
    applying: RwLock<()>,
}

impl SledEngine {
    /// Opens the database directory at `path`, creating it if needed, with the default page
    /// cache ([`CacheMib::DEFAULT`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, CacheMib::DEFAULT)
    }

    /// [`SledEngine::open`] with a page cache of `cache`.
    pub fn open_with_cache(path: &Path, cache: CacheMib) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Directory {
            path: path.to_path_buf(),
            source,
        })?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(u64::try_from(cache.bytes()).unwrap_or(u64::MAX))
            .open()
            .map_err(|source| StoreError::Open {
                engine: NAME,
                path: path.to_path_buf(),
                source: source.into(),
            })?;
        Ok(SledEngine {
            db,
            applying: RwLock::new(()),
        })
    }

    fn scanning(&self) -> RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic while it was held left nothing inconsistent.
        self.applying.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn read_error(source: sled::Error) -> StoreError {
    StoreError::engine(NAME, Operation::Read)(source)
}

fn write_error(source: sled::Error) -> StoreError {
    StoreError::engine(NAME, Operation::Write)(source)
}

fn pair((key, value): (sled::IVec, sled::IVec)) -> Pair {
    (key.to_vec(), value.to_vec())
}

impl Engine for SledEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.db.get(key).map_err(read_error)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        let _scanning = self.scanning();
        self.db
            .scan_prefix(prefix)
            .map(|item| item.map(pair).map_err(read_error))
            .collect()
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError> {
        // sled panics on a reversed range; an empty answer is what the caller means.
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let _scanning = self.scanning();
        self.db
            .range(start..end)
            .take(limit)
            .map(|item| item.map(pair).map_err(read_error))
            .collect()
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        let _scanning = self.scanning();
        self.db
            .scan_prefix(prefix)
            .next_back()
            .transpose()
            .map(|found| found.map(pair))
            .map_err(read_error)
    }

    fn write(&self, batches: &[Batch]) -> Result<(), StoreError> {
        // sled's batch keeps the last op per key, which is what applying them in order gives.
        let mut merged = sled::Batch::default();
        for op in batches.iter().flat_map(Batch::ops) {
            match op {
                Op::Put { key, value } => merged.insert(key.as_slice(), value.as_slice()),
                Op::Delete { key } => merged.remove(key.as_slice()),
            }
        }
        {
            let _applying = self
                .applying
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            self.db.apply_batch(merged).map_err(write_error)?;
        }
        self.db.flush().map_err(write_error)?;
        Ok(())
    }
}
