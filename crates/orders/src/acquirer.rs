//! [`Acquirer`]: how the engine reaches the card networks, as a trait it owns so tests run
//! against a fake, and its implementation for [`link::Link`] (here rather than in the
//! authorizer, since this crate depends on `link` for its vocabulary anyway).
//!
//! Owns nothing but the seam. Speaks the link's own request and outcome types, so a fake answers
//! in the very terms the real link does. Must never hold card data beyond one call.

use futures::future::BoxFuture;
use iso8583::Amount;
use link::{
    AuthorizationRequest, AuthorizeError, CompleteError, CompletionRequest, Intent, Link,
    LinkOutcome, Prepared, ReversalState, ReverseError, TransactionRef,
};

/// The network, as the engine uses it. Object-safe, so the engine holds an `Arc<dyn Acquirer>`.
pub trait Acquirer: Send + Sync + std::fmt::Debug + 'static {
    /// Reserves the trace numbers of the request `intent` describes without sending it: the
    /// engine makes [`Prepared::reference`] durable before [`Acquirer::authorize`].
    fn prepare(&self, intent: Intent<'_>) -> Prepared;

    /// Sends `req` (0100/0200) under `prepared`'s trace numbers and waits for its outcome; a
    /// time-out is reversed before this returns.
    fn authorize<'a>(
        &'a self,
        prepared: Prepared,
        req: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, AuthorizeError>>;

    /// Sends a 0220 completing a Delayed authorization. `NoAnswer` means: repeat it.
    fn complete<'a>(
        &'a self,
        req: CompletionRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, CompleteError>>;

    /// Reverses `original` in full (`remaining` `None`) or down to `remaining` (DE 95). Kept in
    /// store-and-forward until acknowledged: `Ok` means it will happen.
    fn reverse<'a>(
        &'a self,
        original: &'a TransactionRef,
        remaining: Option<Amount>,
    ) -> BoxFuture<'a, Result<ReversalState, ReverseError>>;
}

impl Acquirer for Link {
    fn prepare(&self, intent: Intent<'_>) -> Prepared {
        Link::prepare(self, intent)
    }

    fn authorize<'a>(
        &'a self,
        prepared: Prepared,
        req: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, AuthorizeError>> {
        Box::pin(self.authorize_prepared(prepared, req))
    }

    fn complete<'a>(
        &'a self,
        req: CompletionRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, CompleteError>> {
        Box::pin(Link::complete(self, req))
    }

    fn reverse<'a>(
        &'a self,
        original: &'a TransactionRef,
        remaining: Option<Amount>,
    ) -> BoxFuture<'a, Result<ReversalState, ReverseError>> {
        Box::pin(async move {
            match remaining {
                None => Link::reverse(self, original).await,
                Some(r) => self.reverse_partially(original, r).await,
            }
        })
    }
}
