//! The persistent store-and-forward queue of reversals the network has not acknowledged yet.
//!
//! Owns the `link/saf/` records in the authorizer's [`Store`]: one per reversal, keyed by a
//! big-endian sequence so a scan returns them oldest first, written durably before the first
//! reversal goes out so that a crash cannot lose one. A record holds the original transaction's
//! identity and a [`CardRef`](crate::CardRef), in the shape `persisted` keeps stable; it must
//! never hold a PAN or a CVC.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_skiplist::{SkipMap, SkipSet};
use serde::{Deserialize, Serialize};
use store::{Batch, Store, StoreError};

use crate::request::TransactionRef;

const PREFIX: &[u8] = b"link/saf/";

/// A queued reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReversal {
    /// The request being reversed: what DE 90 quotes and how its card is found again.
    pub original: TransactionRef,
    /// For a partial reversal, the amount that stays authorized (DE 95); `None` reverses it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Reversal messages sent so far (0400, then 0420, then 0421s): the next one is a repeat
    /// exactly when this is past one, even after a restart.
    pub attempts: u32,
}

/// Where a record lives; only this module makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafKey(u64);

impl SafKey {
    /// The record's sequence number, for logs and the operator's list of pending reversals.
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

/// Why the store-and-forward queue could not be read or written: never the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum SafError {
    /// The store failed (disk, database): ours, and the reversal is not durable.
    #[error("store-and-forward storage")]
    Store(#[from] StoreError),
    /// A record or key that does not read as a reversal: a damaged store, or one written by a build
    /// this one cannot read (`persisted`); it stops the forwarder's pass.
    #[error("store-and-forward record {0:?} is corrupt")]
    Corrupt(SafKey),
}

/// The queue of reversals the network has not acknowledged, durable in the store, with the
/// claims that keep each one with a single sender.
#[derive(Debug)]
pub struct SafQueue {
    store: Store,
    next: AtomicU64,
    /// Keys of the records in the store, so the pending count is one read rather than a scan,
    /// and an acknowledgement that arrives twice for one record is counted once.
    live: SkipSet<u64>,
    /// Records someone (an in-line reversal, the forwarder) is sending: one sender per record,
    /// so a reversal is never in flight twice and its acknowledgement is counted once.
    claimed: SkipMap<u64, Arc<()>>,
}

/// Exclusive use of one record, released on drop.
#[derive(Debug)]
pub struct Claim<'a> {
    claimed: &'a SkipMap<u64, Arc<()>>,
    key: u64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.claimed.remove(&self.key);
    }
}

