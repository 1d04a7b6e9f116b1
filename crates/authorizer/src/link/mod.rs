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

mod config;
mod connection;
mod inflight;
mod metrics;
mod pool;
mod request;
mod reversal;
mod saf;
mod tls;
mod trace;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use iso8583::{Amount, Mti, ResponseCode, Stan};
use store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{
    AcquirerId, Backoff, ConfigError, DEFAULT_ACQUIRER_ID, DEFAULT_TERMINAL_ID, Endpoint,
    LinkConfig, TerminalId,
};
pub use metrics::{ConnectionState, LinkMetrics};
pub use request::{
    ApprovalCode, AuthorizationRequest, CardRef, CompletionRequest, CredentialOnFile, Currency,
    LinkOutcome, Merchant, NetworkTxnId, Prepared, ProcessingCode, ReversalState, ThreeDs,
    TransactionKind, TransactionRef,
};
pub use saf::{PendingReversal, SafError};
pub use tls::{TlsError, TlsMaterial, client_config};

use pool::{Shared, Unanswered};
use reversal::{Sent, Settled};

/// Finds the PAN behind a [`CardRef`] again, for a reversal (the authorizer's implementation,
/// [`crate::cards::VaultCards`], asks the vault to detokenize).
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

/// Errors of the link, by whose fault: ours (encoding), the network's (bad answers, refusals),
/// or nobody's (no connection, shutting down).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no connection to the processing centre is up")]
    Unavailable,
    #[error("the link is shutting down")]
    ShuttingDown,
    #[error("the connection dropped before the request was written; nothing was sent")]
    NotSent,
    #[error("no answer from the processing centre in time")]
    NoAnswer,
    #[error("request could not be encoded: {0}")]
    Encode(#[from] iso8583::EncodeError),
    #[error("{0} is not a request")]
    NotARequest(Mti),
    #[error(
        "a partial reversal must leave less than the original amount ({remaining} of {original})"
    )]
    NotAPartialReversal { remaining: u64, original: u64 },
    #[error("the request is not the one these trace numbers were prepared for")]
    PreparedForAnother,
    #[error("STAN {0} is still in flight")]
    StanInUse(Stan),
    #[error("answer to {mti} unusable: {what}")]
    BadResponse { mti: Mti, what: &'static str },
    #[error("sign-on refused with response code {0}")]
    SignOnRefused(ResponseCode),
    #[error("echo test refused with response code {0}")]
    EchoRefused(ResponseCode),
    #[error(transparent)]
    Saf(#[from] SafError),
    #[error(transparent)]
    Cards(#[from] CardsUnavailable),
    #[error("link task failed")]
    TaskFailed,
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<Unanswered> for LinkError {
    fn from(u: Unanswered) -> LinkError {
        match u {
            Unanswered::NotSent => LinkError::NotSent,
            Unanswered::TimedOut | Unanswered::ConnectionLost => LinkError::NoAnswer,
        }
    }
}

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
    ) -> Result<Link, LinkError> {
        let config = config.validate()?;
        let saf = saf::SafQueue::open(store)?;
        let endpoints = config.endpoints.iter().map(|e| e.addr.clone()).collect();
        let metrics = Arc::new(LinkMetrics::new(endpoints, config.connections));
        let (shared, receivers) = Shared::new(config, saf, cards, metrics);
        shared.count_pending();
        let shared = Arc::new(shared);
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(receivers.len() + 1);
        for (slot, rx) in receivers.into_iter().enumerate() {
            tasks.push(tokio::spawn(pool::supervise(
                Arc::clone(&shared),
                slot,
                rx,
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(reversal::forward(
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
    pub async fn authorize(&self, req: AuthorizationRequest<'_>) -> Result<LinkOutcome, LinkError> {
        let prepared = self.prepare(&req);
        self.send_authorization(prepared, req).await
    }

    /// Gives `req` its trace numbers (STAN, RRN, DE 7) without sending it. A caller that must not
    /// lose a payment to its own crash makes [`Prepared::reference`] durable first, then sends
    /// with [`Link::authorize_prepared`]; after a restart it reverses every reference it holds no
    /// outcome for (the network acknowledges a reversal of a request it never saw, and moves
    /// nothing).
    pub fn prepare(&self, req: &AuthorizationRequest<'_>) -> Prepared {
        let trace = self.shared.trace();
        Prepared {
            reference: req.reference(&trace),
            trace,
        }
    }

    /// [`Link::authorize`] under the trace numbers `prepared` reserved for this very request.
    pub async fn authorize_prepared(
        &self,
        prepared: Prepared,
        req: AuthorizationRequest<'_>,
    ) -> Result<LinkOutcome, LinkError> {
        if req.reference(&prepared.trace) != prepared.reference {
            return Err(LinkError::PreparedForAnother);
        }
        self.send_authorization(prepared, req).await
    }

    async fn send_authorization(
        &self,
        Prepared { trace, reference }: Prepared,
        req: AuthorizationRequest<'_>,
    ) -> Result<LinkOutcome, LinkError> {
        let request = {
            let builder = req.builder(&self.shared.acceptor, &trace);
            self.shared
                .send(req.kind.mti(), &trace, &builder, None)
                .await?
        };
        drop(req);
        let shared = Arc::clone(&self.shared);
        let life = tokio::spawn(async move {
            match (Sent { request, reference }).settle(&shared).await {
                Settled::Answered(m, reference) => Ok(request::outcome_of(&m, reference)),
                Settled::NotSent => Err(LinkError::NotSent),
                Settled::Unknown(timed_out) => {
                    let reference = timed_out.reference.clone();
                    let reversal = timed_out.reverse(&shared).await?;
                    Ok(LinkOutcome::TimedOutReversed {
                        reference,
                        reversal,
                    })
                }
            }
        });
        life.await.map_err(|_| LinkError::TaskFailed)?
    }

    /// Sends a 0220 completing a Delayed authorization. An unanswered advice is reported as
    /// [`LinkError::NoAnswer`]; the caller repeats it (the network applies an advice once).
    pub async fn complete(&self, req: CompletionRequest<'_>) -> Result<LinkOutcome, LinkError> {
        let trace = self.shared.trace();
        let request = {
            let builder = request::completion_builder(&req, &self.shared.acceptor, &trace);
            self.shared
                .send(Mti::COMPLETION_ADVICE, &trace, &builder, None)
                .await?
        };
        let answer = request.wait(self.shared.config.request_timeout).await?;
        let mut reference = req.original.clone();
        reference.amount = req.amount.0;
        Ok(request::outcome_of(&answer, reference))
    }

    /// Cancels `original` with a full reversal (0400), kept in store-and-forward until the
    /// network acknowledges it.
    pub async fn reverse(&self, original: &TransactionRef) -> Result<ReversalState, LinkError> {
        self.reverse_to(original, None).await
    }

    /// Cancels part of `original`: `remaining` (less than its amount) stays authorized, sent in
    /// DE 95. Kept in store-and-forward until acknowledged, like a full reversal.
    pub async fn reverse_partially(
        &self,
        original: &TransactionRef,
        remaining: Amount,
    ) -> Result<ReversalState, LinkError> {
        if remaining.0 >= original.amount {
            return Err(LinkError::NotAPartialReversal {
                remaining: remaining.0,
                original: original.amount,
            });
        }
        self.reverse_to(original, Some(remaining.0)).await
    }

    async fn reverse_to(
        &self,
        original: &TransactionRef,
        remaining: Option<u64>,
    ) -> Result<ReversalState, LinkError> {
        let shared = Arc::clone(&self.shared);
        let original = original.clone();
        tokio::spawn(async move { reversal::reverse(&shared, original, remaining).await })
            .await
            .map_err(|_| LinkError::TaskFailed)?
    }

    /// An echo test (0800/301) on any up connection; returns the round-trip time.
    pub async fn echo(&self) -> Result<Duration, LinkError> {
        let started = Instant::now();
        let code = self.shared.network(b"301", None).await?;
        if !code.is_approved() {
            return Err(LinkError::EchoRefused(code));
        }
        Ok(started.elapsed())
    }

    /// Reversals waiting in store-and-forward, oldest first.
    pub fn pending_reversals(&self) -> Result<Vec<PendingReversal>, LinkError> {
        Ok(self
            .shared
            .saf
            .list()?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

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
                let _ = shared.network(b"002", Some(slot)).await;
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
