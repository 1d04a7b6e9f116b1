//! The DEKs this process holds in clear (zeroizing), by version, and the software AES-256-GCM that
//! seals and opens card secrets with them, so that steady-state seal and unseal never call the HSM.
//!
//! Only the current version seals; older versions only open (a retired key cannot encrypt).
//! Must never write a DEK anywhere but wrapped, and never return a plaintext except zeroizing.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hsm::{Dek, KeyVersion};
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("no key of version {0} is loaded")]
    UnknownVersion(u32),
    #[error("sealed data failed authentication (altered, or bound to another token/scope/version)")]
    Authentication,
}

/// What a sealed blob is bound to: opening it under any other binding fails.
#[derive(Debug)]
pub struct Binding<'a> {
    pub token: &'a [u8; 16],
    pub scope: &'a str,
    pub customer: &'a str,
}

impl Binding<'_> {
    fn aad(&self, version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + self.scope.len() + self.customer.len() + 6);
        aad.extend_from_slice(self.token);
        aad.extend_from_slice(self.scope.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.customer.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }
}

/// A key that may still open what it sealed but never seal again.
struct RetiredKey(Aes256Gcm);

/// The key new seals use.
struct CurrentKey {
    version: u32,
    cipher: Aes256Gcm,
}

struct Keys {
    current: CurrentKey,
    retired: BTreeMap<u32, RetiredKey>,
}

/// Shared by every request handler; rotation swaps the current key under a short write lock.
#[derive(Clone)]
pub struct Keyring(Arc<RwLock<Keys>>);

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(current {:?})", self.current_version())
    }
}

fn cipher(dek: &Dek) -> Aes256Gcm {
    Aes256Gcm::new(dek.expose().into())
}

impl Keyring {
    pub fn new(current: KeyVersion, dek: &Dek) -> Keyring {
        Keyring(Arc::new(RwLock::new(Keys {
            current: CurrentKey {
                version: current.0,
                cipher: cipher(dek),
            },
            retired: BTreeMap::new(),
        })))
    }

    /// Adds an older key, for opening only.
    pub fn add_retired(&self, version: KeyVersion, dek: &Dek) {
        if let Ok(mut k) = self.0.write() {
            k.retired.insert(version.0, RetiredKey(cipher(dek)));
        }
    }

    /// Drops a retired key once nothing stored is sealed under it; the current key stays.
    pub fn forget(&self, version: KeyVersion) {
        if let Ok(mut k) = self.0.write() {
            k.retired.remove(&version.0);
        }
    }

    /// Makes `dek` the sealing key; the previous one is retired (open only).
    pub fn promote(&self, version: KeyVersion, dek: &Dek) {
        if let Ok(mut k) = self.0.write() {
            let old = std::mem::replace(
                &mut k.current,
                CurrentKey {
                    version: version.0,
                    cipher: cipher(dek),
                },
            );
            k.retired.insert(old.version, RetiredKey(old.cipher));
        }
    }

    pub fn current_version(&self) -> Option<u32> {
        self.0.read().ok().map(|k| k.current.version)
    }

    /// Seals `plain` under the current key; returns (version, nonce || ciphertext || tag).
    pub fn seal(&self, plain: &[u8], binding: &Binding<'_>) -> Result<(u32, Vec<u8>), SealError> {
        let keys = self.0.read().map_err(|_| SealError::UnknownVersion(0))?;
        let version = keys.current.version;
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = binding.aad(version);
        let ct = keys
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Authentication)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok((version, out))
    }

    /// Opens what [`Keyring::seal`] made with key `version` under the same binding.
    pub fn open(
        &self,
        version: u32,
        sealed: &[u8],
        binding: &Binding<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let keys = self
            .0
            .read()
            .map_err(|_| SealError::UnknownVersion(version))?;
        let cipher = if keys.current.version == version {
            &keys.current.cipher
        } else {
            &keys
                .retired
                .get(&version)
                .ok_or(SealError::UnknownVersion(version))?
                .0
        };
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Authentication);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = binding.aad(version);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dek(b: u8) -> Dek {
        // Test keys only; real DEKs come from the HSM.
        hsm::Dek::for_tests([b; 32])
    }

    #[test]
    fn sealed_data_is_bound_to_token_scope_customer_and_version() {
        let ring = Keyring::new(KeyVersion(1), &dek(1));
        let token = [7u8; 16];
        let b = Binding {
            token: &token,
            scope: "m:1",
            customer: "c",
        };
        let (v, sealed) = ring.seal(b"4111111111111111", &b).unwrap();
        assert_eq!(v, 1);
        assert!(!sealed.windows(16).any(|w| w == b"4111111111111111"));
        assert_eq!(&ring.open(1, &sealed, &b).unwrap()[..], b"4111111111111111");
        let other = [8u8; 16];
        assert_eq!(
            ring.open(1, &sealed, &Binding { token: &other, ..b }),
            Err(SealError::Authentication)
        );
        assert_eq!(
            ring.open(1, &sealed, &Binding { scope: "m:2", ..b }),
            Err(SealError::Authentication)
        );
        assert_eq!(
            ring.open(1, &sealed, &Binding { customer: "d", ..b }),
            Err(SealError::Authentication)
        );
        assert_eq!(ring.open(2, &sealed, &b), Err(SealError::UnknownVersion(2)));
        // After rotation the old key opens, the new key seals.
        ring.promote(KeyVersion(2), &dek(2));
        assert_eq!(&ring.open(1, &sealed, &b).unwrap()[..], b"4111111111111111");
        let (v2, resealed) = ring.seal(b"4111111111111111", &b).unwrap();
        assert_eq!(v2, 2);
        assert_eq!(ring.open(1, &resealed, &b), Err(SealError::Authentication));
    }
}
