//! [`CardSecrets`]: how the engine reaches the vault, as a trait it owns. The authorizer
//! implements it over `vault::client` (role `authorizer`); tests use a fake.
//!
//! Owns the seam and its vocabulary. A PAN crosses it only borrowed (to save or hold a typed
//! card) or inside a [`ResolvedCard`] that lives for one request; every lookup carries the
//! [`OperationRef`] of the payment it serves, because the vault binds a detokenize to a payment.

use card::{CardUse, CustomerNumber, Cvc, Expiry, MerchantId, Pan, Token};
use futures::future::BoxFuture;
use link::CardRef;
use time::OffsetDateTime;

use crate::ids::OperationRef;

/// A card typed on the payment page, borrowed for one payment.
#[derive(Debug, Clone, Copy)]
pub struct NewCard<'a> {
    /// The number.
    pub pan: &'a Pan,
    /// Its expiry.
    pub expiry: Expiry,
    /// CVC2, straight from the form into one message.
    pub cvc: &'a Cvc,
    /// The cardholder's name as typed.
    pub holder: Option<&'a str>,
}

/// A card found again in the vault for one payment.
#[derive(Debug)]
pub struct ResolvedCard {
    /// The number (zeroized on drop).
    pub pan: Pan,
    /// Its expiry.
    pub expiry: Expiry,
}

/// The vault could not answer (down, refused us, timed out). Never carries card data.
#[derive(Debug, thiserror::Error)]
#[error("card store unavailable: {0}")]
pub struct SecretsUnavailable(pub String);

/// The vault, as the engine uses it. Object-safe.
pub trait CardSecrets: Send + Sync + std::fmt::Debug + 'static {
    /// Saves `card` for `customer` of `merchant`, with the shopper's consent, as the card of
    /// the payment `payment` (so its reversal can find the PAN again); its token.
    fn save<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>>;

    /// Holds `card` only for the payment `payment` (so its reversal, charge or refund can find
    /// the PAN again), without saving it for any customer; its token. `customer` is the owner
    /// the engine names for it, [`BillNumber::held_card_owner`](crate::BillNumber::held_card_owner)
    /// of the payment's order, which the [`CardRef`] of that order then carries.
    fn hold<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>>;

    /// The card behind `card`, for the operation `payment`. `Ok(None)` when the token is
    /// unknown, removed, expired, not this customer's, or not one `card_use` allows (a card the
    /// merchant could not offer, for Token Pay and One Click): the payment is declined, never
    /// made with another card.
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
        payment: OperationRef,
        card_use: CardUse,
    ) -> BoxFuture<'a, Result<Option<ResolvedCard>, SecretsUnavailable>>;

    /// A payment with `card` succeeded at `at` (the listing threshold and the retention clock).
    fn record_payment<'a>(
        &'a self,
        card: &'a CardRef,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), SecretsUnavailable>>;
}
