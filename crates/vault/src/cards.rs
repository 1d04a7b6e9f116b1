//! The card-on-file service: every protocol operation, the One Click rules from the product pages,
//! role checks, and auditing of every call (allowed or refused).
//!
//! Rules kept here: a customer number is unique within its scope (a merchant or a configured
//! union); the same card saved again for the same customer updates its token (found by keyed
//! fingerprint), never duplicates it; "Deny" stops saving; a card is listed once it reached the
//! merchant's threshold of successful payments, inactive once expired; a card is erased on
//! request or 6 years after its last successful payment. Must never store a CVC, and never let a
//! PAN reach an error, a log line or the audit log.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hsm::{Hsm, HsmError, KeyVersion, WrappedDek};
use store::{Batch, Store, StoreError};
use tokio::sync::{Mutex, MutexGuard};

use crate::audit::{AuditError, AuditLog, Event};
use crate::bins::bank_of;
use crate::config::{Config, MerchantPolicy};
use crate::keyring::{Binding, Keyring};
use crate::model::*;
use crate::protocol::{MAX_CARDS, Op, Reply};
use crate::record::{self, CardRecord};

const STRIPES: usize = 4096;

/// Who is calling, as authenticated by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub client: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("vault keys are not initialized in this data directory: run `vault init`")]
    NotInitialized,
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("stored key record {0} is malformed")]
    BadKeyRecord(u32),
}

/// What `vault init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initialized {
    Created { version: u32 },
    Found { version: u32 },
}

/// The running service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CardVault {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    hsm: Hsm,
    keyring: Keyring,
    audit: AuditLog,
    merchants: HashMap<MerchantId, MerchantPolicy>,
    retention_years: u16,
    /// Serializes read-modify-write of one customer's records (hash-striped).
    stripes: Vec<Mutex<()>>,
    rotation: Mutex<()>,
}

fn dek_value(w: &WrappedDek) -> Vec<u8> {
    let mut v = w.kek.0.to_be_bytes().to_vec();
    v.extend_from_slice(&w.bytes);
    v
}

fn parse_dek(version: u32, v: &[u8]) -> Result<WrappedDek, OpenError> {
    let (kek, bytes) = v
        .split_at_checked(4)
        .ok_or(OpenError::BadKeyRecord(version))?;
    let kek = u32::from_be_bytes(
        kek.try_into()
            .map_err(|_| OpenError::BadKeyRecord(version))?,
    );
    Ok(WrappedDek {
        kek: KeyVersion(kek),
        bytes: bytes.to_vec(),
    })
}

fn current_version(store: &Store) -> Result<Option<u32>, OpenError> {
    match store.get(record::CURRENT_KEY)? {
        None => Ok(None),
        Some(v) => Ok(Some(u32::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| OpenError::BadKeyRecord(0))?,
        ))),
    }
}

/// Creates the keys when there are none (a KEK in the HSM unless one exists, the fingerprint key,
/// a first DEK wrapped and stored), or checks that the existing ones are usable.
pub fn init(store: &Store, hsm: &Hsm) -> Result<Initialized, OpenError> {
    hsm.ensure_fingerprint_key()?;
    if let Some(version) = current_version(store)? {
        let wrapped = store
            .get(&record::dek_key(version))?
            .ok_or(OpenError::BadKeyRecord(version))?;
        hsm.unwrap_dek(&parse_dek(version, &wrapped)?)?;
        return Ok(Initialized::Found { version });
    }
    let version = match hsm.kek_versions()?.last() {
        Some(v) => *v,
        None => {
            hsm.generate_kek(KeyVersion(1))?;
            KeyVersion(1)
        }
    };
    let (wrapped, _) = hsm.new_dek(version)?;
    let mut batch = Batch::default();
    batch.put(record::dek_key(version.0), dek_value(&wrapped));
    batch.put(record::CURRENT_KEY, version.0.to_be_bytes().to_vec());
    store.commit_blocking(batch)?;
    Ok(Initialized::Created { version: version.0 })
}

