//! The cabinet's sessions: in memory, bounded, each keyed by a random 256-bit id that only the
//! merchant's browser holds (in an HttpOnly cookie), with an idle and an absolute expiry, and its
//! own CSRF token.
//!
//! Owns the session table and the CSRF comparison. The table is keyed by SHA-256 of the id, so a
//! memory dump does not hand out live cookies. Must never log an id or a token, nor compare a
//! token in time that depends on where it differs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use assist::values::MerchantId;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// How long sessions live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long is closed.
    pub idle: Duration,
    /// A session is closed this long after its login, however busy.
    pub absolute: Duration,
    /// Most sessions at once; past it the least recently used one is closed, so that logins in
    /// a loop cannot grow memory without end.
    pub max: usize,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(15 * 60),
            absolute: Duration::from_secs(8 * 60 * 60),
            max: 10_000,
        }
    }
}

/// What a live session is known by in the request that presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Active {
    /// Whose cabinet it is.
    pub(crate) merchant: MerchantId,
    /// The token every form of this session carries (hex).
    pub(crate) csrf: String,
    /// A message for the next page after a POST (POST-redirect-GET), taken once.
    pub(crate) flash: Option<Flash>,
}

/// The outcome of a form, shown once on the page the browser is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// Whether it reports a success.
    pub(crate) ok: bool,
    /// The sentence (already in the session's language).
    pub(crate) text: String,
}

struct Session {
    merchant: MerchantId,
    csrf: Zeroizing<String>,
    opened: Instant,
    seen: Instant,
    flash: Option<Flash>,
}

/// Every open session.
pub(crate) struct Sessions {
    policy: SessionPolicy,
    by_key: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A fresh random value of 256 bits, hex.
pub(crate) fn random_hex() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(bytes.as_mut());
    Zeroizing::new(hex::encode(bytes.as_ref()))
}

/// Whether two tokens are equal, in time that does not depend on where they differ (their length
/// is no secret: every token has the same).
pub(crate) fn same_token(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn new(policy: SessionPolicy) -> Sessions {
        Sessions {
            policy,
            by_key: Mutex::default(),
        }
    }

    pub(crate) fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Opens a session for `merchant`; answers its id, for the cookie only.
    pub(crate) fn open(&self, merchant: MerchantId, now: Instant) -> Zeroizing<String> {
        let id = random_hex();
        let mut sessions = lock(&self.by_key);
        if sessions.len() >= self.policy.max {
            sessions.retain(|_, s| self.alive(s, now));
        }
        if sessions.len() >= self.policy.max
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            key(&id),
            Session {
                merchant,
                csrf: random_hex(),
                opened: now,
                seen: now,
                flash: None,
            },
        );
        id
    }

    /// The live session of this id, now used (its idle clock starts again); its flash is taken.
    /// An expired one is closed and not found.
    pub(crate) fn touch(&self, id: &str, now: Instant) -> Option<Active> {
        let k = key(id);
        let mut sessions = lock(&self.by_key);
        let session = sessions.get_mut(&k)?;
        if !self.alive(session, now) {
            sessions.remove(&k);
            return None;
        }
        session.seen = now;
        Some(Active {
            merchant: session.merchant,
            csrf: session.csrf.to_string(),
            flash: session.flash.take(),
        })
    }

    /// Leaves a message for the session's next page.
    pub(crate) fn flash(&self, id: &str, flash: Flash) {
        if let Some(s) = lock(&self.by_key).get_mut(&key(id)) {
            s.flash = Some(flash);
        }
    }

    /// Closes a session (logout).
    pub(crate) fn close(&self, id: &str) {
        lock(&self.by_key).remove(&key(id));
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.seen) < self.policy.idle
            && now.saturating_duration_since(s.opened) < self.policy.absolute
    }
}

/// A poisoned lock only means another request panicked mid-update of a plain map; the map is
/// still valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: MerchantId = MerchantId(452739);

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
            max: 3,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_only() {
        let sessions = Sessions::new(policy());
        let now = Instant::now();
        let id = sessions.open(M, now);
        assert_eq!(id.len(), 64, "256 bits in hex");
        assert_eq!(sessions.touch(&id, now).map(|a| a.merchant), Some(M));
        assert_eq!(sessions.touch(&random_hex(), now), None);
    }

    #[test]
    fn an_idle_session_expires_and_use_keeps_it_alive() {
        let sessions = Sessions::new(policy());
        let t0 = Instant::now();
        let used = sessions.open(M, t0);
        let idle = sessions.open(M, t0);
        let t1 = t0 + Duration::from_secs(50);
        assert!(sessions.touch(&used, t1).is_some());
        let t2 = t0 + Duration::from_secs(100);
        assert!(sessions.touch(&used, t2).is_some(), "used 50 s ago");
        assert!(sessions.touch(&idle, t2).is_none(), "unused for 100 s");
    }

    #[test]
    fn a_busy_session_still_ends_at_its_absolute_expiry() {
        let sessions = Sessions::new(policy());
        let t0 = Instant::now();
        let id = sessions.open(M, t0);
        let mut t = t0;
        while t < t0 + Duration::from_secs(280) {
            t += Duration::from_secs(40);
            assert!(sessions.touch(&id, t).is_some());
        }
        assert!(sessions.touch(&id, t0 + Duration::from_secs(300)).is_none());
    }

    #[test]
    fn past_the_bound_the_least_recently_used_session_goes() {
        let sessions = Sessions::new(policy());
        let t0 = Instant::now();
        let ids: Vec<_> = (0..3)
            .map(|i| sessions.open(M, t0 + Duration::from_secs(i)))
            .collect();
        sessions.touch(&ids[0], t0 + Duration::from_secs(5));
        let newest = sessions.open(M, t0 + Duration::from_secs(6));
        let t = t0 + Duration::from_secs(7);
        assert!(sessions.touch(&ids[1], t).is_none(), "least recently used");
        for id in [&ids[0], &ids[2], &newest] {
            assert!(sessions.touch(id, t).is_some());
        }
    }

    #[test]
    fn logout_closes_the_session() {
        let sessions = Sessions::new(policy());
        let now = Instant::now();
        let id = sessions.open(M, now);
        sessions.close(&id);
        assert!(sessions.touch(&id, now).is_none());
    }

    #[test]
    fn each_session_has_its_own_csrf_token_and_a_flash_is_shown_once() {
        let sessions = Sessions::new(policy());
        let now = Instant::now();
        let a = sessions.open(M, now);
        let b = sessions.open(M, now);
        let (ta, tb) = (
            sessions.touch(&a, now).unwrap(),
            sessions.touch(&b, now).unwrap(),
        );
        assert_ne!(ta.csrf, tb.csrf);
        let flash = Flash {
            ok: true,
            text: "done".into(),
        };
        sessions.flash(&a, flash.clone());
        assert_eq!(sessions.touch(&a, now).unwrap().flash, Some(flash));
        assert_eq!(sessions.touch(&a, now).unwrap().flash, None);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        let t = random_hex();
        assert!(same_token(&t, &t.clone()));
        let mut other = t.to_string();
        other.replace_range(63.., if t.ends_with('0') { "1" } else { "0" });
        assert!(!same_token(&t, &other));
        assert!(!same_token(&t, ""));
        assert!(!same_token(&t, &t[..32]));
    }
}
