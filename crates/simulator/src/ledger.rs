//! The ledger: one entry for every message the simulator saw and what it did about it, plus the
//! card balances, so that a test can reconcile the authorizer's beliefs against the network's.
//!
//! Owns the entry types, the in-memory journal, the optional JSON-lines file of the run and the
//! snapshot handed to tests and to the read-only HTTP endpoint. It must never hold a PAN (cards
//! appear masked, 6 + 4) nor any CVC, CAVV or key.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the issuer did with one message. Every balance change is here, with its sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// 0100 / 0200 purchase approved; the amount was debited.
    Approved,
    /// 0200 refund approved; the amount was credited.
    Refunded,
    /// Declined with the response code of the entry; nothing changed.
    Declined,
    /// 0220 applied: the authorization is final for the entry's amount; the rest was released.
    Completed,
    /// 0220 for a completion already applied: acknowledged, nothing changed.
    CompletionRepeated,
    /// 0400 / 0420 / 0421 applied to an approved transaction.
    Reversed,
    /// A reversal of a transaction already reversed (to that amount): acknowledged, nothing changed.
    ReversalRepeated,
    /// A reversal of a transaction the network never approved: acknowledged, nothing changed.
    ReversalOfUnknown,
    /// 0800 network management answered.
    Network,
    /// The message was a valid frame but not a valid request (missing or malformed field);
    /// answered with 30 (or not at all when no response MTI exists) and changed nothing.
    Rejected {
        /// Which field was missing or malformed; never its value.
        reason: String,
    },
    /// The frame could not be decoded; the connection was closed.
    Malformed {
        /// The framing or codec error: a position and what was wrong there, never the bytes.
        reason: String,
    },
}

/// How the response was (or was not) delivered, as decided by fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// Written at once, or after the configured latency.
    Sent,
    /// Written after a latency that a fault chose.
    Delayed {
        /// The latency in milliseconds.
        ms: u64,
    },
    /// Decided and booked, but never written.
    NoResponse,
    /// After the configured late delay, i.e. after the acquirer timed out.
    Late {
        /// The latency in milliseconds.
        ms: u64,
    },
    /// Half the frame written, then the connection closed.
    DropConnection,
    /// An undecodable frame written instead of the response.
    Malformed,
    /// Nothing to answer (e.g. an undecodable frame).
    None,
}

/// One message seen by the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the run, from 1, gap-free.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// The connection it arrived on (numbered from 1 per run).
    pub connection: u64,
    /// Request MTI, e.g. "0100"; empty for an undecodable frame.
    pub mti: String,
    /// DE 11, to match the entry with the authorizer's record of the request.
    pub stan: Option<u32>,
    /// DE 37, the retrieval reference number the authorizer assigned.
    pub rrn: Option<String>,
    /// Masked PAN (first 6, last 4).
    pub card: Option<String>,
    /// Whether the message itself carried the card (DE 2). A reversal may come without it, found
    /// by DE 90; `card` then names the card of the approval it reversed.
    #[serde(default)]
    pub card_present: bool,
    /// DE 4 in minor units as received.
    pub amount: Option<u64>,
    /// For 0400/0420/0421/0220: the original MTI and STAN from DE 90.
    pub original: Option<(String, u32)>,
    /// DE 39 as answered, whether or not the answer was delivered.
    pub response_code: Option<String>,
    /// DE 38 of an approval.
    pub approval_code: Option<String>,
    /// DE 48.03 returned on a first-use approval.
    pub network_id: Option<String>,
    /// What the issuer did with the message.
    pub action: Action,
    /// Signed change of the card's balance caused by this message.
    pub balance_delta: i64,
    /// The card's balance after this message, when it touched one.
    pub balance_after: Option<i64>,
    /// What became of the response: a test reconciles against what the acquirer could have seen.
    pub delivery: Delivery,
}

/// A card's balance at snapshot time and at the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Minor units at the start of the run, from the card's profile.
    pub opening: i64,
    /// Minor units now.
    pub current: i64,
}

