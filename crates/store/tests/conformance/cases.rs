//! The behaviour every engine must have, written once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use store::{Batch, StoreError};

use super::Harness;

fn put(key: &[u8], value: &[u8]) -> Batch {
    let mut batch = Batch::default();
    batch.put(key, value);
    batch
}

pub async fn get_put_delete(h: Harness) {
    let store = h.open();
    assert_eq!(store.get(b"card/1").unwrap(), None);

    store.commit(put(b"card/1", b"first")).await.unwrap();
    assert_eq!(
        store.get(b"card/1").unwrap().as_deref(),
        Some(&b"first"[..])
    );

    store.commit(put(b"card/1", b"second")).await.unwrap();
    assert_eq!(
        store.get(b"card/1").unwrap().as_deref(),
        Some(&b"second"[..])
    );

    let mut delete = Batch::default();
    delete.delete(b"card/1").delete(b"card/never-there");
    store.commit(delete).await.unwrap();
    assert_eq!(store.get(b"card/1").unwrap(), None);

    // An empty value is a value, not an absence.
    store.commit(put(b"card/empty", b"")).await.unwrap();
    assert_eq!(store.get(b"card/empty").unwrap(), Some(Vec::new()));

    // An empty batch is accepted and changes nothing.
    store.commit(Batch::default()).await.unwrap();
    assert_eq!(store.scan_prefix(b"").unwrap().len(), 1);
}

pub async fn batch_ops_apply_in_order(h: Harness) {
    let store = h.open();
    store.commit(put(b"k/gone", b"old")).await.unwrap();

    let mut batch = Batch::default();
    batch
        .put(b"k/a", b"1")
        .put(b"k/a", b"2")
        .delete(b"k/gone")
        .put(b"k/b", b"x")
        .delete(b"k/b")
        .delete(b"k/c")
        .put(b"k/c", b"back");
    store.commit(batch).await.unwrap();

    assert_eq!(
        store.scan_prefix(b"k/").unwrap(),
        vec![
            (b"k/a".to_vec(), b"2".to_vec()),
            (b"k/c".to_vec(), b"back".to_vec())
        ]
    );
}

/// A batch is all or nothing for readers: a scan running while batches of 8 keys land must
/// always see a multiple of 8 keys. Each batch spreads its keys over 8 distant regions, so a scan
/// that is half-way through when a batch lands would see only some of them.
pub async fn readers_never_see_part_of_a_batch(h: Harness) {
    const BATCHES: usize = 300;
    const KEYS: usize = 8;
    let store = h.open();
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (store, done) = (store.clone(), Arc::clone(&done));
        tokio::task::spawn_blocking(move || {
            let mut scans = 0;
            // One more scan after `done`, so that at least one scan sees every batch.
            loop {
                let finished = done.load(Ordering::Acquire);
                let seen = store.scan_prefix(b"atom/").unwrap().len();
                assert_eq!(seen % KEYS, 0, "a scan saw part of a batch: {seen} keys");
                scans += 1;
                if finished {
                    return (scans, seen);
                }
            }
        })
    };

    for i in 0..BATCHES {
        let mut batch = Batch::default();
        for j in 0..KEYS {
            batch.put(format!("atom/{j}/{i:06}"), vec![j as u8; 32]);
        }
        store.commit(batch).await.unwrap();
    }
    done.store(true, Ordering::Release);
    let (scans, seen) = reader.await.unwrap();
    assert_eq!(seen, BATCHES * KEYS);
    assert!(scans > 1);
}

