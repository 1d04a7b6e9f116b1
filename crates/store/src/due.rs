//! [`DueQueue`]: a durable schedule of ids, each due at a time, read back in due order. Its
//! entries are written inside the caller's own [`Batch`], so a record and its place in the queue
//! change together (the outbox writes a notification in the same batch as the order it reports).
//!
//! Owns only the index keys (`<prefix><due, 8 bytes big-endian><id>`) and their values, a short
//! tag the caller chooses (the outbox's merchant), so that a reader can pass over an entry without
//! loading its record; the records the ids name are the caller's. Must never read or log an id's
//! or a tag's meaning.

use crate::prefix::prefix_end;
use crate::{Batch, Store, StoreError};

/// A schedule under one key prefix. Times are whatever the caller counts in (milliseconds since
/// the Unix epoch for the outbox), as long as the caller is consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueQueue {
    prefix: Vec<u8>,
}

/// One scheduled id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// When it is due.
    pub at: u64,
    /// The caller's id.
    pub id: Vec<u8>,
    /// The tag it was added with (empty for entries written before tags existed).
    pub tag: Vec<u8>,
}

impl DueQueue {
    /// The schedule under `prefix`, which no other record kind may share.
    pub fn new(prefix: impl Into<Vec<u8>>) -> DueQueue {
        DueQueue {
            prefix: prefix.into(),
        }
    }

    fn key(&self, at: u64, id: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(&at.to_be_bytes());
        k.extend_from_slice(id);
        k
    }

    /// Schedules `id` at `at` within `batch`.
    pub fn add(&self, batch: &mut Batch, at: u64, id: &[u8], tag: &[u8]) {
        batch.put(self.key(at, id), tag.to_vec());
    }

    /// Takes `id`, scheduled at `at`, out of the schedule within `batch`.
    pub fn remove(&self, batch: &mut Batch, at: u64, id: &[u8]) {
        batch.delete(self.key(at, id));
    }

    /// Up to `limit` entries due at or before `now`, earliest first, starting after `after` (the
    /// last entry of the previous page) so that a reader can page past entries it must skip.
    pub fn due(
        &self,
        store: &Store,
        now: u64,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let mut start = match after {
            Some(d) => self.key(d.at, &d.id),
            None => self.prefix.clone(),
        };
        if after.is_some() {
            // The least key greater than the last one read.
            start.push(0);
        }
        let end = match now.checked_add(1) {
            Some(n) => self.key(n, &[]),
            None => prefix_end(&self.prefix).unwrap_or_default(),
        };
        Ok(store
            .scan_range(&start, &end, limit)?
            .into_iter()
            .filter_map(|(k, tag)| self.parse(&k, tag))
            .collect())
    }

    /// When the earliest entry due at or after `from` is due (a reader that has dispatched
    /// everything due up to now asks for `now + 1`, to know how long it may sleep).
    pub fn next_at(&self, store: &Store, from: u64) -> Result<Option<u64>, StoreError> {
        let end = prefix_end(&self.prefix).unwrap_or_default();
        Ok(store
            .scan_range(&self.key(from, &[]), &end, 1)?
            .first()
            .and_then(|(k, _)| self.parse(k, Vec::new()))
            .map(|d| d.at))
    }

    /// How many entries are scheduled.
    pub fn len(&self, store: &Store) -> Result<usize, StoreError> {
        Ok(store.scan_prefix(&self.prefix)?.len())
    }

    fn parse(&self, key: &[u8], tag: Vec<u8>) -> Option<Due> {
        let rest = key.strip_prefix(self.prefix.as_slice())?;
        let (at, id) = rest.split_at_checked(8)?;
        Some(Due {
            at: u64::from_be_bytes(at.try_into().ok()?),
            id: id.to_vec(),
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineKind;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(EngineKind::Redb, &dir.path().join("q.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn returns_what_is_due_in_due_order_and_pages() {
        let (_dir, store) = open();
        let q = DueQueue::new("q/");
        let mut batch = Batch::default();
        q.add(&mut batch, 30, b"c", b"m1");
        q.add(&mut batch, 10, b"a", b"");
        q.add(&mut batch, 20, b"b", b"");
        q.add(&mut batch, 99, b"later", b"");
        store.commit_blocking(batch).unwrap();
        let first = q.due(&store, 30, None, 2).unwrap();
        let ids: Vec<_> = first.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids, vec![b"a".to_vec(), b"b".to_vec()]);
        let next = q.due(&store, 30, first.last(), 10).unwrap();
        assert_eq!(
            next,
            vec![Due {
                at: 30,
                id: b"c".to_vec(),
                tag: b"m1".to_vec(),
            }]
        );
        assert_eq!(q.next_at(&store, 0).unwrap(), Some(10));
        assert_eq!(q.next_at(&store, 31).unwrap(), Some(99));
        assert_eq!(q.len(&store).unwrap(), 4);
    }

    #[test]
    fn a_removed_entry_is_no_longer_due() {
        let (_dir, store) = open();
        let q = DueQueue::new("q/");
        let mut batch = Batch::default();
        q.add(&mut batch, 5, b"a", b"");
        store.commit_blocking(batch).unwrap();
        let mut batch = Batch::default();
        q.remove(&mut batch, 5, b"a");
        q.add(&mut batch, 50, b"a", b"");
        store.commit_blocking(batch).unwrap();
        assert!(q.due(&store, 49, None, 10).unwrap().is_empty());
        assert_eq!(q.next_at(&store, 0).unwrap(), Some(50));
        assert_eq!(q.due(&store, u64::MAX, None, 10).unwrap().len(), 1);
    }
}
