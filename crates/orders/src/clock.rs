//! Time as the engine sees it: the [`Clock`] trait it owns (so tests set the time) and
//! [`Timestamp`], the instant it stores.
//!
//! Owns the conversion between stored seconds and `time` values. Must never read the system
//! clock anywhere but [`SystemClock`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where the engine gets "now", in UTC.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// An instant as stored: whole seconds since the Unix epoch, UTC. Seconds are what answers
/// print (`DD.MM.YYYY HH:MM:SS`), and what the date index sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `t`, cut to its second.
    pub fn of(t: OffsetDateTime) -> Timestamp {
        Timestamp(t.unix_timestamp())
    }

    /// As a `time` value in UTC (the epoch for an unrepresentable value, which no clock gives).
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `d` later.
    pub fn plus(self, d: time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.whole_seconds()))
    }
}
