//! The One Click rules, over the records of one scope: a customer number is unique within its
//! scope (a merchant, or a configured union of merchants); the same card saved again for the same
//! customer updates its token (found by keyed fingerprint), never duplicates it; "Deny" stops
//! saving; at most [`MAX_CARDS`] cards per customer; a card is listed once it reached the listing
//! merchant's threshold of successful payments, inactive once expired.
//!
//! Owns what each call reads and the change it makes, returned as a [`Batch`] for the caller to
//! commit with the call's audit entry. Never commits, never takes a lock and never calls the HSM
//! itself (the fingerprint comes in as a function), so each rule can be tested against a store
//! alone. Must never store a CVC, and never put a PAN into an error.

use std::collections::HashMap;

use store::{Batch, Store};

use super::error::CallError;
use crate::bins::bank_of;
use crate::config::MerchantPolicy;
use crate::fingerprint::Fingerprints;
use crate::keyring::{Binding, Keyring};
use crate::model::*;
use crate::protocol::MAX_CARDS;
use crate::record::{self, CardRecord};

/// The rules' view of the vault: its records, its keys and its merchants.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub store: &'a Store,
    pub keyring: &'a Keyring,
    pub merchants: &'a HashMap<MerchantId, MerchantPolicy>,
}

impl<'a> Rules<'a> {
    /// The merchant's policy and the scope its cards live under; an unknown merchant is refused.
    pub fn place(&self, merchant: &MerchantId) -> Result<(&'a MerchantPolicy, String), VaultError> {
        let policy = self
            .merchants
            .get(merchant)
            .ok_or(VaultError::UnknownMerchant)?;
        Ok((policy, policy.scope.key()))
    }

    /// Saves a card, or updates the same card saved before for this customer (new expiry and
    /// holder, same token, payment history kept).
    pub fn tokenize(
        &self,
        scope: &str,
        req: TokenizeRequest,
        fingerprints: &Fingerprints,
    ) -> Result<(SavedCard, Batch), CallError> {
        let customer = req.customer.as_str();
        if self
            .store
            .get(&record::deny_key(scope, customer))?
            .is_some()
        {
            return Err(VaultError::CustomerDenied.into());
        }
        let scheme = fingerprints.current();
        let fingerprint = fingerprints.of(scheme, scope, &req.pan)?;
        let fp_key = record::fingerprint_key(scope, customer, &fingerprint);
        let mut indexed = self.store.get(&fp_key)?;
        // A card saved before a migration finished is indexed under an older scheme: found
        // there, its index entry moves to the current one with this save.
        let mut stale_key = None;
        for older in fingerprints.older() {
            if indexed.is_some() {
                break;
            }
            let key =
                record::fingerprint_key(scope, customer, &fingerprints.of(older, scope, &req.pan)?);
            indexed = self.store.get(&key)?;
            stale_key = indexed.is_some().then_some(key);
        }
        let existing = match indexed {
            Some(t) => {
                let token = t
                    .as_slice()
                    .try_into()
                    .map(Token::from_bytes)
                    .map_err(|_| {
                        CallError::Record(crate::wire::DecodeError::Invalid {
                            field: "fingerprint index",
                            at: 0,
                        })
                    })?;
                Some(self.load(scope, &req.customer, &token)?)
            }
            None => None,
        };
        if existing.is_none() && self.card_count(scope, customer)? >= MAX_CARDS {
            return Err(VaultError::BadRequest(format!(
                "a customer may save at most {MAX_CARDS} cards"
            ))
            .into());
        }
        let token = existing.as_ref().map_or_else(Token::random, |r| r.token);
        let plain = record::secret_plaintext(&req.pan, req.holder.as_ref());
        let (key_version, sealed) = self
            .keyring
            .seal(&plain, &binding(&token, scope, &req.customer))?;
        let card = MaskedCard::of(&req.pan, req.expiry, bank_of(req.pan.bin()).to_string());
        let created = existing.is_none();
        let rec = match existing {
            Some(old) => CardRecord {
                key_version,
                sealed,
                fingerprint,
                fingerprint_scheme: scheme,
                card: card.clone(),
                ..old
            },
            None => CardRecord {
                token,
                key_version,
                sealed,
                fingerprint,
                fingerprint_scheme: scheme,
                card: card.clone(),
                created: Timestamp::now(),
                last_payment: None,
                successes: 0,
            },
        };
        let mut batch = Batch::default();
        if let Some(stale) = stale_key {
            batch.delete(stale);
        }
        batch.put(record::card_key(scope, customer, &token), rec.encode());
        batch.put(fp_key, token.as_bytes().to_vec());
        Ok((
            SavedCard {
                token,
                card,
                created,
            },
            batch,
        ))
    }

