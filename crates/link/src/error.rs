//! The link's errors, one per operation, each grouped by whose fault it is (rustls's
//! `error/mod.rs` is the model): the network is **unavailable** (nothing was sent), the **peer**
//! answered something unusable, the **caller** misused the API, or something of ours failed
//! (**internal**). An authorization or a completion that went out and whose fate is unknown says
//! so in a variant of its own, so a caller never mistakes "not sent" for "maybe sent".
//!
//! Owns the wording and the grouping. A variant with a `#[source]` does not repeat its source's
//! text, so an `anyhow` chain prints each cause once (`store`'s convention). No error carries a
//! PAN or a CVC: they name MTIs, STANs, response codes and references only.

use iso8583::{Amount, EncodeError, Mti, ResponseCode, Rrn, Stan};

use crate::config::ConfigError;
use crate::saf::SafError;

/// Nothing reached the network, and nothing will: safe to decline or to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No connection of the pool is signed on: the processing centre is down or unreachable.
    #[error("no connection to the processing centre is up")]
    NoConnection,
    /// [`crate::Link::shutdown`] has begun: the caller's request came too late.
    #[error("the link is shutting down")]
    ShuttingDown,
    /// The connection dropped with the request still queued, so it never reached the wire.
    #[error("the connection dropped before the request was written")]
    NotWritten,
}

/// Something of ours failed.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    /// The codec refused a value that does not fit its field; nothing was sent.
    #[error("the request could not be encoded")]
    Encode(#[source] EncodeError),
    /// The STAN sequence came round to a request still in flight (a million requests old).
    #[error("STAN {0} is still in flight")]
    StanInUse(Stan),
    /// The store-and-forward queue could not be read or written.
    #[error("store-and-forward")]
    Store(#[source] SafError),
    /// A task of the link panicked.
    #[error("link task failed")]
    TaskFailed,
}

/// Why a request was not sent: the first step of every operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotSent {
    #[error(transparent)]
    Unavailable(Unavailable),
    #[error(transparent)]
    Internal(Internal),
}

/// Why [`Link::start`](crate::Link::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The caller's configuration was refused.
    #[error("link configuration")]
    Config(#[source] ConfigError),
    /// The store-and-forward queue could not be opened: ours (disk, database).
    #[error("opening the store-and-forward queue")]
    Store(#[source] SafError),
}

/// Why an authorization (0100/0200) has no [`LinkOutcome`](crate::LinkOutcome).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Unavailable: nothing was sent.
    #[error("authorization not sent")]
    Unavailable(#[source] Unavailable),
    /// The caller's misuse: nothing was sent.
    #[error("the request is not the one these trace numbers were prepared for")]
    PreparedForAnother,
    /// Internal, before sending: nothing was sent.
    #[error("authorization not sent")]
    Internal(#[source] Internal),
    /// Internal, after sending: the request may be on the network and could not be reversed
    /// durably. A caller that made its reference durable first ([`Link::prepare`]) reverses it
    /// later; `stan` and `rrn` name it.
    ///
    /// [`Link::prepare`]: crate::Link::prepare
    #[error("authorization STAN {stan} RRN {rrn} sent; its outcome is unknown")]
    OutcomeUnknown {
        /// DE 11 the request went out under.
        stan: Stan,
        /// DE 37 of the request.
        rrn: Rrn,
        /// Why no reversal could be queued.
        #[source]
        cause: Internal,
    },
}

/// Why a completion (0220) has no outcome.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    /// Unavailable: nothing was sent.
    #[error("completion not sent")]
    Unavailable(#[source] Unavailable),
    /// Sent, no answer in time (or its connection dropped): the network may hold it. Repeat it:
    /// the network applies an advice once.
    #[error("completion sent; no answer in time")]
    NoAnswer,
    /// Internal, before sending: nothing was sent.
    #[error("completion not sent")]
    Internal(#[source] Internal),
}

/// Why a reversal (0400) was neither acknowledged nor queued.
#[derive(Debug, thiserror::Error)]
pub enum ReverseError {
    /// The caller's misuse: nothing was queued.
    #[error(
        "a partial reversal must leave less than the original amount ({remaining} of {original})"
    )]
    NotAPartialReversal {
        /// The amount the caller asked to leave authorized.
        remaining: Amount,
        /// The amount of the original authorization.
        original: Amount,
    },
    /// Internal. When the record was queued before this happened, the forwarder still delivers it
    /// (see [`Link::pending_reversals`](crate::Link::pending_reversals)).
    #[error("reversal failed")]
    Internal(#[source] Internal),
}

/// Why an echo test (0800/301) failed.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// Unavailable: nothing was sent.
    #[error("echo test not sent")]
    Unavailable(#[source] Unavailable),
    /// Sent, no answer in time.
    #[error("echo test unanswered")]
    NoAnswer,
    /// The peer's fault: it answered without a response code.
    #[error("answer to {0} has no DE 39")]
    BadResponse(Mti),
    /// The peer's fault: it refused.
    #[error("echo test refused with response code {0}")]
    Refused(ResponseCode),
    /// Internal: nothing was sent.
    #[error("echo test not sent")]
    Internal(#[source] Internal),
}

impl From<NotSent> for AuthorizeError {
    fn from(e: NotSent) -> AuthorizeError {
        match e {
            NotSent::Unavailable(u) => AuthorizeError::Unavailable(u),
            NotSent::Internal(i) => AuthorizeError::Internal(i),
        }
    }
}

impl From<NotSent> for CompleteError {
    fn from(e: NotSent) -> CompleteError {
        match e {
            NotSent::Unavailable(u) => CompleteError::Unavailable(u),
            NotSent::Internal(i) => CompleteError::Internal(i),
        }
    }
}

impl From<NotSent> for EchoError {
    fn from(e: NotSent) -> EchoError {
        match e {
            NotSent::Unavailable(u) => EchoError::Unavailable(u),
            NotSent::Internal(i) => EchoError::Internal(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause is printed once in a chain: the outer message does not repeat it.
    #[test]
    fn a_source_is_not_repeated_in_its_wrapper() {
        let e = AuthorizeError::Unavailable(Unavailable::NoConnection);
        let inner = std::error::Error::source(&e).unwrap().to_string();
        assert!(!e.to_string().contains(&inner), "{e}");
    }
}
