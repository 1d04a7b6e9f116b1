//! Durable commits per second through `store::Store` (group commit), with 1 and with 256
//! concurrent committers, each committing one ~200-byte put at a time under a key scattered over
//! the key space (as orders' and cards' random numbers are): redb and sled behind the write-ahead
//! log (`Store::open`, what the processes run), and redb without it (`Store::with_engine`, each
//! group one redb commit, as before the log). The figure that matters is elements per second:
//! every element is one acknowledged, durable commit.
// criterion_group! generates a public `benches` function its macro gives no place to document.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use store::{Batch, RedbEngine, Store};

const VALUE_BYTES: usize = 176;

/// A ~200-byte batch: a 24-byte key (unique across the run, scattered: an odd multiplier is a
/// bijection of `u64`) and a 176-byte value.
fn small_batch(counter: &AtomicU64) -> Batch {
    let n = counter
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut batch = Batch::default();
    batch.put(
        [b"bench/commit/".as_slice(), &[0; 3], &n.to_be_bytes()].concat(),
        vec![0xA5; VALUE_BYTES],
    );
    batch
}

/// Runs `commits` commits spread over `committers` tasks and returns the wall time.
async fn commit_all(
    store: &Store,
    counter: &Arc<AtomicU64>,
    committers: u64,
    commits: u64,
) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..committers)
        .map(|task| {
            let (store, counter) = (store.clone(), Arc::clone(counter));
            // The first `commits % committers` tasks take one extra, so the total is exact.
            let share = commits / committers + u64::from(task < commits % committers);
            tokio::spawn(async move {
                for _ in 0..share {
                    store
                        .commit(small_batch(&counter))
                        .await
                        .expect("durable commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("committer task");
    }
    start.elapsed()
}

fn durable_commits(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("store_durable_commit");
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    for name in ["redb", "sled", "redb-without-log"] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(name);
        let store = match name {
            "redb-without-log" => {
                let engine = RedbEngine::open(&path).expect("open redb");
                Store::with_engine(Arc::new(engine))
            }
            kind => Store::open(kind.parse().expect("an engine"), &path),
        }
        .expect("open the store");
        let counter = Arc::new(AtomicU64::new(0));
        for committers in [1u64, 256] {
            group.bench_with_input(BenchmarkId::new(name, committers), &committers, |b, &n| {
                b.iter_custom(|commits| runtime.block_on(commit_all(&store, &counter, n, commits)));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, durable_commits);
criterion_main!(benches);
