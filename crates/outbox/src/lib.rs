//! Result notifications to merchants (ARCHITECTURE.md, `outbox`; `spec/assist-api.md`, "Result
//! notification to the merchant's server").
//!
//! The order engine adds a notification to the same store batch as the state change it reports
//! ([`enqueue`]: the transactional outbox), so a crash can neither lose one nor invent one. A
//! notification is a reference (merchant, billnumber, operation, kind, times, tries): its fields
//! are rendered when it is sent, from the stored order and the merchant's settings of that
//! moment, through the [`Render`] trait the authorizer implements. The [`Outbox`] delivers through
//! the [`Deliver`] trait ([`HttpDeliver`] for real), reads the merchant's answer ([`ack`]), retries
//! on a [`RetrySchedule`], keeps every [`Attempt`], counts them, and re-sends by hand.
//!
//! Owns the `outbox/` records of the authorizer's store and their schedule (a
//! [`store::DueQueue`]). Must never store a notification's fields or anything card-like, send a
//! notification the merchant acknowledged or refused again (except by hand), log a form field or
//! a URL's query, or let a slow merchant delay another's notifications.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ack;
mod deliver;
mod http;
mod metrics;
mod notice;
mod outbox;
mod schedule;

pub use deliver::{DEFAULT_PORTS, Deliver, DeliverError, Reply, Request, Target};
pub use http::{HttpConfig, HttpDeliver, HttpSetupError};
pub use notice::{
    Attempt, AttemptOutcome, Kind, NewNotice, Notice, NoticeId, NoticeState, enqueue,
};
pub use outbox::{Doorbell, NotificationView, Outbox, OutboxConfig, Render, RenderError, now_ms};
pub use schedule::{RetrySchedule, ScheduleError};

/// Why the outbox could not read or change a notification.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The store failed: ours.
    #[error("outbox storage")]
    Store(#[from] store::StoreError),
    /// A stored record does not read as one of ours: a damaged store or a newer build's.
    #[error("outbox record of order {} operation {} is corrupt", .0.bill, .0.operation)]
    Corrupt(NoticeId),
    /// No such notification (for this merchant): the caller's.
    #[error("no notification of order {} operation {}", .0.bill, .0.operation)]
    Unknown(NoticeId),
    /// A try of it is in flight now: the caller's, to ask again in a moment.
    #[error("a try of the notification of order {} operation {} is in flight", .0.bill, .0.operation)]
    InFlight(NoticeId),
}