/// Every key over a small alphabet that includes 0x00 and 0xFF, in scrambled order; every prefix
/// over the same alphabet must scan exactly the model's keys, in order.
pub async fn prefix_scan_matches_an_ordered_model(h: Harness) {
    const ALPHABET: [u8; 5] = [0x00, 0x01, 0x7F, 0xFE, 0xFF];
    fn words(max_len: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..max_len {
            last = last
                .iter()
                .flat_map(|w: &Vec<u8>| {
                    ALPHABET.iter().map(move |&b| {
                        let mut next = w.clone();
                        next.push(b);
                        next
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    let store = h.open();
    let mut keys: Vec<Vec<u8>> = words(3).into_iter().filter(|k| !k.is_empty()).collect();
    // Insert out of order, in several batches, so order comes from the engine.
    keys.sort_by_key(|k| k.iter().rev().copied().collect::<Vec<u8>>());
    let model: BTreeMap<Vec<u8>, Vec<u8>> = keys
        .iter()
        .map(|k| (k.clone(), [b"v".as_slice(), k].concat()))
        .collect();
    for chunk in keys.chunks(40) {
        let mut batch = Batch::default();
        for key in chunk {
            batch.put(key.clone(), model[key].clone());
        }
        store.commit(batch).await.unwrap();
    }

    for prefix in words(3) {
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            store.scan_prefix(&prefix).unwrap(),
            expected,
            "prefix {prefix:02x?}"
        );
        assert_eq!(
            store.last_with_prefix(&prefix).unwrap(),
            expected.last().cloned(),
            "last with prefix {prefix:02x?}"
        );
    }
    assert_eq!(store.scan_prefix(&[0x02]).unwrap(), Vec::new());
    assert_eq!(store.last_with_prefix(&[0x02]).unwrap(), None);
}

fn numbered(n: u64) -> Vec<u8> {
    [b"n/".as_slice(), &n.to_be_bytes()].concat()
}

pub async fn scan_range_pages_with_limit(h: Harness) {
    let store = h.open();
    let mut batch = Batch::default();
    for n in (0..100u64).rev() {
        batch.put(numbered(n), n.to_be_bytes());
    }
    batch.put(b"m/before", b"").put(b"o/after", b"");
    store.commit(batch).await.unwrap();

    let keys = |pairs: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<Vec<u8>> {
        pairs.into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(
        keys(store.scan_range(&numbered(10), &numbered(20), 100).unwrap()),
        (10..20).map(numbered).collect::<Vec<_>>()
    );
    assert_eq!(
        keys(store.scan_range(&numbered(10), &numbered(20), 3).unwrap()),
        (10..13).map(numbered).collect::<Vec<_>>()
    );
    assert!(
        store
            .scan_range(&numbered(10), &numbered(20), 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .scan_range(&numbered(20), &numbered(10), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .scan_range(&numbered(10), &numbered(10), 10)
            .unwrap()
            .is_empty()
    );

    // Paging: restart after the last key seen; every key once, in order, nothing from outside.
    let end = b"n0".to_vec();
    let mut start = b"n/".to_vec();
    let mut seen = Vec::new();
    loop {
        let page = store.scan_range(&start, &end, 7).unwrap();
        assert!(page.len() <= 7);
        let Some((last, _)) = page.last() else { break };
        start = [last.as_slice(), &[0]].concat();
        seen.extend(keys(page));
    }
    assert_eq!(seen, (0..100).map(numbered).collect::<Vec<_>>());
}

pub async fn last_with_prefix_is_the_sequence_head(h: Harness) {
    let store = h.open();
    let audit = |n: u64| [b"audit/".as_slice(), &n.to_be_bytes()].concat();
    assert_eq!(store.last_with_prefix(b"audit/").unwrap(), None);

    let mut batch = Batch::default();
    for n in [3u64, 1, 256, 2, 255] {
        batch.put(audit(n), n.to_be_bytes());
    }
    // Neighbours just outside the prefix on both sides must not count.
    batch
        .put(b"audit.", b"")
        .put(b"audit0", b"")
        .put(b"audiu", b"");
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.last_with_prefix(b"audit/").unwrap(),
        Some((audit(256), 256u64.to_be_bytes().to_vec()))
    );

    store.commit(put(&audit(u64::MAX), b"max")).await.unwrap();
    assert_eq!(
        store.last_with_prefix(b"audit/").unwrap().map(|(k, _)| k),
        Some(audit(u64::MAX))
    );
}

pub async fn concurrent_committers_all_land(h: Harness) {
    const TASKS: u32 = 64;
    const COMMITS: u32 = 200;
    let store = h.open();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for seq in 0..COMMITS {
                    let key = [b"c/".as_slice(), &task.to_be_bytes(), &seq.to_be_bytes()].concat();
                    store.commit(put(&key, &seq.to_be_bytes())).await.unwrap();
                    // Read-your-writes: acknowledged means visible.
                    assert!(store.get(&key).unwrap().is_some());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let all = store.scan_prefix(b"c/").unwrap();
    assert_eq!(all.len(), (TASKS * COMMITS) as usize);
    for (key, value) in all {
        assert_eq!(key[6..], value[..]);
    }
}

pub async fn reopen_after_drop_keeps_everything(h: Harness) {
    let store = h.open();
    let copy = store.clone();
    for n in 0..50u64 {
        let mut batch = Batch::default();
        batch.put(numbered(n), vec![n as u8; 100]);
        if n % 10 == 0 {
            batch.delete(numbered(n));
        }
        copy.commit(batch).await.unwrap();
    }
    let before = store.scan_prefix(b"").unwrap();
    assert_eq!(before.len(), 45);
    // Dropping every clone stops the committer and releases the database; reopening at once
    // must work (the lock is gone) and find everything.
    drop(store);
    drop(copy);

    let reopened = h.open();
    assert_eq!(reopened.scan_prefix(b"").unwrap(), before);
    reopened.commit(put(b"after", b"reopen")).await.unwrap();
    drop(reopened);
    assert_eq!(
        h.open().get(b"after").unwrap().as_deref(),
        Some(&b"reopen"[..])
    );
}

pub async fn second_open_while_open_is_a_clear_error(h: Harness) {
    let _first = h.open();
    let error = store::Store::open(h.kind, &h.path()).expect_err("the database is in use");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(h.kind.name()), "{message}");
    assert!(
        message.contains(&h.path().display().to_string()),
        "{message}"
    );
}

pub fn engine_write_applies_batches_in_order(h: Harness) {
    let engine = h.open_engine();
    let mut first = Batch::default();
    first.put(b"a", b"1").put(b"b", b"1");
    let mut second = Batch::default();
    second.put(b"a", b"2").delete(b"b").put(b"c", b"2");
    engine.write(&[first, second]).unwrap();
    assert_eq!(
        engine.scan_prefix(b"").unwrap(),
        vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"2".to_vec())
        ]
    );
    engine.write(&[]).unwrap();
    assert_eq!(engine.scan_prefix(b"").unwrap().len(), 2);
}

pub fn commit_blocking_from_a_plain_thread(h: Harness) {
    let store = h.open();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..20u8 {
                    store.commit_blocking(put(&[b'b', t, i], &[i])).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.scan_prefix(b"b").unwrap().len(), 160);
}

pub fn unusable_path_is_a_clear_error(h: Harness) {
    let blocker = h.path().with_file_name("blocker");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let error = store::Store::open(h.kind, &blocker.join("below").join("db")).unwrap_err();
    assert!(matches!(error, StoreError::Directory { .. }), "{error:?}");
    assert!(error.to_string().contains("blocker"), "{error}");
}

pub async fn large_values_and_binary_keys_round_trip(h: Harness) {
    let store = h.open();
    let big: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let binary_key: Vec<u8> = (0..=255u8).collect();
    let mut batch = Batch::default();
    batch
        .put(binary_key.clone(), big.clone())
        .put(vec![0xFF; 1024], b"long key");
    store.commit(batch).await.unwrap();
    assert_eq!(store.get(&binary_key).unwrap(), Some(big));
    assert_eq!(
        store.get(&[0xFF; 1024]).unwrap().as_deref(),
        Some(&b"long key"[..])
    );
}

/// Writes since the database was opened are read over what it held before (the journal's log
/// over the engine): overwrites, deletes and new keys must read as one ordered map, in every
/// kind of read, and still do after a reopen.
pub async fn new_writes_read_over_the_database_as_one(h: Harness) {
    let mut model = BTreeMap::new();
    let mut batch = Batch::default();
    for n in 0..60u64 {
        batch.put(numbered(n), n.to_be_bytes());
        model.insert(numbered(n), n.to_be_bytes().to_vec());
    }
    let store = h.open();
    store.commit(batch).await.unwrap();
    drop(store);

    let store = h.open();
    let mut batch = Batch::default();
    for n in (0..60u64).filter(|n| n % 3 == 0) {
        batch.delete(numbered(n));
        model.remove(&numbered(n));
    }
    // The greatest key deleted, a greater one added then deleted, one rewritten, one new inside.
    batch
        .delete(numbered(59))
        .put(numbered(70), b"gone")
        .delete(numbered(70));
    model.remove(&numbered(59));
    batch.put(numbered(10), b"ten").put(numbered(2_000), b"new");
    model.insert(numbered(10), b"ten".to_vec());
    model.insert(numbered(2_000), b"new".to_vec());
    store.commit(batch).await.unwrap();

    let check = |store: &store::Store| {
        let all: Vec<_> = model.clone().into_iter().collect();
        assert_eq!(store.scan_prefix(b"n/").unwrap(), all);
        assert_eq!(store.last_with_prefix(b"n/").unwrap(), all.last().cloned());
        assert_eq!(store.get(&numbered(3)).unwrap(), None);
        assert_eq!(
            store.get(&numbered(10)).unwrap().as_deref(),
            Some(&b"ten"[..])
        );
        let mut start = b"n/".to_vec();
        let mut paged = Vec::new();
        loop {
            let page = store.scan_range(&start, b"n0", 4).unwrap();
            let Some((last, _)) = page.last() else { break };
            assert!(page.len() <= 4);
            start = [last.as_slice(), &[0]].concat();
            paged.extend(page);
        }
        assert_eq!(paged, all);
    };
    check(&store);
    drop(store);
    check(&h.open());
}
