//! The outbox's records in the authorizer's store: a [`Notice`] per notification (a reference to
//! an order's operation, never its fields), its place in the [`DueQueue`] while it waits, and an
//! [`Attempt`] per delivery try.
//!
//! Keys (numbers fixed-width so that byte order is numeric order):
//! - `outbox/n/<billnumber, 16 digits>/<operation, 10 digits>` → the notice (JSON);
//! - `outbox/due/<due, 8 bytes>/<billnumber, 8 bytes><operation, 4 bytes>` → nothing: the
//!   schedule, present exactly while the notice is pending;
//! - `outbox/a/<billnumber>/<operation>/<attempt, 10 digits>` → an attempt (JSON).
//!
//! Must never hold anything card-like or the notification's fields: they are rendered from the
//! stored order when sent.

use serde::{Deserialize, Serialize};
use store::{Batch, DueQueue, Store};

use crate::OutboxError;

const NOTICE: &str = "outbox/n/";
const ATTEMPT: &str = "outbox/a/";
const DUE: &str = "outbox/due/";

pub(crate) fn due_queue() -> DueQueue {
    DueQueue::new(DUE)
}

/// What a notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A payment reached a final state (Approved, Delayed or Declined).
    Payment,
    /// A charge (confirmation of a two-stage payment) finished.
    Charge,
    /// A cancel or refund finished.
    Cancel,
    /// The order expired unpaid.
    Timeout,
}

impl Kind {
    /// Its name in the attempt list and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Charge => "charge",
            Kind::Cancel => "cancel",
            Kind::Timeout => "timeout",
        }
    }
}

/// Which notification: an order's operation, or operation 0 for the order itself (a Timeout has
/// no operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NoticeId {
    /// The order's billnumber (16 digits).
    pub bill: u64,
    /// The operation's number within the order; 0 for the order.
    pub operation: u32,
}

impl NoticeId {
    fn bytes(self) -> Vec<u8> {
        let mut b = self.bill.to_be_bytes().to_vec();
        b.extend_from_slice(&self.operation.to_be_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<NoticeId> {
        let (bill, op) = b.split_at_checked(8)?;
        Some(NoticeId {
            bill: u64::from_be_bytes(bill.try_into().ok()?),
            operation: u32::from_be_bytes(op.try_into().ok()?),
        })
    }

    fn key(self) -> String {
        format!("{NOTICE}{:016}/{:010}", self.bill, self.operation)
    }

    fn attempt_prefix(self) -> String {
        format!("{ATTEMPT}{:016}/{:010}/", self.bill, self.operation)
    }
}

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeState {
    /// Waiting for its next try.
    Pending,
    /// The merchant answered `firstcode="0" secondcode="0"`: never sent again (unless re-sent
    /// by hand).
    Acknowledged,
    /// The merchant answered with non-zero codes: not sent again, kept to be shown.
    Refused,
    /// Every try of the schedule failed, or it can never succeed (a URL on a port not allowed):
    /// not sent again unless re-sent by hand.
    Failed,
}

/// A notification as stored: a reference, its schedule and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Whose order (Merchant_ID).
    pub merchant: String,
    /// Which order and operation.
    pub id: NoticeId,
    /// What it reports.
    pub kind: Kind,
    /// When the state change it reports was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it is (or was last) due (ms since the Unix epoch).
    pub due_ms: u64,
    /// Tries in the current round (since it was written or last re-sent by hand): what the
    /// retry schedule counts.
    pub tries: u32,
    /// Every attempt ever made, which numbers the attempt records.
    pub attempts: u32,
    /// Where it is.
    pub state: NoticeState,
    /// The current round was started by hand: its first attempt is marked so.
    #[serde(default)]
    pub by_hand: bool,
}

/// A notification the engine writes with its state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// Whose order (Merchant_ID).
    pub merchant: String,
    /// Which order and operation.
    pub id: NoticeId,
    /// What it reports.
    pub kind: Kind,
    /// Now, by the engine's clock (ms since the Unix epoch): the first try is due at once.
    pub at_ms: u64,
}

/// Adds `notice` to `batch`: the engine's state change and its notification are durable together
/// or not at all (the transactional outbox).
pub fn enqueue(batch: &mut Batch, notice: NewNotice) {
    let stored = Notice {
        merchant: notice.merchant,
        id: notice.id,
        kind: notice.kind,
        created_ms: notice.at_ms,
        due_ms: notice.at_ms,
        tries: 0,
        attempts: 0,
        state: NoticeState::Pending,
        by_hand: false,
    };
    put_notice(batch, &stored);
    due_queue().add(
        batch,
        stored.due_ms,
        &stored.id.bytes(),
        stored.merchant.as_bytes(),
    );
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Acknowledged by the merchant.
    Acknowledged,
    /// Refused by the merchant (non-zero codes).
    Refused,
    /// Failed; another try is scheduled.
    Retry,
    /// Failed; no try is left, or none could succeed.
    Failed,
}

