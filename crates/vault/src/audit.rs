//! The hash-chained, append-only audit log: one entry per call (who, role, what, when, which
//! token, scope, customer number, outcome), each entry's hash = SHA-256(previous hash || entry).
//!
//! Entries are appended by one task that gives them consecutive sequence numbers and commits them
//! together with the record changes of the calls they describe, in one store batch, so a call is
//! answered only once its entry and its change are durable, and the log's order is its commit
//! order. Customer numbers are kept in clear: they are the merchant's identifiers, not card data,
//! and an investigator must be able to find every access to one customer's cards. Must never hold
//! a PAN, a CVC or a cardholder name.
//!
//! The chain alone has no key and its head lives in the same database, so whoever can write the
//! database could recompute it. So the appender publishes each durable head, and the `seal`
//! module MACs it in the HSM at checkpoints and appends it to a file outside the database;
//! [`verify`] checks the chain, and `seal::verify_sealed` checks it against those checkpoints.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use store::{Batch, Op, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::model::{Role, Token};
use crate::wire::{DecodeError, Reader, Writer};

const AUDIT: &[u8] = b"audit/";
const HEAD: &[u8] = b"meta/audit-head";
/// Most calls appended in one commit: bounds one write's size and latency.
const MAX_GROUP: usize = 4096;

/// What a call did, before the log gives it a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When the call was answered, in Unix milliseconds by the vault's clock.
    pub at_ms: u64,
    /// The client id the caller authenticated as (a refused login's claimed id, sanitised); empty
    /// for the vault's own work.
    pub client: String,
    /// The caller's role; `None` before it authenticated and for the vault's own work.
    pub role: Option<Role>,
    /// The protocol op code (`protocol::op_code`), or [`OP_CONNECTION`] for no protocol call.
    pub op: u8,
    /// The token the call named, if any, so every access to one card can be found.
    pub token: Option<Token>,
    /// The merchant or union the call acted in, once resolved; empty when there is none.
    pub scope: String,
    /// The merchant's customer number in clear (an identifier, not card data); empty when none.
    pub customer: String,
    /// 0 for success, else the protocol's error code.
    pub outcome: u8,
    /// Who was on the other end (`unix uid=… gid=… pid=…`, `tcp addr cert-sha256=…`), empty
    /// for the vault's own work. Written by the server, never by the peer.
    pub peer: String,
    /// What happened when `op` alone does not say: a pre-authentication failure's reason, or a
    /// summary of failures not recorded one by one. Fixed wording from the vault, never peer data.
    pub detail: String,
}

/// The `op` of an entry that is no protocol call: a connection that failed before it
/// authenticated (its `detail` says how), or a summary of such failures and refused logins
/// that were counted rather than recorded one by one. Protocol op codes start at 1.
pub const OP_CONNECTION: u8 = 0;

impl Event {
    fn encode(&self, seq: u64) -> Vec<u8> {
        let mut w = Vec::with_capacity(96);
        w.put_u64(seq);
        w.put_u64(self.at_ms);
        w.put_str(&self.client);
        w.put_str(self.role.map_or("", Role::name));
        w.put_u8(self.op);
        w.put_bool(self.token.is_some());
        if let Some(t) = &self.token {
            w.put_slice(t.as_bytes());
        }
        w.put_str(&self.scope);
        w.put_str(&self.customer);
        w.put_u8(self.outcome);
        w.put_str(&self.peer);
        w.put_str(&self.detail);
        w
    }

    fn decode(buf: &[u8]) -> Result<(u64, Event), DecodeError> {
        let mut r = Reader::new(buf);
        let seq = r.u64()?;
        let at_ms = r.u64()?;
        let client = r.str("client")?.to_string();
        let role = r.str("role")?;
        let role = if role.is_empty() {
            None
        } else {
            Some(Role::parse(role).ok_or_else(|| r.invalid("role"))?)
        };
        let op = r.u8()?;
        let token = if r.present("token")? {
            Some(Token::from_bytes(r.array()?))
        } else {
            None
        };
        let scope = r.str("scope")?.to_string();
        let customer = r.str("customer")?.to_string();
        let outcome = r.u8()?;
        // Entries written before peers were recorded end here.
        let (peer, detail) = if r.at_end() {
            (String::new(), String::new())
        } else {
            (r.str("peer")?.to_string(), r.str("detail")?.to_string())
        };
        r.finish()?;
        Ok((
            seq,
            Event {
                at_ms,
                client,
                role,
                op,
                token,
                scope,
                customer,
                outcome,
                peer,
                detail,
            },
        ))
    }
}