/// A consistent copy of the journal and balances, taken under the issuer's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The most recent entries, oldest first (all of them unless the in-memory cap trimmed some).
    pub entries: Vec<LedgerEntry>,
    /// How many older entries were dropped from memory by the cap (the file keeps them).
    /// Reconciliation from `entries` alone is exact only when this is 0.
    #[serde(default)]
    pub trimmed: u64,
    /// By masked card number.
    pub balances: BTreeMap<String, Balance>,
}

impl Ledger {
    /// Approved 0100/0200 (purchases and authorizations, not refunds).
    pub fn approvals(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().filter(|e| e.action == Action::Approved)
    }

    /// Reversals that changed a balance, keyed by the original (MTI, STAN).
    pub fn applied_reversals(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().filter(|e| e.action == Action::Reversed)
    }

    /// The entry of an approved request by its STAN and RRN.
    pub fn approval(&self, stan: u32, rrn: &str) -> Option<&LedgerEntry> {
        self.approvals()
            .find(|e| e.stan == Some(stan) && e.rrn.as_deref() == Some(rrn))
    }

    /// The balance of one card, by its masked number (first 6, last 4).
    pub fn balance(&self, masked_card: &str) -> Option<Balance> {
        self.balances.get(masked_card).copied()
    }

    /// Whether, for every card, opening balance plus the sum of the journal's deltas equals the
    /// current balance: the journal explains every unit of money.
    pub fn balances_add_up(&self) -> bool {
        if self.trimmed > 0 {
            return false;
        }
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for entry in &self.entries {
            if let Some(card) = &entry.card {
                *sums.entry(card).or_default() += entry.balance_delta;
            }
        }
        self.balances
            .iter()
            .all(|(card, b)| b.opening + sums.get(card.as_str()).copied().unwrap_or(0) == b.current)
    }
}

/// Where entries go as they are made: memory (up to a cap) always, a JSON-lines file when
/// configured.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Boxed so that growing the deque moves pointers: moving 32,000 whole entries stalled the
    /// issuer's lock (and every connection) for 7 ms.
    entries: VecDeque<Box<LedgerEntry>>,
    /// Most entries kept in memory; a long soak or bench would otherwise grow without bound.
    cap: usize,
    trimmed: u64,
    next_seq: u64,
    file: Option<LedgerFile>,
}

