//! charge.cfm: confirms a Delayed (two-stage) payment for its full or a smaller amount with a
//! 0220. One successful charge per order: a repeat answers the first result without a second
//! message; a charge left unanswered is repeated (the network applies an advice once).
//!
//! Owns the charge operation. Must never charge more than was authorized.

use iso8583::Amount;
use link::{CompleteError, CompletionRequest, LinkOutcome};

use super::pay::mark_last;
use super::{Engine, OperationResult};
use crate::clock::Timestamp;
use crate::decline::DeclineReason;
use crate::error::{Action, EngineError, RequestError};
use crate::ids::{BillNumber, OperationRef};
use crate::limits;
use crate::model::{
    Operation, OperationState, OperationType, OrderRecord, Transaction, TxnPurpose, TxnState,
};
use crate::persist::Change;
use crate::settings::MerchantSettings;
use crate::state::Lifecycle;

impl Engine {
    /// charge.cfm: charges Delayed order `bill` for `amount` (absent: the full authorized
    /// amount). A repeat after success answers the first charge. An unanswered 0220 leaves the
    /// operation In Process (AS300); the next call (or [`Engine::recover`]) repeats it.
    pub async fn charge(
        &self,
        m: &MerchantSettings,
        bill: BillNumber,
        amount: Option<u64>,
    ) -> Result<OperationResult, EngineError> {
        let (_held, record) = self.lock_order(Some(&m.id), bill, &[]).await?;
        let done = record
            .operations
            .iter()
            .find(|o| o.kind == OperationType::Charge && o.state == OperationState::Success);
        if let Some(op) = done {
            let operation = op.number;
            return Ok(OperationResult {
                order: record,
                operation,
            });
        }
        if let Some(op) = record.in_flight() {
            if op.kind != OperationType::Charge {
                return Err(RequestError::InProgress.into());
            }
            let n = op.number;
            return self.send_charge(m, record, n).await;
        }
        let mut order = match Lifecycle::of(record) {
            Lifecycle::Delayed(o) => o,
            other => {
                return Err(RequestError::NotAllowed {
                    action: Action::Charge,
                    state: other.state(),
                }
                .into());
            }
        };
        let authorized = order.record().authorized;
        let amount = amount.unwrap_or(authorized);
        if amount == 0 || amount > authorized {
            return Err(RequestError::AmountTooLarge.into());
        }
        let ts = Timestamp::of(self.now());
        let n = order.record().next_operation().number;
        let mut op = Operation::new(n, OperationType::Charge, amount, ts);
        op.transactions.push(Transaction {
            purpose: TxnPurpose::Completion,
            reference: None,
            state: TxnState::Prepared,
            response_code: None,
            at: ts,
        });
        order.record_mut().operations.push(op);
        let record = Lifecycle::from(order).into_record();
        self.write(Change::default(), &record, None).await?;
        self.send_charge(m, record, n).await
    }

    /// Sends (or repeats) the 0220 of charge operation `n` and writes what came of it.
    pub(super) async fn send_charge(
        &self,
        m: &MerchantSettings,
        record: OrderRecord,
        n: u32,
    ) -> Result<OperationResult, EngineError> {
        let bill = record.bill;
        let corrupt = || EngineError::Corrupt(bill.to_string());
        let Lifecycle::Delayed(mut order) = Lifecycle::of(record) else {
            return Err(corrupt());
        };
        let r = order.record();
        let amount = r.operation(n).ok_or_else(corrupt)?.amount;
        let original = r.payment_reference().ok_or_else(corrupt)?.clone();
        let card = r.card.as_ref().ok_or_else(corrupt)?.card.clone();
        let opref = OperationRef { bill, number: n };
        let Some(found) = self
            .secrets
            .resolve(&card, opref, card::CardUse::OnFile)
            .await?
        else {
            return self
                .charge_declined(m, order.into(), n, DeclineReason::UnknownCard, None)
                .await;
        };
        let outcome = self
            .acquirer
            .complete(CompletionRequest {
                pan: &found.pan,
                expiry: found.expiry,
                amount: Amount(amount),
                original: &original,
            })
            .await;
        drop(found);
        let now = self.now();
        let ts = Timestamp::of(now);
        match outcome {
            Ok(LinkOutcome::Approved {
                reference,
                approval_code,
                ..
            }) => {
                let mut change = Change::default();
                let r = order.record_mut();
                if let Some(op) = r.operation_mut(n) {
                    if let Some(t) = op.transactions.last_mut() {
                        t.reference = Some(reference);
                    }
                    mark_last(op, TxnState::Approved, Some("00".into()), ts);
                    op.succeed(Some(approval_code.as_str().trim_end().to_owned()), ts);
                }
                let released = r.authorized - amount;
                limits::release(&self.persist, &mut change, &mut r.turnover, released)?;
                let record = Lifecycle::from(order.charged(amount, ts)).into_record();
                change.notify(m, &record, n, now);
                self.write(change, &record, None).await?;
                Ok(OperationResult {
                    order: record,
                    operation: n,
                })
            }
            Ok(LinkOutcome::Declined { code, .. }) => {
                let reason = DeclineReason::of_de39(code).unwrap_or(DeclineReason::OtherIssuerCode);
                self.charge_declined(m, order.into(), n, reason, Some(code.as_str().to_owned()))
                    .await
            }
            Ok(LinkOutcome::TimedOutReversed { .. }) | Err(CompleteError::NoAnswer) => {
                Ok(OperationResult {
                    order: Lifecycle::from(order).into_record(),
                    operation: n,
                })
            }
            Err(CompleteError::Unavailable(_)) => {
                self.charge_declined(m, order.into(), n, DeclineReason::NetworkUnavailable, None)
                    .await
            }
            Err(CompleteError::Internal(_)) => {
                self.charge_declined(m, order.into(), n, DeclineReason::SystemError, None)
                    .await
            }
        }
    }

    /// Charge operation `n` did not go through; the order stays Delayed.
    async fn charge_declined(
        &self,
        m: &MerchantSettings,
        order: Lifecycle,
        n: u32,
        reason: DeclineReason,
        de39: Option<String>,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        let ts = Timestamp::of(now);
        let mut record = order.into_record();
        if let Some(op) = record.operation_mut(n) {
            mark_last(op, TxnState::Declined, de39, ts);
            op.decline(reason, ts);
        }
        let mut change = Change::default();
        change.notify(m, &record, n, now);
        self.write(change, &record, None).await?;
        Ok(OperationResult {
            order: record,
            operation: n,
        })
    }
}
