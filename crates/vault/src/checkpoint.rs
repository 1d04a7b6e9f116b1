//! Sealed checkpoints of the audit chain, kept outside the database. Every `checkpoint_every`
//! entries or `checkpoint_secs` seconds (when entries were added) and at shutdown, the chain's
//! durable head (sequence, hash) is MAC'd with HMAC-SHA-256 by the HSM's sign-only audit key
//! (`vault-audit-v1`, never extractable) and appended as one line to an append-only file
//! (`<data>/audit-head.log`, opened `O_APPEND`, 0600), which an operator ships off-host:
//!
//! ```text
//! v1 <seq> <head: 64 hex> <unix ms> <mac: 64 hex>
//! mac = HMAC-SHA-256(vault-audit-v1, "vault-audit-checkpoint-v1" 0x00 || seq u64 BE || head || ms u64 BE)
//! ```
//!
//! The first line is the genesis checkpoint (sequence 0, zero hash), written when the vault
//! opens an empty log. Someone who can write the database but not use the HSM key cannot make a
//! checkpoint, so an entry altered or erased at or before the last checkpoint, or a tail cut below
//! it, no longer matches. Detokenize never waits for this: one HSM call per checkpoint, not per
//! entry.
//!
//! Owns the file and the line format. Must never write anything but sequence numbers, hashes,
//! times and MACs, and never truncate or rewrite the file.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hsm::{Hsm, HsmError};
use store::Store;
use tokio::sync::watch;

use crate::audit::{self, AuditError};
use crate::model::AuditSummary;

const DOMAIN: &[u8] = b"vault-audit-checkpoint-v1\0";

/// What is wrong with the checkpoints, or why they cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // Evidence that the log or its checkpoints were tampered with.
    /// The file is gone although the log has entries: deleted, or a database restored without
    /// it. The operator restores it from the off-host copy.
    #[error(
        "checkpoint file {0} is missing while the audit log has entries: restore it from the off-host copy"
    )]
    Missing(PathBuf),
    /// A line is not a `v1` checkpoint line: the file was edited or corrupted.
    #[error("checkpoint file line {line} is malformed")]
    Malformed {
        /// The 1-based line of the checkpoint file.
        line: usize,
    },
    /// A line's MAC was not made by the HSM's audit key: a forged or altered checkpoint.
    #[error("checkpoint file line {line} has a MAC the HSM's audit key did not make")]
    BadMac {
        /// The 1-based line of the checkpoint file.
        line: usize,
    },
    /// A line's sequence is lower than the line before: lines were reordered or spliced in.
    #[error("checkpoint file line {line} goes back in sequence")]
    OutOfOrder {
        /// The 1-based line of the checkpoint file.
        line: usize,
    },
    /// An entry's chain hash differs from its sealed checkpoint: the log was altered, erased or
    /// recomputed by someone who could write the database.
    #[error("entry {seq} differs from its sealed checkpoint (altered, erased or recomputed)")]
    Diverges {
        /// The sealed entry whose hash differs.
        seq: u64,
    },
    /// The log has fewer entries than a sealed checkpoint covers: its tail was cut.
    #[error("the log ends at entry {entries}, before sealed checkpoint {sealed} (tail cut)")]
    CutBelow {
        /// How many entries the log still holds.
        entries: u64,
        /// The sequence of the sealed checkpoint beyond the log's end.
        sealed: u64,
    },

    // The vault's own parts failed.
    /// The file could not be opened, read or appended to (permissions, disk): the host's fault.
    #[error("cannot read or append to the checkpoint file {path}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The HSM refused or failed to MAC a checkpoint.
    #[error("the HSM could not MAC a checkpoint")]
    Hsm(#[from] HsmError),
}

/// One sealed (sequence, head hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The audit entry the checkpoint seals (0 for the genesis checkpoint of an empty log).
    pub seq: u64,
    /// The chain hash after entry `seq`.
    pub head: [u8; 32],
    /// When the checkpoint was made, in Unix milliseconds.
    pub at_ms: u64,
    /// HMAC-SHA-256 by the HSM's audit key over the domain, `seq`, `head` and `at_ms`.
    pub mac: [u8; 32],
}

impl Checkpoint {
    fn signed(seq: u64, head: &[u8; 32], at_ms: u64) -> Vec<u8> {
        [DOMAIN, &seq.to_be_bytes(), head, &at_ms.to_be_bytes()].concat()
    }

    fn line(&self) -> String {
        format!(
            "v1 {} {} {} {}\n",
            self.seq,
            hex(&self.head),
            self.at_ms,
            hex(&self.mac)
        )
    }

