//! Authentication of server-to-server calls: Merchant_ID + Login + Password against the
//! merchant's argon2id hash.
//!
//! Owns three things. A cache of verified credentials, so that a hash is not computed on every
//! request: keyed by HMAC-SHA-256 under a key drawn at start (never stored, never logged) over the
//! merchant, the login, the stored hash and the password, so that neither the cache nor a memory
//! dump holds a password, and a changed hash in the config can never match an old entry. A
//! slow-down of repeated failures per login (a growing delay, capped), each failure an audit
//! event (the API's calls and the cabinet's login alike). And a bound on concurrent hash computations, so that guessing cannot take every core,
//! with one computation per credential at a time: a merchant's burst of requests after a start
//! (64 connections at once) waits for one hash instead of computing 64.
//! Must never log or return a password, a hash or the cache key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
use assist::codes::Fault;
use assist::values::{Login, MerchantId, Password};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::merchants::{Merchant, Merchants};

/// How failures for one login are slowed down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowDown {
    /// Failures answered at once (typos happen).
    pub free: u32,
    /// The delay after the first failure past `free`; it doubles with each further one.
    pub base: Duration,
    /// The most a request waits.
    pub max: Duration,
    /// A login with no failure for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for SlowDown {
    fn default() -> SlowDown {
        SlowDown {
            free: 3,
            base: Duration::from_millis(250),
            max: Duration::from_secs(8),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

impl SlowDown {
    /// The wait before checking a login that has failed `failures` times in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        match failures.checked_sub(self.free) {
            None | Some(0) => Duration::ZERO,
            Some(n) => self
                .base
                .checked_mul(1u32 << (n - 1).min(20))
                .map_or(self.max, |d| d.min(self.max)),
        }
    }
}

/// Counters for the admin endpoint.
#[derive(Debug, Default)]
pub struct AuthCounts {
    /// argon2 verifications computed.
    pub hashes: AtomicU64,
    /// Requests answered from the cache of verified credentials.
    pub cache_hits: AtomicU64,
    /// Wrong credentials.
    pub failures: AtomicU64,
}

impl AuthCounts {
    /// Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, n) in [
            (
                "facade_password_hashes_total",
                "argon2id verifications computed",
                &self.hashes,
            ),
            (
                "facade_auth_cache_hits_total",
                "requests authenticated from the cache of verified credentials",
                &self.cache_hits,
            ),
            (
                "facade_auth_failures_total",
                "requests refused for wrong credentials",
                &self.failures,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                n.load(Relaxed)
            ));
        }
        out
    }
}

/// Entries beyond this are dropped (oldest first is not worth the bookkeeping: the cache is
/// emptied, and the next request of each merchant computes its hash once more).
const MAX_ENTRIES: usize = 4096;
/// A verified credential is trusted this long without a new hash.
const VERIFIED_FOR: Duration = Duration::from_secs(10 * 60);
/// At most this many hashes at once; the rest wait their turn.
const CONCURRENT_HASHES: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Where credentials were presented (the audit event says).
#[derive(Debug, Clone, Copy)]
enum Channel {
    /// A server-to-server call of the merchant API.
    Api,
    /// The cabinet's login form.
    Cabinet,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Api => "merchant API",
            Channel::Cabinet => "cabinet",
        }
    }
}

/// A hash of a password nobody knows, with the default parameters the real ones have, that an
/// unknown login is checked against.
fn unknown_login_hash() -> &'static String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(secret.as_mut());
        Argon2::default()
            .hash_password(secret.as_ref(), &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Credentials as a request presented them.
#[derive(Clone, Copy)]
struct Presented<'a> {
    /// The Merchant_ID asked for (0 for a cabinet login nobody has).
    id: MerchantId,
    /// Its directory entry, if there is one.
    merchant: Option<&'a Merchant>,
    login: &'a Login,
    password: &'a Password,
    channel: Channel,
}

