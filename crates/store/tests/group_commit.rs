//! Group commit, observed through an engine that wraps a real redb database and can, on cue, do
//! what a real disk cannot be made to do: hold one write until the test releases it, fail any
//! write holding a "poison/" key, or panic.
//!
//! Commits are queued by polling their future once by hand: the first poll puts the batch in the
//! committer's queue and then waits for the answer, so the test knows exactly what is queued
//! without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use store::{Batch, Engine, Operation, Pair, RedbEngine, Store, StoreError};

/// Guards every wait in this file: long enough never to fire on a healthy run.
const GUARD: Duration = Duration::from_secs(30);

/// A real redb engine with a gate on its first write and a record of every write's size.
struct Staged {
    inner: RedbEngine,
    /// Taken by the first write: it reports that it has started, then waits to be released.
    gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
    /// The number of batches in each `write` call, in order.
    writes: Mutex<Vec<usize>>,
}

/// The test's side of the gate.
struct Gate {
    started: Receiver<()>,
    release: Sender<()>,
}

impl Staged {
    fn open(dir: &tempfile::TempDir) -> (Arc<Staged>, Gate) {
        let (started_tx, started) = channel();
        let (release, release_rx) = channel();
        let engine = Staged {
            inner: RedbEngine::open(&dir.path().join("db")).unwrap(),
            gate: Mutex::new(Some((started_tx, release_rx))),
            writes: Mutex::new(Vec::new()),
        };
        (Arc::new(engine), Gate { started, release })
    }

    fn writes(&self) -> Vec<usize> {
        self.writes.lock().unwrap().clone()
    }
}

impl Engine for Staged {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        self.inner.scan_prefix(prefix)
    }
    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError> {
        self.inner.scan_range(start, end, limit)
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        self.inner.last_with_prefix(prefix)
    }
    fn write(&self, batches: &[Batch]) -> Result<(), StoreError> {
        self.writes.lock().unwrap().push(batches.len());
        if let Some((started, release)) = self.gate.lock().unwrap().take() {
            started.send(()).unwrap();
            release
                .recv_timeout(GUARD)
                .expect("the test releases the first write");
        }
        let keys = || batches.iter().flat_map(Batch::ops).map(op_key);
        if keys().any(|key| key.starts_with(b"panic/")) {
            panic!("injected engine panic");
        }
        if keys().any(|key| key.starts_with(b"poison/")) {
            return Err(StoreError::Engine {
                engine: "staged",
                operation: Operation::Write,
                source: "injected write failure".into(),
            });
        }
        self.inner.write(batches)
    }
}

fn op_key(op: &store::Op) -> &[u8] {
    match op {
        store::Op::Put { key, .. } | store::Op::Delete { key } => key,
    }
}

fn put(key: &str, value: &[u8]) -> Batch {
    let mut batch = Batch::default();
    batch.put(key, value);
    batch
}

type Commit<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + 'a>>;

/// Starts a commit and leaves it waiting for its answer, its batch in the committer's queue.
fn queued(store: &Store, batch: Batch) -> Commit<'_> {
    let mut commit: Commit<'_> = Box::pin(store.commit(batch));
    let poll = commit
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    assert!(
        matches!(poll, Poll::Pending),
        "a queued commit waits for the committer"
    );
    commit
}

/// Queues a first commit and waits until the engine is inside its write, so that what the test
/// queues next must wait for the following write.
fn hold_first_write<'a>(store: &'a Store, gate: &Gate) -> Commit<'a> {
    let first = queued(store, put("first", b"1"));
    gate.started
        .recv_timeout(GUARD)
        .expect("the committer starts the first write");
    first
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn batches_queued_during_a_write_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate) = Staged::open(&dir);
    let store = Store::with_engine(engine.clone()).unwrap();

    let first = hold_first_write(&store, &gate);
    let waiting: Vec<_> = (0..100)
        .map(|n| queued(&store, put(&format!("k/{n:03}"), b"v")))
        .collect();
    gate.release.send(()).unwrap();

    let rt = runtime();
    rt.block_on(first).unwrap();
    for commit in waiting {
        rt.block_on(commit).unwrap();
    }
    assert_eq!(engine.writes(), vec![1, 100]);
    assert_eq!(store.scan_prefix(b"k/").unwrap().len(), 100);
}

