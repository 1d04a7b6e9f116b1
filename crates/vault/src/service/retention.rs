//! Retention and re-sealing: the two sweeps over every stored card. Purge erases a card
//! `retention.years` after its retention clock started (its last successful payment, or its
//! saving if never paid); re-seal moves every card sealed under an older key, or fingerprinted
//! under an older scheme (an older fingerprint key, or the PAN alone), to the current one, and
//! counts what is left ([`Sweeps::backlog`]) so that retired keys are destroyed only when nothing
//! needs them.
//!
//! Owns the sweeps' paging and their per-card locking (a card is re-read under its customer's
//! lock, so a concurrent payment or save is never lost or brought back). Each erasure is its own
//! audited commit. Must never skip a card silently: what a sweep cannot handle is counted and
//! logged (by token and reason, never a PAN).

use store::{Batch, Pair, Store, StoreError};

use super::CustomerLocks;
use super::error::{CallError, Chain};
use super::rules::{binding, erase};
use crate::audit::{AuditLog, Event};
use crate::fingerprint::Fingerprints;
use crate::keyring::Keyring;
use crate::model::{CustomerNumber, Timestamp};
use crate::protocol::{OpKind, Status, op_code, status_code};
use crate::record::{self, CardRecord};

/// Cards read per page of a sweep: bounds the memory one sweep holds.
const PAGE: usize = 256;

/// What the sweeps work on.
#[derive(Debug, Clone, Copy)]
pub struct Sweeps<'a> {
    pub store: &'a Store,
    pub audit: &'a AuditLog,
    pub keyring: &'a Keyring,
    pub fingerprints: &'a Fingerprints,
    pub locks: &'a CustomerLocks,
    pub retention_years: u16,
}

/// What one re-seal sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Records rewritten: now sealed under the current key and fingerprinted under the current
    /// scheme.
    pub resealed: u64,
    /// Records left under an older key or scheme (each logged with its reason); the next sweep
    /// retries.
    pub skipped: u64,
}

impl Sweeps<'_> {
    /// Erases every card whose retention period ended before `now`; returns how many.
    pub async fn purge(&self, now: Timestamp) -> Result<u64, CallError> {
        let mut erased = 0;
        for pair in Pages::new(self.store) {
            let (key, value) = pair?;
            let expired = |value: &[u8]| match CardRecord::decode(value) {
                Ok(rec) => Some(rec)
                    .filter(|r| r.retention_start().plus_years(self.retention_years) <= now),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "purge skips a card record that does not decode");
                    None
                }
            };
            if expired(&value).is_none() {
                continue;
            }
            let Some((scope, customer, token)) = record::parse_card_key(&key) else {
                tracing::warn!("purge skips a card key that does not parse");
                continue;
            };
            let _guard = self.locks.lock(&scope, &customer).await;
            // Read again under the lock: a payment may have restarted the clock meanwhile.
            let Some(rec) = self.store.get(&key)?.as_deref().and_then(expired) else {
                continue;
            };
            let mut batch = Batch::default();
            erase(&mut batch, &scope, &customer, &rec);
            super::payments::forget(self.store, &mut batch, &scope, &customer, &token)?;
            let event = Event {
                at_ms: super::dispatch::now_ms(),
                client: "vault".into(),
                role: None,
                op: op_code(OpKind::Purge),
                token: Some(token),
                scope,
                customer,
                outcome: status_code(Status::Ok),
                peer: String::new(),
                detail: String::new(),
            };
            self.audit.append(event, batch).await?;
            tracing::info!(token = %token, "erased a card at the end of its retention period");
            erased += 1;
        }
        Ok(erased)
    }

    /// Whether a record is sealed under the current key and fingerprinted under the current
    /// scheme.
    fn is_current(&self, rec: &CardRecord) -> bool {
        Some(rec.key_version) == self.keyring.current_version()
            && rec.fingerprint_scheme == self.fingerprints.current()
    }

    /// How many records are not current (or do not decode): while any is, the retired keys it
    /// may need are kept.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let mut left = 0;
        for pair in Pages::new(self.store) {
            let (_, value) = pair?;
            if !CardRecord::decode(&value).is_ok_and(|r| self.is_current(&r)) {
                left += 1;
            }
        }
        Ok(left)
    }

    /// Re-seals and re-fingerprints every record that is not current.
    pub async fn reseal(&self) -> Resealed {
        let mut done = Resealed::default();
        let Some(current) = self.keyring.current_version() else {
            return done;
        };
        for pair in Pages::new(self.store) {
            let (key, value) = match pair {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "re-seal stops: the store cannot be read");
                    break;
                }
            };
            if CardRecord::decode(&value).is_ok_and(|r| self.is_current(&r)) {
                continue;
            }
            match self.reseal_one(&key).await {
                Ok(true) => done.resealed += 1,
                Ok(false) => {}
                Err(reason) => {
                    done.skipped += 1;
                    let token = record::parse_card_key(&key).map(|(_, _, t)| t.to_string());
                    tracing::warn!(token, reason, "re-seal skips a card");
                }
            }
        }
        if done.skipped > 0 {
            tracing::warn!(
                resealed = done.resealed,
                skipped = done.skipped,
                current,
                "re-seal left cards under an older key"
            );
        } else {
            tracing::info!(resealed = done.resealed, current, "re-seal done");
        }
        done
    }

    /// Re-seals and re-fingerprints one record under its customer's lock (the record and its
    /// fingerprint index entry in one commit); `Ok(false)` when it is gone or already current by
    /// then, `Err` with the reason it was skipped.
    async fn reseal_one(&self, key: &[u8]) -> Result<bool, &'static str> {
        let (scope, customer, token) =
            record::parse_card_key(key).ok_or("its key does not parse")?;
        let customer_number =
            CustomerNumber::parse(&customer).map_err(|_| "its customer number is invalid")?;
        let _guard = self.locks.lock(&scope, &customer).await;
        let Some(value) = self
            .store
            .get(key)
            .map_err(|_| "the store cannot read it")?
        else {
            return Ok(false);
        };
        let mut rec = CardRecord::decode(&value).map_err(|_| "its record does not decode")?;
        if self.is_current(&rec) {
            return Ok(false);
        }
        let b = binding(&token, &scope, &customer_number);
        let plain = self
            .keyring
            .open(rec.key_version, &rec.sealed, &b)
            .map_err(|_| "it does not open under its key")?;
        let mut batch = Batch::default();
        if Some(rec.key_version) != self.keyring.current_version() {
            (rec.key_version, rec.sealed) = self
                .keyring
                .seal(&plain, &b)
                .map_err(|_| "it cannot be sealed under the current key")?;
        }
        let scheme = self.fingerprints.current();
        if rec.fingerprint_scheme != scheme {
            let (pan, _) =
                record::parse_secret(&plain).map_err(|_| "its sealed card is malformed")?;
            let fingerprint = self
                .fingerprints
                .of(scheme, &scope, &pan)
                .map_err(|_| "the HSM cannot fingerprint it")?;
            batch.delete(record::fingerprint_key(&scope, &customer, &rec.fingerprint));
            batch.put(
                record::fingerprint_key(&scope, &customer, &fingerprint),
                token.as_bytes().to_vec(),
            );
            (rec.fingerprint, rec.fingerprint_scheme) = (fingerprint, scheme);
        }
        batch.put(key.to_vec(), rec.encode());
        self.store
            .commit(batch)
            .await
            .map_err(|_| "its commit failed")?;
        Ok(true)
    }
}

