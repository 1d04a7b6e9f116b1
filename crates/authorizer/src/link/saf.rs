//! The persistent store-and-forward queue of reversals the network has not acknowledged yet.
//!
//! Owns the `link/saf/` records in the authorizer's [`Store`]: one per reversal, keyed by a
//! big-endian sequence so a scan returns them oldest first, written durably before the first
//! reversal goes out so that a crash cannot lose one. A record holds the original transaction's
//! identity and a [`CardRef`](super::CardRef); it must never hold a PAN or a CVC.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_skiplist::SkipSet;
use serde::{Deserialize, Serialize};
use store::{Batch, Store, StoreError};

use super::request::TransactionRef;

const PREFIX: &[u8] = b"link/saf/";

/// A queued reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReversal {
    pub original: TransactionRef,
    /// Reversal messages sent so far (0400, then 0420, then 0421s): the next one is a repeat
    /// exactly when this is past one, even after a restart.
    pub attempts: u32,
}

/// Where a record lives; only this module makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafKey(u64);

impl SafKey {
    pub fn id(self) -> u64 {
        self.0
    }

    fn bytes(self) -> Vec<u8> {
        let mut k = PREFIX.to_vec();
        k.extend_from_slice(&self.0.to_be_bytes());
        k
    }

    fn parse(key: &[u8]) -> Option<SafKey> {
        let n: [u8; 8] = key.strip_prefix(PREFIX)?.try_into().ok()?;
        Some(SafKey(u64::from_be_bytes(n)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SafError {
    #[error("store-and-forward storage: {0}")]
    Store(#[from] StoreError),
    #[error("store-and-forward record {0:?} is corrupt")]
    Corrupt(SafKey),
}

#[derive(Debug)]
pub struct SafQueue {
    store: Store,
    next: AtomicU64,
    /// Keys of the records in the store, so the pending count is one read rather than a scan,
    /// and an acknowledgement that arrives twice for one record is counted once.
    live: SkipSet<u64>,
}

impl SafQueue {
    pub fn open(store: Store) -> Result<SafQueue, SafError> {
        let next = match store.last_with_prefix(PREFIX)? {
            Some((k, _)) => SafKey::parse(&k).map_or(0, |k| k.0 + 1),
            None => 0,
        };
        let live = SkipSet::new();
        for (k, _) in store.scan_prefix(PREFIX)? {
            live.insert(SafKey::parse(&k).ok_or(SafError::Corrupt(SafKey(0)))?.0);
        }
        Ok(SafQueue {
            store,
            next: AtomicU64::new(next),
            live,
        })
    }

    /// A key for a new record, after every existing one.
    pub fn allocate(&self) -> SafKey {
        SafKey(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Durable when this returns.
    #[cfg(test)]
    pub async fn push(&self, record: &PendingReversal) -> Result<SafKey, SafError> {
        let key = self.allocate();
        self.put(key, record).await?;
        Ok(key)
    }

    pub fn contains(&self, key: SafKey) -> Result<bool, SafError> {
        Ok(self.store.get(&key.bytes())?.is_some())
    }

    pub async fn put(&self, key: SafKey, record: &PendingReversal) -> Result<(), SafError> {
        let value = serde_json::to_vec(record).map_err(|_| SafError::Corrupt(key))?;
        let mut batch = Batch::default();
        batch.put(key.bytes(), value);
        self.store.commit(batch).await?;
        self.live.insert(key.0);
        Ok(())
    }

    /// The reversal is acknowledged: forget it.
    pub async fn remove(&self, key: SafKey) -> Result<(), SafError> {
        let mut batch = Batch::default();
        batch.delete(key.bytes());
        self.store.commit(batch).await?;
        self.live.remove(&key.0);
        Ok(())
    }

    /// Records in the queue.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Every queued reversal, oldest first.
    pub fn list(&self) -> Result<Vec<(SafKey, PendingReversal)>, SafError> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(PREFIX)? {
            let key = SafKey::parse(&k).ok_or(SafError::Corrupt(SafKey(0)))?;
            let record = serde_json::from_slice(&v).map_err(|_| SafError::Corrupt(key))?;
            out.push((key, record));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::request::{CardRef, Currency, Merchant, ProcessingCode};

    fn record(stan: u32) -> PendingReversal {
        PendingReversal {
            original: TransactionRef {
                mti: 100,
                stan,
                transmission: "1123040506".into(),
                rrn: "632704000041".into(),
                amount: 500,
                processing_code: ProcessingCode(*b"000000"),
                currency: Currency::RUB,
                merchant: Merchant {
                    id: "452739".into(),
                    name_location: None,
                    category_code: None,
                },
                card: CardRef("tok".into()),
            },
            attempts: 1,
        }
    }

    #[tokio::test]
    async fn survives_reopen_in_order_and_forgets_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorizer.redb");
        {
            let q = SafQueue::open(Store::open(store::EngineKind::Redb, &path).unwrap()).unwrap();
            let a = q.push(&record(1)).await.unwrap();
            q.push(&record(2)).await.unwrap();
            q.push(&record(3)).await.unwrap();
            q.remove(a).await.unwrap();
        }
        let q = SafQueue::open(Store::open(store::EngineKind::Redb, &path).unwrap()).unwrap();
        let stans: Vec<u32> = q
            .list()
            .unwrap()
            .iter()
            .map(|(_, r)| r.original.stan)
            .collect();
        assert_eq!(stans, vec![2, 3]);
        // New records go after the survivors, not over them.
        let k = q.push(&record(4)).await.unwrap();
        assert!(q.list().unwrap().iter().all(|(old, _)| *old <= k));
        assert_eq!(q.list().unwrap().len(), 3);
    }
}
