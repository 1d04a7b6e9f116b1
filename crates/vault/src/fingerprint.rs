//! The keyed fingerprint that finds the same card again, and its migrations.
//!
//! A fingerprint is HMAC-SHA-256 under an HSM fingerprint key of the customer-list scope and the
//! PAN, each length-prefixed after a domain tag, so one card saved under two scopes (two merchants,
//! or a merchant and a union) gives unrelated values and nothing in the database links them.
//! Records made before that carry an HMAC of the PAN alone under key v1 ([`Scheme::PanOnly`]);
//! records made before a rotation of the fingerprint key carry the older version. Until the
//! background pass has rewritten them, tokenize also looks a card up under each older scheme.
//!
//! Owns the message format, which scheme is current, and which older ones may still be stored.
//! Must never log, store or return a PAN or the message built from it except as the HMAC.

use std::sync::{Arc, RwLock};

use card::Pan;
use hsm::{Hsm, HsmError, KeyVersion};
use zeroize::Zeroizing;

use crate::wire::Writer;

/// Separates fingerprint messages from anything else the key might ever sign.
const DOMAIN: &[u8] = b"vault-fingerprint/scope-pan/v1";

/// How a stored fingerprint was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Before scopes were bound: HMAC of the PAN alone, under fingerprint key v1.
    PanOnly,
    /// HMAC of the domain tag, the scope and the PAN under fingerprint key version `.0`.
    Scoped(u32),
}

impl Scheme {
    /// The fingerprint key version the scheme signs with.
    pub fn key(self) -> KeyVersion {
        match self {
            Scheme::PanOnly => KeyVersion(1),
            Scheme::Scoped(v) => KeyVersion(v),
        }
    }

    /// What is signed: for [`Scheme::Scoped`], every part length-prefixed, so no (scope, PAN)
    /// pair can be read as another.
    fn message(self, scope: &str, pan: &Pan) -> Zeroizing<Vec<u8>> {
        // Room for the three length prefixes and the longest PAN (19), so the zeroizing vector
        // never reallocates (which would leave an unwiped copy behind).
        let mut m = Zeroizing::new(Vec::with_capacity(DOMAIN.len() + scope.len() + 32));
        match self {
            Scheme::PanOnly => m.put_slice(pan.expose()),
            Scheme::Scoped(_) => {
                m.put_bytes(DOMAIN);
                m.put_str(scope);
                m.put_bytes(pan.expose());
            }
        }
        m
    }
}

/// The HMAC the fingerprints are made with: the HSM's fingerprint keys in the vault, a software
/// stand-in in unit tests.
pub trait FingerprintKey: Send + Sync + std::fmt::Debug {
    /// HMAC-SHA-256 of `message` under fingerprint key `version`.
    fn mac(&self, version: KeyVersion, message: &[u8]) -> Result<[u8; 32], HsmError>;
}

impl FingerprintKey for Hsm {
    fn mac(&self, version: KeyVersion, message: &[u8]) -> Result<[u8; 32], HsmError> {
        self.fingerprint_with(version, message)
    }
}

#[derive(Debug)]
struct State {
    current: u32,
    /// Schemes some stored record may still carry, newest first; empty once a pass found none.
    older: Vec<Scheme>,
}

/// The current fingerprint scheme and the older ones still to be migrated. Cheap to share.
#[derive(Debug, Clone)]
pub struct Fingerprints {
    key: Arc<dyn FingerprintKey>,
    state: Arc<RwLock<State>>,
}

impl Fingerprints {
    /// Fingerprints under key version `current`, with `older` schemes possibly still stored.
    pub fn new(key: Arc<dyn FingerprintKey>, current: u32, older: Vec<Scheme>) -> Fingerprints {
        Fingerprints {
            key,
            state: Arc::new(RwLock::new(State { current, older })),
        }
    }

    /// For a vault opening on `versions` (the fingerprint key versions on the token, ascending):
    /// the newest is current; every older one, and the PAN-only scheme while v1 exists, may still
    /// be stored until the first pass has looked.
    pub fn opening(key: Arc<dyn FingerprintKey>, versions: &[KeyVersion]) -> Option<Fingerprints> {
        let current = versions.last()?.0;
        let mut older: Vec<Scheme> = versions
            .iter()
            .rev()
            .filter(|v| v.0 != current)
            .map(|v| Scheme::Scoped(v.0))
            .collect();
        if versions.first() == Some(&KeyVersion(1)) {
            older.push(Scheme::PanOnly);
        }
        Some(Fingerprints::new(key, current, older))
    }

    /// The scheme new fingerprints are made with.
    pub fn current(&self) -> Scheme {
        Scheme::Scoped(self.state.read().map_or(0, |s| s.current))
    }

    /// The schemes a stored record may still carry besides the current one, newest first.
    pub fn older(&self) -> Vec<Scheme> {
        self.state
            .read()
            .map_or_else(|_| Vec::new(), |s| s.older.clone())
    }

    /// The fingerprint of `pan` in `scope` under `scheme`: one HSM call.
    pub fn of(&self, scheme: Scheme, scope: &str, pan: &Pan) -> Result<[u8; 32], HsmError> {
        self.key.mac(scheme.key(), &scheme.message(scope, pan))
    }

    /// Key `version` now makes fingerprints; the previous one becomes an older scheme.
    pub fn rotated_to(&self, version: u32) {
        if let Ok(mut s) = self.state.write() {
            let previous = Scheme::Scoped(s.current);
            s.older.insert(0, previous);
            s.current = version;
        }
    }

    /// A pass found no record under an older scheme: lookups stop trying them.
    pub fn migrated(&self) {
        if let Ok(mut s) = self.state.write() {
            s.older.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC stand-in: SHA-256 of the version and the message.
    #[derive(Debug)]
    struct Soft;

    impl FingerprintKey for Soft {
        fn mac(&self, version: KeyVersion, message: &[u8]) -> Result<[u8; 32], HsmError> {
            use sha2::Digest;
            Ok(sha2::Sha256::new()
                .chain_update(version.0.to_be_bytes())
                .chain_update(message)
                .finalize()
                .into())
        }
    }

    #[test]
    fn the_scope_is_bound_without_ambiguity() {
        let pan = Pan::parse("4111111111111111").unwrap();
        let s = Scheme::Scoped(1);
        assert_ne!(s.message("m:1", &pan)[..], s.message("m:2", &pan)[..]);
        assert_ne!(
            s.message("m:1", &pan)[..],
            Scheme::PanOnly.message("m:1", &pan)[..]
        );
        assert_eq!(&Scheme::PanOnly.message("m:1", &pan)[..], pan.expose());
    }

    #[test]
    fn opening_lists_every_older_scheme_and_rotation_adds_one() {
        let versions = [KeyVersion(1), KeyVersion(2)];
        let f = Fingerprints::opening(Arc::new(Soft), &versions).unwrap();
        assert_eq!(f.current(), Scheme::Scoped(2));
        assert_eq!(f.older(), [Scheme::Scoped(1), Scheme::PanOnly]);
        f.migrated();
        assert!(f.older().is_empty());
        f.rotated_to(3);
        assert_eq!(
            (f.current(), f.older()),
            (Scheme::Scoped(3), vec![Scheme::Scoped(2)])
        );
        assert!(Fingerprints::opening(Arc::new(Soft), &[]).is_none());
    }
}