/// Every card record, a page at a time; a failed read ends the walk with that error.
struct Pages<'a> {
    store: &'a Store,
    start: Option<Vec<u8>>,
    page: std::vec::IntoIter<Pair>,
}

impl<'a> Pages<'a> {
    fn new(store: &'a Store) -> Pages<'a> {
        Pages {
            store,
            start: Some(record::CARD.to_vec()),
            page: Vec::new().into_iter(),
        }
    }
}

impl Iterator for Pages<'_> {
    type Item = Result<Pair, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(pair) = self.page.next() {
                return Some(Ok(pair));
            }
            let start = self.start.take()?;
            let end = [record::CARD, &[0xff]].concat();
            match self.store.scan_range(&start, &end, PAGE) {
                Ok(page) => {
                    self.start = page
                        .last()
                        .map(|(last, _)| [last.as_slice(), &[0]].concat());
                    self.page = page.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{Fixture, customer};

    const YEAR: u64 = 365 * 86_400;

    /// The fixture commits with `commit_blocking`, which must not run inside the runtime: set-up
    /// runs outside, the sweeps inside.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn purge_erases_cards_past_retention_and_audits_each() {
        let f = Fixture::new();
        let (old, _) = f.save("m:452739", "old", "4111111111111111", "12.2030");
        let (recent, _) = f.save("m:452739", "recent", "4111111111111111", "12.2030");
        let now = Timestamp::now();
        f.commit(
            f.rules()
                .record_payment(
                    "m:452739",
                    &customer("old"),
                    &old.token,
                    Timestamp(now.0 - 7 * YEAR),
                )
                .unwrap(),
        );
        f.commit(
            f.rules()
                .record_payment(
                    "m:452739",
                    &customer("recent"),
                    &recent.token,
                    Timestamp(now.0 - 5 * YEAR),
                )
                .unwrap(),
        );
        let rt = runtime();
        let audit = rt
            .block_on(async { AuditLog::start(f.store.clone()) })
            .unwrap();
        let sweeps = f.sweeps(&audit);
        assert_eq!(rt.block_on(sweeps.purge(now)).unwrap(), 1);
        assert!(
            f.store
                .get(&record::card_key("m:452739", "old", &old.token))
                .unwrap()
                .is_none()
        );
        assert!(
            f.store.scan_prefix(b"fp/").unwrap().len() == 1,
            "the erased card's fingerprint entry goes with it"
        );
        assert!(
            f.store
                .get(&record::card_key("m:452739", "recent", &recent.token))
                .unwrap()
                .is_some()
        );
        let entries = crate::audit::entries(&f.store).unwrap();
        assert_eq!(entries.len(), 1);
        let (_, e) = &entries[0];
        assert_eq!(
            (e.op, e.token, e.client.as_str()),
            (op_code(OpKind::Purge), Some(old.token), "vault")
        );
        assert_eq!(
            rt.block_on(sweeps.purge(now)).unwrap(),
            0,
            "nothing left to erase"
        );
    }

    #[test]
    fn reseal_moves_cards_to_the_current_key_and_counts_what_it_skips() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        // A record under the old key that no key opens any more: skipped, counted.
        let (broken, _) = f.save("m:452739", "c2", "5555555555554444", "12.2030");
        let key = record::card_key("m:452739", "c2", &broken.token);
        let mut rec = CardRecord::decode(&f.store.get(&key).unwrap().unwrap()).unwrap();
        rec.sealed[20] ^= 1;
        let mut batch = Batch::default();
        batch.put(key, rec.encode());
        f.commit(batch);
        f.keyring
            .promote(hsm::KeyVersion(2), &hsm::Dek::for_tests([2; 32]));
        let rt = runtime();
        let audit = rt
            .block_on(async { AuditLog::start(f.store.clone()) })
            .unwrap();
        let done = rt.block_on(f.sweeps(&audit).reseal());
        assert_eq!(
            done,
            Resealed {
                resealed: 1,
                skipped: 1
            }
        );
        assert_eq!(f.record("m:452739", "c1", &saved.token).key_version, 2);
        let secret = f
            .rules()
            .detokenize("m:452739", &customer("c1"), &saved.token)
            .unwrap();
        assert_eq!(secret.pan.expose(), b"4111111111111111");
        assert_eq!(
            rt.block_on(f.sweeps(&audit).reseal()),
            Resealed {
                resealed: 0,
                skipped: 1
            },
            "the next sweep retries only what is left"
        );
    }

