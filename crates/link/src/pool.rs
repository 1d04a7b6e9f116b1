//! The connection pool's send path: slots, leases, and lease-and-send, which registers a request
//! in the in-flight table and queues its frame to a connection. (Keeping each slot's connection
//! alive is `supervisor`'s job.)
//!
//! Owns everything shared by the link's tasks ([`Shared`]). The hot path (lease, encode, register,
//! enqueue) takes no lock: atomics, a semaphore permit per request (the bound on requests in
//! flight per connection), a bounded channel to the connection's writer and the lock-free in-flight
//! table. It must never queue without bound nor let a request outlive its in-flight entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use iso8583::{MessageBuilder, Mti, NetworkCode, Stan, TransmissionTime};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use zeroize::Zeroizing;

use crate::CardResolver;
use crate::config::LinkConfig;
use crate::connection::Outbound;
use crate::error::{EchoError, Internal, NotSent, Unavailable};
use crate::fields::Acceptor;
use crate::inflight::{Completion, InFlight, InFlightRequest, Pending, Unanswered};
use crate::metrics::{ConnectionState, LinkMetrics};
use crate::saf::SafQueue;
use crate::trace::{RrnSequence, StanSequence, Timestamp, Trace};

/// One pooled connection's fixed parts. The channel and semaphore outlive reconnects, so the
/// send path never has to find out which incarnation of the connection it is talking to.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) tx: mpsc::Sender<Outbound>,
    permits: Arc<Semaphore>,
    pub(crate) up: AtomicBool,
    /// Milliseconds since [`Shared::epoch`] of the last byte read: drives the echo test on idle.
    last_rx_ms: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: LinkConfig,
    pub acceptor: Acceptor,
    pub slots: Vec<Slot>,
    pub inflight: InFlight,
    pub stans: StanSequence,
    pub rrns: RrnSequence,
    pub metrics: Arc<LinkMetrics>,
    pub saf: SafQueue,
    pub saf_wake: Notify,
    pub cards: Arc<dyn CardResolver>,
    /// How many slots are up; `Link::wait_ready` watches it.
    pub ready: watch::Sender<usize>,
    next_slot: AtomicUsize,
    epoch: Instant,
    pub closing: AtomicBool,
    /// Signalled when the last request in flight ends while closing.
    pub drained: Notify,
}

/// A permit to have one request in flight on one slot.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) slot: usize,
    _permit: OwnedSemaphorePermit,
}

impl Shared {
    pub fn new(
        config: LinkConfig,
        saf: SafQueue,
        cards: Arc<dyn CardResolver>,
        metrics: Arc<LinkMetrics>,
    ) -> (Shared, Vec<mpsc::Receiver<Outbound>>) {
        let mut receivers = Vec::with_capacity(config.connections);
        let slots = (0..config.connections)
            .map(|_| {
                // One frame per permit plus the network messages of the slot itself.
                let (tx, rx) = mpsc::channel(config.max_in_flight + 4);
                receivers.push(rx);
                Slot {
                    tx,
                    permits: Arc::new(Semaphore::new(config.max_in_flight)),
                    up: AtomicBool::new(false),
                    last_rx_ms: AtomicU64::new(0),
                }
            })
            .collect();
        let seed: u32 = rand::random();
        let shared = Shared {
            acceptor: Acceptor {
                acquirer: config.acquirer_id.clone(),
                terminal: config.terminal_id,
            },
            inflight: InFlight::new(*config.terminal_id.as_bytes()),
            stans: StanSequence::starting_at(seed),
            rrns: RrnSequence::starting_at(u64::from(seed)),
            slots,
            metrics,
            saf,
            saf_wake: Notify::new(),
            cards,
            ready: watch::Sender::new(0),
            next_slot: AtomicUsize::new(0),
            epoch: Instant::now(),
            closing: AtomicBool::new(false),
            drained: Notify::new(),
            config,
        };
        (shared, receivers)
    }

    /// Sets the pending-reversals gauge from the queue itself. Counting it up and down beside
    /// the queue drifted (a gauge of -1 over an empty queue was seen under injected faults,
    /// when one reversal was acknowledged twice).
    pub fn count_pending(&self) {
        let pending = i64::try_from(self.saf.len()).unwrap_or(i64::MAX);
        self.metrics.reversals_pending.store(pending, Relaxed);
    }

    pub fn trace(&self) -> Trace {
        let now = Timestamp::now();
        Trace {
            stan: self.stans.next(),
            rrn: self.rrns.next(&now),
            transmission: now.transmission,
        }
    }

