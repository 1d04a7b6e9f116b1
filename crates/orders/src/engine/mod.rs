//! [`Engine`]: the order engine's API, one call per Assist service (the facade calls these), and
//! what every call shares: the locks, the clock, the durable write of each state change, and
//! the reading of a network outcome.
//!
//! Owns the order of steps — lock, load, check, write what is about to happen, ask the network,
//! write what happened — so that nothing is acknowledged before it is on disk and a crash at
//! any point leaves a record recovery can finish. Must never hold a PAN beyond one request,
//! never send a message whose reference is not durable, and never change a state except through
//! `state`.

mod cancel;
mod charge;
mod pay;
mod query;
mod recover;
mod recurring;
mod sweep;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use card::CustomerNumber;
use link::{AuthorizeError, Currency, LinkOutcome, NetworkTxnId, TransactionRef};
use store::Store;
use time::OffsetDateTime;

use crate::acquirer::Acquirer;
use crate::clock::{Clock, Timestamp};
use crate::decline::DeclineReason;
use crate::error::{EngineError, RequestError};
use crate::ids::{BillNumber, OrderNumber};
use crate::locks::{Held, Locks, customer_key, order_key};
use crate::model::{
    Agreement, AgreementTerms, Day, ORDER_RECORD_VERSION, Operation, OrderDetails, OrderRecord,
    TxnState,
};
use crate::persist::{Change, Persist};
use crate::secrets::CardSecrets;
use crate::settings::{MerchantSettings, SettingsLookup};
use crate::state::InProcess;

pub use cancel::CancelRequest;
pub use pay::{PayerDetails, PaymentCard};
pub use recover::RecoveryReport;
pub use recurring::RecurringPayment;
pub use sweep::SweepReport;

/// The order engine. Cheap to share behind an `Arc`; every call is safe to make concurrently.
#[derive(Debug)]
pub struct Engine {
    acquirer: Arc<dyn Acquirer>,
    secrets: Arc<dyn CardSecrets>,
    clock: Arc<dyn Clock>,
    persist: Persist,
    locks: Locks,
    /// Rung after a change with a notification is durable, so its first try goes out at once.
    outbox: Option<outbox::Doorbell>,
}

/// A recurring agreement as an order asks for it (`RecurringIndicator=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecurringRequest {
    /// With its bounds (`RecurringMinAmount`, `RecurringMaxAmount`, `RecurringPeriod`,
    /// `RecurringMaxDate`).
    Scheduled {
        /// Minor units.
        min_amount: u64,
        /// Minor units.
        max_amount: u64,
        /// Days.
        period_days: u16,
        /// The last day a payment may be made.
        max_date: time::Date,
    },
    /// Without bounds: unscheduled MITs, for merchants with card-on-file MIT enabled.
    Unscheduled,
}

/// A new order (order.cfm, payrequest.cfm, and the order part of tokenpay.cfm and rp.cfm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The merchant's number.
    pub order_number: OrderNumber,
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 numeric (the facade defaults it to the merchant's).
    pub currency: Currency,
    /// `Delay=1`.
    pub two_stage: bool,
    /// `CustomerNumber`.
    pub customer_number: Option<CustomerNumber>,
    /// Everything else the merchant sent.
    pub details: OrderDetails,
    /// `RecurringIndicator=1` and its agreement.
    pub recurring: Option<RecurringRequest>,
    /// `expirationtime`; absent: the merchant's order lifetime from now.
    pub expires_at: Option<OffsetDateTime>,
    /// `disable3DS=1`.
    pub disable_3ds: bool,
}

/// An order after an operation, and which operation it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationResult {
    /// The order as stored after the operation.
    pub order: OrderRecord,
    /// The operation's number.
    pub operation: u32,
}

impl OperationResult {
    /// The operation.
    pub fn operation(&self) -> Option<&Operation> {
        self.order.operation(self.operation)
    }
}

/// What an authorization (a payment's 0100/0200 or a refund) came to.
#[derive(Debug)]
enum AuthResult {
    Approved {
        approval_code: String,
        network_txn_id: Option<NetworkTxnId>,
    },
    Declined {
        reason: DeclineReason,
        de39: Option<String>,
    },
}

