//! Binding card use to payments. A detokenize needs a GRANT: the facade, serving the shopper's
//! or merchant's request for one payment, asks for a single-use grant for (scope, customer,
//! token, payment reference); the authorizer presents it with its detokenize, and the vault
//! consumes it. The consumed grant leaves a durable note (`pay/…/d`, the vault's time) that lets
//! the authorizer detokenize the same card again to REVERSE that payment, within the reversal
//! window, and for nothing else. A successful payment is recorded once per payment reference
//! (`pay/…/r`), at the vault's time.
//!
//! Grants live in memory, not in the store: issuing one then costs no write (its audit entry is
//! the only commit), consuming one is an atomic removal under a mutex, and a restart loses the
//! grants in flight, which fails closed (the engine asks again). Owns the grant table and the
//! `pay/` records. Must never hand out a grant id anywhere but the facade's answer, never log one,
//! and never let a grant serve another card or payment than it was issued for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use store::{Batch, Store, StoreError};

use crate::config::PaymentPolicy;
use crate::model::{CustomerNumber, GrantId, PaymentRef, Timestamp, Token, VaultError};

const PAY: &[u8] = b"pay/";
/// Note of a detokenize consumed for a payment: the vault's time of it (u64 BE seconds).
const DETOKENIZED: u8 = b'd';
/// Note of a payment recorded as successful: the vault's time of it (u64 BE seconds).
const RECORDED: u8 = b'r';

/// What a grant was issued for; it serves nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    scope: String,
    customer: CustomerNumber,
    token: Token,
    payment: PaymentRef,
}

/// The grants outstanding, in memory.
#[derive(Debug)]
pub struct Grants {
    policy: PaymentPolicy,
    table: Mutex<HashMap<GrantId, (Bound, Instant)>>,
}

impl Grants {
    pub fn new(policy: PaymentPolicy) -> Grants {
        Grants {
            policy,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<GrantId, (Bound, Instant)>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new grant for `token` and `payment`, usable once within the grant lifetime. Expired
    /// grants are dropped when the table is full; a table still full after that refuses.
    pub fn issue(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
    ) -> Result<GrantId, VaultError> {
        self.issue_at(scope, customer, token, payment, Instant::now())
    }

    fn issue_at(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        now: Instant,
    ) -> Result<GrantId, VaultError> {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let id = GrantId(id);
        let bound = Bound {
            scope: scope.to_string(),
            customer: customer.clone(),
            token,
            payment: payment.clone(),
        };
        let expires = now + Duration::from_secs(self.policy.grant_ttl_secs);
        let mut table = self.table();
        if table.len() >= self.policy.max_grants {
            table.retain(|_, (_, until)| *until > now);
            if table.len() >= self.policy.max_grants {
                return Err(VaultError::BadRequest(
                    "too many detokenize grants outstanding".into(),
                ));
            }
        }
        table.insert(id, (bound, expires));
        Ok(id)
    }

    /// Uses up grant `id` for exactly this card and payment. A grant presented for anything
    /// else is destroyed as well: whoever holds a grant gets one attempt, not a probe.
    pub fn consume(
        &self,
        id: GrantId,
        scope: &str,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
    ) -> Result<(), VaultError> {
        self.consume_at(id, scope, customer, token, payment, Instant::now())
    }

    fn consume_at(
        &self,
        id: GrantId,
        scope: &str,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        now: Instant,
    ) -> Result<(), VaultError> {
        let (bound, expires) = self.table().remove(&id).ok_or(VaultError::GrantRefused)?;
        let matches = bound.scope == scope
            && bound.customer == *customer
            && bound.token == token
            && bound.payment == *payment;
        if matches && now < expires {
            Ok(())
        } else {
            Err(VaultError::GrantRefused)
        }
    }
}

/// `pay/<scope>\0<customer>\0<token>` + `\0`: every note about one card.
fn notes_of(scope: &str, customer: &str, token: &Token) -> Vec<u8> {
    let mut k = PAY.to_vec();
    k.extend_from_slice(scope.as_bytes());
    k.push(0);
    k.extend_from_slice(customer.as_bytes());
    k.push(0);
    k.extend_from_slice(token.as_bytes());
    k.push(0);
    k
}

fn note_key(
    scope: &str,
    customer: &CustomerNumber,
    token: &Token,
    payment: &PaymentRef,
    kind: u8,
) -> Vec<u8> {
    let mut k = notes_of(scope, customer.as_str(), token);
    k.extend_from_slice(payment.as_str().as_bytes());
    k.push(0);
    k.push(kind);
    k
}

fn note_time(value: &[u8]) -> Option<Timestamp> {
    value
        .try_into()
        .ok()
        .map(|b| Timestamp(u64::from_be_bytes(b)))
}

/// The `pay/` records of one scope, for the call being served.
#[derive(Debug, Clone, Copy)]
pub struct Payments<'a> {
    pub store: &'a Store,
    pub policy: &'a PaymentPolicy,
}

impl Payments<'_> {
    /// Notes that `token` was detokenized for `payment` at `now`, so that the payment can be
    /// reversed with the card later.
    pub fn detokenized(
        &self,
        batch: &mut Batch,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        payment: &PaymentRef,
        now: Timestamp,
    ) {
        batch.put(
            note_key(scope, customer, token, payment, DETOKENIZED),
            now.0.to_be_bytes().to_vec(),
        );
    }

