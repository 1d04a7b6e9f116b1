//! cancel.cfm / wscancel.cfm, and the auto-cancel of the sweep: gives money back, full or in
//! parts, choosing the message as seed 003 says — before the payment settles (the merchant's
//! daily cut-off, or a cut-off run by command) a reversal (0400, with DE 95 when partial), after
//! it a refund (0200, DE 3 = 200000).
//!
//! Owns the cancel operation: `Externalrefundid` answers a repeat with the first result; cancels
//! add up and never exceed what was paid; each releases its amount from the customer's
//! turnover. Must never send a refund whose reference is not durable.

use iso8583::Amount;
use link::{AuthorizationRequest, CredentialOnFile, Currency, ReversalState, TransactionKind};

use super::pay::mark_last;
use super::{AuthResult, Engine, OperationResult};
use crate::clock::Timestamp;
use crate::decline::DeclineReason;
use crate::error::{Action, EngineError, RequestError};
use crate::ids::{BillNumber, OperationRef};
use crate::limits;
use crate::model::{
    CancelDetails, CancelMessage, CancelReason, Operation, OperationType, OrderRecord, Transaction,
    TxnPurpose, TxnState,
};
use crate::persist::Change;
use crate::settings::MerchantSettings;
use crate::state::{Captured, Delayed, Lifecycle};

/// A cancel as the merchant asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// Minor units; absent: everything still cancellable.
    pub amount: Option<u64>,
    /// Must be the order's when given with an amount.
    pub currency: Option<Currency>,
    /// `CancelReason`.
    pub reason: CancelReason,
    /// `Externalrefundid`.
    pub external_id: Option<String>,
    /// `ClientIP`.
    pub client_ip: Option<String>,
}

impl Engine {
    /// cancel.cfm / wscancel.cfm: cancels `amount` of order `bill` (a reversal before its
    /// settlement, a refund after). A Delayed order is cancelled in full only.
    pub async fn cancel(
        &self,
        m: &MerchantSettings,
        bill: BillNumber,
        req: CancelRequest,
    ) -> Result<OperationResult, EngineError> {
        let (_held, record) = self.lock_order(Some(&m.id), bill, &[]).await?;
        if let Some(id) = &req.external_id {
            let first = record.operations.iter().find(|o| {
                o.cancel
                    .as_ref()
                    .is_some_and(|c| c.external_id.as_ref() == Some(id))
            });
            if let Some(op) = first {
                let operation = op.number;
                return Ok(OperationResult {
                    order: record,
                    operation,
                });
            }
        }
        if record.in_flight().is_some() {
            return Err(RequestError::InProgress.into());
        }
        if req.currency.is_some_and(|c| c != record.currency) {
            return Err(RequestError::CurrencyMismatch.into());
        }
        match Lifecycle::of(record) {
            Lifecycle::Delayed(order) => {
                if req.amount.is_some_and(|a| a != order.record().authorized) {
                    return Err(RequestError::PartialBeforeCharge.into());
                }
                self.reverse_delayed(m, order, req).await
            }
            Lifecycle::Approved(o) => self.cancel_captured(m, o, req).await,
            Lifecycle::PartialDelayed(o) => self.cancel_captured(m, o, req).await,
            Lifecycle::PartialCanceled(o) => self.cancel_captured(m, o, req).await,
            other => Err(RequestError::NotAllowed {
                action: Action::Cancel,
                state: other.state(),
            }
            .into()),
        }
    }

    /// Reverses a Delayed order's whole authorization (a cancel, or the auto-cancel sweep).
    pub(super) async fn reverse_delayed(
        &self,
        m: &MerchantSettings,
        mut order: Delayed,
        req: CancelRequest,
    ) -> Result<OperationResult, EngineError> {
        let r = order.record();
        let amount = r.authorized;
        let now = Timestamp::of(self.now());
        let op = cancel_operation(r, amount, &req, CancelMessage::Reversal, None, now)?;
        let n = op.number;
        order.record_mut().operations.push(op);
        self.write(Change::default(), order.record(), None).await?;
        self.send_reversal(m, Lifecycle::from(order).into_record(), n)
            .await
    }