/// The ledger file, written by a thread of its own: a write that the kernel's writeback throttles
/// (seen as 3–5 ms stalls once the first dirty pages expired, 30 s into a run at 20,000 messages
/// per second) must not be made under the issuer's lock, where every connection would wait on it.
/// Lines collect in a buffer that the writer takes whole, when it is full or every
/// [`FILE_INTERVAL`]: waking the writer for every line cost more than the write.
#[derive(Debug)]
struct LedgerFile {
    shared: Arc<FileShared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct FileShared {
    pending: Mutex<Pending>,
    /// The writer waits here for a full buffer, a flush request or the close.
    wake: Condvar,
    /// Flushers and a producer held back by a full buffer wait here.
    written: Condvar,
}

impl FileShared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Pending {
    lines: Vec<u8>,
    flush_requested: u64,
    flushed: u64,
    closed: bool,
}

/// The writer takes the buffer once it holds this much...
const FILE_BATCH: usize = 64 * 1024;
/// ...or this long after it last wrote.
const FILE_INTERVAL: Duration = Duration::from_millis(50);
/// Past this much unwritten, the issuer waits for the disk (back-pressure, not unbounded memory).
const FILE_BACKLOG: usize = 16 * 1024 * 1024;

impl LedgerFile {
    fn create(path: &Path) -> std::io::Result<LedgerFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        let shared = Arc::new(FileShared::default());
        let writer = std::thread::Builder::new()
            .name("ledger-file".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_until_closed(file, &shared)
            })?;
        Ok(LedgerFile {
            shared,
            writer: Some(writer),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.shared.lock()
    }

    fn write(&self, entry: &LedgerEntry) {
        let mut pending = self.lock();
        while pending.lines.len() >= FILE_BACKLOG && !pending.closed {
            self.shared.wake.notify_one();
            pending = self
                .shared
                .written
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match serde_json::to_writer(&mut pending.lines, entry) {
            Ok(()) => pending.lines.push(b'\n'),
            Err(err) => tracing::error!(%err, "ledger entry not serializable"),
        }
        if pending.lines.len() >= FILE_BATCH {
            self.shared.wake.notify_one();
        }
    }

    /// Returns once the file holds every line written before.
    fn flush(&self) {
        let mut pending = self.lock();
        pending.flush_requested += 1;
        let target = pending.flush_requested;
        self.shared.wake.notify_one();
        while pending.flushed < target && !pending.closed {
            pending = self
                .shared
                .written
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for LedgerFile {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_until_closed(mut file: File, shared: &FileShared) {
    // Given up after a failed write: reported once, memory keeps going.
    let mut failed = false;
    loop {
        let (lines, target, closed) = {
            let mut pending = shared.lock();
            let asked = |p: &Pending| {
                p.lines.len() >= FILE_BATCH || p.flush_requested > p.flushed || p.closed
            };
            if !asked(&pending) {
                pending = shared
                    .wake
                    .wait_timeout_while(pending, FILE_INTERVAL, |p| !asked(p))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            (
                std::mem::take(&mut pending.lines),
                pending.flush_requested,
                pending.closed,
            )
        };
        if !lines.is_empty()
            && !failed
            && let Err(err) = file.write_all(&lines)
        {
            tracing::error!(%err, "ledger file write failed; keeping the ledger in memory only");
            failed = true;
        }
        shared.lock().flushed = target;
        shared.written.notify_all();
        if closed {
            return;
        }
    }
}

impl Journal {
    pub(crate) fn open(path: Option<&Path>, cap: usize) -> std::io::Result<Journal> {
        Ok(Journal {
            entries: VecDeque::new(),
            cap,
            trimmed: 0,
            next_seq: 1,
            file: path.map(LedgerFile::create).transpose()?,
        })
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn push(&mut self, entry: LedgerEntry) {
        if let Some(file) = &self.file {
            file.write(&entry);
        }
        self.next_seq = entry.seq + 1;
        if self.entries.len() >= self.cap {
            self.entries.pop_front();
            self.trimmed += 1;
        }
        if self.cap > 0 {
            self.entries.push_back(Box::new(entry));
        } else {
            self.trimmed += 1;
        }
    }

    /// Returns once the file holds every entry pushed so far.
    pub(crate) fn flush(&mut self) {
        if let Some(file) = &self.file {
            file.flush();
        }
    }

    pub(crate) fn snapshot(&self) -> (Vec<LedgerEntry>, u64) {
        (
            self.entries.iter().map(|e| LedgerEntry::clone(e)).collect(),
            self.trimmed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, delta: i64) -> LedgerEntry {
        LedgerEntry {
            seq,
            at_ms: 0,
            connection: 1,
            mti: "0200".into(),
            stan: None,
            rrn: None,
            card: Some("555555******4444".into()),
            card_present: true,
            amount: None,
            original: None,
            response_code: None,
            approval_code: None,
            network_id: None,
            action: Action::Approved,
            balance_delta: delta,
            balance_after: None,
            delivery: Delivery::Sent,
        }
    }

    #[test]
    fn the_memory_cap_keeps_the_newest_entries_and_says_how_many_went() {
        let mut journal = Journal::open(None, 2).unwrap();
        for seq in 1..=3 {
            journal.push(entry(seq, -1));
        }
        let (entries, trimmed) = journal.snapshot();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!((trimmed, journal.next_seq()), (1, 4));
        let ledger = Ledger {
            entries,
            trimmed,
            balances: BTreeMap::new(),
        };
        assert!(
            !ledger.balances_add_up(),
            "a trimmed journal cannot prove the balances"
        );
    }

    #[test]
    fn balances_add_up_only_when_the_deltas_explain_them() {
        let mut ledger = Ledger {
            entries: vec![entry(1, -5), entry(2, 2)],
            ..Ledger::default()
        };
        ledger.balances.insert(
            "555555******4444".into(),
            Balance {
                opening: 10,
                current: 7,
            },
        );
        assert!(ledger.balances_add_up());
        ledger.balances.insert(
            "555555******4444".into(),
            Balance {
                opening: 10,
                current: 8,
            },
        );
        assert!(!ledger.balances_add_up());
    }
}
