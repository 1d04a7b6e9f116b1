//! Reversals: the life of a request that got no answer (timed out → reversed → store-and-forward
//! → acknowledged), and the forwarder that repeats queued reversals as 0420/0421 until a 0430.
//!
//! Owns the order of durable steps: the store-and-forward record is written before the first
//! reversal goes out and removed only after the network acknowledged one, so neither a crash nor
//! a silent network loses a reversal. It must never drop a record without an acknowledgement,
//! and never put a PAN into a record (the card is found again through the [`CardResolver`]).
//!
//! [`CardResolver`]: super::CardResolver

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use card::Pan;
use iso8583::Mti;
use tokio_util::sync::CancellationToken;

use super::LinkError;
use super::pool::{InFlightRequest, Shared, Unanswered};
use super::request::{ReversalState, TransactionRef, reversal_builder};
use super::saf::{PendingReversal, SafKey};

/// A request on the wire, with what a reversal would need to quote it.
#[derive(Debug)]
pub(crate) struct Sent {
    pub request: InFlightRequest,
    pub reference: TransactionRef,
}

/// How a sent request ended.
// Answers are the common case; boxing them would cost an allocation per response.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Settled {
    Answered(iso8583::Message, TransactionRef),
    /// The network may have acted on it: it must be reversed.
    Unknown(TimedOut),
    /// Never written: nothing to undo.
    NotSent,
}

/// A request whose fate is unknown. The only way forward is [`TimedOut::reverse`].
#[derive(Debug)]
pub(crate) struct TimedOut {
    pub reference: TransactionRef,
}

impl Sent {
    pub async fn settle(self, shared: &Shared) -> Settled {
        match self.request.wait(shared.config.request_timeout).await {
            Ok(m) => Settled::Answered(m, self.reference),
            Err(Unanswered::NotSent) => Settled::NotSent,
            Err(Unanswered::TimedOut | Unanswered::ConnectionLost) => {
                tracing::warn!(
                    mti = self.reference.mti, stan = self.reference.stan, rrn = %self.reference.rrn,
                    "no answer in time; reversing"
                );
                Settled::Unknown(TimedOut {
                    reference: self.reference,
                })
            }
        }
    }
}

impl TimedOut {
    pub async fn reverse(self, shared: &Arc<Shared>) -> Result<ReversalState, LinkError> {
        reverse(shared, self.reference, None).await
    }
}

/// Reverses `original` in full, or down to `remaining` (DE 95): queue it durably, send a 0400,
/// and keep it queued for the forwarder if the 0400 is not answered.
pub(crate) async fn reverse(
    shared: &Arc<Shared>,
    original: TransactionRef,
    remaining: Option<u64>,
) -> Result<ReversalState, LinkError> {
    let record = PendingReversal {
        original,
        remaining,
        attempts: 1,
    };
    let key = shared.saf.allocate();
    let claim = shared.saf.claim(key);
    shared.saf.put(key, &record).await?;
    shared.count_pending();
    let acknowledged = match card_of(shared, &record).await {
        Ok(pan) => send_reversal(shared, key, &record, pan, Mti::REVERSAL_REQUEST).await,
        Err(e) => Err(e),
    };
    drop(claim);
    match acknowledged {
        Ok(true) => Ok(ReversalState::Acknowledged),
        Ok(false) | Err(LinkError::Unavailable | LinkError::NotSent | LinkError::Cards(_)) => {
            shared.saf_wake.notify_one();
            Ok(ReversalState::Queued)
        }
        Err(e) => Err(e),
    }
}

/// The PAN a reversal quotes in DE 2, looked up again through the card store; `None` when the
/// card is gone. An unavailable store holds the reversal back (it stays queued) rather than
/// sending it without the card.
async fn card_of(shared: &Shared, record: &PendingReversal) -> Result<Option<Pan>, LinkError> {
    match shared.cards.resolve(&record.original.card).await {
        Ok(Some(pan)) => Ok(Some(pan)),
        Ok(None) => {
            tracing::warn!(rrn = %record.original.rrn, "card of a reversal is gone; sending it without DE 2");
            Ok(None)
        }
        Err(e) => {
            shared.metrics.reversals_held.fetch_add(1, Relaxed);
            Err(e.into())
        }
    }
}

/// Sends one reversal message for a queued record and, when the network approves it (00),
/// removes the record. `Ok(false)` when no answer came in time or the network refused it.
async fn send_reversal(
    shared: &Arc<Shared>,
    key: SafKey,
    record: &PendingReversal,
    pan: Option<Pan>,
    mti: Mti,
) -> Result<bool, LinkError> {
    let trace = shared.trace();
    let request = {
        let builder = reversal_builder(mti, record, pan.as_ref(), &shared.acceptor, &trace);
        drop(pan);
        shared.send(mti, &trace, &builder, None).await?
    };
    match request.wait(shared.config.reversal_timeout).await {
        // Any other code means the network did not take the reversal (format error, wrong
        // card): it stays queued, visible in the pending gauge, for an operator to look at.
        Ok(answer) if answer.response_code() != Some(iso8583::ResponseCode::APPROVED) => {
            tracing::error!(%mti, rrn = %record.original.rrn, code = ?answer.response_code(), "reversal refused; stays in store-and-forward");
            Ok(false)
        }
        Ok(answer) => {
            shared.saf.remove(key).await?;
            shared.count_pending();
            shared.metrics.reversals_acknowledged.fetch_add(1, Relaxed);
            tracing::info!(%mti, rrn = %record.original.rrn, code = ?answer.response_code(), "reversal acknowledged");
            Ok(true)
        }
        Err(why) => {
            tracing::warn!(%mti, rrn = %record.original.rrn, ?why, "reversal unanswered; stays in store-and-forward");
            Ok(false)
        }
    }
}

/// Repeats queued reversals until each is acknowledged: the first repeat is a 0420, later ones
/// 0421. Runs whenever it is woken (a new record, a connection up) and every retry interval.
pub(crate) async fn forward(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = shared.saf_wake.notified() => {}
            () = tokio::time::sleep(shared.config.saf_retry_interval) => {}
        }
        if shared.up_count() == 0 {
            continue;
        }
        let queued = match shared.saf.list() {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "store-and-forward queue unreadable");
                continue;
            }
        };
        for (key, mut record) in queued {
            if stop.is_cancelled() {
                return;
            }
            let Some(_claim) = shared.saf.claim(key) else {
                continue;
            };
            // An in-line reversal may have been acknowledged since the list was read.
            if !shared.saf.contains(key) {
                continue;
            }
            let pan = match card_of(&shared, &record).await {
                Ok(pan) => pan,
                Err(e) => {
                    tracing::warn!(error = %e, "store-and-forward paused");
                    break;
                }
            };
            let mti = if record.attempts <= 1 {
                Mti::REVERSAL_ADVICE
            } else {
                Mti::REVERSAL_ADVICE_REPEAT
            };
            record.attempts += 1;
            // Counted before sending, so that after a crash the next one is a repeat (0421).
            if let Err(e) = shared.saf.put(key, &record).await {
                tracing::error!(error = %e, "store-and-forward update failed");
                break;
            }
            if let Err(e) = send_reversal(&shared, key, &record, pan, mti).await {
                tracing::warn!(error = %e, "store-and-forward paused");
                break;
            }
        }
    }
}