fn audit_key(seq: u64) -> Vec<u8> {
    let mut k = AUDIT.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn chain(prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(entry);
    h.finalize().into()
}

/// Why the audit log cannot be appended to or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log or its head could not be read from the store (the vault's storage, not the caller).
    #[error("cannot read the audit log")]
    Store(#[from] StoreError),
    /// The commit holding the entry (and the changes it describes) failed; shared by every
    /// entry of that commit.
    #[error("commit of audit entry and changes failed")]
    Commit(#[source] Arc<StoreError>),
    /// The appender task has ended (the vault is shutting down, or it failed): nothing more is
    /// logged, so no call can be answered.
    #[error("audit log stopped")]
    Stopped,
    /// The stored chain is broken at entry `seq`: altered, removed, inserted or reordered entries,
    /// or a cut tail. Evidence of tampering or corruption, never the caller's doing.
    #[error("audit entry {seq}: {problem}")]
    Broken {
        /// The first entry that does not fit the chain (0 when an entry does not even parse).
        seq: u64,
        /// What is wrong with it, in the vault's fixed wording.
        problem: &'static str,
    },
    /// The sealed checkpoints outside the database disagree with the log, or cannot be read.
    #[error("audit checkpoints")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// Called once with the outcome of the commit that holds the entry.
type Done = Box<dyn FnOnce(Result<(), AuditError>) + Send>;

struct Append {
    event: Event,
    changes: Batch,
    done: Done,
}

/// The appending side of the log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Append>,
    /// The last durable (sequence, hash), for the checkpoints.
    head: watch::Receiver<(u64, [u8; 32])>,
}

impl AuditLog {
    /// Starts the appender after the last entry in `store`.
    pub fn start(store: Store) -> Result<AuditLog, AuditError> {
        let (mut seq, mut hash) = match store.last_with_prefix(AUDIT)? {
            Some((_, v)) => parse_stored(&v)?,
            None => (0, [0u8; 32]),
        };
        let (head_tx, head) = watch::channel((seq, hash));
        let (queue, mut rx) = mpsc::channel::<Append>(8192);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(a) => group.push(a),
                        Err(_) => break,
                    }
                }
                let (mut s, mut h) = (seq, hash);
                let mut batch = Batch::default();
                for a in &group {
                    s += 1;
                    let mut entry = a.event.encode(s);
                    h = chain(&h, &entry);
                    for op in a.changes.ops() {
                        match op {
                            Op::Put { key, value } => batch.put(key.clone(), value.clone()),
                            Op::Delete { key } => batch.delete(key.clone()),
                        };
                    }
                    entry.extend_from_slice(&h);
                    batch.put(audit_key(s), entry);
                }
                let mut head = s.to_be_bytes().to_vec();
                head.extend_from_slice(&h);
                batch.put(HEAD, head);
                let result = store.commit(batch).await.map_err(Arc::new);
                if result.is_ok() {
                    (seq, hash) = (s, h);
                    head_tx.send_replace((s, h));
                }
                for a in group {
                    (a.done)(result.clone().map_err(AuditError::Commit));
                }
            }
        });
        Ok(AuditLog { queue, head })
    }

    /// The last durable (sequence, hash), updated after every commit.
    pub fn head(&self) -> watch::Receiver<(u64, [u8; 32])> {
        self.head.clone()
    }

    /// Appends `event` and applies `changes` in the same durable commit.
    pub async fn append(&self, event: Event, changes: Batch) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.append_then(event, changes, move |result| {
            let _ = reply.send(result);
        })
        .await?;
        answer.await.map_err(|_| AuditError::Stopped)?
    }

    /// Appends `event` with `changes` and calls `done` exactly once with the commit's outcome
    /// (or with [`AuditError::Stopped`] at once when the appender is gone, which is also
    /// returned), so that a caller can answer its client from there without a task waiting on
    /// the commit.
    pub async fn append_then(
        &self,
        event: Event,
        changes: Batch,
        done: impl FnOnce(Result<(), AuditError>) + Send + 'static,
    ) -> Result<(), AuditError> {
        let append = Append {
            event,
            changes,
            done: Box::new(done),
        };
        match self.queue.send(append).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(append)) => {
                (append.done)(Err(AuditError::Stopped));
                Err(AuditError::Stopped)
            }
        }
    }
}