    /// The card's PAN, expiry and holder.
    pub fn detokenize(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
    ) -> Result<CardSecret, CallError> {
        let rec = self.load(scope, customer, token)?;
        let plain = self.keyring.open(
            rec.key_version,
            &rec.sealed,
            &binding(token, scope, customer),
        )?;
        let (pan, holder) = record::parse_secret(&plain)?;
        Ok(CardSecret {
            pan,
            expiry: rec.card.expiry,
            holder,
        })
    }

    /// The customer's status and the cards that reached `threshold` successful payments, each
    /// active unless expired at `now`.
    pub fn list(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        threshold: u32,
        now: Timestamp,
    ) -> Result<CustomerCards, CallError> {
        let records = self
            .store
            .scan_prefix(&record::cards_of(scope, customer.as_str()))?;
        let denied = self
            .store
            .get(&record::deny_key(scope, customer.as_str()))?
            .is_some();
        let status = match (denied, records.is_empty()) {
            (true, _) => CustomerStatus::Deny,
            (false, true) => CustomerStatus::New,
            (false, false) => CustomerStatus::Member,
        };
        let mut cards = Vec::new();
        for (_, v) in records {
            let rec = CardRecord::decode(&v)?;
            if rec.successes >= threshold {
                cards.push(ListedCard {
                    token: rec.token,
                    active: !expired(&rec, now),
                    card: rec.card,
                    need_cvc: true,
                    successes: rec.successes,
                });
            }
        }
        Ok(CustomerCards { status, cards })
    }

    /// Whether `token` may be granted for `card_use`: it exists and, for a card the merchant
    /// offers, is listed (at `threshold`) and active at `now`, as [`Rules::list`] shows it.
    pub fn grantable(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        card_use: CardUse,
        threshold: u32,
        now: Timestamp,
    ) -> Result<(), CallError> {
        let rec = self.load(scope, customer, token)?;
        match card_use {
            CardUse::OnFile => Ok(()),
            CardUse::Offered if rec.successes >= threshold && !expired(&rec, now) => Ok(()),
            // Refused as if it did not exist: the caller learns nothing it could not list.
            CardUse::Offered => Err(VaultError::NotFound.into()),
        }
    }

    /// Erases one card at the customer's request.
    pub fn remove(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
    ) -> Result<Batch, CallError> {
        let rec = self.load(scope, customer, token)?;
        let mut batch = Batch::default();
        erase(&mut batch, scope, customer.as_str(), &rec);
        super::payments::forget(self.store, &mut batch, scope, customer.as_str(), token)?;
        Ok(batch)
    }

    /// Deny is stored; Member and New are what the cards say, so setting either clears Deny.
    pub fn set_status(scope: &str, customer: &CustomerNumber, status: CustomerStatus) -> Batch {
        let mut batch = Batch::default();
        let key = record::deny_key(scope, customer.as_str());
        match status {
            CustomerStatus::Deny => batch.put(key, Vec::new()),
            CustomerStatus::Member | CustomerStatus::New => batch.delete(key),
        };
        batch
    }

    /// Counts a successful payment (for the listing threshold) and moves the retention clock to
    /// the latest payment seen.
    pub fn record_payment(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
        at: Timestamp,
    ) -> Result<Batch, CallError> {
        let mut rec = self.load(scope, customer, token)?;
        rec.successes = rec.successes.saturating_add(1);
        rec.last_payment = Some(rec.last_payment.map_or(at, |t| t.max(at)));
        let mut batch = Batch::default();
        batch.put(
            record::card_key(scope, customer.as_str(), token),
            rec.encode(),
        );
        Ok(batch)
    }

    fn load(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
    ) -> Result<CardRecord, CallError> {
        let v = self
            .store
            .get(&record::card_key(scope, customer.as_str(), token))?
            .ok_or(VaultError::NotFound)?;
        Ok(CardRecord::decode(&v)?)
    }

    /// How many cards the customer has, counting no further than [`MAX_CARDS`].
    fn card_count(&self, scope: &str, customer: &str) -> Result<usize, CallError> {
        let prefix = record::cards_of(scope, customer);
        let end = [&prefix[..prefix.len() - 1], &[1u8][..]].concat();
        Ok(self.store.scan_range(&prefix, &end, MAX_CARDS)?.len())
    }
}

/// What a sealed card is bound to: opening it under another token, scope or customer fails.
pub fn binding<'a>(token: &'a Token, scope: &'a str, customer: &'a CustomerNumber) -> Binding<'a> {
    Binding {
        token: token.as_bytes(),
        scope,
        customer: customer.as_str(),
    }
}

/// Deletes a card and its fingerprint entry. The store drops the record; the ciphertext is
/// unreadable anyway once it is gone from the index, but see README on page reuse.
pub fn erase(batch: &mut Batch, scope: &str, customer: &str, rec: &CardRecord) {
    batch.delete(record::card_key(scope, customer, &rec.token));
    batch.delete(record::fingerprint_key(scope, customer, &rec.fingerprint));
}

