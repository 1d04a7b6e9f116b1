//! Group commit: one committer thread per store takes every batch queued while the previous
//! write was in flight and makes them durable with ONE write to its [`Sink`] (one fsync: the
//! journal's log, or the engine itself), then answers each caller. Writes start at most once per
//! [`PACE`], so that under load a write carries what came in the meantime. It owns the queue and
//! the thread; it must never answer `Ok` before the write that holds the caller's batch has
//! returned `Ok`, and never let one caller's bad batch fail the others.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::{Batch, Engine, StoreError};

/// Batches waiting for the committer; a full queue makes callers wait (back-pressure) instead of
/// growing memory without bound.
const QUEUE_CAPACITY: usize = 4096;
/// At most this many batches in one engine write, so one write's latency stays bounded...
const MAX_GROUP_BATCHES: usize = 4096;
/// ...and at most about this many key and value bytes (a single larger batch still goes alone).
const MAX_GROUP_BYTES: usize = 16 << 20;
/// The least time from the start of one write to the start of the next: a batch that comes
/// sooner waits for the rest of it, and goes with everything queued by then. Each write is an
/// `fdatasync`, and on a virtual machine each one also costs the host CPU time charged to the
/// machine: at 1,000 Token Pay payments a second (3,700 syncs a second from two processes) this
/// VM's host stopped both of its CPUs for 2-10 ms in most 100 ms periods (README, Figures). Below
/// 2,000 commits a second a commit never waits; above it, at most half a millisecond.
pub(crate) const PACE: Duration = Duration::from_micros(500);

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Where the committer makes a group durable: an engine directly (each group one engine write),
/// or the journal in front of one.
pub(crate) trait Sink: Send + 'static {
    /// Makes `batches` durable and visible to reads, atomically, in order.
    fn commit(&mut self, batches: &[Batch]) -> Result<(), StoreError>;
}

impl Sink for Arc<dyn Engine> {
    fn commit(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        Engine::write(&**self, batches)
    }
}

/// A caller's batch and where its result goes.
struct Pending {
    batch: Batch,
    reply: Reply,
}

/// The handle to a running committer thread; dropping it stops the thread after the queue drains.
pub(crate) struct Committer {
    // Field order matters: `queue` is dropped first, which closes the channel; only then does
    // `_thread` join, and the thread exits as soon as the closed channel is empty.
    queue: mpsc::Sender<Pending>,
    _thread: JoinOnDrop,
}

impl Committer {
    /// Starts the committer thread that writes to `sink`, a write starting at most once per
    /// `pace`.
    pub(crate) fn start(mut sink: impl Sink, pace: Duration) -> Result<Self, StoreError> {
        let (queue, pending) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || run(&mut sink, pending, pace))
            .map_err(StoreError::StartCommitter)?;
        Ok(Committer {
            queue,
            _thread: JoinOnDrop(Some(thread)),
        })
    }

    /// Queues `batch` and waits until it is durable.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { batch, reply })
            .await
            .map_err(|_| StoreError::CommitterStopped)?;
        answer.await.map_err(|_| StoreError::CommitterStopped)?
    }

    /// [`Committer::commit`] for a thread that is not running async code.
    pub(crate) fn commit_blocking(&self, batch: Batch) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .blocking_send(Pending { batch, reply })
            .map_err(|_| StoreError::CommitterStopped)?;
        answer
            .blocking_recv()
            .map_err(|_| StoreError::CommitterStopped)?
    }
}

/// Joins the committer thread when the last handle goes, so that the engine (and its file lock)
/// is released by the time the last `Store` clone has dropped.
struct JoinOnDrop(Option<JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // A panicked committer has already failed its callers with `CommitterStopped`;
            // there is nobody left to tell.
            let _ = thread.join();
        }
    }
}

/// The committer thread: waits for a batch and for `pace` to pass since the last write began,
/// takes everything else queued by then, writes once.
fn run(sink: &mut impl Sink, mut queue: mpsc::Receiver<Pending>, pace: Duration) {
    let mut batches = Vec::new();
    let mut replies = Vec::new();
    let mut last_write: Option<Instant> = None;
    while let Some(first) = queue.blocking_recv() {
        if let Some(rest) = last_write.and_then(|at| pace.checked_sub(at.elapsed())) {
            std::thread::sleep(rest);
        }
        last_write = Some(Instant::now());
        let mut bytes = first.batch.bytes();
        batches.push(first.batch);
        replies.push(first.reply);
        while batches.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
            let Ok(next) = queue.try_recv() else { break };
            bytes += next.batch.bytes();
            batches.push(next.batch);
            replies.push(next.reply);
        }
        write_group(sink, &batches, replies.drain(..));
        batches.clear();
    }
}

/// Writes `batches` in one write and answers each caller. If the combined write fails, each
/// batch is written alone so that each caller gets the result of its own batch.
fn write_group(sink: &mut impl Sink, batches: &[Batch], mut replies: impl Iterator<Item = Reply>) {
    // A reply that cannot be sent belongs to a caller that stopped waiting; its batch is written
    // all the same, as it would have been had the caller waited.
    match sink.commit(batches) {
        Ok(()) => replies.for_each(|reply| {
            let _ = reply.send(Ok(()));
        }),
        // Alone already: retrying would only repeat the same write.
        Err(error) if batches.len() == 1 => {
            if let Some(reply) = replies.next() {
                let _ = reply.send(Err(error));
            }
        }
        Err(_) => batches.iter().zip(replies).for_each(|(batch, reply)| {
            let _ = reply.send(sink.commit(std::slice::from_ref(batch)));
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A sink that keeps the number of batches in each write.
    struct Counting(Arc<Mutex<Vec<usize>>>);

    impl Sink for Counting {
        fn commit(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(batches.len());
            Ok(())
        }
    }

    fn put(key: &str) -> Batch {
        let mut batch = Batch::default();
        batch.put(key, b"v".to_vec());
        batch
    }

    #[test]
    fn commits_within_the_pace_of_the_last_write_share_the_next_one() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        // A pace far longer than two threads take to queue their batches.
        let committer =
            Committer::start(Counting(Arc::clone(&writes)), Duration::from_secs(1)).unwrap();
        committer.commit_blocking(put("first")).unwrap();
        std::thread::scope(|s| {
            for key in ["second", "third"] {
                let committer = &committer;
                s.spawn(move || committer.commit_blocking(put(key)).unwrap());
            }
        });
        assert_eq!(*writes.lock().unwrap(), vec![1, 2]);
    }
}
