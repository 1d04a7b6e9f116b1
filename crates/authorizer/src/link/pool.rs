//! The connection pool and the send path: slots, leases, the in-flight handle of one request, and
//! the supervisor that keeps each slot's connection alive (connect, sign-on, echo on idle,
//! reconnect with backoff and jitter, fail over to the next endpoint).
//!
//! Owns everything shared by the link's tasks ([`Shared`]). The hot path (lease, encode, register,
//! enqueue, await) takes no lock: atomics, a semaphore permit per request (the bound on requests in
//! flight per connection), a bounded channel to the connection's writer and the lock-free in-flight
//! table. It must never queue without bound nor let a request outlive its in-flight entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use iso8583::{Message, MessageBuilder, Mti, ResponseCode, Stan};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::config::LinkConfig;
use super::connection::{self, Outbound};
use super::inflight::{Completion, InFlight, Pending, Reply};
use super::metrics::{ConnectionState, LinkMetrics};
use super::request::{Acceptor, Trace, network_builder};
use super::saf::SafQueue;
use super::trace::{RrnSequence, StanSequence, Timestamp};
use super::{CardResolver, LinkError};

/// One pooled connection's fixed parts. The channel and semaphore outlive reconnects, so the
/// send path never has to find out which incarnation of the connection it is talking to.
#[derive(Debug)]
pub(crate) struct Slot {
    tx: mpsc::Sender<Outbound>,
    permits: Arc<Semaphore>,
    up: AtomicBool,
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
    slot: usize,
    _permit: OwnedSemaphorePermit,
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

/// One request registered in the in-flight table and queued to (or written on) a connection.
/// Dropping it withdraws the request: the writer skips a frame whose entry is gone.
#[derive(Debug)]
pub(crate) struct InFlightRequest {
    shared: Arc<Shared>,
    stan: Stan,
    completion: Arc<Completion>,
    started: Instant,
    _lease: Lease,
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
            now,
        }
    }

    pub fn touch(&self, slot: usize) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.slots[slot].last_rx_ms.store(ms, Relaxed);
    }

    fn idle_for(&self, slot: usize) -> Duration {
        let last = Duration::from_millis(self.slots[slot].last_rx_ms.load(Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub fn is_up(&self, slot: usize) -> bool {
        self.slots[slot].up.load(Relaxed)
    }

    pub fn up_count(&self) -> usize {
        *self.ready.borrow()
    }

    fn set_up(&self, slot: usize, up: bool) {
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
    async fn lease(&self, only: Option<usize>) -> Result<Lease, LinkError> {
        if let Some(slot) = only {
            let permit = Arc::clone(&self.slots[slot].permits)
                .acquire_owned()
                .await
                .map_err(|_| LinkError::Unavailable)?;
            return Ok(Lease {
                slot,
                _permit: permit,
            });
        }
        // Only the slots' own network management (sign-off) still goes out while closing.
        if self.closing.load(Relaxed) {
            return Err(LinkError::ShuttingDown);
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
                return Err(LinkError::Unavailable);
            }
            return Box::pin(self.lease(None)).await;
        };
        let permit = Arc::clone(&self.slots[slot].permits)
            .acquire_owned()
            .await
            .map_err(|_| LinkError::Unavailable)?;
        if !self.slots[slot].up.load(Relaxed) {
            return Err(LinkError::Unavailable);
        }
        Ok(Lease {
            slot,
            _permit: permit,
        })
    }

    /// Encodes `builder` into a zeroizing frame, registers the request and queues the frame.
    /// The builder (with any PAN and CVC in its arena) stays with the caller, who drops it as soon
    /// as this returns; the frame is wiped by the writer once it is on the socket.
    pub async fn send(
        self: &Arc<Self>,
        mti: Mti,
        trace: &Trace,
        builder: &MessageBuilder,
        only: Option<usize>,
    ) -> Result<InFlightRequest, LinkError> {
        let expect = mti.response().ok_or(LinkError::NotARequest(mti))?;
        let lease = self.lease(only).await?;
        let mut frame = Zeroizing::new(Vec::with_capacity(320));
        builder.encode_frame_into(&mut *frame)?;
        let completion = Arc::new(Completion::default());
        let pending = Arc::new(Pending {
            completion: Arc::clone(&completion),
            expect,
            transmission: trace.now.transmission,
            slot: AtomicUsize::new(lease.slot),
        });
        if !self.inflight.insert(trace.stan, pending) {
            return Err(LinkError::StanInUse(trace.stan));
        }
        self.metrics.in_flight.fetch_add(1, Relaxed);
        let slot = lease.slot;
        let request = InFlightRequest {
            shared: Arc::clone(self),
            stan: trace.stan,
            completion,
            started: Instant::now(),
            _lease: lease,
        };
        self.slots[slot]
            .tx
            .send(Outbound {
                stan: trace.stan,
                frame,
            })
            .await
            .map_err(|_| LinkError::ShuttingDown)?;
        self.metrics.record_sent(mti);
        Ok(request)
    }

    /// Moves a never-written frame from `from` to another up slot with room in its queue.
    /// Network management frames stay with their own connection.
    fn reroute(&self, from: usize, pending: &Pending, out: Outbound) -> Result<(), Outbound> {
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

    /// A network management exchange (0800) on `slot`, or on any up slot.
    pub async fn network(
        self: &Arc<Self>,
        code: &[u8; 3],
        slot: Option<usize>,
    ) -> Result<ResponseCode, LinkError> {
        let trace = self.trace();
        let request = self
            .send(
                Mti::NETWORK_REQUEST,
                &trace,
                &network_builder(code, &trace),
                slot,
            )
            .await?;
        let answer = request
            .wait(self.config.request_timeout)
            .await
            .map_err(LinkError::from)?;
        answer.response_code().ok_or(LinkError::BadResponse {
            mti: answer.mti(),
            what: "no DE 39",
        })
    }
}

impl InFlightRequest {
    /// Waits for the answer, at most `timeout`. Exactly one of the reader, the time-out and a
    /// dropped connection takes the entry out of the table, and that one decides the outcome.
    pub async fn wait(self, timeout: Duration) -> Result<Message, Unanswered> {
        let reply = match tokio::time::timeout(timeout, self.completion.wait()).await {
            Ok(reply) => reply,
            Err(_) if self.shared.inflight.take(self.stan).is_some() => {
                self.shared.metrics.timeouts.fetch_add(1, Relaxed);
                return Err(Unanswered::TimedOut);
            }
            // The reader took it a moment ago and is completing it.
            Err(_) => self.completion.wait().await,
        };
        match reply {
            Reply::Response(m) => {
                self.shared
                    .metrics
                    .record_response(m.response_code(), self.started.elapsed());
                Ok(m)
            }
            Reply::ConnectionLost => {
                self.shared.metrics.connection_lost.fetch_add(1, Relaxed);
                Err(Unanswered::ConnectionLost)
            }
            Reply::NotSent => Err(Unanswered::NotSent),
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

/// Keeps `slot` connected for the life of the link.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    slot: usize,
    mut rx: mpsc::Receiver<Outbound>,
    stop: CancellationToken,
) {
    let endpoints = shared.config.endpoints.len();
    let mut endpoint = 0;
    let mut attempt = 0u32;
    while !stop.is_cancelled() {
        let ep = &shared.config.endpoints[endpoint];
        shared.metrics.set_state(slot, ConnectionState::Connecting);
        shared.metrics.slots[slot]
            .endpoint
            .store(endpoint as u64, Relaxed);
        match connection::connect(ep, &shared.config).await {
            Ok(stream) => {
                shared.metrics.slots[slot].connects.fetch_add(1, Relaxed);
                shared.metrics.set_state(slot, ConnectionState::SigningOn);
                shared.touch(slot);
                withdraw_queued(&shared, slot, &mut rx);
                let conn_stop = stop.child_token();
                let ended = {
                    let io = connection::run(stream, &mut rx, &shared, slot, &conn_stop);
                    tokio::select! {
                        r = io => r.err().map(|e| e.to_string()),
                        e = keep_alive(&shared, slot) => Some(e.to_string()),
                    }
                };
                let was_up = shared.slots[slot].up.load(Relaxed);
                shared.set_up(slot, false);
                shared.metrics.slots[slot].disconnects.fetch_add(1, Relaxed);
                withdraw_queued(&shared, slot, &mut rx);
                let lost = shared.inflight.fail_slot(slot, &Reply::ConnectionLost);
                tracing::warn!(slot, endpoint = %ep.addr, reason = ?ended, lost, "link connection closed");
                if was_up {
                    attempt = 0;
                } else {
                    endpoint = (endpoint + 1) % endpoints;
                    attempt += 1;
                }
            }
            Err(e) => {
                shared.metrics.set_state(slot, ConnectionState::Down);
                tracing::warn!(slot, error = %e, "link connect failed; trying the next endpoint");
                endpoint = (endpoint + 1) % endpoints;
                attempt += 1;
            }
        }
        let delay = shared.config.backoff.delay(attempt, rand::random());
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.set_up(slot, false);
}

/// Frames left queued on a slot whose connection is gone were never written: they move to another
/// up connection if one has room, else their waiters learn they were not sent. Either way the
/// next connection of this slot does not write them late.
fn withdraw_queued(shared: &Shared, slot: usize, rx: &mut mpsc::Receiver<Outbound>) {
    while let Ok(o) = rx.try_recv() {
        let Some(pending) = shared.inflight.get(o.stan) else {
            continue;
        };
        let stan = o.stan;
        match shared.reroute(slot, &pending, o) {
            Ok(()) => {}
            Err(_) => {
                if let Some(p) = shared.inflight.take(stan) {
                    p.completion.complete(Reply::NotSent);
                }
            }
        }
    }
}

/// Signs on, opens the slot to traffic, then sends an echo test whenever the connection has been
/// quiet for the echo interval. Returns (ending the connection) when any of them fails.
async fn keep_alive(shared: &Arc<Shared>, slot: usize) -> LinkError {
    match shared.network(b"001", Some(slot)).await {
        Ok(code) if code.is_approved() => {}
        Ok(code) => return LinkError::SignOnRefused(code),
        Err(e) => return e,
    }
    shared.set_up(slot, true);
    shared.saf_wake.notify_one();
    tracing::info!(slot, "link signed on");
    let interval = shared.config.echo_interval;
    loop {
        let idle = shared.idle_for(slot);
        if idle < interval {
            tokio::time::sleep(interval - idle).await;
            continue;
        }
        match shared.network(b"301", Some(slot)).await {
            Ok(code) if code.is_approved() => {}
            Ok(code) => return LinkError::EchoRefused(code),
            Err(e) => return e,
        }
    }
}
