//! The in-flight table: requests written (or about to be written) to the network and not yet
//! answered, keyed by STAN; the one-shot [`Completion`] each waiter parks on; and the
//! [`InFlightRequest`] that owns an entry for its waiter and withdraws it when dropped.
//!
//! Owns the matching of a response to its request. Lock-free: the table is a crossbeam skip list
//! and a completion is a `OnceLock` plus an `AtomicWaker`, so the reader task completes a waiter
//! without a mutex. Whoever removes an entry from the table owns its outcome, which is what makes
//! "answered" and "timed out" mutually exclusive. It must never complete a waiter with a response
//! whose MTI, terminal or transmission time do not match the request.

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use crossbeam_skiplist::SkipMap;
use futures::task::AtomicWaker;
use iso8583::{Message, Mti, Stan, TransmissionTime};

use crate::pool::{Lease, Shared};

/// What ended a request's wait.
// Answers are the common case; boxing them would cost an allocation per response.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Reply {
    /// The network answered.
    Response(Message),
    /// The connection dropped after the request may have been written: its fate is unknown.
    ConnectionLost,
    /// The connection dropped before the request was written: the network never saw it.
    NotSent,
}

/// A single-assignment slot a waiter awaits.
#[derive(Debug, Default)]
pub struct Completion {
    reply: OnceLock<Reply>,
    waker: AtomicWaker,
}

impl Completion {
    /// Sets the reply (first one wins) and wakes the waiter.
    pub fn complete(&self, reply: Reply) {
        let _first = self.reply.set(reply);
        self.waker.wake();
    }

    /// The reply, once set; borrowed where it was set, never copied out.
    pub async fn wait(&self) -> &Reply {
        poll_fn(|cx| {
            if let Some(r) = self.reply.get() {
                return Poll::Ready(r);
            }
            self.waker.register(cx.waker());
            match self.reply.get() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await
    }
}

/// One request in flight: shared by the table and the request's owner, and the completion its
/// owner waits on lives inside it (one allocation per request, not one for each).
#[derive(Debug)]
pub struct Pending {
    pub completion: Completion,
    /// The response MTI we accept (0110 for 0100, 0430 for 0420 and 0421...).
    pub expect: Mti,
    /// DE 7 of the request: the spec matches by STAN together with DE 7 (and DE 41).
    pub transmission: TransmissionTime,
    /// The pool slot it is queued on, so a dropped connection fails only its own requests.
    /// Changes when a frame that was never written moves to another connection.
    pub slot: AtomicUsize,
}

/// Why a response found no waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// No request with this STAN is in flight: a late answer (after a time-out) or a stray one.
    NoWaiter,
    /// A request with this STAN is in flight but the response is not its answer.
    Mismatch,
    /// The response carries no usable STAN.
    NoStan,
}

#[derive(Debug, Default)]
pub struct InFlight {
    table: SkipMap<u32, Arc<Pending>>,
    terminal_id: [u8; 8],
}

impl InFlight {
    pub fn new(terminal_id: [u8; 8]) -> InFlight {
        InFlight {
            table: SkipMap::new(),
            terminal_id,
        }
    }

    /// Registers a request under `stan`. `false` if that STAN is still in flight (the sequence
    /// wrapped around a request that is a million requests old): the caller takes the next STAN.
    pub fn insert(&self, stan: Stan, pending: &Arc<Pending>) -> bool {
        let entry = self.table.get_or_insert(stan.value(), Arc::clone(pending));
        Arc::ptr_eq(entry.value(), pending)
    }

    /// Takes the request out of the table; `None` if someone else (the reader, a time-out, a
    /// dropped connection) already took it.
    pub fn take(&self, stan: Stan) -> Option<Arc<Pending>> {
        let entry = self.table.get(&stan.value())?;
        entry.remove().then(|| Arc::clone(entry.value()))
    }

    /// Matches a response to its waiter and completes it.
    pub fn complete(&self, response: Message) -> Result<(), Unmatched> {
        let stan = response.stan().ok_or(Unmatched::NoStan)?;
        let entry = self.table.get(&stan.value()).ok_or(Unmatched::NoWaiter)?;
        let pending = entry.value();
        let terminal_ok = response.terminal_id().is_none_or(|t| t == self.terminal_id);
        let time_ok = response
            .transmission_time()
            .is_none_or(|t| t == pending.transmission.as_bytes());
        if response.mti() != pending.expect || !terminal_ok || !time_ok {
            return Err(Unmatched::Mismatch);
        }
        if !entry.remove() {
            return Err(Unmatched::NoWaiter);
        }
        pending.completion.complete(Reply::Response(response));
        Ok(())
    }

    /// Fails every request handed to `slot` (its connection dropped).
    pub fn fail_slot(&self, slot: usize, reply: &Reply) -> usize {
        let mut failed = 0;
        for entry in self.table.iter() {
            if entry.value().slot.load(Ordering::Acquire) == slot && entry.remove() {
                entry.value().completion.complete(reply.clone());
                failed += 1;
            }
        }
        failed
    }

    pub fn get(&self, stan: Stan) -> Option<Arc<Pending>> {
        self.table.get(&stan.value()).map(|e| Arc::clone(e.value()))
    }

