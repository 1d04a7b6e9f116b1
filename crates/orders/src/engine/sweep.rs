//! The sweep: orders not paid by their expiration time become Timeout; Delayed orders not
//! charged within the merchant's auto-cancel period are reversed. The authorizer runs it every
//! minute or so. The deadlines were written on each order; the merchant's settings are looked up
//! only for the notifications of what the sweep did.
//!
//! Owns nothing but the choice of which open order to touch. Must never touch an order with an
//! operation in flight (recovery's) and never expire an order being paid (the order's lock).

use super::{CancelRequest, Engine};
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
}

impl Engine {
    /// Expires and auto-cancels what is due now; `settings` says whom to notify of what.
    pub async fn sweep(&self, settings: SettingsLookup<'_>) -> Result<SweepReport, EngineError> {
        let mut report = SweepReport::default();
        for bill in self.persist.open()? {
            let (_held, record) = self.lock_order(None, bill, &[]).await?;
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
