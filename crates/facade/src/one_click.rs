//! One Click's web services (seed 001): token.cfm lists a customer's saved cards, rem_token.cfm
//! removes one, both through the vault's `facade` role behind [`SavedCards`].
//!
//! Owns the mapping between the vault's answers and Assist's: a listed card becomes seed 001's
//! object (BIN and last four only), a card the vault does not find for this customer under this
//! merchant's scope is 10/203, a vault that cannot answer is 2 without its reasons. Must never ask
//! the vault for anything but list, remove and (for the cabinet) a customer's status, and never
//! show another scope's card.

use std::fmt;

use assist::answer::{Body, SavedCard};
use assist::codes::{Fault, FirstCode, SecondCode};
use assist::requests::{TokenListRequest, TokenRemoveRequest};
use assist::values::{CardToken, CustomerNumber};
use futures::future::BoxFuture;
use vault::{ClientError, CustomerCards, VaultError};

use crate::merchants::Merchant;

/// The vault calls One Click needs, with the `facade` role. The authorizer implements it over
/// its vault connection; tests over a fake.
pub trait SavedCards: Send + Sync + fmt::Debug {
    /// The customer's listed cards under the merchant's scope.
    fn list<'a>(
        &'a self,
        merchant: &'a card::MerchantId,
        customer: &'a card::CustomerNumber,
    ) -> BoxFuture<'a, Result<CustomerCards, ClientError>>;

    /// Removes one of the customer's cards.
    fn remove<'a>(
        &'a self,
        merchant: &'a card::MerchantId,
        customer: &'a card::CustomerNumber,
        token: card::Token,
    ) -> BoxFuture<'a, Result<(), ClientError>>;

    /// Sets the customer's One Click status (the cabinet's "Deny" and its lifting).
    fn set_status<'a>(
        &'a self,
        merchant: &'a card::MerchantId,
        customer: &'a card::CustomerNumber,
        status: vault::CustomerStatus,
    ) -> BoxFuture<'a, Result<(), ClientError>>;
}

/// token.cfm: seed 001's list.
pub(crate) async fn list(
    cards: &dyn SavedCards,
    merchant: &Merchant,
    request: &TokenListRequest,
) -> Result<Body, Fault> {
    let customer = customer(&request.customer_number)?;
    let listed = cards
        .list(&merchant.vault_id, &customer)
        .await
        .map_err(|e| vault_fault(merchant, e))?;
    Ok(Body::Tokens(
        listed
            .cards
            .into_iter()
            .map(|c| SavedCard {
                token: CardToken(c.token.0),
                bin: c.card.bin,
                last4: c.card.last4,
                brand: c.card.brand.assist_name().to_owned(),
                bank: c.card.bank,
                expire: c.card.expiry,
                active: c.active,
                need_cvc: c.need_cvc,
            })
            .collect(),
    ))
}

/// rem_token.cfm: `{"token":…,"message":"Token removed"}`.
pub(crate) async fn remove(
    cards: &dyn SavedCards,
    merchant: &Merchant,
    request: &TokenRemoveRequest,
) -> Result<Body, Fault> {
    let customer = customer(&request.customer_number)?;
    cards
        .remove(&merchant.vault_id, &customer, card::Token(request.token.0))
        .await
        .map_err(|e| vault_fault(merchant, e))?;
    Ok(Body::TokenRemoved(request.token))
}

/// Both crates apply the same rule; a difference would be a bug, answered as a bad customer.
/// The vault's CustomerNumber of an Assist one (the same rule; checked again at the boundary).
pub(crate) fn customer(c: &CustomerNumber) -> Result<card::CustomerNumber, Fault> {
    card::CustomerNumber::parse(c.as_str())
        .map_err(|_| Fault::new(FirstCode::BadFormat, SecondCode::Customer, "CustomerNumber"))
}

fn vault_fault(merchant: &Merchant, e: ClientError) -> Fault {
    match e {
        // Not this customer's card under this merchant's scope (removed, another merchant's
        // customer, never saved): one answer for all, so that nothing leaks across scopes.
        ClientError::Refused(VaultError::NotFound | VaultError::CustomerDenied) => Fault::new(
            FirstCode::NotFound,
            SecondCode::Card,
            "no such card for this customer",
        ),
        ClientError::Refused(VaultError::UnknownMerchant) => {
            tracing::error!(
                merchant = %merchant.id,
                "the vault does not know this merchant: its config and the merchants file differ"
            );
            Fault::internal()
        }
        other => {
            tracing::warn!(merchant = %merchant.id, error = %other, "vault call failed");
            Fault::internal()
        }
    }
}