    pub fn contains(&self, stan: Stan) -> bool {
        self.table.contains_key(&stan.value())
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Why a request ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// No answer in time: the network may or may not have acted on it.
    TimedOut,
    /// The connection dropped after it may have been written: same uncertainty.
    ConnectionLost,
    /// Never written: the network cannot have seen it.
    NotSent,
}

/// One request registered in the in-flight table and queued to (or written on) a connection:
/// the owner of its entry. Dropping it withdraws the request: the writer skips a frame whose
/// entry is gone.
#[derive(Debug)]
pub(crate) struct InFlightRequest {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stan: Stan,
    pub(crate) pending: Arc<Pending>,
    pub(crate) started: Instant,
    pub(crate) _lease: Lease,
}

impl InFlightRequest {
    /// Waits for the answer, at most `timeout`. Exactly one of the reader, the time-out and a
    /// dropped connection takes the entry out of the table, and that one decides the outcome.
    pub async fn wait(self, timeout: Duration) -> Result<Answer, Unanswered> {
        let completion = &self.pending.completion;
        let reply = match tokio::time::timeout(timeout, completion.wait()).await {
            Ok(reply) => reply,
            Err(_) if self.shared.inflight.take(self.stan).is_some() => {
                self.shared.metrics.timeouts.fetch_add(1, Relaxed);
                return Err(Unanswered::TimedOut);
            }
            // The reader took it a moment ago and is completing it.
            Err(_) => completion.wait().await,
        };
        match reply {
            Reply::Response(m) => {
                self.shared
                    .metrics
                    .record_response(m.response_code(), self.started.elapsed());
                Ok(Answer(Arc::clone(&self.pending)))
            }
            Reply::ConnectionLost => {
                self.shared.metrics.connection_lost.fetch_add(1, Relaxed);
                Err(Unanswered::ConnectionLost)
            }
            Reply::NotSent => Err(Unanswered::NotSent),
        }
    }
}

/// The network's answer to a request, read in the request's entry where the reader left it:
/// copying it out cost a copy of the 576-byte message and an allocation for its shared bytes,
/// per response.
#[derive(Debug)]
pub(crate) struct Answer(Arc<Pending>);

impl Answer {
    pub fn message(&self) -> &Message {
        match self.0.completion.reply.get() {
            Some(Reply::Response(m)) => m,
            // An `Answer` is made only once its entry's completion holds a response, and a
            // completion is set once.
            _ => unreachable!("an answer's completion holds its response"),
        }
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        let _withdrawn = self.shared.inflight.take(self.stan);
        self.shared.metrics.in_flight.fetch_sub(1, Relaxed);
        if self.shared.closing.load(Relaxed) && self.shared.inflight.is_empty() {
            self.shared.drained.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iso8583::{MessageBuilder, ResponseCode};

    fn response(mti: Mti, stan: u32, time: &[u8; 10], terminal: &[u8]) -> Message {
        let mut b = MessageBuilder::new(mti);
        b.field(7, time)
            .stan(Stan::new(stan).unwrap())
            .field(41, terminal)
            .response_code(ResponseCode::APPROVED);
        b.build().unwrap()
    }

    fn pending(slot: usize) -> Arc<Pending> {
        Arc::new(Pending {
            completion: Completion::default(),
            expect: Mti::AUTH_RESPONSE,
            transmission: TransmissionTime::from_ascii(b"1123040506").unwrap(),
            slot: AtomicUsize::new(slot),
        })
    }

    #[tokio::test]
    async fn a_response_completes_only_its_own_request_once() {
        let table = InFlight::new(*b"T1      ");
        let stan = Stan::new(7).unwrap();
        let p = pending(0);
        assert!(table.insert(stan, &p));
        assert!(
            !table.insert(stan, &pending(0)),
            "a STAN in flight is not reused"
        );
        // Wrong MTI, terminal or DE 7: not its answer, the request stays in flight.
        let t = b"1123040506";
        assert_eq!(
            table.complete(response(Mti::FINANCIAL_RESPONSE, 7, t, b"T1")),
            Err(Unmatched::Mismatch)
        );
        assert_eq!(
            table.complete(response(Mti::AUTH_RESPONSE, 7, t, b"T2")),
            Err(Unmatched::Mismatch)
        );
        assert_eq!(
            table.complete(response(Mti::AUTH_RESPONSE, 7, b"1123040507", b"T1")),
            Err(Unmatched::Mismatch)
        );
        assert!(table.contains(stan));
        assert_eq!(
            table.complete(response(Mti::AUTH_RESPONSE, 7, t, b"T1")),
            Ok(())
        );
        assert!(matches!(p.completion.wait().await, Reply::Response(_)));
        // A second (late, duplicated) answer finds no waiter, and a time-out finds nothing to take.
        assert_eq!(
            table.complete(response(Mti::AUTH_RESPONSE, 7, t, b"T1")),
            Err(Unmatched::NoWaiter)
        );
        assert!(table.take(stan).is_none());
    }

    #[tokio::test]
    async fn a_dropped_connection_fails_only_its_own_requests() {
        let table = InFlight::new(*b"T1      ");
        let (a, b) = (pending(0), pending(1));
        table.insert(Stan::new(1).unwrap(), &a);
        table.insert(Stan::new(2).unwrap(), &b);
        assert_eq!(table.fail_slot(0, &Reply::ConnectionLost), 1);
        assert!(matches!(a.completion.wait().await, Reply::ConnectionLost));
        assert!(table.contains(Stan::new(2).unwrap()));
    }
}