    fn parse(line: &str) -> Option<Checkpoint> {
        let mut parts = line.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let seq = parts.next()?.parse().ok()?;
        let head = unhex(parts.next()?)?;
        let at_ms = parts.next()?.parse().ok()?;
        let mac = unhex(parts.next()?)?;
        parts.next().is_none().then_some(Checkpoint {
            seq,
            head,
            at_ms,
            mac,
        })
    }
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// MACs computed again are compared in time independent of where they differ.
fn same_mac(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Makes and reads the checkpoints of one checkpoint file with the HSM's audit key.
#[derive(Debug)]
pub struct Sealer {
    hsm: Hsm,
    path: PathBuf,
    /// The sequence of the last checkpoint written by this process; held while one is written,
    /// so the periodic and the final checkpoint never race.
    last: Mutex<Option<u64>>,
}

impl Sealer {
    /// Over the checkpoint file at `path` (read or written only when asked).
    pub fn new(hsm: Hsm, path: PathBuf) -> Sealer {
        Sealer {
            hsm,
            path,
            last: Mutex::new(None),
        }
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
        |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Every checkpoint in the file, each MAC checked by the HSM (one call per line) and the
    /// sequence never going back.
    pub fn read(&self) -> Result<Vec<Checkpoint>, CheckpointError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io()(e)),
        };
        let mut out: Vec<Checkpoint> = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line_no = i + 1;
            let line = line.map_err(self.io())?;
            let c = Checkpoint::parse(&line).ok_or(CheckpointError::Malformed { line: line_no })?;
            let mac = self
                .hsm
                .audit_mac(&Checkpoint::signed(c.seq, &c.head, c.at_ms))?;
            if !same_mac(&mac, &c.mac) {
                return Err(CheckpointError::BadMac { line: line_no });
            }
            if out.last().is_some_and(|prev| prev.seq > c.seq) {
                return Err(CheckpointError::OutOfOrder { line: line_no });
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Seals (`seq`, `head`) unless this process already sealed it or a later one: one HSM call,
    /// one appended line, synced. Blocking.
    pub fn seal(&self, seq: u64, head: &[u8; 32]) -> Result<Option<Checkpoint>, CheckpointError> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|l| l >= seq) {
            return Ok(None);
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mac = self.hsm.audit_mac(&Checkpoint::signed(seq, head, at_ms))?;
        let c = Checkpoint {
            seq,
            head: *head,
            at_ms,
            mac,
        };
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.path)
                .map_err(self.io())?
        };
        file.write_all(c.line().as_bytes()).map_err(self.io())?;
        file.sync_data().map_err(self.io())?;
        *last = Some(seq);
        Ok(Some(c))
    }

    /// Opens the file for a vault about to serve: an empty log with no file gets the genesis
    /// checkpoint; a log with entries and no file is refused (the file was removed).
    pub fn prepare(&self, log_is_empty: bool) -> Result<(), CheckpointError> {
        let found = self.read()?;
        match found.last() {
            Some(c) => {
                *self
                    .last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.seq);
                Ok(())
            }
            None if log_is_empty => self.seal(0, &[0; 32]).map(|_| ()),
            None => Err(CheckpointError::Missing(self.path.clone())),
        }
    }
}

/// Verifies the chain in `store` and every checkpoint in the sealer's file against it: each
/// checkpoint's MAC, the chain's hash at each checkpoint's sequence, and that the log reaches
/// the last checkpoint.
pub fn verify_sealed(store: &Store, sealer: &Sealer) -> Result<AuditSummary, AuditError> {
    let checkpoints = sealer.read()?;
    if checkpoints.is_empty() {
        return Err(CheckpointError::Missing(sealer.path.clone()).into());
    }
    let mut ahead = checkpoints.iter().filter(|c| c.seq > 0).peekable();
    let verified = audit::verify_through(store, &mut |seq, hash| {
        while let Some(c) = ahead.next_if(|c| c.seq == seq) {
            if c.head != *hash {
                return Err(CheckpointError::Diverges { seq }.into());
            }
        }
        Ok(())
    })?;
    if let Some(c) = ahead.next() {
        return Err(CheckpointError::CutBelow {
            entries: verified.entries,
            sealed: c.seq,
        }
        .into());
    }
    Ok(AuditSummary {
        entries: verified.entries,
        checkpoints: checkpoints.len() as u64,
        sealed_through: checkpoints.last().map_or(0, |c| c.seq),
        head: verified.head,
    })
}

/// Seals the durable head every `every` entries or `period` (when it moved), until the audit
/// log stops. A failure is logged and retried at the next checkpoint.
pub async fn keep_sealing(
    sealer: Arc<Sealer>,
    mut head: watch::Receiver<(u64, [u8; 32])>,
    every: u64,
    period: Duration,
) {
    let mut sealed = head.borrow().0;
    let mut deadline = tokio::time::Instant::now() + period;
    loop {
        let due = tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    return;
                }
                head.borrow().0 >= sealed.saturating_add(every)
            }
            () = tokio::time::sleep_until(deadline) => {
                deadline = tokio::time::Instant::now() + period;
                head.borrow().0 > sealed
            }
        };
        if !due {
            continue;
        }
        let (seq, hash) = *head.borrow();
        let s = Arc::clone(&sealer);
        match tokio::task::spawn_blocking(move || s.seal(seq, &hash)).await {
            Ok(Ok(_)) => sealed = seq,
            Ok(Err(e)) => {
                tracing::error!(error = %crate::service::Chain(&e), seq, "audit checkpoint failed")
            }
            Err(e) => tracing::error!(error = %e, "audit checkpoint task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_line_reads_back_and_nothing_else_does() {
        let c = Checkpoint {
            seq: 42,
            head: [0xab; 32],
            at_ms: 1_700_000_000_000,
            mac: [0x01; 32],
        };
        let line = c.line();
        assert!(line.ends_with('\n'));
        assert_eq!(Checkpoint::parse(line.trim_end()), Some(c.clone()));
        for bad in [
            line.replace("v1", "v2"),
            line.trim_end().to_string() + " extra",
            line.replace(&"ab".repeat(32), &"AB".repeat(32)),
            "v1 42".to_string(),
        ] {
            assert_eq!(Checkpoint::parse(bad.trim_end()), None, "{bad}");
        }
    }
}
