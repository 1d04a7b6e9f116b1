//! The life of an order as types that consume themselves (the link's `life.rs` and rustls's
//! handshake states are the model): each state is its own struct around the order's record, and
//! a transition takes the state by value and returns the next, so only the legal transitions of
//! the README's table compile and a stale state cannot be used twice.
//!
//! Owns [`OrderRecord::state`] and the amounts that move with it (authorized, captured,
//! cancelled). Must never change a state any other way, and never decide anything about the
//! network: the engine asks the link first and then applies what happened here.

use crate::clock::Timestamp;
use crate::model::{OrderRecord, OrderState};

macro_rules! states {
    ($($(#[$doc:meta])* $name:ident => $state:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name(OrderRecord);

            impl $name {
                /// The order in this state.
                pub fn record(&self) -> &OrderRecord {
                    &self.0
                }

                /// Enters this state.
                fn enter(mut record: OrderRecord) -> $name {
                    record.state = OrderState::$state;
                    $name(record)
                }
            }

            impl From<$name> for Lifecycle {
                fn from(s: $name) -> Lifecycle {
                    Lifecycle::$name(s)
                }
            }
        )*

        /// An order in whichever state it is.
        #[derive(Debug)]
        pub enum Lifecycle {
            $($(#[$doc])* $name($name),)*
        }

        impl Lifecycle {
            /// The typed state of a stored record.
            pub fn of(record: OrderRecord) -> Lifecycle {
                match record.state {
                    $(OrderState::$state => Lifecycle::$name($name(record)),)*
                }
            }

            /// The state.
            pub fn state(&self) -> OrderState {
                self.record().state
            }

            /// The record.
            pub fn record(&self) -> &OrderRecord {
                match self {
                    $(Lifecycle::$name(s) => &s.0,)*
                }
            }

            /// The record, to store.
            pub fn into_record(self) -> OrderRecord {
                match self {
                    $(Lifecycle::$name(s) => s.0,)*
                }
            }
        }
    };
}

states! {
    /// Created, not paid: its payment may be in flight.
    InProcess => InProcess;
    /// Authorized (two-stage), waiting for a charge.
    Delayed => Delayed;
    /// Paid in full.
    Approved => Approved;
    /// Charged for less than was authorized.
    PartialDelayed => PartialDelayed;
    /// Cancelled in full. Final.
    Canceled => Canceled;
    /// Partly cancelled.
    PartialCanceled => PartialCanceled;
    /// Its payment was declined. Final.
    Declined => Declined;
    /// Not paid in time. Final.
    Timeout => Timeout;
}

/// The states whose record the engine adds operations to while the state holds (a payment in
/// flight, a charge or a cancel of a Delayed order); the paid states do it through [`Captured`].
macro_rules! open_record {
    ($($name:ident),*) => {$(
        impl $name {
            /// Its record, to add operations and transactions while the state holds.
            pub(crate) fn record_mut(&mut self) -> &mut OrderRecord {
                &mut self.0
            }
        }
    )*};
}

open_record!(InProcess, Delayed);

impl InProcess {
    /// A new order.
    pub(crate) fn new(record: OrderRecord) -> InProcess {
        InProcess::enter(record)
    }

    /// One-stage payment approved for the order's amount.
    pub fn paid(mut self, now: Timestamp) -> Approved {
        let r = &mut self.0;
        r.authorized = r.amount;
        r.captured = r.amount;
        r.captured_at = Some(now);
        Approved::enter(self.0)
    }

    /// Two-stage authorization approved; reversed by the sweep at `auto_cancel_at` unless
    /// charged.
    pub fn authorized(mut self, auto_cancel_at: Timestamp) -> Delayed {
        let r = &mut self.0;
        r.authorized = r.amount;
        r.auto_cancel_at = Some(auto_cancel_at);
        Delayed::enter(self.0)
    }

    /// The payment was declined (or timed out and was reversed).
    pub fn declined(self) -> Declined {
        Declined::enter(self.0)
    }

    /// Not paid by its expiration time.
    pub fn expired(self) -> Timeout {
        Timeout::enter(self.0)
    }
}

/// A charged two-stage order.
#[derive(Debug)]
pub enum Charged {
    /// Charged in full.
    Approved(Approved),
    /// Charged for less.
    PartialDelayed(PartialDelayed),
}

impl From<Charged> for Lifecycle {
    fn from(c: Charged) -> Lifecycle {
        match c {
            Charged::Approved(s) => s.into(),
            Charged::PartialDelayed(s) => s.into(),
        }
    }
}

impl Delayed {
    /// The charge (0220) for `amount` (at most the authorized amount) was approved.
    pub fn charged(mut self, amount: u64, now: Timestamp) -> Charged {
        let r = &mut self.0;
        r.captured = amount.min(r.authorized);
        r.captured_at = Some(now);
        r.auto_cancel_at = None;
        if r.captured == r.authorized {
            Charged::Approved(Approved::enter(self.0))
        } else {
            Charged::PartialDelayed(PartialDelayed::enter(self.0))
        }
    }

    /// The whole authorization was reversed (a cancel, or the auto-cancel sweep). A two-stage
    /// order is partially cancelled only after its charge, so there is no partial form.
    pub fn reversed(mut self) -> Canceled {
        let r = &mut self.0;
        r.cancelled = r.authorized;
        r.auto_cancel_at = None;
        Canceled::enter(self.0)
    }
}

/// After a cancel of a paid order.
#[derive(Debug)]
pub enum AfterCancel {
    /// Nothing left to cancel.
    Canceled(Canceled),
    /// Some left.
    PartialCanceled(PartialCanceled),
}

impl From<AfterCancel> for Lifecycle {
    fn from(c: AfterCancel) -> Lifecycle {
        match c {
            AfterCancel::Canceled(s) => s.into(),
            AfterCancel::PartialCanceled(s) => s.into(),
        }
    }
}

/// The states in which money has been taken and may be given back: Approved, PartialDelayed
/// and PartialCanceled.
pub trait Captured: Sized + std::fmt::Debug {
    /// The record.
    fn captured_record(&self) -> &OrderRecord;

    /// The record, to add the cancel's operation.
    fn captured_record_mut(&mut self) -> &mut OrderRecord;

    /// Gives it up for the record.
    fn into_captured_record(self) -> OrderRecord;

    /// A cancel of `amount` went through; the engine checked it is at most
    /// [`OrderRecord::cancellable`] (more is clamped, never counted twice).
    fn cancelled(self, amount: u64) -> AfterCancel {
        let mut r = self.into_captured_record();
        r.cancelled = r.cancelled.saturating_add(amount).min(r.captured);
        if r.cancelled == r.captured {
            AfterCancel::Canceled(Canceled::enter(r))
        } else {
            AfterCancel::PartialCanceled(PartialCanceled::enter(r))
        }
    }
}

macro_rules! captured {
    ($($name:ident),*) => {$(
        impl Captured for $name {
            fn captured_record(&self) -> &OrderRecord {
                &self.0
            }
            fn captured_record_mut(&mut self) -> &mut OrderRecord {
                &mut self.0
            }
            fn into_captured_record(self) -> OrderRecord {
                self.0
            }
        }
    )*};
}

captured!(Approved, PartialDelayed, PartialCanceled);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::blank_record;

    #[test]
    fn one_stage_then_two_partial_cancels_reach_canceled() {
        let order = InProcess::new(blank_record(1_000));
        let approved = order.paid(Timestamp(10));
        assert_eq!(approved.record().captured, 1_000);
        let AfterCancel::PartialCanceled(partly) = approved.cancelled(400) else {
            panic!("400 of 1000 is partial")
        };
        assert_eq!(partly.record().cancellable(), 600);
        let AfterCancel::Canceled(done) = partly.cancelled(600) else {
            panic!("the rest cancels it")
        };
        assert_eq!(done.record().state, OrderState::Canceled);
    }

    #[test]
    fn two_stage_partial_charge_is_partial_delayed_and_reversal_cancels_all() {
        let delayed = InProcess::new(blank_record(3_000)).authorized(Timestamp(99));
        let Charged::PartialDelayed(p) = delayed.charged(2_500, Timestamp(20)) else {
            panic!("less than authorized")
        };
        assert_eq!(
            (p.record().captured, p.record().auto_cancel_at),
            (2_500, None)
        );

        let delayed = InProcess::new(blank_record(3_000)).authorized(Timestamp(99));
        let canceled = delayed.reversed();
        assert_eq!(canceled.record().cancelled, 3_000);
    }

    #[test]
    fn a_stored_record_comes_back_in_its_state() {
        let declined = InProcess::new(blank_record(5)).declined();
        let again = Lifecycle::of(Lifecycle::from(declined).into_record());
        assert!(matches!(again, Lifecycle::Declined(_)));
    }
}
