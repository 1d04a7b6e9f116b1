//! The order engine (ARCHITECTURE.md, `orders`): orders, operations and transactions with typed
//! states and transitions, card-on-file payments (first use, One Click, Token Pay, recurring and
//! unscheduled MIT), turnover limits, idempotent charges and cancels, durable state changes and
//! crash recovery, and the one table of decline reasons.
//!
//! It knows no HTTP and no wire format: the facade turns Assist requests into [`Engine`] calls
//! and [`OrderRecord`]s into answers. It reaches the network, the vault and the clock through
//! the small traits it owns ([`Acquirer`], [`CardSecrets`], [`Clock`]).
//!
//! Modules: `ids` (billnumbers), `clock`, `settings` (a merchant's rules and calendar),
//! `model` (the stored order), `state` (typed states and transitions), `decline` (the table),
//! `acquirer` and `secrets` (the traits), `limits` (turnover), `locks`, `persist` (keys, batches,
//! indexes), `error`, and `engine` (the API: `pay`, `charge`, `cancel`, `recurring`, `sweep`,
//! `recover`, `query`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acquirer;
mod clock;
mod decline;
mod engine;
mod error;
mod ids;
mod limits;
mod locks;
mod model;
mod persist;
mod secrets;
mod settings;
mod state;

pub use acquirer::Acquirer;
pub use clock::{Clock, SystemClock, Timestamp};
pub use decline::{DeclineCodes, DeclineReason, ShopperReason};
pub use engine::{
    CancelRequest, Engine, NewOrder, OperationResult, PayerDetails, PaymentCard, RecoveryReport,
    RecurringPayment, RecurringRequest, SweepReport,
};
pub use error::{Action, AgreementRule, EngineError, RequestError};
pub use ids::{BadOrderNumber, BillNumber, OperationRef, OrderNumber};
pub use model::{
    Agreement, AgreementTerms, CancelDetails, CancelMessage, CancelReason, Day, MaskedCard,
    ORDER_RECORD_VERSION, Operation, OperationState, OperationType, OrderCard, OrderDetails,
    OrderRecord, OrderState, PaymentMeans, Transaction, TurnoverBooking, TxnPurpose, TxnState,
};
pub use secrets::{CardSecrets, NewCard, ResolvedCard, SecretsUnavailable};
pub use settings::{MOSCOW, MerchantSettings, Notifications, SettingsLookup, TurnoverLimits};
pub use state::{
    AfterCancel, Approved, Canceled, Captured, Charged, Declined, Delayed, InProcess, Lifecycle,
    PartialCanceled, PartialDelayed, Timeout,
};
