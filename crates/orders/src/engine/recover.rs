//! Crash recovery: on start-up, before serving, every order with an operation caught in flight
//! is resolved and none stays In Process. The sweep resolves the same way an operation its task
//! abandoned while the process ran on.
//!
//! A payment or refund whose reference was made durable (`persist`) but whose outcome was not
//! is reversed through the link's store-and-forward — the network acknowledges a reversal of
//! what it never saw and moves nothing — and declined. A charge (0220, an advice) is repeated.
//! A cancel's reversal is repeated (the network applies a reversal once). An outcome that was
//! written is "found answered" by construction: the in-flight marker leaves in the same batch.
//! Must never leave a payment approved on one side and declined on the other.

use super::Engine;
use crate::decline::DeclineReason;
use crate::error::EngineError;
use crate::model::{OperationType, TxnPurpose, TxnState};
use crate::settings::SettingsLookup;
use crate::state::Lifecycle;

/// What a recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Payments reversed and declined.
    pub payments_reversed: usize,
    /// Charges repeated.
    pub charges_repeated: usize,
    /// Cancel reversals repeated.
    pub cancels_repeated: usize,
    /// Refunds reversed (their cancel declined).
    pub refunds_reversed: usize,
    /// Still unresolved (the network or the vault could not be reached): call again.
    pub unresolved: usize,
}

impl Engine {
    /// Resolves every order caught in flight. Call once at start-up, with the link started;
    /// `settings` says whom to notify of what.
    pub async fn recover(
        &self,
        settings: SettingsLookup<'_>,
    ) -> Result<RecoveryReport, EngineError> {
        let mut report = RecoveryReport::default();
        for bill in self.persist.in_flight()? {
            let (_held, record) = self.lock_order(None, bill, &[]).await?;
            self.resolve_in_flight(settings, record, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Resolves `record`'s operation in flight, if it has one, counting it in `report`; the
    /// caller holds the order's lock, so nothing else is running it. One the network or the
    /// vault cannot resolve yet is counted unresolved (to be asked again), not an error.
    pub(super) async fn resolve_in_flight(
        &self,
        settings: SettingsLookup<'_>,
        record: crate::OrderRecord,
        report: &mut RecoveryReport,
    ) -> Result<(), EngineError> {
        match self.resolve(settings, record, report).await {
            Err(EngineError::OutcomeUnknown(_) | EngineError::Secrets(_)) => {
                report.unresolved += 1;
                Ok(())
            }
            resolved => resolved,
        }
    }

    /// [`Engine::resolve_in_flight`]'s work, as the module says.
    async fn resolve(
        &self,
        settings: SettingsLookup<'_>,
        record: crate::OrderRecord,
        report: &mut RecoveryReport,
    ) -> Result<(), EngineError> {
        let bill = record.bill;
        let m = &Self::settings_of(settings, &record.merchant);
        let Some(op) = record.in_flight() else {
            return Ok(());
        };
        let n = op.number;
        let kind = op.kind;
        let txn = op.last_transaction().cloned();
        let corrupt = || EngineError::Corrupt(bill.to_string());
        match (kind, txn) {
            (OperationType::Payment, Some(t)) => {
                let reference = t.reference.ok_or_else(corrupt)?;
                self.reverse_lost(bill, &reference).await?;
                let Lifecycle::InProcess(order) = Lifecycle::of(record) else {
                    return Err(corrupt());
                };
                self.decline_payment(
                    m,
                    order,
                    n,
                    DeclineReason::NoAnswer,
                    TxnState::TimedOutReversed,
                    None,
                )
                .await?;
                report.payments_reversed += 1;
            }
            (OperationType::Charge, _) => {
                self.send_charge(m, record, n).await?;
                report.charges_repeated += 1;
            }
            (OperationType::Cancel, Some(t)) if t.purpose == TxnPurpose::Refund => {
                if let Some(reference) = &t.reference {
                    self.reverse_lost(bill, reference).await?;
                }
                self.cancel_failed(
                    m,
                    record,
                    n,
                    DeclineReason::NoAnswer,
                    TxnState::TimedOutReversed,
                    None,
                )
                .await?;
                report.refunds_reversed += 1;
            }
            (OperationType::Cancel, Some(_)) => {
                self.send_reversal(m, record, n).await?;
                report.cancels_repeated += 1;
            }
            (_, None) => return Err(corrupt()),
        }
        Ok(())
    }

    /// Reverses a message whose outcome was lost.
    async fn reverse_lost(
        &self,
        bill: crate::BillNumber,
        reference: &link::TransactionRef,
    ) -> Result<(), EngineError> {
        match self.acquirer.reverse(reference, None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(%bill, error = %e, "recovery reversal failed");
                Err(EngineError::OutcomeUnknown(bill))
            }
        }
    }
}
