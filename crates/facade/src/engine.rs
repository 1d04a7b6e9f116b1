//! The engine services (order.cfm, payrequest.cfm, tokenpay.cfm, rp.cfm, charge.cfm,
//! cancel.cfm/wscancel.cfm, orderstate.cfm, orderresult.cfm): each typed request becomes one
//! call of the order engine and its result one `assist` answer.
//!
//! Owns that mapping and nothing else: authentication and integrity are checked before a request
//! gets here. Must never fake an engine: until the `orders` crate is wired in, every one of these
//! services answers firstcode 2 "not available", from this one place.

use assist::codes::{Fault, FirstCode, SecondCode};
use assist::requests::Request;

use crate::api::Outcome;
use crate::merchants::Merchant;

/// Runs an engine service for an authenticated merchant.
pub(crate) async fn run(merchant: &Merchant, _request: Request) -> Result<Outcome, Fault> {
    tracing::debug!(merchant = %merchant.id, "engine service not available");
    Err(Fault::new(
        FirstCode::Internal,
        SecondCode::None,
        "service not available",
    ))
}