#[test]
fn one_write_is_capped_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate) = Staged::open(&dir);
    let store = Store::with_engine(engine.clone()).unwrap();

    // 1 MiB each: the 16 MiB cap closes a group after 16 of them.
    let big = vec![7u8; 1 << 20];
    let first = hold_first_write(&store, &gate);
    let waiting: Vec<_> = (0..20)
        .map(|n| queued(&store, put(&format!("big/{n:02}"), &big)))
        .collect();
    gate.release.send(()).unwrap();

    let rt = runtime();
    rt.block_on(first).unwrap();
    for commit in waiting {
        rt.block_on(commit).unwrap();
    }
    assert_eq!(engine.writes(), vec![1, 16, 4]);
}

#[test]
fn a_bad_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate) = Staged::open(&dir);
    let store = Store::with_engine(engine.clone()).unwrap();

    let first = hold_first_write(&store, &gate);
    let before = queued(&store, put("good/before", b"1"));
    let bad = queued(&store, put("poison/x", b"1"));
    let after = queued(&store, put("good/after", b"1"));
    gate.release.send(()).unwrap();

    let rt = runtime();
    rt.block_on(first).unwrap();
    rt.block_on(before).unwrap();
    let error = rt.block_on(bad).expect_err("the poisoned batch fails");
    assert!(
        matches!(
            error,
            StoreError::Engine {
                operation: Operation::Write,
                ..
            }
        ),
        "{error:?}"
    );
    rt.block_on(after).unwrap();

    // The group of three failed together, then each batch was written alone.
    assert_eq!(engine.writes(), vec![1, 3, 1, 1, 1]);
    assert!(store.get(b"good/before").unwrap().is_some());
    assert!(store.get(b"good/after").unwrap().is_some());
    assert_eq!(store.get(b"poison/x").unwrap(), None);
}

#[test]
fn a_caller_that_stops_waiting_still_gets_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate) = Staged::open(&dir);
    let store = Store::with_engine(engine.clone()).unwrap();

    let first = hold_first_write(&store, &gate);
    drop(queued(&store, put("abandoned", b"1")));
    gate.release.send(()).unwrap();
    drop(first);
    // Dropping the store waits for the committer to drain its queue.
    drop(store);

    assert_eq!(engine.writes(), vec![1, 1]);
    assert!(engine.get(b"first").unwrap().is_some());
    assert!(engine.get(b"abandoned").unwrap().is_some());
}

#[test]
fn a_panicked_committer_fails_every_caller_and_still_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, gate) = Staged::open(&dir);
    let store = Store::with_engine(engine.clone()).unwrap();

    let first = hold_first_write(&store, &gate);
    let doomed = queued(&store, put("panic/now", b"1"));
    let grouped = queued(&store, put("k/with-it", b"1"));
    gate.release.send(()).unwrap();

    let rt = runtime();
    rt.block_on(first).unwrap();
    for commit in [doomed, grouped] {
        let error = rt.block_on(commit).expect_err("the committer died");
        assert!(matches!(error, StoreError::CommitterStopped), "{error:?}");
    }
    let later = rt
        .block_on(store.commit(put("k/later", b"1")))
        .expect_err("no committer");
    assert!(matches!(later, StoreError::CommitterStopped), "{later:?}");
    assert!(matches!(
        store.commit_blocking(put("k/later", b"1")),
        Err(StoreError::CommitterStopped)
    ));
    // Reads do not need the committer.
    assert!(store.get(b"first").unwrap().is_some());
    drop(store);
}
