//! The outbox's counters, rendered in Prometheus text for the authorizer's admin endpoint.
//! Owns nothing but counting; must never label a series with a merchant's URL.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::notice::AttemptOutcome;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    refused: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

impl Metrics {
    pub fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }

    pub fn ended(&self, outcome: AttemptOutcome) {
        let c = match outcome {
            AttemptOutcome::Acknowledged => &self.acknowledged,
            AttemptOutcome::Refused => &self.refused,
            AttemptOutcome::Retry => &self.retried,
            AttemptOutcome::Failed => &self.failed,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn render(&self, depth: usize) -> String {
        let mut o = String::new();
        for (name, help, c) in [
            (
                "outbox_notifications_sent_total",
                "notifications sent to a merchant (every try)",
                &self.sent,
            ),
            (
                "outbox_notifications_acknowledged_total",
                "notifications the merchant acknowledged",
                &self.acknowledged,
            ),
            (
                "outbox_notifications_refused_total",
                "notifications the merchant refused (non-zero codes)",
                &self.refused,
            ),
            (
                "outbox_notifications_retried_total",
                "tries that failed with another try scheduled",
                &self.retried,
            ),
            (
                "outbox_notifications_failed_total",
                "notifications that failed for good (schedule exhausted or URL unusable)",
                &self.failed,
            ),
        ] {
            let _ = write!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.load(Relaxed)
            );
        }
        let _ = write!(
            o,
            "# HELP outbox_queue_depth notifications waiting for a try\n# TYPE outbox_queue_depth gauge\noutbox_queue_depth {depth}\n"
        );
        o
    }
}