    /// Whether `payment` with `token` was detokenized with a grant within the reversal window
    /// before `now`; refused otherwise.
    pub fn may_reverse(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        payment: &PaymentRef,
        now: Timestamp,
    ) -> Result<(), crate::service::CallError> {
        let note = self
            .store
            .get(&note_key(scope, customer, token, payment, DETOKENIZED))?;
        let within = note
            .as_deref()
            .and_then(note_time)
            .is_some_and(|at| now.0.saturating_sub(at.0) <= self.policy.reversal_window_secs);
        if within {
            Ok(())
        } else {
            Err(VaultError::GrantRefused.into())
        }
    }

    /// The vault's time for a payment the client says happened at `claimed`: refused when the
    /// two are further apart than the allowed skew (a client cannot move a card's retention
    /// clock, into the future or the past).
    pub fn payment_time(
        &self,
        claimed: Timestamp,
        now: Timestamp,
    ) -> Result<Timestamp, VaultError> {
        if claimed.0.abs_diff(now.0) > self.policy.clock_skew_secs {
            return Err(VaultError::BadRequest(format!(
                "payment time is more than {} s from the vault's clock",
                self.policy.clock_skew_secs
            )));
        }
        Ok(now)
    }

    /// Whether `payment` was already recorded for `token`: a replay, counted once.
    pub fn recorded(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        payment: &PaymentRef,
    ) -> Result<bool, StoreError> {
        let key = note_key(scope, customer, token, payment, RECORDED);
        Ok(self.store.get(&key)?.is_some())
    }

    /// Notes that `payment` was recorded at `now`, in the batch that counts it.
    pub fn note_recorded(
        &self,
        batch: &mut Batch,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        payment: &PaymentRef,
        now: Timestamp,
    ) {
        batch.put(
            note_key(scope, customer, token, payment, RECORDED),
            now.0.to_be_bytes().to_vec(),
        );
    }
}