    /// Cancels part or all of a paid order.
    async fn cancel_captured<S>(
        &self,
        m: &MerchantSettings,
        mut order: S,
        req: CancelRequest,
    ) -> Result<OperationResult, EngineError>
    where
        S: Captured,
        Lifecycle: From<S>,
    {
        let r = order.captured_record();
        let amount = req.amount.unwrap_or(r.cancellable());
        if amount == 0 || amount > r.cancellable() {
            return Err(RequestError::AmountTooLarge.into());
        }
        let captured_at = r
            .captured_at
            .ok_or_else(|| EngineError::Corrupt(r.bill.to_string()))?;
        let now = Timestamp::of(self.now());
        if !self.settled(m, captured_at)? {
            let left = r.cancellable() - amount;
            let op = cancel_operation(r, amount, &req, CancelMessage::Reversal, Some(left), now)?;
            let n = op.number;
            order.captured_record_mut().operations.push(op);
            let record = Lifecycle::from(order).into_record();
            self.write(Change::default(), &record, None).await?;
            return self.send_reversal(m, record, n).await;
        }

        let mut op = cancel_operation(r, amount, &req, CancelMessage::Refund, None, now)?;
        let n = op.number;
        let bill = r.bill;
        let card = r
            .card
            .as_ref()
            .ok_or_else(|| EngineError::Corrupt(bill.to_string()))?;
        let opref = OperationRef { bill, number: n };
        let Some(found) = self
            .secrets
            .resolve(&card.card, opref, card::CardUse::OnFile)
            .await?
        else {
            let now = self.now();
            op.decline(DeclineReason::UnknownCard, Timestamp::of(now));
            order.captured_record_mut().operations.push(op);
            let record = Lifecycle::from(order).into_record();
            let mut change = Change::default();
            change.notify(m, &record, n, now);
            self.write(change, &record, None).await?;
            return Ok(OperationResult {
                order: record,
                operation: n,
            });
        };
        let req = AuthorizationRequest {
            kind: TransactionKind::Refund,
            pan: &found.pan,
            expiry: found.expiry,
            cvc: None,
            card: card.card.clone(),
            amount: Amount(amount),
            currency: r.currency,
            cof: CredentialOnFile::None,
            three_ds: None,
            merchant: m.link_merchant(),
        };
        let prepared = self.acquirer.prepare(req.intent());
        let reference = prepared.reference().clone();
        if let Some(t) = op.transactions.last_mut() {
            t.reference = Some(reference.clone());
        }
        order.captured_record_mut().operations.push(op);
        self.write(Change::default(), order.captured_record(), None)
            .await?;
        let outcome = self.acquirer.authorize(prepared, req).await;
        drop(found);
        let (result, txn) = self.read_authorization(bill, &reference, outcome).await?;
        match result {
            AuthResult::Approved { approval_code, .. } => {
                self.cancel_done(m, order, n, txn, Some(approval_code))
                    .await
            }
            AuthResult::Declined { reason, de39 } => {
                let record = Lifecycle::from(order).into_record();
                self.cancel_failed(m, record, n, reason, txn, de39).await
            }
        }
    }