/// One delivery try, as the cabinet shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When the try started (ms since the Unix epoch).
    pub at_ms: u64,
    /// The HTTP status, when the merchant answered.
    pub status: Option<u16>,
    /// The merchant's `firstcode`, when its answer was a `pushpaymentresult`.
    pub firstcode: Option<String>,
    /// The merchant's `secondcode`, likewise.
    pub secondcode: Option<String>,
    /// Why it failed, in words without secrets (no form fields, no URL query).
    pub error: Option<String>,
    /// What came of it.
    pub outcome: AttemptOutcome,
    /// Re-sent by hand (the first try of a round started by [`crate::Outbox::resend`]).
    #[serde(default)]
    pub by_hand: bool,
}

fn put_notice(batch: &mut Batch, notice: &Notice) {
    // A struct of strings and numbers always serializes.
    let json = serde_json::to_vec(notice).unwrap_or_default();
    batch.put(notice.id.key(), json);
}

/// Reads and writes the records.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    pub store: Store,
    pub queue: DueQueue,
}

impl Records {
    pub fn new(store: Store) -> Records {
        Records {
            store,
            queue: due_queue(),
        }
    }

    pub fn notice(&self, id: NoticeId) -> Result<Option<Notice>, OutboxError> {
        self.store
            .get(id.key().as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|_| OutboxError::Corrupt(id)))
            .transpose()
    }

    /// Every notification of order `bill`, by operation.
    pub fn of_order(&self, bill: u64) -> Result<Vec<Notice>, OutboxError> {
        self.store
            .scan_prefix(format!("{NOTICE}{bill:016}/").as_bytes())?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|_| OutboxError::Corrupt(NoticeId { bill, operation: 0 }))
            })
            .collect()
    }

    pub fn attempts(&self, id: NoticeId) -> Result<Vec<Attempt>, OutboxError> {
        self.store
            .scan_prefix(id.attempt_prefix().as_bytes())?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|_| OutboxError::Corrupt(id)))
            .collect()
    }

    /// Writes what came of a try: the attempt, the notice's new state, its new place in the
    /// schedule (`next_due`) or none.
    pub async fn finish_try(
        &self,
        before: &Notice,
        attempt: &Attempt,
        next_due: Option<u64>,
        state: NoticeState,
    ) -> Result<Notice, OutboxError> {
        let mut after = before.clone();
        after.tries += 1;
        after.attempts += 1;
        after.state = state;
        after.by_hand = false;
        let mut batch = Batch::default();
        let id = before.id.bytes();
        self.queue.remove(&mut batch, before.due_ms, &id);
        if let Some(at) = next_due {
            after.due_ms = at;
            self.queue
                .add(&mut batch, at, &id, before.merchant.as_bytes());
        }
        put_notice(&mut batch, &after);
        let json = serde_json::to_vec(attempt).unwrap_or_default();
        batch.put(
            format!("{}{:010}", before.id.attempt_prefix(), before.attempts),
            json,
        );
        self.store.commit(batch).await?;
        Ok(after)
    }

    /// Starts a new round now: the notice is pending and due at `now`, its schedule from the
    /// start.
    pub async fn restart(&self, before: &Notice, now: u64) -> Result<Notice, OutboxError> {
        let mut after = before.clone();
        after.state = NoticeState::Pending;
        after.tries = 0;
        after.due_ms = now;
        after.by_hand = true;
        let mut batch = Batch::default();
        let id = before.id.bytes();
        if before.state == NoticeState::Pending {
            self.queue.remove(&mut batch, before.due_ms, &id);
        }
        self.queue
            .add(&mut batch, now, &id, before.merchant.as_bytes());
        put_notice(&mut batch, &after);
        self.store.commit(batch).await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back_from_its_schedule_bytes() {
        let id = NoticeId {
            bill: 1_234_567_890_123_456,
            operation: 3,
        };
        assert_eq!(NoticeId::from_bytes(&id.bytes()), Some(id));
        assert_eq!(NoticeId::from_bytes(&[1, 2, 3]), None);
        assert_eq!(id.key(), "outbox/n/1234567890123456/0000000003");
    }
}