impl SafQueue {
    /// The queue already in `store`, counting what an earlier run left pending.
    pub fn open(store: Store) -> Result<SafQueue, SafError> {
        let live = SkipSet::new();
        for (k, _) in store.scan_prefix(PREFIX)? {
            live.insert(SafKey::parse(&k).ok_or(SafError::Corrupt(SafKey(0)))?.0);
        }
        let next = live.back().map_or(0, |last| *last.value() + 1);
        Ok(SafQueue {
            store,
            next: AtomicU64::new(next),
            live,
            claimed: SkipMap::new(),
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

    /// Claims a record; `None` if someone else holds it.
    pub fn claim(&self, key: SafKey) -> Option<Claim<'_>> {
        let mine = Arc::new(());
        let holder = self.claimed.get_or_insert(key.0, Arc::clone(&mine));
        // Lazily: a `Claim` built for a loser would release the winner's claim when dropped.
        Arc::ptr_eq(holder.value(), &mine).then(|| Claim {
            claimed: &self.claimed,
            key: key.0,
        })
    }

    /// Whether the record is still queued (not yet acknowledged).
    pub fn contains(&self, key: SafKey) -> bool {
        self.live.contains(&key.0)
    }

    /// Writes `record` under `key` (new, or with its attempts counted); durable on return.
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
    use crate::request::{CardRef, Currency, Merchant};
    use iso8583::{Amount, Mti, ProcessingCode, Rrn, Stan, TransmissionTime};

    fn record(stan: u32) -> PendingReversal {
        PendingReversal {
            original: TransactionRef {
                mti: Mti::AUTH_REQUEST,
                stan: Stan::new(stan).unwrap(),
                transmission: TransmissionTime::from_ascii(b"1123040506").unwrap(),
                rrn: Rrn::from_ascii(b"632704000041").unwrap(),
                amount: Amount(500),
                processing_code: ProcessingCode::Purchase,
                currency: Currency::RUB,
                merchant: Merchant {
                    id: card::MerchantId::parse("452739").unwrap(),
                    name_location: None,
                    category_code: None,
                },
                card: "452739 c1 6F9619FF-8B86-4011-B42D-00C04FC964FF"
                    .parse::<CardRef>()
                    .unwrap(),
            },
            remaining: (stan == 3).then_some(200),
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
            .map(|(_, r)| r.original.stan.value())
            .collect();
        assert_eq!(stans, vec![2, 3]);
        let remaining: Vec<_> = q.list().unwrap().iter().map(|(_, r)| r.remaining).collect();
        assert_eq!(
            remaining,
            vec![None, Some(200)],
            "a partial reversal keeps its amount"
        );
        // New records go after the survivors, not over them.
        let k = q.push(&record(4)).await.unwrap();
        assert!(q.list().unwrap().iter().all(|(old, _)| *old <= k));
        assert_eq!(q.list().unwrap().len(), 3);
    }

    #[test]
    fn a_record_has_one_sender_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(store::EngineKind::Redb, &dir.path().join("a.redb")).unwrap();
        let q = SafQueue::open(store).unwrap();
        let (a, b) = (q.allocate(), q.allocate());
        let held = q.claim(a).expect("a free record can be claimed");
        assert!(q.claim(b).is_some(), "claims are per record");
        // A losing attempt, however often repeated, leaves the holder's claim in place.
        assert!(q.claim(a).is_none());
        assert!(q.claim(a).is_none());
        drop(held);
        assert!(q.claim(a).is_some(), "released when the holder drops it");
    }

    /// Records written before the vocabulary was typed (by the code of `main` at 521a93e, whose
    /// `TransactionRef` held `u16`, `u32` and `String`s, and whose `CardRef` was the space-joined
    /// string) still read, and are written back byte for byte, so a queue drains across the
    /// upgrade and an older build could still read what this one queues.
    #[test]
    fn records_written_before_the_typed_vocabulary_still_read() {
        let partial = include_str!("../tests/fixtures/saf_record_main.json");
        let r: PendingReversal = serde_json::from_str(partial).unwrap();
        let o = &r.original;
        assert_eq!(o.mti, Mti::AUTH_REQUEST);
        assert_eq!(o.stan.value(), 1234);
        assert_eq!(o.transmission.as_str(), "1123040506");
        assert_eq!(o.rrn.as_str(), "632704000041");
        assert_eq!(o.amount, Amount(500));
        assert_eq!(o.processing_code, ProcessingCode::Purchase);
        assert_eq!(o.currency, Currency::RUB);
        assert_eq!(o.merchant.id.as_str(), "452739");
        assert_eq!(o.card.merchant.as_str(), "452739");
        assert_eq!(o.card.customer.as_str(), "cust-42@example.com");
        assert_eq!(
            o.card.token.to_string(),
            "6F9619FF-8B86-4011-B42D-00C04FC964FF"
        );
        assert_eq!((r.remaining, r.attempts), (Some(200), 2));
        assert_eq!(serde_json::to_string(&r).unwrap(), partial);

        let full = include_str!("../tests/fixtures/saf_record_main_full.json");
        let r: PendingReversal = serde_json::from_str(full).unwrap();
        assert_eq!(r.original.processing_code, ProcessingCode::Refund);
        assert_eq!(r.original.merchant.category_code, Some(5999));
        assert_eq!(r.remaining, None);
        assert_eq!(serde_json::to_string(&r).unwrap(), full);

        // A value its type refuses is a corrupt record, not a loosened type.
        let bad = partial.replace("\"stan\":1234", "\"stan\":1234567");
        assert!(serde_json::from_str::<PendingReversal>(&bad).is_err());
    }
}