/// Verifies credentials; shared by every request.
pub struct Authenticator {
    key: Zeroizing<[u8; 32]>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Credentials being verified now, each with the turn its other requests wait for.
    verifying: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    failures: Mutex<HashMap<(MerchantId, String), Failures>>,
    hashing: Semaphore,
    policy: SlowDown,
    counts: AuthCounts,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// With a fresh random cache key.
    pub fn new(policy: SlowDown) -> Authenticator {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut());
        Authenticator {
            key,
            verified: Mutex::default(),
            verifying: Mutex::default(),
            failures: Mutex::default(),
            hashing: Semaphore::new(CONCURRENT_HASHES),
            policy,
            counts: AuthCounts::default(),
        }
    }

    /// The counters.
    pub fn counts(&self) -> &AuthCounts {
        &self.counts
    }

    /// Checks a login and password for a merchant: 7/141 when wrong. A login that keeps failing
    /// waits first, per [`SlowDown`].
    pub async fn authenticate(
        &self,
        merchant: &Merchant,
        login: &Login,
        password: &Password,
    ) -> Result<(), Fault> {
        self.check(Presented {
            id: merchant.id,
            merchant: Some(merchant),
            login,
            password,
            channel: Channel::Api,
        })
        .await
    }

    /// The cabinet's login: the merchant whose API login this is, if the password is right;
    /// 7/141 otherwise, with the same slow-down and audit as the API. An unknown login costs a
    /// hash too, so that the time taken does not tell which logins exist.
    pub async fn sign_in<'m>(
        &self,
        merchants: &'m Merchants,
        login: &Login,
        password: &Password,
    ) -> Result<&'m Merchant, Fault> {
        let merchant = merchants.by_login(login);
        // Failures of an unknown login are counted under no merchant (id 0 is never one).
        let id = merchant.map_or(MerchantId(0), |m| m.id);
        self.check(Presented {
            id,
            merchant,
            login,
            password,
            channel: Channel::Cabinet,
        })
        .await?;
        merchant.ok_or_else(Fault::wrong_credentials)
    }

    async fn check(&self, p: Presented<'_>) -> Result<(), Fault> {
        let cache_key = p.merchant.map(|m| self.cache_key(m, p.login, p.password));
        if cache_key.as_ref().is_some_and(|k| self.is_verified(k)) {
            self.counts.cache_hits.fetch_add(1, Relaxed);
            return Ok(());
        }
        // The same credential presented again while its hash is computed waits for that result.
        let turn = cache_key.map(|k| self.turn(k));
        let _turn = match &turn {
            Some(t) => Some(t.lock().await),
            None => None,
        };
        if cache_key.as_ref().is_some_and(|k| self.is_verified(k)) {
            self.counts.cache_hits.fetch_add(1, Relaxed);
            return Ok(());
        }
        let checked = self.check_uncached(&p, cache_key).await;
        if let Some(k) = &cache_key {
            lock(&self.verifying).remove(k);
        }
        checked
    }

    /// The turn of credential `key`: shared by every request presenting it until its check ends.
    fn turn(&self, key: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.verifying).entry(key).or_default().clone()
    }

    async fn check_uncached(
        &self,
        p: &Presented<'_>,
        cache_key: Option<[u8; 32]>,
    ) -> Result<(), Fault> {
        let Presented {
            id,
            merchant,
            login,
            password,
            channel,
        } = *p;
        let who = (id, login.as_str().to_owned());
        let delay = self.policy.delay(self.failures_of(&who));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // The hash is computed even for a wrong login, so that the time taken does not tell
        // whether the login exists.
        let phc = merchant.map_or_else(|| unknown_login_hash().as_str(), |m| m.password_hash());
        let right_password = self.verify(phc, password).await;
        if let (true, Some(m), Some(key)) = (right_password, merchant, cache_key)
            && login == &m.login
        {
            self.remember(key);
            lock(&self.failures).remove(&who);
            return Ok(());
        }
        let count = self.count_failure(who);
        self.counts.failures.fetch_add(1, Relaxed);
        tracing::warn!(
            target: "audit",
            merchant = %id,
            login = login.as_str(),
            failures = count,
            channel = channel.name(),
            "authentication failed"
        );
        Err(Fault::wrong_credentials())
    }

    fn cache_key(&self, merchant: &Merchant, login: &Login, password: &Password) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key.as_ref()) else {
            // HMAC takes a key of any length; this arm cannot be reached.
            return [0; 32];
        };
        // Length-prefixed parts, so that no two different tuples give the same input.
        for part in [
            merchant.id.to_string().as_bytes(),
            login.as_str().as_bytes(),
            merchant.password_hash().as_bytes(),
            password.expose().as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn is_verified(&self, key: &[u8; 32]) -> bool {
        lock(&self.verified)
            .get(key)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut verified = lock(&self.verified);
        if verified.len() >= MAX_ENTRIES {
            verified.retain(|_, at| at.elapsed() < VERIFIED_FOR);
            if verified.len() >= MAX_ENTRIES {
                verified.clear();
            }
        }
        verified.insert(key, Instant::now());
    }

    fn failures_of(&self, who: &(MerchantId, String)) -> u32 {
        lock(&self.failures)
            .get(who)
            .filter(|f| f.last.elapsed() < self.policy.forget_after)
            .map_or(0, |f| f.count)
    }

    fn count_failure(&self, who: (MerchantId, String)) -> u32 {
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_ENTRIES {
            let forget = self.policy.forget_after;
            failures.retain(|_, f| f.last.elapsed() < forget);
        }
        let now = Instant::now();
        let forget = self.policy.forget_after;
        let entry = failures.entry(who).or_insert(Failures {
            count: 0,
            last: now,
        });
        if entry.last.elapsed() >= forget {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.count
    }

    async fn verify(&self, phc: &str, password: &Password) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        self.counts.hashes.fetch_add(1, Relaxed);
        let phc = phc.to_owned();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &hash)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }
}

