//! Per-customer turnover limits (seed 000): what a CustomerNumber pays in a day and in a week,
//! across all its cards and, where the merchant shares a customer list, across the list's
//! merchants; a payment over a limit is declined before the network (AS109).
//!
//! Counters live in the store (`persist`), in the merchant's calendar (`settings`); a payment
//! books its amount in the same batch that makes its reference durable, and a decline, a partial
//! charge or a cancel gives back what it no longer takes, in the batch of that change. The
//! caller holds the customer's lock (`locks`) from the read to the commit. Must never count an
//! amount twice nor release more than was booked.

use card::CustomerNumber;
use link::Currency;
use time::OffsetDateTime;

use crate::error::EngineError;
use crate::model::TurnoverBooking;
use crate::persist::{Change, Persist};
use crate::settings::MerchantSettings;

/// The counters a payment at `now` counts in, with their limits.
fn counters(
    m: &MerchantSettings,
    customer: &CustomerNumber,
    currency: Currency,
    now: OffsetDateTime,
) -> Vec<(String, u64)> {
    let Some(limits) = m.limits.filter(|l| l.currency == currency) else {
        return Vec::new();
    };
    let date = m.local_date(now);
    let (year, week, _) = date.to_iso_week_date();
    let base = format!("orders/t/{}/{}/", m.customer_scope(), customer.as_str());
    let mut out = Vec::with_capacity(2);
    if let Some(daily) = limits.daily {
        out.push((format!("{base}d/{date}"), daily));
    }
    if let Some(weekly) = limits.weekly {
        out.push((format!("{base}w/{year}-W{week:02}"), weekly));
    }
    out
}

/// Books `amount` for `customer` in `change`, or `Ok(None)` when a limit would be passed.
pub(crate) fn book(
    persist: &Persist,
    change: &mut Change,
    m: &MerchantSettings,
    customer: &CustomerNumber,
    currency: Currency,
    amount: u64,
    now: OffsetDateTime,
) -> Result<Option<Vec<TurnoverBooking>>, EngineError> {
    let mut bookings = Vec::new();
    let mut updates = Vec::new();
    for (key, limit) in counters(m, customer, currency, now) {
        let total = persist.counter(&key)?.saturating_add(amount);
        if total > limit {
            return Ok(None);
        }
        updates.push((key.clone(), total));
        bookings.push(TurnoverBooking {
            counter: key,
            amount,
        });
    }
    for (key, total) in updates {
        change.counter(&key, total);
    }
    Ok(Some(bookings))
}

/// Gives back up to `amount` of each of `bookings` in `change` (all of it with `u64::MAX`).
pub(crate) fn release(
    persist: &Persist,
    change: &mut Change,
    bookings: &mut [TurnoverBooking],
    amount: u64,
) -> Result<(), EngineError> {
    for b in bookings.iter_mut() {
        let back = b.amount.min(amount);
        if back == 0 {
            continue;
        }
        let now = persist.counter(&b.counter)?.saturating_sub(back);
        change.counter(&b.counter, now);
        b.amount -= back;
    }
    Ok(())
}