/// A card past its expiry month at `now` is kept (retention) but never offered.
fn expired(rec: &CardRecord, now: Timestamp) -> bool {
    let (year, month) = now.year_month();
    rec.card.expiry.is_expired_at(year, month)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{Fixture, customer, merchant, saved_req};

    /// 2030-06-15 00:00 UTC: the cards of these tests expire before or after it.
    const JUNE_2030: Timestamp = Timestamp(1_907_712_000);

    #[test]
    fn a_new_card_gets_a_token_and_masked_fields() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        assert!(saved.created);
        assert_eq!(saved.card.bin.as_str(), "411111");
        assert_eq!(saved.card.last4.as_str(), "1111");
        assert_eq!(saved.card.brand, card::Brand::Visa);
        assert!(saved.card.bank.contains("TEST BANK"));
    }

    #[test]
    fn the_same_card_saved_again_keeps_its_token_and_history() {
        let f = Fixture::new();
        let (first, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let c = customer("c1");
        f.commit(
            f.rules()
                .record_payment("m:452739", &c, &first.token, Timestamp(5))
                .unwrap(),
        );
        let (again, _) = f.save("m:452739", "c1", "4111111111111111", "11.2033");
        assert_eq!(again.token, first.token);
        assert!(!again.created);
        let secret = f.rules().detokenize("m:452739", &c, &first.token).unwrap();
        assert_eq!(secret.expiry, card::Expiry::parse("11.2033").unwrap());
        assert_eq!(secret.pan.expose(), b"4111111111111111");
        let listed = f.rules().list("m:452739", &c, 1, JUNE_2030).unwrap();
        assert_eq!(listed.cards.len(), 1, "one card, its payment kept");
    }

    #[test]
    fn a_card_is_listed_once_it_reached_the_threshold() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let c = customer("c1");
        let listed = f.rules().list("m:452739", &c, 2, JUNE_2030).unwrap();
        assert_eq!(listed.status, CustomerStatus::Member);
        assert!(listed.cards.is_empty());
        for at in [1, 2] {
            f.commit(
                f.rules()
                    .record_payment("m:452739", &c, &saved.token, Timestamp(at))
                    .unwrap(),
            );
        }
        let listed = f.rules().list("m:452739", &c, 2, JUNE_2030).unwrap();
        let card = &listed.cards[0];
        assert_eq!(
            (card.token, card.active, card.need_cvc),
            (saved.token, true, true)
        );
    }

    #[test]
    fn an_expired_card_is_listed_inactive() {
        let f = Fixture::new();
        let (old, _) = f.save("m:452739", "c1", "5555555555554444", "05.2030");
        let listed = f
            .rules()
            .list("m:452739", &customer("c1"), 0, JUNE_2030)
            .unwrap();
        assert_eq!(listed.cards[0].token, old.token);
        assert!(!listed.cards[0].active);
        assert_eq!(listed.cards[0].card.brand, card::Brand::Mastercard);
    }

    #[test]
    fn a_card_below_the_threshold_is_granted_on_file_but_not_offered() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let c = customer("c1");
        let grant = |card_use| {
            f.rules()
                .grantable("m:452739", &c, &saved.token, card_use, 1, JUNE_2030)
        };
        assert!(grant(CardUse::OnFile).is_ok());
        assert!(matches!(
            grant(CardUse::Offered),
            Err(CallError::Refused(VaultError::NotFound))
        ));
    }

    #[test]
    fn an_expired_card_is_not_offered() {
        let f = Fixture::new();
        let (old, _) = f.save("m:452739", "c1", "5555555555554444", "05.2030");
        let granted = f.rules().grantable(
            "m:452739",
            &customer("c1"),
            &old.token,
            CardUse::Offered,
            0,
            JUNE_2030,
        );
        assert!(matches!(
            granted,
            Err(CallError::Refused(VaultError::NotFound))
        ));
    }

    #[test]
    fn a_listed_active_card_is_offered() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let granted = f.rules().grantable(
            "m:452739",
            &customer("c1"),
            &saved.token,
            CardUse::Offered,
            0,
            JUNE_2030,
        );
        assert!(granted.is_ok());
    }

    #[test]
    fn merchants_of_a_union_share_one_scope_with_their_own_thresholds() {
        let f = Fixture::new();
        let rules = f.rules();
        let (a, scope_a) = rules.place(&merchant("600001")).unwrap();
        let (b, scope_b) = rules.place(&merchant("600002")).unwrap();
        let (_, solo) = rules.place(&merchant("452739")).unwrap();
        assert_eq!(scope_a, scope_b);
        assert_ne!(scope_a, solo);
        assert_eq!((a.listing_threshold, b.listing_threshold), (2, 1));
        assert_eq!(
            rules.place(&merchant("999999")).map(|_| ()),
            Err(VaultError::UnknownMerchant)
        );
    }

    #[test]
    fn a_card_is_found_only_in_its_scope_and_for_its_customer() {
        let f = Fixture::new();
        let (saved, _) = f.save("u:group-1", "shared", "2200000000000004", "10.2031");
        let rules = f.rules();
        assert!(
            rules
                .detokenize("u:group-1", &customer("shared"), &saved.token)
                .is_ok()
        );
        for (scope, c) in [("m:452739", "shared"), ("u:group-1", "other")] {
            assert!(matches!(
                rules.detokenize(scope, &customer(c), &saved.token),
                Err(CallError::Refused(VaultError::NotFound))
            ));
        }
        assert_eq!(
            rules
                .list("m:452739", &customer("shared"), 1, JUNE_2030)
                .unwrap()
                .status,
            CustomerStatus::New
        );
    }

    #[test]
    fn one_card_under_two_scopes_has_unrelated_fingerprints_and_is_found_again_in_each() {
        let f = Fixture::new();
        let pan = "4111111111111111";
        let (_, solo) = f.save("m:452739", "same", pan, "12.2030");
        let (_, union) = f.save("u:group-1", "same", pan, "12.2030");
        assert_ne!(
            solo.fingerprint, union.fingerprint,
            "the card links across scopes"
        );
        let index: Vec<_> = f.store.scan_prefix(b"fp/").unwrap();
        assert!(
            !index[0].0.ends_with(&index[1].0[index[1].0.len() - 32..]),
            "the index entries share a value"
        );
        for (scope, first) in [("m:452739", &solo), ("u:group-1", &union)] {
            let (again, rec) = f.save(scope, "same", pan, "11.2033");
            assert_eq!((again.token, again.created), (first.token, false));
            assert_eq!(rec.fingerprint, first.fingerprint);
        }
    }

    #[test]
    fn deny_refuses_saving_until_cleared() {
        let f = Fixture::new();
        let c = customer("c3");
        f.commit(Rules::set_status("m:452739", &c, CustomerStatus::Deny));
        let refused = f.rules().tokenize(
            "m:452739",
            saved_req("c3", "4111111111111111", "12.2030"),
            &f.fingerprints,
        );
        assert_eq!(
            f.fingerprint_key.calls(),
            0,
            "a denied customer costs no HSM call"
        );
        assert!(matches!(
            refused,
            Err(CallError::Refused(VaultError::CustomerDenied))
        ));
        assert_eq!(
            f.rules().list("m:452739", &c, 1, JUNE_2030).unwrap().status,
            CustomerStatus::Deny
        );
        f.commit(Rules::set_status("m:452739", &c, CustomerStatus::Member));
        assert!(
            f.try_save("m:452739", "c3", "4111111111111111", "12.2030")
                .is_ok()
        );
    }

    #[test]
    fn removing_the_last_card_makes_the_customer_new() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let c = customer("c1");
        f.commit(f.rules().remove("m:452739", &c, &saved.token).unwrap());
        assert!(matches!(
            f.rules().remove("m:452739", &c, &saved.token),
            Err(CallError::Refused(VaultError::NotFound))
        ));
        let listed = f.rules().list("m:452739", &c, 0, JUNE_2030).unwrap();
        assert_eq!(
            (listed.status, listed.cards.len()),
            (CustomerStatus::New, 0)
        );
        let (fresh, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        assert!(fresh.created && fresh.token != saved.token);
    }

    #[test]
    fn a_customer_holds_at_most_max_cards() {
        let f = Fixture::new();
        for i in 0..MAX_CARDS {
            // Distinct PANs, so distinct fingerprints.
            f.save("m:452739", "many", &format!("4000{i:012}"), "12.2030");
        }
        let refused = f.try_save("m:452739", "many", "4111111111111111", "12.2030");
        assert!(
            matches!(refused, Err(CallError::Refused(VaultError::BadRequest(ref m))) if m.contains("at most 100")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_payment_counts_once_and_keeps_the_latest_time() {
        let f = Fixture::new();
        let (saved, _) = f.save("m:452739", "c1", "4111111111111111", "12.2030");
        let c = customer("c1");
        for at in [20, 10] {
            f.commit(
                f.rules()
                    .record_payment("m:452739", &c, &saved.token, Timestamp(at))
                    .unwrap(),
            );
        }
        let rec = f.record("m:452739", "c1", &saved.token);
        assert_eq!((rec.successes, rec.last_payment), (2, Some(Timestamp(20))));
        assert!(matches!(
            f.rules()
                .record_payment("m:452739", &c, &Token::random(), Timestamp(1)),
            Err(CallError::Refused(VaultError::NotFound))
        ));
    }
}
