//! [`Journal`]: how a [`crate::Store`] opened on a file makes a group durable. The committer
//! appends the group to the write-ahead log (one `fdatasync`) and applies it to the in-memory
//! [`Overlay`]; a flusher thread moves the overlay into the engine every [`FREEZE_AFTER`], in one
//! engine write, and then deletes the log it covered. So a commit costs an append, not a B-tree
//! commit, and the engine's copy-on-write rewrite of a tree path is paid once per flush for every
//! write to the same pages in between (redb rewrites the path from the root to each leaf a commit
//! touches: with the random keys of orders and tokens, 20 pages per payment when each payment was
//! its own commit).
//!
//! Owns the log, the overlay's freezing, and the flusher thread. Must never acknowledge a group
//! before its log record is on disk, nor delete a log segment before the engine holds its writes
//! durably.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::group_commit::Sink;
use crate::overlay::{Overlay, to_batch};
use crate::wal::{self, Wal};
use crate::{Batch, Engine, StoreError};

/// The overlay is moved into the engine once it holds this many bytes...
const FREEZE_BYTES: usize = 8 << 20;
/// ...or once this long has passed since the last move, whichever comes first. Short, because
/// every log append's `fdatasync` waits for the engine's data that is on its way to the disk: a
/// flush of a second's writes at 1,000 payments a second (6-8 MB of random B-tree pages) took
/// 20-40 ms to sync, and every commit in that window took 4-13 ms instead of 0.3 (README,
/// Figures). Written every 25 ms, each flush is a fortieth of that.
const FREEZE_AFTER: Duration = Duration::from_millis(25);
/// Past this many bytes not yet in the engine (the engine has fallen behind the log), commits wait
/// for the flusher rather than grow memory without bound.
const HARD_LIMIT: usize = 64 << 20;
/// The flusher thread's nice value. Its work (a B-tree write of what came since the last flush)
/// is never waited for by a request unless the overlay is full, so it yields the CPU to the
/// threads that are (a flush at normal priority took a core away from the requests in flight for
/// as long as it ran).
const FLUSHER_NICE: i32 = 10;
/// How long a flusher whose engine write failed waits before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The committer's side of the journal; dropping it stops the flusher after a last flush.
pub(crate) struct Journal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    engine: Arc<dyn Engine>,
    overlay: Arc<Overlay>,
    /// Held across an append and its apply, and across a rotation and its freeze, so that every
    /// record of a finished segment is in the frozen layer or already in the engine.
    wal: Mutex<Wal>,
    dir: PathBuf,
    signal: Mutex<Signal>,
    wake: Condvar,
    /// The last engine write failed; commits that would have to wait for it fail instead.
    failing: AtomicBool,
}

#[derive(Default)]
struct Signal {
    full: bool,
    stop: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every holder leaves the data whole between statements; a panic cannot tear it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Opens the log in `dir` for `engine`: what a crash left in it is written to the engine
    /// (durably) and deleted first, so the overlay starts empty.
    pub(crate) fn open(
        engine: Arc<dyn Engine>,
        dir: &Path,
    ) -> Result<(Journal, Arc<Overlay>), StoreError> {
        let (replay, last) = Wal::recover(dir)?;
        if !replay.is_empty() {
            engine.write(&replay)?;
        }
        if let Some(last) = last {
            wal::remove_through(dir, last)?;
        }
        let wal = Wal::start(dir, last)?;
        let overlay = Arc::new(Overlay::default());
        let shared = Arc::new(Shared {
            engine,
            overlay: Arc::clone(&overlay),
            wal: Mutex::new(wal),
            dir: dir.to_path_buf(),
            signal: Mutex::default(),
            wake: Condvar::new(),
            failing: AtomicBool::new(false),
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("store-flusher".into())
                .spawn(move || shared.run())
                .map_err(StoreError::StartCommitter)?
        };
        Ok((
            Journal {
                shared,
                flusher: Some(flusher),
            },
            overlay,
        ))
    }
}

impl Sink for Journal {
    fn commit(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        let shared = &*self.shared;
        while !shared.overlay.wait_below(HARD_LIMIT, RETRY_AFTER) {
            if shared.failing.load(Ordering::Acquire) {
                return Err(StoreError::EngineBehind);
            }
            shared.wake(|s| s.full = true);
        }
        let applied = {
            let mut wal = lock(&shared.wal);
            wal.append(batches)?;
            shared.overlay.apply(batches)
        };
        if applied >= FREEZE_BYTES {
            shared.wake(|s| s.full = true);
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shared.wake(|s| s.stop = true);
        if let Some(flusher) = self.flusher.take() {
            // A panicked flusher left its writes in the log, to be replayed at the next open.
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn wake(&self, set: impl FnOnce(&mut Signal)) {
        set(&mut lock(&self.signal));
        self.wake.notify_one();
    }

    /// The flusher thread: a flush when the overlay is full or a second has passed, and a last
    /// one when the journal is dropped.
    fn run(&self) {
        // Linux keeps a nice value per thread, so this lowers the flusher alone. Refused (a
        // sandbox), the flusher runs at the process's priority: slower requests, nothing wrong.
        let _ = rustix::process::setpriority_process(None, FLUSHER_NICE);
        loop {
            let stop = {
                let mut signal = lock(&self.signal);
                if !signal.full && !signal.stop {
                    signal = self
                        .wake
                        .wait_timeout(signal, FREEZE_AFTER)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                signal.full = false;
                signal.stop
            };
            self.flush(stop);
            if stop {
                return;
            }
        }
    }

    /// Moves the overlay's active layer into the engine and deletes the log segment it came
    /// from. On the last flush, an engine that cannot write is left to the next open's replay.
    fn flush(&self, last: bool) {
        let (frozen, ended) = {
            let mut wal = lock(&self.wal);
            // Groups are applied under this lock: the layer checked is the layer frozen below.
            if self.overlay.is_empty() {
                return;
            }
            let ended = match wal.rotate() {
                Ok(ended) => ended,
                Err(error) => {
                    tracing::error!(error = %error, "cannot start a new log segment");
                    self.failing.store(true, Ordering::Release);
                    return;
                }
            };
            match self.overlay.freeze() {
                Some(frozen) => (frozen, ended),
                None => return,
            }
        };
        let batch = to_batch(&frozen);
        while let Err(error) = self.engine.write(std::slice::from_ref(&batch)) {
            tracing::error!(error = %error, "cannot move the log's writes into the database");
            self.failing.store(true, Ordering::Release);
            if last || lock(&self.signal).stop {
                return;
            }
            std::thread::sleep(RETRY_AFTER);
        }
        self.failing.store(false, Ordering::Release);
        self.overlay.thaw();
        if let Err(error) = wal::remove_through(&self.dir, ended) {
            // Harmless but for disk space: the next flush removes it, or an open replays it.
            tracing::warn!(error = %error, "cannot delete a log segment the database holds");
        }
    }
}

/// The log directory of a database at `path`: beside it, its name and `.wal`.
pub(crate) fn dir_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".wal");
    path.with_file_name(name)
}
