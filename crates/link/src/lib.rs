//! The ISO 8583 link to the processing centre (`spec/iso8583.md`): the only way the order engine
//! reaches the card networks.
//!
//! [`Link`] is a cheap handle over a pool of persistent mutual-TLS connections. Its API speaks
//! payments (authorize, complete, reverse) and answers with a [`LinkOutcome`] that always says
//! what happened to the money: approved, declined, or timed out and reversed. The link owns
//! STAN/RRN assignment, request/response matching, time-outs, reversals and their
//! store-and-forward queue, network management and its metrics. It must never keep a PAN or a CVC
//! longer than it takes to write one frame, and never report an approval the network may not
//! hold.
//!
//! The path of a request, in module order: `request` (what is asked, what comes back) →
//! `fields` (its ISO 8583 message) → `trace` (its STAN, RRN, DE 7) → `pool` (a lease on a
//! connection, registered and queued) → `inflight` (the entry its waiter owns) → `connection`
//! (the socket) → `life` (answered, or timed out and reversed) → `saf` (the durable queue of
//! reversals). Around it: `supervisor` (each connection kept alive), `config`, `tls`, `metrics`,
//! `error`, `persisted` (the stored shape of a reference).
#![forbid(unsafe_code)]

mod config;
mod connection;
mod error;
mod fields;
mod inflight;
mod life;
mod metrics;
mod persisted;
mod pool;
mod request;
mod saf;
mod supervisor;
mod tls;
mod trace;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use iso8583::{Amount, NetworkCode};
use store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AcquirerId, Backoff, ConfigError, Endpoint, LinkConfig, TerminalId, defaults};
pub use error::{
    AuthorizeError, CompleteError, EchoError, Internal, ReverseError, StartError, Unavailable,
};
pub use metrics::{ConnectionState, LinkMetrics};
pub use request::{
    ApprovalCode, AuthorizationRequest, CardRef, CardRefError, CompletionRequest, CredentialOnFile,
    Currency, Intent, LinkOutcome, Merchant, NetworkTxnId, Prepared, ReversalState, ThreeDs,
    TransactionKind, TransactionRef,
};
pub use saf::{PendingReversal, SafError};
pub use tls::{TlsError, TlsMaterial, client_config};

use life::{Sent, Settled};
use pool::Shared;

/// Finds the PAN behind a [`CardRef`] again, for a reversal (the authorizer's implementation
/// asks the vault to detokenize).
pub trait CardResolver: Send + Sync + std::fmt::Debug + 'static {
    /// `Ok(None)` when the card is gone for good (removed, expired, purged): the reversal goes
    /// without DE 2 and the network finds the original by DE 90 and DE 37. `Err` when the card
    /// store cannot answer now: the reversal stays queued and is tried again later.
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
    ) -> BoxFuture<'a, Result<Option<card::Pan>, CardsUnavailable>>;
}

/// The card store could not be asked (down, timed out, refused our credentials).
#[derive(Debug, thiserror::Error)]
#[error("card store unavailable: {0}")]
pub struct CardsUnavailable(pub String);

/// A handle on the running link. Clones share it.
#[derive(Debug, Clone)]
pub struct Link {
    shared: Arc<Shared>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    stop: CancellationToken,
}

