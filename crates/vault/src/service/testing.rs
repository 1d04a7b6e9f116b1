//! What the service's unit tests share: an in-memory store engine (through `Store::with_engine`),
//! a keyring with test keys, the merchants of the end-to-end harness, and a fingerprint made in
//! software. Test code only; nothing here may reach the vault process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use store::{Batch, Engine, Op, Pair, Store, StoreError};

use super::CustomerLocks;
use super::error::CallError;
use super::retention::Sweeps;
use super::rules::Rules;
use crate::audit::AuditLog;
use crate::config::MerchantPolicy;
use crate::fingerprint::{FingerprintKey, Fingerprints};
use crate::keyring::Keyring;
use crate::model::*;
use crate::record::{self, CardRecord};

/// A store engine in a map: atomic by its lock, durable as long as the test runs.
#[derive(Default)]
struct MemoryEngine(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl MemoryEngine {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(key).cloned())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError> {
        Ok(self
            .map()
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError> {
        Ok(self.scan_prefix(prefix)?.pop())
    }
    fn write(&self, batches: &[Batch]) -> Result<(), StoreError> {
        let mut map = self.map();
        for op in batches.iter().flat_map(Batch::ops) {
            match op {
                Op::Put { key, value } => map.insert(key.clone(), value.clone()),
                Op::Delete { key } => map.remove(key),
            };
        }
        Ok(())
    }
}

pub fn memory_store() -> Store {
    Store::with_engine(Arc::new(MemoryEngine::default())).unwrap()
}

pub fn merchant(id: &str) -> MerchantId {
    MerchantId::parse(id).unwrap()
}

pub fn customer(c: &str) -> CustomerNumber {
    CustomerNumber::parse(c).unwrap()
}

/// A request to save `pan` (expiry `MM.YYYY`) for `cust`; the merchant is the scope's business.
pub fn saved_req(cust: &str, pan: &str, expiry: &str) -> TokenizeRequest {
    TokenizeRequest {
        merchant: merchant("452739"),
        customer: customer(cust),
        pan: card::Pan::parse(pan).unwrap(),
        expiry: card::Expiry::parse(expiry).unwrap(),
        holder: Some(CardholderName::parse("IVAN PETROV").unwrap()),
    }
}

/// A software stand-in for the HSM's fingerprint keys (SHA-256 of version and message), counting
/// its calls.
#[derive(Debug, Default)]
pub struct SoftFingerprintKey(std::sync::atomic::AtomicU64);

impl SoftFingerprintKey {
    /// How many fingerprints were made.
    pub fn calls(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl FingerprintKey for SoftFingerprintKey {
    fn mac(&self, version: hsm::KeyVersion, message: &[u8]) -> Result<[u8; 32], hsm::HsmError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Sha256::new()
            .chain_update(version.0.to_be_bytes())
            .chain_update(message)
            .finalize()
            .into())
    }
}

/// A store, a keyring at version 1 and the harness's merchants: 452739 alone (threshold 1),
/// 600001 (threshold 2) and 600002 (threshold 1) in union `group-1`.
pub struct Fixture {
    pub store: Store,
    pub keyring: Keyring,
    /// Under fingerprint key v1, no older scheme.
    pub fingerprints: Fingerprints,
    pub fingerprint_key: Arc<SoftFingerprintKey>,
    pub merchants: HashMap<MerchantId, MerchantPolicy>,
    pub locks: CustomerLocks,
}

impl Fixture {
    pub fn new() -> Fixture {
        let policy = |scope, listing_threshold| MerchantPolicy {
            scope,
            listing_threshold,
        };
        let union = Scope::union("group-1").unwrap();
        let merchants = HashMap::from([
            (
                merchant("452739"),
                policy(Scope::Merchant(merchant("452739")), 1),
            ),
            (merchant("600001"), policy(union.clone(), 2)),
            (merchant("600002"), policy(union, 1)),
        ]);
        let fingerprint_key = Arc::new(SoftFingerprintKey::default());
        Fixture {
            store: memory_store(),
            keyring: Keyring::new(hsm::KeyVersion(1), &hsm::Dek::for_tests([1; 32])),
            fingerprints: Fingerprints::new(fingerprint_key.clone(), 1, Vec::new()),
            fingerprint_key,
            merchants,
            locks: CustomerLocks::new(),
        }
    }

    pub fn rules(&self) -> Rules<'_> {
        Rules {
            store: &self.store,
            keyring: &self.keyring,
            merchants: &self.merchants,
        }
    }

    pub fn sweeps<'a>(&'a self, audit: &'a AuditLog) -> Sweeps<'a> {
        Sweeps {
            store: &self.store,
            audit,
            keyring: &self.keyring,
            fingerprints: &self.fingerprints,
            locks: &self.locks,
            retention_years: 6,
        }
    }

    pub fn commit(&self, batch: Batch) {
        self.store.commit_blocking(batch).unwrap();
    }

    /// Tokenizes and commits, with the software fingerprint key for the HSM's.
    pub fn try_save(
        &self,
        scope: &str,
        cust: &str,
        pan: &str,
        expiry: &str,
    ) -> Result<SavedCard, CallError> {
        let (saved, batch) =
            self.rules()
                .tokenize(scope, saved_req(cust, pan, expiry), &self.fingerprints)?;
        self.commit(batch);
        Ok(saved)
    }

    /// As [`Fixture::try_save`], which must succeed; with the saved card's stored record.
    pub fn save(
        &self,
        scope: &str,
        cust: &str,
        pan: &str,
        expiry: &str,
    ) -> (SavedCard, CardRecord) {
        let saved = self.try_save(scope, cust, pan, expiry).unwrap();
        let rec = self.record(scope, cust, &saved.token);
        (saved, rec)
    }

    pub fn record(&self, scope: &str, cust: &str, token: &Token) -> CardRecord {
        let value = self
            .store
            .get(&record::card_key(scope, cust, token))
            .unwrap()
            .unwrap();
        CardRecord::decode(&value).unwrap()
    }
}
