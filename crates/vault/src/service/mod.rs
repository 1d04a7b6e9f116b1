//! The card-on-file service behind the protocol server: a running vault's shared state (store,
//! HSM, keyring, audit appender, merchant policies, per-customer locks), split by job:
//!
//! - `keys`: key bootstrap (`vault init`), rotation and the retirement that ends it;
//! - `rules`: the One Click rules (scopes and unions, Member/Deny, listing threshold, expiry,
//!   the same card found again), as reads and changes over the store;
//! - `dispatch`: the role table, the typed read/write/admin paths, and the one place a call is
//!   answered after its audit entry is durable;
//! - `retention`: the purge and re-seal (and re-fingerprint) sweeps;
//! - `payments`: detokenize grants, the payment a detokenize served (for its reversal), and
//!   recording a payment once;
//! - `budget`: each client's detokenize rate and its alert threshold;
//! - `connections`: the audit entries of connections (logins, pre-authentication failures and
//!   their rate-limited summaries).
//!
//! Must never store a CVC, and never let a PAN reach an error, a log line or the audit log.

mod budget;
mod connections;
mod dispatch;
mod error;
mod keys;
mod payments;
mod retention;
mod rules;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hsm::Hsm;
use store::Store;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use dispatch::Caller;
pub use error::{CallError, Chain, OpenError};
pub use keys::{Initialized, Retired, init};
pub use retention::Resealed;

use crate::audit::{AuditError, AuditLog};
use crate::checkpoint::{self, Sealer};
use crate::config::{Config, MerchantPolicy, PaymentPolicy};
use crate::fingerprint::Fingerprints;
use crate::keyring::Keyring;
use crate::metrics::VaultMetrics;
use crate::model::{AuditSummary, MerchantId, Timestamp};
use budget::DetokenizeBudget;
use payments::{Grants, Payments};
use retention::Sweeps;
use rules::Rules;

/// The running service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CardVault {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// Fingerprints (one HMAC per tokenize) and rotation; steady-state sealing never calls it.
    hsm: Hsm,
    keyring: Keyring,
    /// The current fingerprint scheme, and the older ones records may still carry.
    fingerprints: Fingerprints,
    audit: AuditLog,
    merchants: HashMap<MerchantId, MerchantPolicy>,
    retention_years: u16,
    locks: CustomerLocks,
    /// One rotation at a time, and no rotation between a pass's final count and the retirement
    /// of the keys it found unused.
    rotation: Mutex<()>,
    metrics: Arc<VaultMetrics>,
    payments: PaymentPolicy,
    /// Detokenize grants outstanding (in memory: see `payments`).
    grants: Grants,
    /// Each client's detokenize rate.
    budget: DetokenizeBudget,
    /// Seals the audit chain's head in the HSM into the checkpoint file.
    sealer: Arc<Sealer>,
}

impl CardVault {
    /// Loads and unwraps every DEK (the only HSM unwraps until the next rotation), verifies the
    /// audit log against its sealed checkpoints (a broken log refuses to open), and starts the
    /// audit appender and its checkpoints. Must be called inside a tokio runtime.
    pub fn open(config: &Config, store: Store, hsm: Hsm) -> Result<CardVault, OpenError> {
        let keyring = keys::load(&store, &hsm)?;
        let fingerprints =
            Fingerprints::opening(Arc::new(hsm.clone()), &hsm.fingerprint_versions()?)
                .ok_or(OpenError::NotInitialized)?;
        hsm.ensure_audit_key()?;
        let sealer = Arc::new(Sealer::new(hsm.clone(), config.audit_head_file()));
        let log_is_empty = store.last_with_prefix(b"audit/")?.is_none();
        sealer.prepare(log_is_empty).map_err(AuditError::from)?;
        let verified = checkpoint::verify_sealed(&store, &sealer)?;
        tracing::info!(
            entries = verified.entries,
            sealed_through = verified.sealed_through,
            "audit log verified against its checkpoints"
        );
        let audit = AuditLog::start(store.clone())?;
        tokio::spawn(checkpoint::keep_sealing(
            Arc::clone(&sealer),
            audit.head(),
            config.audit.checkpoint_every,
            std::time::Duration::from_secs(config.audit.checkpoint_secs),
        ));
        let metrics = Arc::<VaultMetrics>::default();
        let budget = DetokenizeBudget::new(
            config.detokenize,
            config.clients.iter().map(|c| c.id.as_str()),
            &metrics,
        );
        Ok(CardVault {
            inner: Arc::new(Inner {
                store,
                hsm,
                keyring,
                fingerprints,
                audit,
                merchants: config.merchants.clone(),
                retention_years: config.retention_years,
                locks: CustomerLocks::new(),
                rotation: Mutex::new(()),
                metrics,
                payments: config.payments,
                grants: Grants::new(config.payments),
                budget,
                sealer,
            }),
        })
    }