/// `meta/audit-head`: the last sequence (u64 BE) and its hash.
fn parse_head(v: &[u8]) -> Option<(u64, [u8; 32])> {
    let (seq, hash) = v.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(seq.try_into().ok()?),
        hash.try_into().ok()?,
    ))
}

fn parse_stored(v: &[u8]) -> Result<(u64, [u8; 32]), AuditError> {
    let split = v.len().checked_sub(32).ok_or(AuditError::Broken {
        seq: 0,
        problem: "entry too short",
    })?;
    let (entry, hash) = v.split_at(split);
    let (seq, _) = Event::decode(entry).map_err(|_| AuditError::Broken {
        seq: 0,
        problem: "entry does not parse",
    })?;
    let mut h = [0u8; 32];
    h.copy_from_slice(hash);
    Ok((seq, h))
}

/// What `vault audit verify` found in an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// How many entries the log holds.
    pub entries: u64,
    /// The hash of the last entry, the head the sealed checkpoints must agree with.
    pub head: [u8; 32],
}

/// Walks the whole log and checks numbering, every hash link, and the recorded head: an altered,
/// removed, inserted or reordered entry, or a cut tail, is reported with the first bad sequence.
/// This alone cannot see a chain recomputed by someone who can write the database:
/// `seal::verify_sealed` adds the HSM-sealed checkpoints.
pub fn verify(store: &Store) -> Result<Verified, AuditError> {
    verify_through(store, &mut |_, _| Ok(()))
}

/// What [`verify_through`] calls with each entry's sequence and hash.
pub type EachEntry<'a> = dyn FnMut(u64, &[u8; 32]) -> Result<(), AuditError> + 'a;

/// [`verify`], calling `at(seq, hash)` for every entry in order, so that a caller can compare
/// the chain with what it knows of it.
pub fn verify_through(store: &Store, at: &mut EachEntry<'_>) -> Result<Verified, AuditError> {
    // The head is read first: a running vault appends while this walks, and entries after the
    // head read here are checked as chain links only.
    let head = match store.get(HEAD)? {
        None => None,
        Some(v) => Some(parse_head(&v).ok_or(AuditError::Broken {
            seq: 0,
            problem: "head record malformed",
        })?),
    };
    let (mut expected, mut prev) = (1u64, [0u8; 32]);
    let end = audit_key(u64::MAX);
    let mut start = audit_key(1);
    loop {
        let page = store.scan_range(&start, &end, 1024)?;
        let Some((last_key, _)) = page.last() else {
            break;
        };
        let mut next = last_key.clone();
        next.push(0);
        for (key, value) in &page {
            let broken = |problem| AuditError::Broken {
                seq: expected,
                problem,
            };
            if key[AUDIT.len()..] != expected.to_be_bytes() {
                return Err(broken("missing entry (sequence gap)"));
            }
            let split = value
                .len()
                .checked_sub(32)
                .ok_or(broken("entry too short"))?;
            let (entry, hash) = value.split_at(split);
            let (seq, _) = Event::decode(entry).map_err(|_| broken("entry does not parse"))?;
            if seq != expected {
                return Err(broken("entry moved from another position"));
            }
            let h = chain(&prev, entry);
            if h[..] != *hash {
                return Err(broken("hash mismatch (entry altered or reordered)"));
            }
            if head.is_some_and(|(seq, hash)| seq == expected && hash != h) {
                return Err(broken("hash differs from the recorded head"));
            }
            at(expected, &h)?;
            prev = h;
            expected += 1;
        }
        start = next;
    }
    let entries = expected - 1;
    match head {
        None if entries == 0 => {}
        None => {
            return Err(AuditError::Broken {
                seq: entries,
                problem: "head record missing",
            });
        }
        Some((seq, _)) if seq > entries => {
            return Err(AuditError::Broken {
                seq: entries,
                problem: "log ends before the recorded head (tail cut)",
            });
        }
        Some(_) => {}
    }
    Ok(Verified {
        entries,
        head: prev,
    })
}

/// All entries in order (for tests and tools).
pub fn entries(store: &Store) -> Result<Vec<(u64, Event)>, AuditError> {
    store
        .scan_prefix(AUDIT)?
        .into_iter()
        .map(|(_, v)| {
            let split = v.len().saturating_sub(32);
            Event::decode(&v[..split]).map_err(|_| AuditError::Broken {
                seq: 0,
                problem: "entry does not parse",
            })
        })
        .collect()
}