    /// Sends (or repeats) the reversal of cancel operation `n` and writes what came of it.
    pub(super) async fn send_reversal(
        &self,
        m: &MerchantSettings,
        record: OrderRecord,
        n: u32,
    ) -> Result<OperationResult, EngineError> {
        let bill = record.bill;
        let corrupt = || EngineError::Corrupt(bill.to_string());
        let txn = record
            .operation(n)
            .and_then(Operation::last_transaction)
            .ok_or_else(corrupt)?;
        let (TxnPurpose::Reversal { remaining }, Some(original)) = (txn.purpose, &txn.reference)
        else {
            return Err(corrupt());
        };
        let sent = self.acquirer.reverse(original, remaining.map(Amount)).await;
        let state = match sent {
            Ok(ReversalState::Acknowledged) => TxnState::Acknowledged,
            Ok(ReversalState::Queued) => TxnState::Queued,
            Err(e) => {
                tracing::warn!(%bill, error = %e, "cancel reversal failed; recovery repeats it");
                return Err(EngineError::OutcomeUnknown(bill));
            }
        };
        match Lifecycle::of(record) {
            Lifecycle::Delayed(mut order) => {
                let now = self.now();
                let ts = Timestamp::of(now);
                let mut change = Change::default();
                let r = order.record_mut();
                if let Some(op) = r.operation_mut(n) {
                    mark_last(op, state, None, ts);
                    op.succeed(None, ts);
                }
                limits::release(&self.persist, &mut change, &mut r.turnover, u64::MAX)?;
                let record = Lifecycle::from(order.reversed()).into_record();
                change.notify(m, &record, n, now);
                self.write(change, &record, None).await?;
                Ok(OperationResult {
                    order: record,
                    operation: n,
                })
            }
            Lifecycle::Approved(o) => self.cancel_done(m, o, n, state, None).await,
            Lifecycle::PartialDelayed(o) => self.cancel_done(m, o, n, state, None).await,
            Lifecycle::PartialCanceled(o) => self.cancel_done(m, o, n, state, None).await,
            _ => Err(corrupt()),
        }
    }

    /// Cancel operation `n` went through: the order moves on, its turnover is released.
    async fn cancel_done<S>(
        &self,
        m: &MerchantSettings,
        mut order: S,
        n: u32,
        txn: TxnState,
        approval_code: Option<String>,
    ) -> Result<OperationResult, EngineError>
    where
        S: Captured,
    {
        let now = self.now();
        let ts = Timestamp::of(now);
        let mut change = Change::default();
        let r = order.captured_record_mut();
        let mut amount = 0;
        if let Some(op) = r.operation_mut(n) {
            mark_last(op, txn, approval_code.as_ref().map(|_| "00".to_owned()), ts);
            op.succeed(approval_code, ts);
            amount = op.amount;
        }
        limits::release(&self.persist, &mut change, &mut r.turnover, amount)?;
        let record = Lifecycle::from(order.cancelled(amount)).into_record();
        change.notify(m, &record, n, now);
        self.write(change, &record, None).await?;
        Ok(OperationResult {
            order: record,
            operation: n,
        })
    }

    /// Cancel operation `n` did not go through; the order is unchanged.
    pub(super) async fn cancel_failed(
        &self,
        m: &MerchantSettings,
        mut record: OrderRecord,
        n: u32,
        reason: DeclineReason,
        txn: TxnState,
        de39: Option<String>,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        let ts = Timestamp::of(now);
        if let Some(op) = record.operation_mut(n) {
            mark_last(op, txn, de39, ts);
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

/// A new cancel operation of `amount` for `order`, with its first transaction prepared: a
/// reversal of the payment's authorization down to `left` (`Some(0)` or `None`: in full), or a
/// refund whose reference the caller fills in.
fn cancel_operation(
    order: &OrderRecord,
    amount: u64,
    req: &CancelRequest,
    message: CancelMessage,
    left: Option<u64>,
    ts: Timestamp,
) -> Result<Operation, EngineError> {
    let n = order.next_operation().number;
    let mut op = Operation::new(n, OperationType::Cancel, amount, ts);
    op.client_ip.clone_from(&req.client_ip);
    op.cancel = Some(CancelDetails {
        reason: req.reason,
        external_id: req.external_id.clone(),
        message,
    });
    let (purpose, reference) = match message {
        CancelMessage::Reversal => {
            let original = order
                .payment_reference()
                .ok_or_else(|| EngineError::Corrupt(order.bill.to_string()))?;
            let remaining = left.filter(|l| *l > 0);
            (TxnPurpose::Reversal { remaining }, Some(original.clone()))
        }
        CancelMessage::Refund => (TxnPurpose::Refund, None),
    };
    op.transactions.push(Transaction {
        purpose,
        reference,
        state: TxnState::Prepared,
        response_code: None,
        at: ts,
    });
    Ok(op)
}
