//! rp.cfm: a recurring (or unscheduled) MIT on the agreement of an initial order. Each call is
//! a new order, paid with the initial order's card and quoting its first use's network
//! transaction ID (DE 48.03), with 01 = `M` and 02 = `R` (scheduled) or `U` (unscheduled).
//!
//! Owns the agreement's rules, checked before anything reaches the network: the amount within
//! min and max (5/108), the initial order's currency (5/105), not after the end date (5/104), at
//! least the period after the previous recurring payment (5/320; the first may follow the
//! initial payment at once). Must never send an MIT without the original network ID.

use iso8583::MitReason;
use link::Currency;

use super::pay::Source;
use super::{Engine, NewOrder, OperationResult};
use crate::clock::Timestamp;
use crate::error::{AgreementRule, EngineError, RequestError};
use crate::ids::{BillNumber, OrderNumber};
use crate::locks::order_key;
use crate::model::{AgreementTerms, Day, OrderDetails};
use crate::settings::MerchantSettings;

/// An rp.cfm call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringPayment {
    /// The initial order (`BillNumber`, plain or `.1`).
    pub initial: BillNumber,
    /// The new order's number.
    pub order_number: OrderNumber,
    /// Minor units.
    pub amount: u64,
    /// Must be the initial order's.
    pub currency: Currency,
    /// Comment, language, IP, receipt items of the new order.
    pub details: OrderDetails,
}

impl Engine {
    /// rp.cfm: a new order paid by an MIT on `req.initial`'s agreement.
    pub async fn pay_recurring(
        &self,
        m: &MerchantSettings,
        req: RecurringPayment,
    ) -> Result<OperationResult, EngineError> {
        let new_key = order_key(&m.id, &req.order_number);
        let (_held, initial) = self
            .lock_order(Some(&m.id), req.initial, &[new_key])
            .await?;
        let now = self.now();
        let (Some(agreement), Some(card)) = (&initial.agreement, &initial.card) else {
            return Err(RequestError::NoAgreement.into());
        };
        if !initial.state.was_paid() || card.network_txn_id.is_none() {
            return Err(RequestError::NoAgreement.into());
        }
        if req.currency != initial.currency {
            return Err(RequestError::Agreement(AgreementRule::Currency).into());
        }
        let reason = match &agreement.terms {
            AgreementTerms::Scheduled {
                min_amount,
                max_amount,
                period_days,
                max_date,
            } => {
                if req.amount < *min_amount || req.amount > *max_amount {
                    return Err(RequestError::Agreement(AgreementRule::Amount).into());
                }
                if Day::of(m.local_date(now)) > *max_date {
                    return Err(RequestError::Agreement(AgreementRule::Date).into());
                }
                let period = time::Duration::days(i64::from(*period_days));
                if agreement
                    .last_payment_at
                    .is_some_and(|last| Timestamp::of(now) < last.plus(period))
                {
                    return Err(RequestError::Agreement(AgreementRule::TooSoon).into());
                }
                MitReason::Recurring
            }
            AgreementTerms::Unscheduled if m.mit_allowed => MitReason::Unscheduled,
            AgreementTerms::Unscheduled => return Err(RequestError::MitNotAllowed.into()),
        };
        let source = Source::Mit {
            card: card.clone(),
            reason,
        };
        let order = NewOrder {
            order_number: req.order_number,
            amount: req.amount,
            currency: req.currency,
            two_stage: false,
            customer_number: initial.customer_number.clone(),
            details: req.details,
            recurring: None,
            expires_at: None,
            disable_3ds: true,
        };
        let record = self.new_record(m, order, Some(initial.bill))?;
        self.run_payment(m, record, source, Some(initial)).await
    }
}
