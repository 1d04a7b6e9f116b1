//! The life of a request the link sends: sent → answered | timed out → reversed (→ queued in
//! store-and-forward → acknowledged), and the forwarder that repeats queued reversals as
//! 0420/0421 until a 0430.
//!
//! Each state is a type that its step consumes ([`Sent::settle`], [`TimedOut::reverse`]), so a
//! request that timed out cannot be read as answered, nor reversed twice. Owns the order of
//! durable steps: the store-and-forward record is written before the first reversal goes out and
//! removed only after the network acknowledged one, so neither a crash nor a silent network loses
//! a reversal. It must never drop a record without an acknowledgement, and never put a PAN into a
//! record (the card is found again through the [`CardResolver`](crate::CardResolver)).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use card::Pan;
use iso8583::{ResponseCode, ReversalAttempt};
use tokio_util::sync::CancellationToken;

use crate::error::{AuthorizeError, Internal, NotSent, ReverseError};
use crate::fields::outcome_of;
use crate::inflight::{Answer, InFlightRequest, Unanswered};
use crate::pool::Shared;
use crate::request::{
    AuthorizationRequest, CompletionRequest, LinkOutcome, Prepared, ReversalState, TransactionRef,
};
use crate::saf::{PendingReversal, SafKey};
use crate::trace::Trace;

/// A request on the wire, with what a reversal would need to quote it.
#[derive(Debug)]
pub(crate) struct Sent {
    request: InFlightRequest,
    reference: TransactionRef,
}

/// How a sent request ended.
#[derive(Debug)]
pub(crate) enum Settled {
    Answered(Answered),
    /// The network may have acted on it.
    Unknown(TimedOut),
    /// Never written: nothing to undo.
    NotSent,
}

/// A request the network answered.
#[derive(Debug)]
pub(crate) struct Answered {
    answer: Answer,
    reference: TransactionRef,
}

/// A request whose fate is unknown. The only way forward for an authorization is
/// [`TimedOut::reverse`].
#[derive(Debug)]
pub(crate) struct TimedOut {
    reference: TransactionRef,
}

impl Sent {
    /// Sends `req` as `prepared` reserved it: the first state of an authorization's life. The
    /// request (with its PAN and CVC) is dropped as soon as its frame is queued.
    pub async fn authorization(
        shared: &Arc<Shared>,
        prepared: Prepared,
        req: AuthorizationRequest<'_>,
    ) -> Result<Sent, NotSent> {
        let reference = prepared.into_reference();
        let request = {
            let builder = shared.acceptor.authorization(&req, &reference);
            drop(req);
            shared
                .send(&builder, reference.stan, reference.transmission, None)
                .await?
        };
        Ok(Sent { request, reference })
    }

    /// Sends the 0220 of `req`; its reference is the original's, for the final amount.
    pub async fn completion(
        shared: &Arc<Shared>,
        req: CompletionRequest<'_>,
    ) -> Result<Sent, NotSent> {
        let trace = shared.trace();
        let request = {
            let builder = shared
                .acceptor
                .completion(&req, trace.stan, trace.transmission);
            shared
                .send(&builder, trace.stan, trace.transmission, None)
                .await?
        };
        let mut reference = req.original.clone();
        reference.amount = req.amount;
        Ok(Sent { request, reference })
    }

    /// The STAN and RRN the request went out with, for a report that cannot wait for it.
    pub fn trace(&self) -> (iso8583::Stan, iso8583::Rrn) {
        (self.reference.stan, self.reference.rrn)
    }

    /// Waits for the answer, at most the request time-out.
    pub async fn settle(self, shared: &Shared) -> Settled {
        let reference = self.reference;
        match self.request.wait(shared.config.request_timeout).await {
            Ok(answer) => Settled::Answered(Answered { answer, reference }),
            Err(Unanswered::NotSent) => Settled::NotSent,
            Err(Unanswered::TimedOut | Unanswered::ConnectionLost) => {
                Settled::Unknown(TimedOut { reference })
            }
        }
    }

    /// The whole life of an authorization: its answer, or its reversal when none came.
    pub async fn run(self, shared: &Arc<Shared>) -> Result<LinkOutcome, AuthorizeError> {
        match self.settle(shared).await {
            Settled::Answered(answered) => Ok(answered.outcome()),
            Settled::NotSent => Err(AuthorizeError::Unavailable(
                crate::error::Unavailable::NotWritten,
            )),
            Settled::Unknown(timed_out) => timed_out.reverse(shared).await,
        }
    }
}

impl Answered {
    pub fn outcome(self) -> LinkOutcome {
        outcome_of(self.answer.message(), self.reference)
    }
}

