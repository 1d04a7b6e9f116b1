//! The engine's errors, grouped by whose fault they are (rustls's `error/mod.rs` is the model):
//! the merchant's **request** ([`RequestError`], each with the Assist firstcode/secondcode the
//! facade answers), a **dependency** that could not be reached with nothing changed (the vault),
//! an outcome the **network** left unknown for recovery to resolve, or something of **ours**.
//!
//! A decline is not an error: it is an operation's outcome. Owns the wording and the codes;
//! errors never carry card data.

use store::StoreError;

use crate::ids::BillNumber;
use crate::model::OrderState;
use crate::secrets::SecretsUnavailable;

/// What the merchant asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A payment of an order.
    Pay,
    /// A charge.
    Charge,
    /// A cancel or refund.
    Cancel,
}

/// Which rule of a recurring agreement a payment broke (refused before the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementRule {
    /// Outside the agreement's min and max amount (5/108).
    Amount,
    /// Not the initial order's currency (5/105).
    Currency,
    /// After the agreement's end date (5/104).
    Date,
    /// Sooner than the agreement's period after the last recurring payment (5/320).
    TooSoon,
}

/// The merchant's request cannot be carried out. Nothing was sent to the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such order of this merchant (10/201).
    #[error("order not found")]
    UnknownOrder,
    /// The order's state does not allow it (15/201).
    #[error("{action:?} is not allowed for an order in state {}", state.as_str())]
    NotAllowed {
        /// What was asked.
        action: Action,
        /// The order's state.
        state: OrderState,
    },
    /// An operation of the order is still waiting for the network (15/216).
    #[error("an operation of this order is in progress")]
    InProgress,
    /// Another attempt of this OrderNumber is paid or being paid (15/107).
    #[error("another payment attempt of this OrderNumber is paid or in progress")]
    AlreadyPaid,
    /// A two-stage order is partially cancelled only after its charge (15/308).
    #[error("a Delayed order is cancelled in full only; charge it first")]
    PartialBeforeCharge,
    /// More than was authorized (charge) or than is left to cancel (5/108).
    #[error("amount exceeds what the order allows")]
    AmountTooLarge,
    /// Not the order's currency (5/105).
    #[error("currency differs from the order's")]
    CurrencyMismatch,
    /// The initial order has no usable recurring agreement (not recurring, not paid, no
    /// network transaction ID) (15/320).
    #[error("the initial order has no usable recurring agreement")]
    NoAgreement,
    /// An agreement without bounds where the merchant's config does not enable MIT (3/320).
    #[error("recurring agreement bounds are required for this merchant")]
    MitNotAllowed,
    /// A recurring payment outside its agreement.
    #[error("recurring payment outside its agreement: {0:?}")]
    Agreement(AgreementRule),
    /// A saved-card payment for an order without CustomerNumber (3/202).
    #[error("CustomerNumber is required for a saved card")]
    MissingCustomer,
}

impl RequestError {
    /// The Assist `(firstcode, secondcode)` the facade answers with.
    pub fn codes(&self) -> (u16, u16) {
        match self {
            RequestError::UnknownOrder => (10, 201),
            RequestError::NotAllowed { .. } => (15, 201),
            RequestError::InProgress => (15, 216),
            RequestError::AlreadyPaid => (15, 107),
            RequestError::PartialBeforeCharge => (15, 308),
            RequestError::AmountTooLarge | RequestError::Agreement(AgreementRule::Amount) => {
                (5, 108)
            }
            RequestError::CurrencyMismatch | RequestError::Agreement(AgreementRule::Currency) => {
                (5, 105)
            }
            RequestError::Agreement(AgreementRule::Date) => (5, 104),
            RequestError::Agreement(AgreementRule::TooSoon) => (5, 320),
            RequestError::NoAgreement => (15, 320),
            RequestError::MitNotAllowed => (3, 320),
            RequestError::MissingCustomer => (3, 202),
        }
    }
}

/// Why an engine call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The merchant's request: answer with [`RequestError::codes`].
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A dependency: the vault could not be asked. Nothing changed; safe to repeat.
    #[error("card store")]
    Secrets(#[source] SecretsUnavailable),
    /// The network: a message went out and neither its outcome nor its reversal is known. The
    /// order's in-flight record stays; [`crate::Engine::recover`] resolves it.
    #[error("the outcome of order {0}'s message is unknown; recovery will resolve it")]
    OutcomeUnknown(BillNumber),
    /// Ours: storage failed. What was acknowledged before is on disk; this change may not be.
    #[error("order storage")]
    Store(#[source] StoreError),
    /// Ours: a stored record does not read back.
    #[error("stored record {0} is corrupt or of a later version")]
    Corrupt(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> EngineError {
        EngineError::Store(e)
    }
}

impl From<SecretsUnavailable> for EngineError {
    fn from(e: SecretsUnavailable) -> EngineError {
        EngineError::Secrets(e)
    }
}