impl CardVault {
    /// Loads and unwraps every DEK (the only HSM unwraps until the next rotation) and starts the
    /// audit appender. Must be called inside a tokio runtime.
    pub fn open(config: &Config, store: Store, hsm: Hsm) -> Result<CardVault, OpenError> {
        let current = current_version(&store)?.ok_or(OpenError::NotInitialized)?;
        let mut keyring = None;
        let mut retired = Vec::new();
        for (k, v) in store.scan_prefix(record::DEK)? {
            let version = k[record::DEK.len()..]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| OpenError::BadKeyRecord(0))?;
            let dek = hsm.unwrap_dek(&parse_dek(version, &v)?)?;
            if version == current {
                keyring = Some(Keyring::new(KeyVersion(version), &dek));
            } else {
                retired.push((version, dek));
            }
        }
        let keyring = keyring.ok_or(OpenError::BadKeyRecord(current))?;
        for (v, dek) in retired {
            keyring.add_retired(KeyVersion(v), &dek);
        }
        let audit = AuditLog::start(store.clone())?;
        Ok(CardVault {
            inner: Arc::new(Inner {
                store,
                hsm,
                keyring,
                audit,
                merchants: config.merchants.clone(),
                retention_years: config.retention_years,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                rotation: Mutex::new(()),
            }),
        })
    }

    /// Audits a connection that failed to authenticate.
    pub async fn refused(&self, claimed_client: &str) {
        let event = Event {
            at_ms: now_ms(),
            client: claimed_client.chars().take(64).collect(),
            role: None,
            op: 1,
            token: None,
            scope: String::new(),
            customer: String::new(),
            outcome: outcome_code(&Err(VaultError::Unauthenticated)),
        };
        let _ = self.inner.audit.append(event, Batch::default()).await;
    }

    /// The appending side of the audit log, for callers of [`CardVault::answer_now`].
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Answers at once the calls that change nothing (detokenize, list) and the refused ones,
    /// returning the audit event with the answer: the caller appends the event and sends the
    /// answer only when the event is durable (`AuditLog::append_then`), with no task waiting in
    /// between. Any other call comes back as `Err(op)`, for [`CardVault::handle`].
    pub fn answer_now(
        &self,
        caller: &Caller,
        op: Op,
    ) -> Result<(Event, Result<Reply, VaultError>), Op> {
        let permitted = allowed(caller.role, &op);
        if permitted && !matches!(op, Op::Detokenize { .. } | Op::List { .. }) {
            return Err(op);
        }
        let mut event = event_for(caller, &op);
        let result = if permitted {
            self.read(op, &mut event)
        } else {
            Err(VaultError::Forbidden(caller.role.name()))
        };
        event.outcome = outcome_code(&result);
        Ok((event, result))
    }

    /// Runs one call for `caller`: checks the role, applies the rules, audits the outcome, and
    /// returns only once the audit entry (and any change) is durable.
    pub async fn handle(&self, caller: &Caller, op: Op) -> Result<Reply, VaultError> {
        let mut event = event_for(caller, &op);
        let result = if allowed(caller.role, &op) {
            self.run(op, &mut event).await
        } else {
            Err(VaultError::Forbidden(caller.role.name()))
        };
        // The customer's lock, when the call changes their records, is held until the change is
        // durable: the next call for the same customer must read it.
        let (result, changes, _customer_lock) = match result {
            Ok((reply, changes, lock)) => (Ok(reply), changes, lock),
            Err(e) => (Err(e), Batch::default(), None),
        };
        event.outcome = outcome_code(&result);
        self.inner
            .audit
            .append(event, changes)
            .await
            .map_err(|e| VaultError::Internal(e.to_string()))?;
        result
    }

    fn policy(&self, merchant: &MerchantId) -> Result<&MerchantPolicy, VaultError> {
        self.inner
            .merchants
            .get(merchant)
            .ok_or(VaultError::UnknownMerchant)
    }

    /// The merchant's policy and the scope key its cards live under, noted in the call's audit
    /// event before anything else can fail.
    fn scope_of(
        &self,
        merchant: &MerchantId,
        event: &mut Event,
    ) -> Result<(&MerchantPolicy, String), VaultError> {
        let policy = self.policy(merchant)?;
        let scope = policy.scope.key();
        event.scope.clone_from(&scope);
        Ok((policy, scope))
    }

    fn stripe(&self, scope: &str, customer: &str) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (scope, customer).hash(&mut h);
        &self.inner.stripes[usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0)]
    }

    async fn run(
        &self,
        op: Op,
        event: &mut Event,
    ) -> Result<(Reply, Batch, Option<MutexGuard<'_, ()>>), VaultError> {
        match op {
            Op::Hello { .. } => Err(VaultError::BadRequest("already authenticated".into())),
            Op::Tokenize(req) => {
                let (_, scope) = self.scope_of(&req.merchant, event)?;
                let guard = self.stripe(&scope, req.customer.as_str()).lock().await;
                let (saved, batch) = self.tokenize(&scope, req)?;
                event.token = Some(saved.token);
                Ok((Reply::Saved(saved), batch, Some(guard)))
            }
            op @ (Op::Detokenize { .. } | Op::List { .. }) => {
                Ok((self.read(op, event)?, Batch::default(), None))
            }
            Op::Remove {
                merchant,
                customer,
                token,
            } => {
                let (_, scope) = self.scope_of(&merchant, event)?;
                let guard = self.stripe(&scope, customer.as_str()).lock().await;
                let rec = self.load(&scope, &customer, &token)?;
                let mut batch = Batch::default();
                erase(&mut batch, &scope, customer.as_str(), &rec);
                Ok((Reply::Done, batch, Some(guard)))
            }
            Op::SetStatus {
                merchant,
                customer,
                status,
            } => {
                let (_, scope) = self.scope_of(&merchant, event)?;
                let guard = self.stripe(&scope, customer.as_str()).lock().await;
                let mut batch = Batch::default();
                let key = record::deny_key(&scope, customer.as_str());
                match status {
                    CustomerStatus::Deny => batch.put(key, Vec::new()),
                    CustomerStatus::Member | CustomerStatus::New => batch.delete(key),
                };
                Ok((Reply::Done, batch, Some(guard)))
            }
            Op::RecordPayment {
                merchant,
                customer,
                token,
                at,
            } => {
                let (_, scope) = self.scope_of(&merchant, event)?;
                let guard = self.stripe(&scope, customer.as_str()).lock().await;
                let mut rec = self.load(&scope, &customer, &token)?;
                rec.successes = rec.successes.saturating_add(1);
                rec.last_payment = Some(rec.last_payment.map_or(at, |t| t.max(at)));
                let mut batch = Batch::default();
                batch.put(
                    record::card_key(&scope, customer.as_str(), &token),
                    rec.encode(),
                );
                Ok((Reply::Done, batch, Some(guard)))
            }
            // Boxed: rare, and their futures would otherwise enlarge every request's task.
            Op::Purge => {
                let erased = Box::pin(self.purge(Timestamp::now())).await?;
                Ok((Reply::Purged(erased), Batch::default(), None))
            }
            Op::RotateKeys => {
                let version = Box::pin(self.rotate()).await?;
                Ok((Reply::Rotated(version), Batch::default(), None))
            }
        }
    }

    /// The calls that only read.
    fn read(&self, op: Op, event: &mut Event) -> Result<Reply, VaultError> {
        match op {
            Op::Detokenize {
                merchant,
                customer,
                token,
            } => {
                let (_, scope) = self.scope_of(&merchant, event)?;
                let rec = self.load(&scope, &customer, &token)?;
                let plain = self
                    .inner
                    .keyring
                    .open(
                        rec.key_version,
                        &rec.sealed,
                        &binding(&token, &scope, &customer),
                    )
                    .map_err(|e| VaultError::Internal(e.to_string()))?;
                let (pan, holder) = record::parse_secret(&plain)
                    .map_err(|e| VaultError::Internal(e.to_string()))?;
                Ok(Reply::Secret(CardSecret {
                    pan,
                    expiry: rec.card.expiry,
                    holder,
                }))
            }
            Op::List { merchant, customer } => {
                let (policy, scope) = self.scope_of(&merchant, event)?;
                Ok(Reply::Cards(self.list(
                    &scope,
                    &customer,
                    policy.listing_threshold,
                )?))
            }
            _ => Err(VaultError::Internal("not a read".into())),
        }
    }

    fn tokenize(
        &self,
        scope: &str,
        req: TokenizeRequest,
    ) -> Result<(SavedCard, Batch), VaultError> {
        let store = &self.inner.store;
        let customer = req.customer.as_str();
        if store
            .get(&record::deny_key(scope, customer))
            .map_err(internal)?
            .is_some()
        {
            return Err(VaultError::CustomerDenied);
        }
        let fingerprint = self
            .inner
            .hsm
            .fingerprint(req.pan.expose())
            .map_err(|e| VaultError::Internal(e.to_string()))?;
        let fp_key = record::fingerprint_key(scope, customer, &fingerprint);
        let existing = match store.get(&fp_key).map_err(internal)? {
            Some(t) => {
                let token = Token::from_bytes(
                    t.as_slice()
                        .try_into()
                        .map_err(|_| VaultError::Internal("bad index".into()))?,
                );
                Some(self.load(scope, &req.customer, &token)?)
            }
            None => None,
        };
        if existing.is_none() {
            let prefix = record::cards_of(scope, customer);
            let end = [&prefix[..prefix.len() - 1], &[1u8][..]].concat();
            if store
                .scan_range(&prefix, &end, MAX_CARDS)
                .map_err(internal)?
                .len()
                >= MAX_CARDS
            {
                return Err(VaultError::BadRequest(format!(
                    "a customer may save at most {MAX_CARDS} cards"
                )));
            }
        }
        let token = existing.as_ref().map_or_else(Token::random, |r| r.token);
        let plain = record::secret_plaintext(&req.pan, req.holder.as_ref());
        let (key_version, sealed) = self
            .inner
            .keyring
            .seal(&plain, &binding(&token, scope, &req.customer))
            .map_err(|e| VaultError::Internal(e.to_string()))?;
        let card = MaskedCard::of(&req.pan, req.expiry, bank_of(req.pan.bin()).to_string());
        let created = existing.is_none();
        let rec = match existing {
            // A re-issued card with the same number: new expiry (and holder), same token, and its
            // payment history kept.
            Some(old) => CardRecord {
                key_version,
                sealed,
                card: card.clone(),
                ..old
            },
            None => CardRecord {
                token,
                key_version,
                sealed,
                fingerprint,
                card: card.clone(),
                created: Timestamp::now(),
                last_payment: None,
                successes: 0,
            },
        };
        let mut batch = Batch::default();
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

    fn load(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        token: &Token,
    ) -> Result<CardRecord, VaultError> {
        let v = self
            .inner
            .store
            .get(&record::card_key(scope, customer.as_str(), token))
            .map_err(internal)?
            .ok_or(VaultError::NotFound)?;
        CardRecord::decode(&v).map_err(|e| VaultError::Internal(e.to_string()))
    }

    fn list(
        &self,
        scope: &str,
        customer: &CustomerNumber,
        threshold: u32,
    ) -> Result<CustomerCards, VaultError> {
        let store = &self.inner.store;
        let records = store
            .scan_prefix(&record::cards_of(scope, customer.as_str()))
            .map_err(internal)?;
        let denied = store
            .get(&record::deny_key(scope, customer.as_str()))
            .map_err(internal)?
            .is_some();
        let status = match (denied, records.is_empty()) {
            (true, _) => CustomerStatus::Deny,
            (false, true) => CustomerStatus::New,
            (false, false) => CustomerStatus::Member,
        };
        let (year, month) = Timestamp::now().year_month();
        let mut cards = Vec::new();
        for (_, v) in records {
            let rec = CardRecord::decode(&v).map_err(|e| VaultError::Internal(e.to_string()))?;
            if rec.successes >= threshold {
                cards.push(ListedCard {
                    token: rec.token,
                    active: !rec.card.expiry.is_expired_at(year, month),
                    card: rec.card,
                    need_cvc: true,
                });
            }
        }
        Ok(CustomerCards { status, cards })
    }

    /// Erases every card whose retention period ended before `now`; returns how many. Each
    /// erasure is its own audited commit, taken under the customer's lock so a concurrent
    /// payment cannot bring a card back.
    pub async fn purge(&self, now: Timestamp) -> Result<u64, VaultError> {
        let mut erased = 0;
        let end = [record::CARD, &[0xff]].concat();
        let mut start = record::CARD.to_vec();
        loop {
            let page = self
                .inner
                .store
                .scan_range(&start, &end, 512)
                .map_err(internal)?;
            let Some((last, _)) = page.last() else { break };
            start = [last.as_slice(), &[0]].concat();
            for (key, value) in page {
                let Some((scope, customer, token)) = record::parse_card_key(&key) else {
                    continue;
                };
                let Ok(rec) = CardRecord::decode(&value) else {
                    continue;
                };
                if rec.retention_start().plus_years(self.inner.retention_years) > now {
                    continue;
                }
                let _guard = self.stripe(&scope, &customer).lock().await;
                let Some(current) = self.inner.store.get(&key).map_err(internal)? else {
                    continue;
                };
                let Ok(rec) = CardRecord::decode(&current) else {
                    continue;
                };
                if rec.retention_start().plus_years(self.inner.retention_years) > now {
                    continue;
                }
                let mut batch = Batch::default();
                erase(&mut batch, &scope, &customer, &rec);
                let event = Event {
                    at_ms: now_ms(),
                    client: "vault".into(),
                    role: None,
                    op: Op::Purge.code(),
                    token: Some(token),
                    scope,
                    customer,
                    outcome: 0,
                };
                self.inner
                    .audit
                    .append(event, batch)
                    .await
                    .map_err(|e| VaultError::Internal(e.to_string()))?;
                erased += 1;
            }
        }
        Ok(erased)
    }

    /// Starts key version N+1: a new KEK in the HSM, a new DEK wrapped by it, every older DEK
    /// re-wrapped under it, then the new DEK seals from now on and records are re-sealed in the
    /// background. Calls in flight keep working: old DEKs still open what they sealed.
    pub async fn rotate(&self) -> Result<u32, VaultError> {
        let _only_one = self.inner.rotation.lock().await;
        let this = self.clone();
        let version = tokio::task::spawn_blocking(move || this.rotate_keys())
            .await
            .map_err(|e| VaultError::Internal(e.to_string()))??;
        let this = self.clone();
        tokio::spawn(async move { this.reseal().await });
        Ok(version)
    }

    fn rotate_keys(&self) -> Result<u32, VaultError> {
        let hsm = &self.inner.hsm;
        let store = &self.inner.store;
        let hsm_err = |e: HsmError| VaultError::Internal(e.to_string());
        let current = current_version(store)
            .map_err(|e| VaultError::Internal(e.to_string()))?
            .unwrap_or(0);
        let newest_kek = hsm
            .kek_versions()
            .map_err(hsm_err)?
            .last()
            .map_or(0, |v| v.0);
        let next = KeyVersion(current.max(newest_kek) + 1);
        hsm.generate_kek(next).map_err(hsm_err)?;
        let (wrapped, dek) = hsm.new_dek(next).map_err(hsm_err)?;
        let mut batch = Batch::default();
        for (k, v) in store.scan_prefix(record::DEK).map_err(internal)? {
            let version = k[record::DEK.len()..]
                .try_into()
                .map(u32::from_be_bytes)
                .unwrap_or(0);
            let old = parse_dek(version, &v).map_err(|e| VaultError::Internal(e.to_string()))?;
            batch.put(k, dek_value(&hsm.rewrap_dek(&old, next).map_err(hsm_err)?));
        }
        batch.put(record::dek_key(next.0), dek_value(&wrapped));
        batch.put(record::CURRENT_KEY, next.0.to_be_bytes().to_vec());
        store.commit_blocking(batch).map_err(internal)?;
        self.inner.keyring.promote(next, &dek);
        Ok(next.0)
    }

    /// Re-seals every record not sealed under the current key; returns how many.
    pub async fn reseal(&self) -> u64 {
        let Some(current) = self.inner.keyring.current_version() else {
            return 0;
        };
        let mut done = 0;
        let end = [record::CARD, &[0xff]].concat();
        let mut start = record::CARD.to_vec();
        loop {
            let Ok(page) = self.inner.store.scan_range(&start, &end, 256) else {
                break;
            };
            let Some((last, _)) = page.last() else { break };
            start = [last.as_slice(), &[0]].concat();
            for (key, value) in page {
                if CardRecord::decode(&value).map_or(true, |r| r.key_version == current) {
                    continue;
                }
                let Some((scope, customer, token)) = record::parse_card_key(&key) else {
                    continue;
                };
                let _guard = self.stripe(&scope, &customer).lock().await;
                let Ok(Some(value)) = self.inner.store.get(&key) else {
                    continue;
                };
                let Ok(mut rec) = CardRecord::decode(&value) else {
                    continue;
                };
                let Ok(customer_number) = CustomerNumber::parse(&customer) else {
                    continue;
                };
                let b = binding(&token, &scope, &customer_number);
                let Ok(plain) = self.inner.keyring.open(rec.key_version, &rec.sealed, &b) else {
                    continue;
                };
                let Ok((version, sealed)) = self.inner.keyring.seal(&plain, &b) else {
                    continue;
                };
                (rec.key_version, rec.sealed) = (version, sealed);
                let mut batch = Batch::default();
                batch.put(key, rec.encode());
                if self.inner.store.commit(batch).await.is_ok() {
                    done += 1;
                }
            }
        }
        done
    }
}