    pub fn touch(&self, slot: usize) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.slots[slot].last_rx_ms.store(ms, Relaxed);
    }

    pub fn idle_for(&self, slot: usize) -> Duration {
        let last = Duration::from_millis(self.slots[slot].last_rx_ms.load(Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub fn is_up(&self, slot: usize) -> bool {
        self.slots[slot].up.load(Relaxed)
    }

    pub fn up_count(&self) -> usize {
        *self.ready.borrow()
    }

    pub fn set_up(&self, slot: usize, up: bool) {
        if self.slots[slot].up.swap(up, Relaxed) != up {
            self.ready.send_modify(|n| {
                if up {
                    *n += 1
                } else {
                    *n = n.saturating_sub(1)
                }
            });
        }
        let state = if up {
            ConnectionState::Up
        } else {
            ConnectionState::Down
        };
        self.metrics.set_state(slot, state);
    }

    /// A permit on an up slot, round robin, taking the first with room; if all are full, waits
    /// on one (back-pressure). `only` pins the slot (sign-on and echo of that connection).
    async fn lease(&self, only: Option<usize>) -> Result<Lease, Unavailable> {
        if let Some(slot) = only {
            let permit = Arc::clone(&self.slots[slot].permits)
                .acquire_owned()
                .await
                .map_err(|_| Unavailable::NoConnection)?;
            return Ok(Lease {
                slot,
                _permit: permit,
            });
        }
        // Only the slots' own network management (sign-off) still goes out while closing.
        if self.closing.load(Relaxed) {
            return Err(Unavailable::ShuttingDown);
        }
        let n = self.slots.len();
        let start = self.next_slot.fetch_add(1, Relaxed) % n;
        let mut fallback = None;
        for i in 0..n {
            let slot = (start + i) % n;
            if !self.slots[slot].up.load(Relaxed) {
                continue;
            }
            fallback.get_or_insert(slot);
            if let Ok(permit) = Arc::clone(&self.slots[slot].permits).try_acquire_owned() {
                return Ok(Lease {
                    slot,
                    _permit: permit,
                });
            }
        }
        let Some(slot) = fallback else {
            // No connection up: wait a little for one (a reconnect in progress) rather than fail
            // a payment over a blip, but no longer than the request itself would wait.
            let mut ready = self.ready.subscribe();
            let up = async { ready.wait_for(|n| *n > 0).await.is_ok() };
            if !tokio::time::timeout(self.config.request_timeout, up)
                .await
                .unwrap_or(false)
            {
                return Err(Unavailable::NoConnection);
            }
            return Box::pin(self.lease(None)).await;
        };
        let permit = Arc::clone(&self.slots[slot].permits)
            .acquire_owned()
            .await
            .map_err(|_| Unavailable::NoConnection)?;
        if !self.slots[slot].up.load(Relaxed) {
            return Err(Unavailable::NoConnection);
        }
        Ok(Lease {
            slot,
            _permit: permit,
        })
    }

    /// Encodes `builder` into a zeroizing frame, registers the request under `stan` and queues
    /// the frame. The builder (with any PAN and CVC in its arena) stays with the caller, who drops
    /// it as soon as this returns; the frame is wiped by the writer once it is on the socket.
    pub async fn send(
        self: &Arc<Self>,
        builder: &MessageBuilder,
        stan: Stan,
        transmission: TransmissionTime,
        only: Option<usize>,
    ) -> Result<InFlightRequest, NotSent> {
        let mti = builder.mti();
        let expect = mti
            .response()
            .expect("the link builds requests and advices only");
        let lease = self.lease(only).await.map_err(NotSent::Unavailable)?;
        let mut frame = Zeroizing::new(Vec::with_capacity(320));
        builder
            .encode_frame_into(&mut *frame)
            .map_err(|e| NotSent::Internal(Internal::Encode(e)))?;
        let pending = Arc::new(Pending {
            completion: Completion::default(),
            expect,
            transmission,
            slot: AtomicUsize::new(lease.slot),
        });
        if !self.inflight.insert(stan, &pending) {
            return Err(NotSent::Internal(Internal::StanInUse(stan)));
        }
        self.metrics.in_flight.fetch_add(1, Relaxed);
        let slot = lease.slot;
        let request = InFlightRequest {
            shared: Arc::clone(self),
            stan,
            pending,
            started: Instant::now(),
            _lease: lease,
        };
        self.slots[slot]
            .tx
            .send(Outbound { stan, frame })
            .await
            .map_err(|_| NotSent::Unavailable(Unavailable::ShuttingDown))?;
        self.metrics.record_sent(mti);
        Ok(request)
    }

    /// Moves a never-written frame from `from` to another up slot with room in its queue.
    /// Network management frames stay with their own connection.
    pub fn reroute(&self, from: usize, pending: &Pending, out: Outbound) -> Result<(), Outbound> {
        if pending.expect == Mti::NETWORK_RESPONSE {
            return Err(out);
        }
        let mut out = out;
        for (i, slot) in self.slots.iter().enumerate() {
            if i == from || !slot.up.load(Relaxed) {
                continue;
            }
            pending.slot.store(i, std::sync::atomic::Ordering::Release);
            match slot.tx.try_send(out) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o)) => {
                    out = o
                }
            }
        }
        pending
            .slot
            .store(from, std::sync::atomic::Ordering::Release);
        Err(out)
    }

    /// A network management exchange (0800) on `slot`, or on any up slot; `Ok` when the network
    /// approved it.
    pub async fn network(
        self: &Arc<Self>,
        code: NetworkCode,
        slot: Option<usize>,
    ) -> Result<(), EchoError> {
        let trace = self.trace();
        let builder = MessageBuilder::network(code, trace.transmission, trace.stan);
        let request = self
            .send(&builder, trace.stan, trace.transmission, slot)
            .await?;
        let answer = request
            .wait(self.config.request_timeout)
            .await
            .map_err(|u| match u {
                Unanswered::NotSent => EchoError::Unavailable(Unavailable::NotWritten),
                Unanswered::TimedOut | Unanswered::ConnectionLost => EchoError::NoAnswer,
            })?;
        let answer = answer.message();
        match answer.response_code() {
            Some(code) if code.is_approved() => Ok(()),
            Some(code) => Err(EchoError::Refused(code)),
            None => Err(EchoError::BadResponse(answer.mti())),
        }
    }
}
