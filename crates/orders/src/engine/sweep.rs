//! The sweep: orders not paid by their expiration time become Timeout; Delayed orders not
//! charged within the merchant's auto-cancel period are reversed; an operation left in flight by
//! a task that ended without finishing it (a dropped future, a panic) is resolved as start-up
//! recovery resolves it. The authorizer runs it every minute or so. The deadlines were written on
//! each order; the merchant's settings are looked up only for the notifications of what the sweep
//! did.
//!
//! Owns nothing but the choice of which order to touch. Must never expire an order with an
//! operation in flight nor one being paid (the order's lock), and never take an operation
//! something still runs for abandoned (the order's lock, and an age far past the link's
//! time-outs).

use super::{CancelRequest, Engine, RecoveryReport};
use crate::clock::Timestamp;
use crate::error::EngineError;
use crate::model::{CancelReason, OrderRecord};
use crate::persist::Change;
use crate::settings::SettingsLookup;
use crate::state::Lifecycle;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orders that became Timeout.
    pub expired: usize,
    /// Delayed orders reversed.
    pub auto_cancelled: usize,
    /// Auto-cancels whose reversal failed (tried again at the next sweep or by recovery).
    pub failed: usize,
    /// Operations in flight that no task was running any more, resolved as at start-up (or
    /// counted unresolved, tried again next time).
    pub abandoned: RecoveryReport,
}

/// An operation in flight for longer than this, whose order nobody holds, was abandoned by the
/// task that ran it. Far past the link's answer and reversal time-outs (seconds), so that a
/// payment still running is never taken for one even if its lock were free.
pub const ABANDONED_AFTER: time::Duration = time::Duration::minutes(5);

impl Engine {
    /// Resolves abandoned operations, expires and auto-cancels what is due now; `settings` says
    /// whom to notify of what.
    pub async fn sweep(&self, settings: SettingsLookup<'_>) -> Result<SweepReport, EngineError> {
        let mut report = SweepReport::default();
        for bill in self.persist.in_flight()? {
            // Held: its operation is running now (or another order's on the same stripe).
            let Some((_held, record)) = self.try_lock_order(bill)? else {
                continue;
            };
            let now = Timestamp::of(self.now());
            let since = record
                .in_flight()
                .and_then(|op| op.last_transaction())
                .map(|t| t.at);
            if since.is_none_or(|at| now < at.plus(ABANDONED_AFTER)) {
                continue;
            }
            tracing::warn!(%bill, "an operation in flight was abandoned; resolving it");
            self.resolve_in_flight(settings, record, &mut report.abandoned)
                .await?;
        }
        for bill in self.persist.open()? {
            // Held: being paid, charged or cancelled now; looked at again next time.
            let Some((_held, record)) = self.try_lock_order(bill)? else {
                continue;
            };
            let now = Timestamp::of(self.now());
            if record.in_flight().is_some() || !due(&record, now) {
                continue;
            }
            let m = Self::settings_of(settings, &record.merchant);
            match Lifecycle::of(record) {
                Lifecycle::InProcess(o) => {
                    let expired = Lifecycle::from(o.expired()).into_record();
                    let mut change = Change::default();
                    change.notify(&m, &expired, 0, self.now());
                    self.write(change, &expired, None).await?;
                    report.expired += 1;
                }
                Lifecycle::Delayed(o) => {
                    let req = CancelRequest {
                        amount: None,
                        currency: None,
                        reason: CancelReason::AutoCancel,
                        external_id: None,
                        client_ip: None,
                    };
                    match self.reverse_delayed(&m, o, req).await {
                        Ok(_) => report.auto_cancelled += 1,
                        Err(EngineError::OutcomeUnknown(_)) => report.failed += 1,
                        Err(e) => return Err(e),
                    }
                }
                _ => {}
            }
        }
        Ok(report)
    }
}

fn due(order: &OrderRecord, now: Timestamp) -> bool {
    match order.state {
        crate::OrderState::InProcess => now >= order.expires_at,
        crate::OrderState::Delayed => order.auto_cancel_at.is_some_and(|at| now >= at),
        _ => false,
    }
}