impl TimedOut {
    /// Reverses the request in full; the payment did not happen, whatever the network thought.
    pub async fn reverse(self, shared: &Arc<Shared>) -> Result<LinkOutcome, AuthorizeError> {
        let r = &self.reference;
        tracing::warn!(mti = %r.mti, stan = %r.stan, rrn = %r.rrn, "no answer in time; reversing");
        let (stan, rrn) = (r.stan, r.rrn);
        match reverse(shared, self.reference.clone(), None).await {
            Ok(reversal) => Ok(LinkOutcome::TimedOutReversed {
                reference: self.reference,
                reversal,
            }),
            Err(cause) => Err(AuthorizeError::OutcomeUnknown { stan, rrn, cause }),
        }
    }
}

/// Reverses `original` in full, or down to `remaining` (DE 95): queue it durably, send a 0400,
/// and keep it queued for the forwarder if the 0400 is not answered.
pub(crate) async fn reverse(
    shared: &Arc<Shared>,
    original: TransactionRef,
    remaining: Option<u64>,
) -> Result<ReversalState, Internal> {
    let record = PendingReversal {
        original,
        remaining,
        attempts: 1,
    };
    let key = shared.saf.allocate();
    let claim = shared.saf.claim(key);
    shared
        .saf
        .put(key, &record)
        .await
        .map_err(Internal::Store)?;
    shared.count_pending();
    let sent = match card_of(shared, &record).await {
        Some(pan) => send_reversal(shared, key, &record, pan, ReversalAttempt::Request).await,
        None => Ok(false),
    };
    drop(claim);
    match sent {
        Ok(true) => Ok(ReversalState::Acknowledged),
        Ok(false) | Err(NotSent::Unavailable(_)) => {
            shared.saf_wake.notify_one();
            Ok(ReversalState::Queued)
        }
        Err(NotSent::Internal(e)) => Err(e),
    }
}

/// A full or partial reversal the caller asked for, on a task of its own so that a caller that
/// stops waiting cannot leave it half done.
pub(crate) async fn reverse_on_task(
    shared: &Arc<Shared>,
    original: &TransactionRef,
    remaining: Option<u64>,
) -> Result<ReversalState, ReverseError> {
    let shared = Arc::clone(shared);
    let original = original.clone();
    tokio::spawn(async move { reverse(&shared, original, remaining).await })
        .await
        .unwrap_or(Err(Internal::TaskFailed))
        .map_err(ReverseError::Internal)
}

/// The card of a reversal: `Some(pan)` to send with, where `pan` is `None` when the card is gone
/// (DE 2 is left out); `None` when the card store cannot answer now, which holds the reversal
/// back (it stays queued) rather than sending it without the card.
async fn card_of(shared: &Shared, record: &PendingReversal) -> Option<Option<Pan>> {
    match shared.cards.resolve(&record.original.card).await {
        Ok(Some(pan)) => Some(Some(pan)),
        Ok(None) => {
            tracing::warn!(rrn = %record.original.rrn, "card of a reversal is gone; sending it without DE 2");
            Some(None)
        }
        Err(e) => {
            shared.metrics.reversals_held.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, rrn = %record.original.rrn, "card store unavailable; reversal held in store-and-forward");
            None
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
    attempt: ReversalAttempt,
) -> Result<bool, NotSent> {
    let Trace {
        stan, transmission, ..
    } = shared.trace();
    let mti = attempt.mti();
    let request = {
        let builder = shared
            .acceptor
            .reversal(attempt, record, pan.as_ref(), stan, transmission);
        drop(pan);
        shared.send(&builder, stan, transmission, None).await?
    };
    let code = request
        .wait(shared.config.reversal_timeout)
        .await
        .map(|answer| answer.message().response_code());
    match code {
        // Any other code means the network did not take the reversal (format error, wrong
        // card): it stays queued, visible in the pending gauge, for an operator to look at.
        Ok(code) if code != Some(ResponseCode::APPROVED) => {
            tracing::error!(%mti, rrn = %record.original.rrn, ?code, "reversal refused; stays in store-and-forward");
            Ok(false)
        }
        Ok(code) => {
            shared
                .saf
                .remove(key)
                .await
                .map_err(|e| NotSent::Internal(Internal::Store(e)))?;
            shared.count_pending();
            shared.metrics.reversals_acknowledged.fetch_add(1, Relaxed);
            tracing::info!(%mti, rrn = %record.original.rrn, ?code, "reversal acknowledged");
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
            let Some(pan) = card_of(&shared, &record).await else {
                tracing::warn!("store-and-forward paused: card store unavailable");
                break;
            };
            let attempt = if record.attempts <= 1 {
                ReversalAttempt::Advice
            } else {
                ReversalAttempt::AdviceRepeat
            };
            record.attempts += 1;
            // Counted before sending, so that after a crash the next one is a repeat (0421).
            if let Err(e) = shared.saf.put(key, &record).await {
                tracing::error!(error = %e, "store-and-forward update failed");
                break;
            }
            if let Err(e) = send_reversal(&shared, key, &record, pan, attempt).await {
                tracing::warn!(error = %e, "store-and-forward paused");
                break;
            }
        }
    }
}
