//! Durability across a process kill, for each engine: a child process (this same binary, told so
//! by an environment variable) commits batches from many tasks and prints each acknowledged batch
//! id; the parent SIGKILLs it mid-stream, reopens the database, and checks that every
//! acknowledged batch is there, whole, and that no batch is there in part. Twice on the same
//! database: the second child is killed only once its write-ahead log has moved into the
//! database at least once, so the reopen replays a log written over a retired segment on top of
//! a database that already holds part of it.
#![allow(
    clippy::print_stderr,
    reason = "without libtest, this binary reports what it checked on stderr"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use store::{Batch, EngineKind, Store};

const CHILD_ENGINE: &str = "STORE_CRASH_CHILD_ENGINE";
const CHILD_PATH: &str = "STORE_CRASH_CHILD_PATH";
const CHILD_FIRST: &str = "STORE_CRASH_CHILD_FIRST";
/// The second child's first batch id, far past anything the first one reaches.
const SECOND_ROUND: u64 = 1 << 32;
/// Keys per batch: a batch found in part after the crash would break atomicity.
const KEYS: u8 = 4;
/// Concurrent committers in the child, so that the kill lands inside group commits.
const WRITERS: usize = 32;
/// Acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 2000;
/// Guards each wait; never reached on a healthy run.
const GUARD: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    match (std::env::var(CHILD_ENGINE), std::env::var_os(CHILD_PATH)) {
        (Ok(engine), Some(path)) => child(engine.parse().unwrap(), Path::new(&path)),
        _ => {
            for kind in [EngineKind::Redb, EngineKind::Sled] {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(kind.name());
                let first = acknowledged_batches_survive_sigkill(kind, &path, 0, BTreeSet::new());
                acknowledged_batches_survive_sigkill(kind, &path, SECOND_ROUND, first);
            }
            ExitCode::SUCCESS
        }
    }
}

fn key(id: u64, part: u8) -> Vec<u8> {
    [b"crash/".as_slice(), &id.to_be_bytes(), &[part]].concat()
}

fn value(id: u64, part: u8) -> Vec<u8> {
    // About 200 bytes, different for every key, so a torn or misplaced value is caught.
    let mut value = format!("{id}:{part}:").into_bytes();
    value.resize(200, part);
    value
}

/// Commits batches until killed (or until the parent stops reading), printing `ack <id>` after
/// each commit returns Ok.
fn child(kind: EngineKind, path: &Path) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(kind, path).unwrap();
        let first = std::env::var(CHILD_FIRST).unwrap().parse().unwrap();
        let next = Arc::new(AtomicU64::new(first));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (store, next) = (store.clone(), Arc::clone(&next));
                tokio::spawn(async move {
                    loop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let mut batch = Batch::default();
                        for part in 0..KEYS {
                            batch.put(key(id, part), value(id, part));
                        }
                        store.commit(batch).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        // The parent has gone: nothing left to prove.
                        if writeln!(out, "ack {id}")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
    ExitCode::FAILURE
}

/// The newest write-ahead log segment of the database at `path`, if any.
fn newest_segment(path: &Path) -> Option<u64> {
    let mut log = path.as_os_str().to_owned();
    log.push(".wal");
    std::fs::read_dir(PathBuf::from(log))
        .ok()?
        .flatten()
        .filter_map(|e| e.path().file_stem()?.to_str()?.parse().ok())
        .max()
}

/// Runs a child writing batches from `first` on, kills it, and checks every batch acknowledged
/// by it and `before` (the earlier rounds'); returns them all.
fn acknowledged_batches_survive_sigkill(
    kind: EngineKind,
    path: &Path,
    first: u64,
    before: BTreeSet<u64>,
) -> BTreeSet<u64> {
    let segment_at_start = newest_segment(path);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENGINE, kind.name())
        .env(CHILD_PATH, path)
        .env(CHILD_FIRST, first.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let (lines, acks) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let line = line.unwrap();
            let id: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
            if lines.send(id).is_err() {
                return;
            }
        }
    });

    let mut acked = before;
    let enough = |acked: &BTreeSet<u64>| {
        acked.len() >= ACKS_BEFORE_KILL
            // A later round also waits for its child's log to have moved into the database.
            && (first == 0 || newest_segment(path) > Some(segment_at_start.unwrap_or(0) + 1))
    };
    while !enough(&acked) {
        match acks.recv_timeout(GUARD) {
            Ok(id) => {
                acked.insert(id);
            }
            Err(error) => {
                let _ = child.kill();
                panic!(
                    "{kind}: the child stopped acknowledging after {}: {error}",
                    acked.len()
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no clean close.
    let status = child.wait().unwrap();
    assert!(!status.success(), "{kind}: the child was killed");
    // Acknowledgements already in the pipe when the child died count too.
    reader.join().unwrap();
    acked.extend(acks.try_iter());

    let store = Store::open(kind, path).expect("the database reopens after SIGKILL");
    let mut found: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (key, value) in store.scan_prefix(b"crash/").unwrap() {
        assert_eq!(key.len(), 6 + 8 + 1, "{kind}: unexpected key length");
        let id = u64::from_be_bytes(key[6..14].try_into().unwrap());
        let part = key[14];
        assert_eq!(
            value,
            self::value(id, part),
            "{kind}: batch {id} part {part} is damaged"
        );
        found.entry(id).or_default().push(part);
    }
    for (id, parts) in &found {
        assert_eq!(
            parts,
            &(0..KEYS).collect::<Vec<_>>(),
            "{kind}: batch {id} is there in part"
        );
    }
    let lost: Vec<_> = acked.iter().filter(|id| !found.contains_key(id)).collect();
    assert!(
        lost.is_empty(),
        "{kind}: acknowledged batches lost: {lost:?}"
    );
    eprintln!(
        "crash test passed for {kind}: {} batches acknowledged, {} on disk after SIGKILL",
        acked.len(),
        found.len()
    );

    // The reopened database takes writes again.
    store.commit_blocking(Batch::default()).unwrap();
    let mut after = Batch::default();
    after.put(b"after-crash", b"ok");
    store.commit_blocking(after).unwrap();
    assert!(store.get(b"after-crash").unwrap().is_some());
    acked
}