impl Engine {
    /// An engine over `store` (the authorizer's database), the network, the vault and a clock.
    pub fn new(
        store: Store,
        acquirer: Arc<dyn Acquirer>,
        secrets: Arc<dyn CardSecrets>,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        Engine {
            acquirer,
            secrets,
            clock,
            persist: Persist::new(store),
            locks: Locks::new(),
            outbox: None,
        }
    }

    /// The engine, ringing `bell` after every change that carries a notification.
    pub fn with_doorbell(mut self, bell: outbox::Doorbell) -> Engine {
        self.outbox = Some(bell);
        self
    }

    /// The settings of `merchant` from `lookup`, or the defaults (no notifications) for one no
    /// longer configured.
    fn settings_of(lookup: SettingsLookup<'_>, merchant: &card::MerchantId) -> MerchantSettings {
        lookup(merchant).unwrap_or_else(|| MerchantSettings::new(merchant.clone()))
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// order.cfm / payrequest.cfm: creates an order In Process under a new billnumber. Every
    /// call is a new payment attempt, even for an OrderNumber seen before.
    pub async fn create_order(
        &self,
        m: &MerchantSettings,
        order: NewOrder,
    ) -> Result<OrderRecord, EngineError> {
        let record = self.new_record(m, order, None)?;
        let mut change = Change::default();
        change.order(&record)?;
        self.persist.commit(change).await?;
        Ok(record)
    }

    /// The record of a new order (not yet written).
    fn new_record(
        &self,
        m: &MerchantSettings,
        order: NewOrder,
        initial: Option<BillNumber>,
    ) -> Result<OrderRecord, EngineError> {
        let agreement = match order.recurring {
            None => None,
            Some(RecurringRequest::Unscheduled) if !m.mit_allowed => {
                return Err(RequestError::MitNotAllowed.into());
            }
            Some(RecurringRequest::Unscheduled) => Some(AgreementTerms::Unscheduled),
            Some(RecurringRequest::Scheduled {
                min_amount,
                max_amount,
                period_days,
                max_date,
            }) => Some(AgreementTerms::Scheduled {
                min_amount,
                max_amount,
                period_days,
                max_date: Day::of(max_date),
            }),
        };
        let now = self.now();
        let bill = self.unused_billnumber()?;
        let record = OrderRecord {
            version: ORDER_RECORD_VERSION,
            bill,
            merchant: m.id.clone(),
            order_number: order.order_number,
            amount: order.amount,
            currency: order.currency,
            two_stage: order.two_stage,
            created_at: Timestamp::of(now),
            expires_at: Timestamp::of(order.expires_at.unwrap_or(now + m.order_lifetime)),
            customer_number: order.customer_number,
            customer_scope: m.customer_scope().to_owned(),
            disable_3ds: order.disable_3ds,
            details: order.details,
            agreement: agreement.map(|terms| Agreement {
                terms,
                last_payment_at: None,
            }),
            initial,
            state: crate::model::OrderState::InProcess,
            card: None,
            authorized: 0,
            captured: 0,
            cancelled: 0,
            captured_at: None,
            auto_cancel_at: None,
            turnover: Vec::new(),
            operations: Vec::new(),
        };
        Ok(InProcess::new(record).record().clone())
    }

    fn unused_billnumber(&self) -> Result<BillNumber, EngineError> {
        // 9·10^15 numbers: a clash is rare enough that a few tries always find a free one.
        for _ in 0..8 {
            let bill = BillNumber::random();
            if !self.persist.exists(bill)? {
                return Ok(bill);
            }
        }
        Err(EngineError::Corrupt("no free billnumber".into()))
    }

    /// The keys of the locks an order's work takes: its OrderNumber and its customer.
    fn lock_keys(record: &OrderRecord) -> Vec<String> {
        let mut keys = vec![order_key(&record.merchant, &record.order_number)];
        if let Some(c) = &record.customer_number {
            keys.push(customer_key(&record.customer_scope, c));
        }
        keys
    }

    /// Locks `bill`'s order and returns it as stored under the lock. Another merchant's order
    /// is not found.
    async fn lock_order(
        &self,
        merchant: Option<&card::MerchantId>,
        bill: BillNumber,
        extra: &[String],
    ) -> Result<(Held<'_>, OrderRecord), EngineError> {
        let unlocked = self.load_for(merchant, bill)?;
        let mut keys = Self::lock_keys(&unlocked);
        keys.extend_from_slice(extra);
        let held = self.locks.lock(&keys).await;
        Ok((held, self.load_for(merchant, bill)?))
    }

    /// [`Engine::lock_order`] for any merchant's order, without waiting: `None` while anyone
    /// holds it (or a lock sharing its stripe).
    fn try_lock_order(
        &self,
        bill: BillNumber,
    ) -> Result<Option<(Held<'_>, OrderRecord)>, EngineError> {
        let unlocked = self.load_for(None, bill)?;
        let Some(held) = self.locks.try_lock(&Self::lock_keys(&unlocked)) else {
            return Ok(None);
        };
        Ok(Some((held, self.load_for(None, bill)?)))
    }

    fn load_for(
        &self,
        merchant: Option<&card::MerchantId>,
        bill: BillNumber,
    ) -> Result<OrderRecord, EngineError> {
        match self.persist.load(bill)? {
            Some(r) if merchant.is_none_or(|m| *m == r.merchant) => Ok(r),
            _ => Err(RequestError::UnknownOrder.into()),
        }
    }

    /// Writes `record` (and `also`) in one batch.
    async fn write(
        &self,
        mut change: Change,
        record: &OrderRecord,
        also: Option<&OrderRecord>,
    ) -> Result<(), EngineError> {
        change.order(record)?;
        if let Some(a) = also {
            change.order(a)?;
        }
        let notifies = change.notifies();
        self.persist.commit(change).await?;
        if let (true, Some(bell)) = (notifies, &self.outbox) {
            bell.ring();
        }
        Ok(())
    }

    /// What an authorization's outcome means for the order. An outcome the link could not
    /// settle (sent, not reversed) is reversed here; if that fails too, the prepared record stays
    /// for [`Engine::recover`].
    async fn read_authorization(
        &self,
        bill: BillNumber,
        reference: &TransactionRef,
        outcome: Result<LinkOutcome, AuthorizeError>,
    ) -> Result<(AuthResult, TxnState), EngineError> {
        let declined = |reason, de39: Option<String>, state| {
            Ok((AuthResult::Declined { reason, de39 }, state))
        };
        match outcome {
            Ok(LinkOutcome::Approved {
                approval_code,
                network_txn_id,
                ..
            }) => Ok((
                AuthResult::Approved {
                    approval_code: approval_code.as_str().trim_end().to_owned(),
                    network_txn_id,
                },
                TxnState::Approved,
            )),
            Ok(LinkOutcome::Declined { code, .. }) => declined(
                DeclineReason::of_de39(code).unwrap_or(DeclineReason::OtherIssuerCode),
                Some(code.as_str().to_owned()),
                TxnState::Declined,
            ),
            Ok(LinkOutcome::TimedOutReversed { .. }) => {
                declined(DeclineReason::NoAnswer, None, TxnState::TimedOutReversed)
            }
            Err(AuthorizeError::Unavailable(_)) => {
                declined(DeclineReason::NetworkUnavailable, None, TxnState::Declined)
            }
            Err(AuthorizeError::PreparedForAnother | AuthorizeError::Internal(_)) => {
                declined(DeclineReason::SystemError, None, TxnState::Declined)
            }
            Err(AuthorizeError::OutcomeUnknown { .. }) => {
                match self.acquirer.reverse(reference, None).await {
                    Ok(_) => declined(DeclineReason::NoAnswer, None, TxnState::TimedOutReversed),
                    Err(e) => {
                        tracing::warn!(%bill, error = %e, "reversal of an unknown outcome failed");
                        Err(EngineError::OutcomeUnknown(bill))
                    }
                }
            }
        }
    }

    /// Runs the settlement cut-off of `m` now: every payment captured until now is settled, so
    /// its cancels are refunds from here on.
    pub async fn run_cutoff(&self, m: &MerchantSettings) -> Result<(), EngineError> {
        let mut change = Change::default();
        change.cutoff(&m.id, Timestamp::of(self.now()));
        self.persist.commit(change).await
    }

    /// Whether money captured at `captured_at` has settled (a cancel is then a refund).
    fn settled(&self, m: &MerchantSettings, captured_at: Timestamp) -> Result<bool, EngineError> {
        let scheduled = Timestamp::of(m.last_cutoff(self.now()));
        let manual = self.persist.manual_cutoff(&m.id)?;
        Ok(captured_at < scheduled || manual.is_some_and(|c| captured_at <= c))
    }
}