impl Link {
    /// Starts the pool's connections and the store-and-forward forwarder, which picks up any
    /// reversals a previous run left queued in `store`. Returns at once; see [`Link::wait_ready`].
    pub fn start(
        config: LinkConfig,
        store: Store,
        cards: Arc<dyn CardResolver>,
    ) -> Result<Link, StartError> {
        let config = config.validate().map_err(StartError::Config)?;
        let saf = saf::SafQueue::open(store).map_err(StartError::Store)?;
        let endpoints = config.endpoints.iter().map(|e| e.addr.clone()).collect();
        let metrics = Arc::new(LinkMetrics::new(endpoints, config.connections));
        let (shared, receivers) = Shared::new(config, saf, cards, metrics);
        shared.count_pending();
        let shared = Arc::new(shared);
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(receivers.len() + 1);
        for (slot, rx) in receivers.into_iter().enumerate() {
            tasks.push(tokio::spawn(supervisor::supervise(
                Arc::clone(&shared),
                slot,
                rx,
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(life::forward(
            Arc::clone(&shared),
            stop.clone(),
        )));
        Ok(Link {
            shared,
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
            stop,
        })
    }

    /// Waits until at least one connection has signed on; `false` if none did within `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.ready.subscribe();
        let up = async { rx.wait_for(|n| *n > 0).await.is_ok() };
        tokio::time::timeout(timeout, up).await.unwrap_or(false)
    }

    /// Sends a 0100 or 0200 and waits for its answer. On no answer in time the request is
    /// reversed before this returns [`LinkOutcome::TimedOutReversed`]. Once the request may be on
    /// the wire its life runs to the end on its own task, even if the caller stops waiting.
    pub async fn authorize(
        &self,
        req: AuthorizationRequest<'_>,
    ) -> Result<LinkOutcome, AuthorizeError> {
        let prepared = self.prepare(req.intent());
        self.send_authorization(prepared, req).await
    }

    /// Gives the request `intent` describes its trace numbers (STAN, RRN, DE 7) without sending
    /// it; the PAN need not be at hand yet. A caller that must not lose a payment to its own crash
    /// makes [`Prepared::reference`] durable first, then sends with [`Link::authorize_prepared`];
    /// after a restart it reverses every reference it holds no outcome for (the network
    /// acknowledges a reversal of a request it never saw, and moves nothing).
    pub fn prepare(&self, intent: Intent<'_>) -> Prepared {
        let trace = self.shared.trace();
        Prepared::new(intent.reference(trace.stan, trace.rrn, trace.transmission))
    }

    /// [`Link::authorize`] under the trace numbers `prepared` reserved for this very request.
    pub async fn authorize_prepared(
        &self,
        prepared: Prepared,
        req: AuthorizationRequest<'_>,
    ) -> Result<LinkOutcome, AuthorizeError> {
        if !prepared.is_for(&req) {
            return Err(AuthorizeError::PreparedForAnother);
        }
        self.send_authorization(prepared, req).await
    }

    async fn send_authorization(
        &self,
        prepared: Prepared,
        req: AuthorizationRequest<'_>,
    ) -> Result<LinkOutcome, AuthorizeError> {
        let sent = Sent::authorization(&self.shared, prepared, req).await?;
        let (stan, rrn) = sent.trace();
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move { sent.run(&shared).await })
            .await
            .unwrap_or(Err(AuthorizeError::OutcomeUnknown {
                stan,
                rrn,
                cause: Internal::TaskFailed,
            }))
    }

    /// Sends a 0220 completing a Delayed authorization. An unanswered advice is reported as
    /// [`CompleteError::NoAnswer`]; the caller repeats it (the network applies an advice once).
    pub async fn complete(&self, req: CompletionRequest<'_>) -> Result<LinkOutcome, CompleteError> {
        let sent = Sent::completion(&self.shared, req).await?;
        match sent.settle(&self.shared).await {
            Settled::Answered(answered) => Ok(answered.outcome()),
            Settled::Unknown(_) => Err(CompleteError::NoAnswer),
            Settled::NotSent => Err(CompleteError::Unavailable(Unavailable::NotWritten)),
        }
    }

    /// Cancels `original` with a full reversal (0400), kept in store-and-forward until the
    /// network acknowledges it.
    pub async fn reverse(&self, original: &TransactionRef) -> Result<ReversalState, ReverseError> {
        life::reverse_on_task(&self.shared, original, None).await
    }

    /// Cancels part of `original`: `remaining` (less than its amount) stays authorized, sent in
    /// DE 95. Kept in store-and-forward until acknowledged, like a full reversal.
    pub async fn reverse_partially(
        &self,
        original: &TransactionRef,
        remaining: Amount,
    ) -> Result<ReversalState, ReverseError> {
        if remaining >= original.amount {
            return Err(ReverseError::NotAPartialReversal {
                remaining,
                original: original.amount,
            });
        }
        life::reverse_on_task(&self.shared, original, Some(remaining.0)).await
    }

    /// An echo test (0800/301) on any up connection; returns the round-trip time.
    pub async fn echo(&self) -> Result<Duration, EchoError> {
        let started = Instant::now();
        self.shared.network(NetworkCode::Echo, None).await?;
        Ok(started.elapsed())
    }

    /// Reversals waiting in store-and-forward, oldest first.
    pub fn pending_reversals(&self) -> Result<Vec<PendingReversal>, SafError> {
        Ok(self
            .shared
            .saf
            .list()?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// The link's counters, shared with its tasks; `render()` gives the Prometheus text.
    pub fn metrics(&self) -> Arc<LinkMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Stops taking requests, lets those in flight finish (bounded by the request and reversal
    /// time-outs), signs off (0800/002) and closes the connections.
    pub async fn shutdown(self) {
        let shared = &self.shared;
        shared.closing.store(true, Relaxed);
        let grace = shared.config.request_timeout + shared.config.reversal_timeout;
        let drained = async {
            while !shared.inflight.is_empty() {
                shared.drained.notified().await;
            }
        };
        let _ = tokio::time::timeout(grace, drained).await;
        for slot in 0..shared.slots.len() {
            if shared.is_up(slot) {
                let _ = shared.network(NetworkCode::SignOff, Some(slot)).await;
            }
        }
        self.stop.cancel();
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            let _ = t.await;
        }
    }
}