fn event_for(caller: &Caller, op: &Op) -> Event {
    Event {
        at_ms: now_ms(),
        client: caller.client.clone(),
        role: Some(caller.role),
        op: op.code(),
        token: op_token(op),
        scope: String::new(),
        customer: op_customer(op)
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        outcome: 0,
    }
}

fn binding<'a>(token: &'a Token, scope: &'a str, customer: &'a CustomerNumber) -> Binding<'a> {
    Binding {
        token: token.as_bytes(),
        scope,
        customer: customer.as_str(),
    }
}

/// Deletes a card and its fingerprint entry. The store drops the record; the ciphertext is
/// unreadable anyway once it is gone from the index, but see README on page reuse.
fn erase(batch: &mut Batch, scope: &str, customer: &str, rec: &CardRecord) {
    batch.delete(record::card_key(scope, customer, &rec.token));
    batch.delete(record::fingerprint_key(scope, customer, &rec.fingerprint));
}

fn internal(e: StoreError) -> VaultError {
    VaultError::Internal(e.to_string())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The role table: facade saves, lists, removes and sets status; only the authorizer sees a PAN
/// again (and records the payments it made); only operators purge and rotate.
fn allowed(role: Role, op: &Op) -> bool {
    match op {
        Op::Hello { .. } => true,
        Op::Tokenize(_) | Op::Remove { .. } | Op::SetStatus { .. } => role == Role::Facade,
        Op::List { .. } => matches!(role, Role::Facade | Role::Authorizer),
        Op::Detokenize { .. } | Op::RecordPayment { .. } => role == Role::Authorizer,
        Op::Purge | Op::RotateKeys => role == Role::Admin,
    }
}

fn op_token(op: &Op) -> Option<Token> {
    match op {
        Op::Detokenize { token, .. }
        | Op::Remove { token, .. }
        | Op::RecordPayment { token, .. } => Some(*token),
        _ => None,
    }
}

fn op_customer(op: &Op) -> Option<&CustomerNumber> {
    match op {
        Op::Tokenize(t) => Some(&t.customer),
        Op::Detokenize { customer, .. }
        | Op::List { customer, .. }
        | Op::Remove { customer, .. }
        | Op::SetStatus { customer, .. }
        | Op::RecordPayment { customer, .. } => Some(customer),
        Op::Hello { .. } | Op::Purge | Op::RotateKeys => None,
    }
}

fn outcome_code(result: &Result<Reply, VaultError>) -> u8 {
    match result {
        Ok(_) => 0,
        Err(VaultError::BadRequest(_)) => 1,
        Err(VaultError::Unauthenticated) => 2,
        Err(VaultError::Forbidden(_)) => 3,
        Err(VaultError::NotFound) => 4,
        Err(VaultError::CustomerDenied) => 5,
        Err(VaultError::UnknownMerchant) => 6,
        Err(VaultError::Internal(_) | VaultError::Transport(_) | VaultError::Timeout) => 7,
    }
}
