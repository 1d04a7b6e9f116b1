//! What the engine needs to know about a merchant, passed in by the caller on every call
//! ([`MerchantSettings`]; the merchant config file is the authorizer's), and the calendar it
//! implies: the merchant's day, week and daily cut-off.
//!
//! Time zones are fixed UTC offsets (`time::UtcOffset`): Moscow is UTC+3 all year since 2014,
//! and the `time` crate has no zone database. A merchant in a zone with daylight saving sets
//! the offset it wants its day to follow. Owns the calendar arithmetic; must never read a clock.

use card::MerchantId;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use crate::model::{OperationState, OperationType, OrderRecord, OrderState};

/// A merchant's rules for orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantSettings {
    /// Merchant_ID, also DE 42.
    pub id: MerchantId,
    /// DE 43, when configured.
    pub name_location: Option<String>,
    /// DE 18, when configured.
    pub category_code: Option<u16>,
    /// The merchant's time zone: its day, week and cut-off. Moscow (+03:00) by default.
    pub utc_offset: UtcOffset,
    /// When, in the merchant's time zone, the day's payments settle: a cancel of a payment
    /// captured before the last cut-off is a refund, after it a reversal.
    pub cutoff: Time,
    /// A Delayed order not charged this long after its authorization is reversed by the sweep.
    pub auto_cancel_after: Duration,
    /// An order not paid this long after its creation becomes Timeout (when the order brings no
    /// `expirationtime` of its own).
    pub order_lifetime: Duration,
    /// Card-on-file MIT enabled: `RecurringIndicator=1` without bounds is accepted, and its
    /// payments are unscheduled MITs.
    pub mit_allowed: bool,
    /// Per-customer turnover limits, if any.
    pub limits: Option<TurnoverLimits>,
    /// The shared customer list this merchant belongs to (customers and their turnover are
    /// counted across its merchants); `None`: the merchant's own.
    pub customer_list: Option<String>,
    /// Which results are notified to the merchant's server; `None`: none (no notification URL).
    pub notifications: Option<Notifications>,
}

/// A merchant's settings by its id, for the engine's own passes (the sweep, recovery), which are
/// no merchant's call; `None` for a merchant no longer configured.
pub type SettingsLookup<'a> = &'a (dyn Fn(&MerchantId) -> Option<MerchantSettings> + Sync + 'a);

/// Which results a merchant asks to be notified of (Assist's Personal Account settings). The
/// engine reads them when an operation ends, to write the notification with the state change;
/// where it goes is read when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notifications {
    /// Payments that reach a final state (Approved, Delayed, Declined).
    pub payments: bool,
    /// Charges of two-stage payments.
    pub charges: bool,
    /// Cancels and refunds.
    pub cancels: bool,
    /// Orders that expired unpaid.
    pub timeouts: bool,
    /// Only operations that succeeded (payments, charges, cancels; timeouts are their own switch).
    pub only_successful: bool,
}

impl Default for Notifications {
    /// Payments, successful or not: what the spec sends without being asked.
    fn default() -> Notifications {
        Notifications {
            payments: true,
            charges: false,
            cancels: false,
            timeouts: false,
            only_successful: false,
        }
    }
}

impl Notifications {
    /// What operation `n` of `order` (0: the order's own Timeout) is notified as, if at all.
    pub(crate) fn kind_for(&self, order: &OrderRecord, n: u32) -> Option<outbox::Kind> {
        if n == 0 {
            return (self.timeouts && order.state == OrderState::Timeout)
                .then_some(outbox::Kind::Timeout);
        }
        let op = order.operation(n)?;
        let (wanted, kind) = match op.kind {
            OperationType::Payment => (self.payments, outbox::Kind::Payment),
            OperationType::Charge => (self.charges, outbox::Kind::Charge),
            OperationType::Cancel => (self.cancels, outbox::Kind::Cancel),
        };
        let success = op.state == OperationState::Success;
        (wanted && (success || !self.only_successful)).then_some(kind)
    }
}

/// A customer's turnover limits, in minor units of one currency. Payments in other currencies
/// are not counted (a merchant selling in two currencies configures the one it limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnoverLimits {
    /// The currency counted.
    pub currency: link::Currency,
    /// Most a customer may pay in one day, across all its cards.
    pub daily: Option<u64>,
    /// Most a customer may pay in one week (Monday to Sunday).
    pub weekly: Option<u64>,
}

/// Moscow time, the default zone.
pub const MOSCOW: UtcOffset = match UtcOffset::from_hms(3, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

impl MerchantSettings {
    /// Defaults: Moscow time, cut-off at midnight, auto-cancel after 7 days (Assist: 5 to 14),
    /// orders live one day, no MIT, no limits, no shared list, no notifications.
    pub fn new(id: MerchantId) -> MerchantSettings {
        MerchantSettings {
            id,
            name_location: None,
            category_code: None,
            utc_offset: MOSCOW,
            cutoff: Time::MIDNIGHT,
            auto_cancel_after: Duration::days(7),
            order_lifetime: Duration::days(1),
            mit_allowed: false,
            limits: None,
            customer_list: None,
            notifications: None,
        }
    }

    /// The merchant's calendar day at `t`.
    pub fn local_date(&self, t: OffsetDateTime) -> Date {
        t.to_offset(self.utc_offset).date()
    }

    /// The last scheduled cut-off at or before `now`.
    pub fn last_cutoff(&self, now: OffsetDateTime) -> OffsetDateTime {
        let local = now.to_offset(self.utc_offset);
        let today = local
            .date()
            .with_time(self.cutoff)
            .assume_offset(self.utc_offset);
        if today <= local {
            today
        } else {
            today - Duration::days(1)
        }
    }

    /// What names the merchant's customers in turnover counters and card lookups.
    pub fn customer_scope(&self) -> &str {
        self.customer_list.as_deref().unwrap_or(self.id.as_str())
    }

    /// The link's view of the merchant.
    pub(crate) fn link_merchant(&self) -> link::Merchant {
        link::Merchant {
            id: self.id.clone(),
            name_location: self.name_location.clone(),
            category_code: self.category_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    #[test]
    fn the_cutoff_is_in_the_merchants_zone() {
        let mut s = MerchantSettings::new(MerchantId::parse("452739").unwrap());
        s.cutoff = time!(23:00);
        // 19:30 UTC is 22:30 in Moscow: before today's cut-off, so the last was yesterday's.
        assert_eq!(
            s.last_cutoff(datetime!(2026-03-10 19:30 UTC)),
            datetime!(2026-03-09 20:00 UTC)
        );
        // 20:30 UTC is 23:30 in Moscow: today's cut-off has passed.
        assert_eq!(
            s.last_cutoff(datetime!(2026-03-10 20:30 UTC)),
            datetime!(2026-03-10 20:00 UTC)
        );
        assert_eq!(
            s.local_date(datetime!(2026-03-10 22:00 UTC)),
            time::macros::date!(2026 - 03 - 11)
        );
    }
}