/// Deletes every payment note of a card that is being erased (they name its token).
pub fn forget(
    store: &Store,
    batch: &mut Batch,
    scope: &str,
    customer: &str,
    token: &Token,
) -> Result<(), StoreError> {
    for (key, _) in store.scan_prefix(&notes_of(scope, customer, token))? {
        batch.delete(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{customer, memory_store};

    fn grants() -> Grants {
        Grants::new(PaymentPolicy {
            max_grants: 2,
            ..PaymentPolicy::default()
        })
    }

    fn pay(p: &str) -> PaymentRef {
        PaymentRef::parse(p).unwrap()
    }

    #[test]
    fn a_grant_serves_its_card_and_payment_once() {
        let g = grants();
        let (c, t) = (customer("c1"), Token::random());
        let id = g.issue("m:1", &c, t, &pay("p1")).unwrap();
        assert_eq!(g.consume(id, "m:1", &c, t, &pay("p1")), Ok(()));
        assert_eq!(
            g.consume(id, "m:1", &c, t, &pay("p1")),
            Err(VaultError::GrantRefused),
            "used"
        );
    }

    #[test]
    fn a_grant_presented_for_another_payment_is_refused_and_destroyed() {
        let g = grants();
        let (c, t) = (customer("c1"), Token::random());
        let id = g.issue("m:1", &c, t, &pay("p1")).unwrap();
        assert_eq!(
            g.consume(id, "m:1", &c, t, &pay("p2")),
            Err(VaultError::GrantRefused)
        );
        assert_eq!(
            g.consume(id, "m:1", &c, t, &pay("p1")),
            Err(VaultError::GrantRefused)
        );
        let other = g.issue("m:1", &c, t, &pay("p1")).unwrap();
        assert_eq!(
            g.consume(other, "m:1", &c, Token::random(), &pay("p1")),
            Err(VaultError::GrantRefused),
            "another card"
        );
    }

    #[test]
    fn an_expired_grant_is_refused_and_makes_room() {
        let g = grants();
        let (c, t) = (customer("c1"), Token::random());
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(301);
        let id = g.issue_at("m:1", &c, t, &pay("p1"), t0).unwrap();
        g.issue_at("m:1", &c, t, &pay("p2"), t0).unwrap();
        assert!(g.issue_at("m:1", &c, t, &pay("p3"), t0).is_err(), "full");
        assert!(g.issue_at("m:1", &c, t, &pay("p3"), late).is_ok());
        assert!(g.table().len() == 1, "the expired ones were dropped");
        assert_eq!(
            g.consume_at(id, "m:1", &c, t, &pay("p1"), late),
            Err(VaultError::GrantRefused)
        );
    }

    #[test]
    fn a_reversal_needs_a_detokenize_of_that_payment_within_the_window() {
        let store = memory_store();
        let policy = PaymentPolicy::default();
        let p = Payments {
            store: &store,
            policy: &policy,
        };
        let (c, t) = (customer("c1"), Token::random());
        let mut batch = Batch::default();
        p.detokenized(&mut batch, "m:1", &c, &t, &pay("p1"), Timestamp(1_000));
        store.commit_blocking(batch).unwrap();
        assert!(
            p.may_reverse("m:1", &c, &t, &pay("p1"), Timestamp(2_000))
                .is_ok()
        );
        let after = Timestamp(1_000 + policy.reversal_window_secs + 1);
        assert!(p.may_reverse("m:1", &c, &t, &pay("p1"), after).is_err());
        assert!(
            p.may_reverse("m:1", &c, &t, &pay("p2"), Timestamp(2_000))
                .is_err()
        );
        let mut batch = Batch::default();
        forget(&store, &mut batch, "m:1", "c1", &t).unwrap();
        store.commit_blocking(batch).unwrap();
        assert!(
            p.may_reverse("m:1", &c, &t, &pay("p1"), Timestamp(2_000))
                .is_err()
        );
    }

    #[test]
    fn the_vault_clock_rules_a_payment_time() {
        let store = memory_store();
        let policy = PaymentPolicy::default();
        let p = Payments {
            store: &store,
            policy: &policy,
        };
        let now = Timestamp(1_800_000_000);
        assert_eq!(p.payment_time(Timestamp(now.0 - 299), now), Ok(now));
        // 2100-01-01: a card whose clock never runs out.
        assert!(p.payment_time(Timestamp(4_102_444_800), now).is_err());
        assert!(p.payment_time(Timestamp(now.0 - 301), now).is_err());
    }
}