    #[test]
    fn a_fingerprint_rotation_is_found_meanwhile_then_migrated_by_the_pass() {
        use crate::fingerprint::Scheme;
        let f = Fixture::new();
        let scope = "m:452739";
        let (c1, _) = f.save(scope, "c1", "4111111111111111", "12.2030");
        let (c2, _) = f.save(scope, "c2", "5555555555554444", "12.2030");
        // c3 as saved before scopes were bound: an HMAC of the PAN alone.
        let (c3, mut legacy) = f.save(scope, "c3", "2200000000000004", "12.2030");
        let pan3 = card::Pan::parse("2200000000000004").unwrap();
        let mut batch = Batch::default();
        batch.delete(record::fingerprint_key(scope, "c3", &legacy.fingerprint));
        legacy.fingerprint = f.fingerprints.of(Scheme::PanOnly, scope, &pan3).unwrap();
        legacy.fingerprint_scheme = Scheme::PanOnly;
        batch.put(
            record::fingerprint_key(scope, "c3", &legacy.fingerprint),
            c3.token.as_bytes().to_vec(),
        );
        batch.put(record::card_key(scope, "c3", &c3.token), legacy.encode());
        f.commit(batch);
        let rotated = crate::fingerprint::Fingerprints::new(
            f.fingerprint_key.clone(),
            2,
            vec![Scheme::Scoped(1), Scheme::PanOnly],
        );
        let f = Fixture {
            fingerprints: rotated,
            ..f
        };
        // Found again under the older scheme before the pass, and moved by that save.
        let (again, rec) = f.save(scope, "c1", "4111111111111111", "11.2033");
        assert_eq!((again.token, again.created), (c1.token, false));
        assert_eq!(rec.fingerprint_scheme, Scheme::Scoped(2));
        let rt = runtime();
        let audit = rt
            .block_on(async { AuditLog::start(f.store.clone()) })
            .unwrap();
        assert_eq!(f.sweeps(&audit).backlog().unwrap(), 2);
        let done = rt.block_on(f.sweeps(&audit).reseal());
        assert_eq!(
            done,
            Resealed {
                resealed: 2,
                skipped: 0
            }
        );
        assert_eq!(f.sweeps(&audit).backlog().unwrap(), 0);
        for (c, token) in [("c2", c2.token), ("c3", c3.token)] {
            assert_eq!(
                f.record(scope, c, &token).fingerprint_scheme,
                Scheme::Scoped(2)
            );
        }
        // Every index entry is now the current one, and the card is found without older schemes.
        assert_eq!(f.store.scan_prefix(b"fp/").unwrap().len(), 3);
        f.fingerprints.migrated();
        let (again, _) = f.save(scope, "c3", "2200000000000004", "10.2034");
        assert_eq!((again.token, again.created), (c3.token, false));
    }
}