/// A poisoned lock only means another request panicked mid-update of a plain map; the map is
/// still a valid cache.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// It could never be sent: the API's password rule (8 to 20 characters, no controls).
    #[error("the password {0}")]
    Rule(&'static str),
    /// The hasher failed.
    #[error("argon2: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// A new argon2id PHC string for a password, with the crate's default (OWASP) parameters; the
/// password must pass the API's own rule, so that every service can send it.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
    use assist::values::ParamValue as _;
    let password = Password::parse(password).map_err(|e| HashError::Rule(e.why))?;
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(HashError::Argon2)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merchants::Merchants;
    use assist::values::ParamValue as _;

    /// A merchant whose hash is cheap to verify (the parameters are in the PHC string).
    fn merchant(password: &str) -> Merchants {
        use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
        let cheap = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8, 1, 1, None).unwrap(),
        );
        let phc = cheap
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        Merchants::parse(
            &format!(
                "[[merchants]]\nid = \"7\"\nname = \"n\"\nlogin = \"login_one\"\n\
                 password_hash = \"{phc}\"\ncheckvalue_salt = \"s\"\n"
            ),
            "t",
        )
        .unwrap()
    }

    fn creds(login: &str, password: &str) -> (Login, Password) {
        (
            Login::parse(login).unwrap(),
            Password::parse(password).unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_with_one_credential_compute_one_hash() {
        let auth = Arc::new(Authenticator::new(SlowDown::default()));
        let merchants = Arc::new(merchant("Password1"));
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (auth, merchants) = (auth.clone(), merchants.clone());
                tokio::spawn(async move {
                    let (login, password) = creds("login_one", "Password1");
                    let m = merchants.get(MerchantId(7)).unwrap();
                    auth.authenticate(m, &login, &password).await
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(auth.counts().hashes.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_and_a_new_hash_forgets_them() {
        let auth = Authenticator::new(SlowDown::default());
        let merchants = merchant("Password1");
        let m = merchants.get(MerchantId(7)).unwrap();
        let (login, password) = creds("login_one", "Password1");
        for _ in 0..3 {
            auth.authenticate(m, &login, &password).await.unwrap();
        }
        assert_eq!(
            auth.counts().hashes.load(Relaxed),
            1,
            "one hash for three calls"
        );
        assert_eq!(auth.counts().cache_hits.load(Relaxed), 2);

        // The config changes: the same password under a new hash is verified again.
        let rehashed = merchant("Password1");
        let m2 = rehashed.get(MerchantId(7)).unwrap();
        auth.authenticate(m2, &login, &password).await.unwrap();
        assert_eq!(auth.counts().hashes.load(Relaxed), 2);
        // And an old password under the new hash is not taken from the cache.
        let changed = merchant("Password2");
        let m3 = changed.get(MerchantId(7)).unwrap();
        assert_eq!(
            auth.authenticate(m3, &login, &password).await,
            Err(Fault::wrong_credentials())
        );
    }

    #[tokio::test]
    async fn wrong_login_or_password_is_7_141_and_never_cached() {
        let auth = Authenticator::new(SlowDown::default());
        let merchants = merchant("Password1");
        let m = merchants.get(MerchantId(7)).unwrap();
        let (login, wrong) = creds("login_one", "Password9");
        let (other_login, right) = creds("login_two", "Password1");
        for (l, p) in [(&login, &wrong), (&other_login, &right), (&login, &wrong)] {
            assert_eq!(
                auth.authenticate(m, l, p).await,
                Err(Fault::wrong_credentials())
            );
        }
        assert_eq!(
            auth.counts().hashes.load(Relaxed),
            3,
            "a wrong login is hashed too"
        );
        assert_eq!(auth.counts().failures.load(Relaxed), 3);
    }

    #[test]
    fn the_delay_grows_and_is_capped() {
        let p = SlowDown::default();
        assert_eq!(p.delay(0), Duration::ZERO);
        assert_eq!(p.delay(3), Duration::ZERO);
        assert_eq!(p.delay(4), Duration::from_millis(250));
        assert_eq!(p.delay(5), Duration::from_millis(500));
        assert_eq!(p.delay(8), Duration::from_secs(4));
        assert_eq!(p.delay(9), Duration::from_secs(8));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_for_a_login_wait_and_success_resets_them() {
        let policy = SlowDown {
            free: 1,
            base: Duration::from_secs(2),
            max: Duration::from_secs(5),
            forget_after: Duration::from_secs(3600),
        };
        let auth = Authenticator::new(policy);
        let merchants = merchant("Password1");
        let m = merchants.get(MerchantId(7)).unwrap();
        let (login, wrong) = creds("login_one", "Password9");
        let (_, right) = creds("login_one", "Password1");
        let waited = |n: u32| policy.delay(n);
        for failures_before in 0..4 {
            let start = tokio::time::Instant::now();
            assert!(auth.authenticate(m, &login, &wrong).await.is_err());
            assert!(
                start.elapsed() >= waited(failures_before),
                "{failures_before}"
            );
        }
        // Another login of the same merchant is not slowed by these failures.
        let (other, _) = creds("login_two", "Password1");
        let start = tokio::time::Instant::now();
        assert!(auth.authenticate(m, &other, &wrong).await.is_err());
        assert!(start.elapsed() < policy.base);
        // The right password still gets in (after the wait) and clears the count.
        auth.authenticate(m, &login, &right).await.unwrap();
        let start = tokio::time::Instant::now();
        assert!(auth.authenticate(m, &login, &wrong).await.is_err());
        assert!(start.elapsed() < policy.base, "the count starts again");
    }

    #[test]
    fn hash_password_makes_an_argon2id_phc_string_that_verifies() {
        let phc = hash_password("Demopass2026").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Demopass2026", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"demopass2026", &parsed)
                .is_err()
        );
        assert!(matches!(hash_password("short"), Err(HashError::Rule(_))));
    }
}