    /// The process's metrics, shared with the server (see [`crate::metrics`]).
    pub fn metrics(&self) -> &Arc<VaultMetrics> {
        &self.inner.metrics
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            store: &self.inner.store,
            keyring: &self.inner.keyring,
            merchants: &self.inner.merchants,
        }
    }

    fn payments(&self) -> Payments<'_> {
        Payments {
            store: &self.inner.store,
            policy: &self.inner.payments,
        }
    }

    fn sweeps(&self) -> Sweeps<'_> {
        Sweeps {
            store: &self.inner.store,
            audit: &self.inner.audit,
            keyring: &self.inner.keyring,
            fingerprints: &self.inner.fingerprints,
            locks: &self.inner.locks,
            retention_years: self.inner.retention_years,
        }
    }

    /// Erases every card whose retention period ended before `now`; returns how many. Each
    /// erasure is its own audited commit. Counted in the metrics (`purged`, and a failed sweep in
    /// `sweep_failures`, an audit commit that failed also in `audit_failures`).
    pub async fn purge(&self, now: Timestamp) -> Result<u64, CallError> {
        let metrics = &self.inner.metrics;
        let result = self.sweeps().purge(now).await;
        match &result {
            Ok(erased) => {
                metrics.purged.add(*erased);
                tracing::info!(erased, "purge done");
            }
            Err(e) => {
                metrics.sweep_failures.inc();
                if matches!(e, CallError::Audit(_)) {
                    metrics.audit_failures.inc();
                }
                tracing::error!(error = %Chain(e), "purge failed");
            }
        }
        result
    }

    /// Verifies the audit log against its sealed checkpoints, in the running vault (entries
    /// appended meanwhile are checked as chain links).
    pub async fn verify_audit(&self) -> Result<AuditSummary, CallError> {
        let this = self.clone();
        let inner = move || checkpoint::verify_sealed(&this.inner.store, &this.inner.sealer);
        Ok(tokio::task::spawn_blocking(inner).await??)
    }

    /// Seals the audit log's current durable head (at shutdown, so the window an attacker with
    /// database access has is only what a crash leaves).
    pub async fn seal_audit(&self) -> Result<(), CallError> {
        let (seq, head) = *self.inner.audit.head().borrow();
        let sealer = Arc::clone(&self.inner.sealer);
        tokio::task::spawn_blocking(move || sealer.seal(seq, &head))
            .await?
            .map_err(AuditError::from)?;
        Ok(())
    }

    /// Re-seals and re-fingerprints every record that is not current, then counts what is left
    /// (the `reseal_backlog` metric); when nothing is, retires the keys no record needs any more
    /// (see `keys::retire`). A pass that skipped records counts as a sweep failure.
    pub async fn reseal(&self) -> Resealed {
        let done = self.sweeps().reseal().await;
        let metrics = &self.inner.metrics;
        if done.skipped > 0 {
            metrics.sweep_failures.inc();
        }
        let _no_rotation_meanwhile = self.inner.rotation.lock().await;
        match self.sweeps().backlog() {
            Ok(0) => {
                metrics.reseal_backlog.set(0);
                if let Err(e) = self.retire().await {
                    metrics.sweep_failures.inc();
                    tracing::error!(error = %Chain(&e), "retiring unused keys failed");
                }
            }
            Ok(left) => {
                metrics.reseal_backlog.set(left);
                tracing::warn!(
                    left,
                    "records remain under a retired key or fingerprint scheme: retired keys are kept"
                );
            }
            Err(e) => {
                metrics.sweep_failures.inc();
                tracing::error!(error = %Chain(&e), "cannot count the re-seal backlog");
            }
        }
        done
    }

    /// Deletes retired DEKs and destroys retired KEKs and fingerprint keys; lookups stop trying
    /// older fingerprint schemes. The caller has found no record that needs them, and holds the
    /// rotation lock.
    async fn retire(&self) -> Result<(), CallError> {
        let this = self.clone();
        let retired = tokio::task::spawn_blocking(move || {
            let inner = &this.inner;
            let current = inner.fingerprints.current().key();
            keys::retire(&inner.store, &inner.hsm, &inner.keyring, current)
        })
        .await??;
        self.inner.fingerprints.migrated();
        if retired != Retired::default() {
            tracing::info!(
                deks = ?retired.deks,
                keks = ?retired.keks,
                fingerprint_keys = ?retired.fingerprint_keys,
                "retired keys no record needs any more"
            );
        }
        Ok(())
    }

    /// Starts key version N+1 (see `keys::rotate`), then re-seals records in the background.
    /// Calls in flight keep working: old DEKs still open what they sealed.
    pub async fn rotate(&self) -> Result<u32, CallError> {
        let _only_one = self.inner.rotation.lock().await;
        let this = self.clone();
        let version = tokio::task::spawn_blocking(move || {
            let inner = &this.inner;
            keys::rotate(&inner.store, &inner.hsm, &inner.keyring)
        })
        .await??;
        self.after_rotation();
        Ok(version)
    }

    /// Starts fingerprint key version N+1: new cards are fingerprinted under it at once, stored
    /// ones are re-fingerprinted in the background (found meanwhile under the older version), and
    /// the older key is destroyed once none is left under it.
    pub async fn rotate_fingerprint(&self) -> Result<u32, CallError> {
        let _only_one = self.inner.rotation.lock().await;
        let hsm = self.inner.hsm.clone();
        let version = tokio::task::spawn_blocking(move || hsm.rotate_fingerprint_key()).await??;
        self.inner.fingerprints.rotated_to(version.0);
        self.after_rotation();
        Ok(version.0)
    }

    /// The background pass after a rotation. It first waits for every write that may have sealed
    /// or fingerprinted under the old key to be durable (each holds its customer's lock until
    /// then), so that the pass and its final count see them.
    fn after_rotation(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            this.inner.locks.barrier().await;
            this.reseal().await
        });
    }
}

/// Locks that serialize the read-modify-write of one customer's records, hash-striped so their
/// number is fixed. A guard is owned, so it can be held until the change is durable.
#[derive(Debug)]
pub struct CustomerLocks(Vec<Arc<Mutex<()>>>);

impl CustomerLocks {
    const STRIPES: usize = 4096;

    fn new() -> CustomerLocks {
        CustomerLocks(
            (0..Self::STRIPES)
                .map(|_| Arc::new(Mutex::new(())))
                .collect(),
        )
    }

    /// Returns once every lock held when it was called has been let go.
    async fn barrier(&self) {
        for stripe in &self.0 {
            drop(stripe.lock().await);
        }
    }

    async fn lock(&self, scope: &str, customer: &str) -> OwnedMutexGuard<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (scope, customer).hash(&mut h);
        let stripe = usize::try_from(h.finish() % Self::STRIPES as u64).unwrap_or(0);
        Arc::clone(&self.0[stripe]).lock_owned().await
    }
}
