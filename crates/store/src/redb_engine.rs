//! The redb engine: one table in one database file; every write is one transaction committed
//! with `Durability::Immediate` (fsync before `Ok`). It must never commit with a weaker
//! durability: an acknowledged write has to survive power loss.
//!
//! Reads share one read transaction, opened after each commit, instead of each opening its own:
//! `begin_read` takes two of redb's locks, both also taken by a write transaction under way (the
//! journal's flush of thousands of keys, at low priority), and opening the table walks the table
//! tree; a read is now a lookup in the tree as the last commit left it (Token Pay's CPU per
//! payment 8-9% lower, README Figures).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use redb::{Database, Durability, ReadOnlyTable, TableDefinition};

use crate::dir::{directory_error, sync_dir};
use crate::error::Operation;
use crate::prefix::{prefix_bounds, prefix_end};
use crate::{Batch, CacheMib, Engine, Op, Pair, StoreError};

const NAME: &str = "redb";
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("store");

type Table = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A redb database file holding one table.
pub struct RedbEngine {
    /// The table as of the last commit, for every read until the next one. Swapped without a
    /// lock, so that no read ever waits for a writer, and before `write` returns, so that a
    /// caller reads what it wrote. Declared first so that it is dropped before the database.
    committed: ArcSwap<Table>,
    db: Database,
}

impl std::fmt::Debug for RedbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbEngine").finish_non_exhaustive()
    }
}

impl RedbEngine {
    /// Opens the database file at `path`, creating it and its parent directories if needed,
    /// with the default page cache ([`CacheMib::DEFAULT`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, CacheMib::DEFAULT)
    }

    /// [`RedbEngine::open`] with a page cache of `cache`. A file left by a killed process is
    /// repaired by redb here, before the first read.
    pub fn open_with_cache(path: &Path, cache: CacheMib) -> Result<Self, StoreError> {
        let dir = parent_dir(path)?;
        let open_error = |source: redb::Error| StoreError::Open {
            engine: NAME,
            path: path.to_path_buf(),
            source: source.into(),
        };
        let db = Database::builder()
            .set_cache_size(cache.bytes())
            .create(path)
            .map_err(|e| open_error(e.into()))?;
        // Create the table now so that reads on a fresh database find an empty table, not an error.
        let txn = db.begin_write().map_err(|e| open_error(e.into()))?;
        txn.open_table(TABLE).map_err(|e| open_error(e.into()))?;
        txn.commit().map_err(|e| open_error(e.into()))?;
        sync_dir(dir)?;
        let committed = ArcSwap::from_pointee(read_table(&db)?);
        Ok(RedbEngine { committed, db })
    }

    fn table(&self) -> Arc<Table> {
        self.committed.load_full()
    }

    fn collect(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let table = self.table();
        let range = table.range::<&[u8]>((start, end)).map_err(read_error)?;
        range
            .take(limit)
            .map(|pair| {
                let (key, value) = pair.map_err(read_error)?;
                Ok((key.value().to_vec(), value.value().to_vec()))
            })
            .collect()
    }
}

/// The directory that holds the database file: created if missing, because redb creates only
/// the file.
fn parent_dir(path: &Path) -> Result<&Path, StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|source| directory_error(dir, source))?;
    Ok(dir)
}

/// The table as the last commit left it.
fn read_table(db: &Database) -> Result<Table, StoreError> {
    let txn = db.begin_read().map_err(read_error)?;
    txn.open_table(TABLE).map_err(read_error)
}

fn read_error(source: impl Into<redb::Error>) -> StoreError {
    StoreError::engine(NAME, Operation::Read)(source.into())
}

fn write_error(source: impl Into<redb::Error>) -> StoreError {
    StoreError::engine(NAME, Operation::Write)(source.into())
}

impl Engine for RedbEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.table();
        let value = table.get(key).map_err(read_error)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        let end = prefix_end(prefix);
        let (start, end) = prefix_bounds(prefix, end.as_deref());
        self.collect(start, end, usize::MAX)
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError> {
        // redb, like BTreeMap, rejects a reversed range; an empty answer is what the caller means.
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        self.collect(Bound::Included(start), Bound::Excluded(end), limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        let end = prefix_end(prefix);
        let table = self.table();
        let mut range = table
            .range::<&[u8]>(prefix_bounds(prefix, end.as_deref()))
            .map_err(read_error)?;
        match range.next_back() {
            None => Ok(None),
            Some(pair) => {
                let (key, value) = pair.map_err(read_error)?;
                Ok(Some((key.value().to_vec(), value.value().to_vec())))
            }
        }
    }

    fn write(&self, batches: &[Batch]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(write_error)?;
        // The default in redb 2, stated so that no upgrade can weaken it silently.
        txn.set_durability(Durability::Immediate);
        {
            let mut table = txn.open_table(TABLE).map_err(write_error)?;
            for op in batches.iter().flat_map(Batch::ops) {
                match op {
                    Op::Put { key, value } => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(write_error)?;
                    }
                    Op::Delete { key } => {
                        table.remove(key.as_slice()).map_err(write_error)?;
                    }
                }
            }
        }
        // Dropping an uncommitted transaction on an error above aborts it: nothing was applied.
        txn.commit().map_err(write_error)?;
        // Should the new view not open, the write is reported failed though committed: like a
        // failed fsync, an outcome the caller retries (the journal writes it again) or reports
        // as unknown; reads keep the older view, which the journal's overlay still covers.
        self.committed.store(Arc::new(read_table(&self.db)?));
        Ok(())
    }
}
