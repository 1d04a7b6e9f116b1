//! Key bootstrap and rotation: which DEK versions exist (stored wrapped under `dek/<N>`, see
//! `record.rs`), which one seals (`meta/current-key`), and the HSM calls that create, unwrap and
//! re-wrap them.
//!
//! Owns the key records, the order of a rotation (new KEK, new DEK, every older DEK re-wrapped,
//! one commit, then the keyring switches) and the retirement that ends it ([`retire`]: retired
//! DEK records deleted, retired KEKs and fingerprint keys destroyed). Must never write a DEK
//! except wrapped, and never destroy a key a stored record may still need: [`retire`] runs only
//! after a pass found nothing left under an older key (re-sealing is `retention.rs`'s job).

use hsm::{Hsm, KeyVersion, WrappedDek};
use store::{Batch, Store};

use super::error::OpenError;
use crate::keyring::Keyring;
use crate::record;

/// What `vault init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initialized {
    /// There was no current key: a first DEK was made and stored wrapped (under a new KEK
    /// unless the token had one).
    Created {
        /// The version of the new DEK.
        version: u32,
    },
    /// The current DEK was there and unwraps; only a missing fingerprint or audit key was made.
    Found {
        /// The current DEK version.
        version: u32,
    },
}

/// Creates the keys when there are none (a KEK in the HSM unless one exists, the fingerprint key,
/// a first DEK wrapped and stored), or checks that the existing ones are usable.
pub fn init(store: &Store, hsm: &Hsm) -> Result<Initialized, OpenError> {
    hsm.ensure_fingerprint_key()?;
    hsm.ensure_audit_key()?;
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

/// Unwraps every stored DEK (the only HSM unwraps until the next rotation): the current one
/// seals, the others only open.
pub fn load(store: &Store, hsm: &Hsm) -> Result<Keyring, OpenError> {
    let current = current_version(store)?.ok_or(OpenError::NotInitialized)?;
    let mut keyring = None;
    let mut retired = Vec::new();
    for (version, wrapped) in stored_deks(store)? {
        let dek = hsm.unwrap_dek(&wrapped)?;
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
    Ok(keyring)
}

/// Starts key version N+1 (N the newer of the stored current version and the newest KEK on the
/// token, so a rotation cut short before its commit is not reused): a new KEK, a new DEK wrapped
/// by it, every older DEK re-wrapped under it without leaving the HSM, all in one commit; then
/// `keyring` seals with the new DEK. Blocking: HSM calls and a durable commit.
pub fn rotate(store: &Store, hsm: &Hsm, keyring: &Keyring) -> Result<u32, OpenError> {
    let current = current_version(store)?.unwrap_or(0);
    let newest_kek = hsm.kek_versions()?.last().map_or(0, |v| v.0);
    let next = KeyVersion(current.max(newest_kek) + 1);
    hsm.generate_kek(next)?;
    let (wrapped, dek) = hsm.new_dek(next)?;
    let mut batch = Batch::default();
    for (version, old) in stored_deks(store)? {
        batch.put(
            record::dek_key(version),
            dek_value(&hsm.rewrap_dek(&old, next)?),
        );
    }
    batch.put(record::dek_key(next.0), dek_value(&wrapped));
    batch.put(record::CURRENT_KEY, next.0.to_be_bytes().to_vec());
    store.commit_blocking(batch)?;
    keyring.promote(next, &dek);
    Ok(next.0)
}

/// What [`retire`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retired {
    /// DEK versions whose records were deleted from the database.
    pub deks: Vec<u32>,
    /// KEK versions destroyed on the token.
    pub keks: Vec<KeyVersion>,
    /// Fingerprint key versions destroyed on the token.
    pub fingerprint_keys: Vec<KeyVersion>,
}

/// Ends a rotation once nothing stored needs the older keys (the caller has checked that no
/// record is sealed under an older DEK or fingerprinted under an older key, and holds the
/// rotation lock so no rotation starts meanwhile): deletes every DEK record but the current one
/// and drops those DEKs from `keyring`, destroys every KEK older than the one wrapping the
/// current DEK, and every fingerprint key older than `fingerprint_current`. Blocking.
pub fn retire(
    store: &Store,
    hsm: &Hsm,
    keyring: &Keyring,
    fingerprint_current: KeyVersion,
) -> Result<Retired, OpenError> {
    let current = current_version(store)?.ok_or(OpenError::NotInitialized)?;
    let mut retired = Retired::default();
    let mut batch = Batch::default();
    let mut kek = None;
    for (version, wrapped) in stored_deks(store)? {
        if version == current {
            kek = Some(wrapped.kek);
        } else {
            batch.delete(record::dek_key(version));
            retired.deks.push(version);
        }
    }
    let kek = kek.ok_or(OpenError::BadKeyRecord(current))?;
    if !retired.deks.is_empty() {
        store.commit_blocking(batch)?;
        for v in &retired.deks {
            keyring.forget(KeyVersion(*v));
        }
    }
    // The records go first: a DEK record whose KEK is gone could never be opened again.
    for v in hsm.kek_versions()?.into_iter().filter(|v| *v < kek) {
        hsm.destroy_retired_kek(v, kek)?;
        retired.keks.push(v);
    }
    for v in hsm
        .fingerprint_versions()?
        .into_iter()
        .filter(|v| *v < fingerprint_current)
    {
        hsm.destroy_retired_fingerprint_key(v, fingerprint_current)?;
        retired.fingerprint_keys.push(v);
    }
    Ok(retired)
}

fn current_version(store: &Store) -> Result<Option<u32>, OpenError> {
    store
        .get(record::CURRENT_KEY)?
        .map(|v| {
            v.as_slice()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| OpenError::BadKeyRecord(0))
        })
        .transpose()
}

/// Every stored DEK, by version, still wrapped.
fn stored_deks(store: &Store) -> Result<Vec<(u32, WrappedDek)>, OpenError> {
    store
        .scan_prefix(record::DEK)?
        .into_iter()
        .map(|(k, v)| {
            let version = k[record::DEK.len()..]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| OpenError::BadKeyRecord(0))?;
            Ok((version, parse_dek(version, &v)?))
        })
        .collect()
}

/// A stored DEK: the version of the KEK that wraps it (u32 big-endian), then the wrapped bytes.
fn dek_value(w: &WrappedDek) -> Vec<u8> {
    let mut v = w.kek.0.to_be_bytes().to_vec();
    v.extend_from_slice(&w.bytes);
    v
}

fn parse_dek(version: u32, v: &[u8]) -> Result<WrappedDek, OpenError> {
    let (kek, bytes) = v
        .split_at_checked(4)
        .ok_or(OpenError::BadKeyRecord(version))?;
    let kek = kek
        .try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| OpenError::BadKeyRecord(version))?;
    Ok(WrappedDek {
        kek: KeyVersion(kek),
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use hsm::softhsm::isolated_test;

    use super::*;
    use crate::keyring::Binding;
    use crate::service::testing::memory_store;

    #[test]
    fn dek_records_round_trip_and_a_short_one_is_refused() {
        let w = WrappedDek {
            kek: KeyVersion(7),
            bytes: vec![1, 2, 3],
        };
        let back = parse_dek(3, &dek_value(&w)).unwrap();
        assert_eq!((back.kek, back.bytes), (KeyVersion(7), vec![1, 2, 3]));
        assert!(matches!(
            parse_dek(3, &[0, 1]),
            Err(OpenError::BadKeyRecord(3))
        ));
    }

    #[test]
    fn init_creates_keys_once_then_finds_them() {
        let Some(cfg) =
            isolated_test("service::keys::tests::init_creates_keys_once_then_finds_them")
        else {
            return;
        };
        let hsm = Hsm::open(&cfg).unwrap();
        let store = memory_store();
        assert!(matches!(load(&store, &hsm), Err(OpenError::NotInitialized)));
        assert_eq!(
            init(&store, &hsm).unwrap(),
            Initialized::Created { version: 1 }
        );
        assert_eq!(
            init(&store, &hsm).unwrap(),
            Initialized::Found { version: 1 }
        );
        assert_eq!(hsm.kek_versions().unwrap(), vec![KeyVersion(1)]);
        assert_eq!(load(&store, &hsm).unwrap().current_version(), Some(1));
    }

    #[test]
    fn rotation_seals_with_the_new_key_and_keeps_the_old_one_opening() {
        let Some(cfg) = isolated_test(
            "service::keys::tests::rotation_seals_with_the_new_key_and_keeps_the_old_one_opening",
        ) else {
            return;
        };
        let hsm = Hsm::open(&cfg).unwrap();
        let store = memory_store();
        init(&store, &hsm).unwrap();
        let keyring = load(&store, &hsm).unwrap();
        let binding = Binding {
            token: &[1; 16],
            scope: "m:1",
            customer: "c",
        };
        let (v1, sealed) = keyring.seal(b"secret", &binding).unwrap();
        assert_eq!(rotate(&store, &hsm, &keyring).unwrap(), 2);
        assert_eq!(keyring.current_version(), Some(2));
        assert_eq!(keyring.seal(b"x", &binding).unwrap().0, 2);
        assert_eq!(&keyring.open(v1, &sealed, &binding).unwrap()[..], b"secret");
        // Every DEK is now wrapped under KEK v2, and a restart loads both.
        for (_, wrapped) in stored_deks(&store).unwrap() {
            assert_eq!(wrapped.kek, KeyVersion(2));
        }
        let reloaded = load(&store, &hsm).unwrap();
        assert_eq!(reloaded.current_version(), Some(2));
        assert_eq!(
            &reloaded.open(v1, &sealed, &binding).unwrap()[..],
            b"secret"
        );
        assert_eq!(rotate(&store, &hsm, &keyring).unwrap(), 3);
    }

    #[test]
    fn retiring_after_a_rotation_deletes_old_deks_and_destroys_old_keys() {
        let Some(cfg) = isolated_test(
            "service::keys::tests::retiring_after_a_rotation_deletes_old_deks_and_destroys_old_keys",
        ) else {
            return;
        };
        let hsm = Hsm::open(&cfg).unwrap();
        let store = memory_store();
        init(&store, &hsm).unwrap();
        let keyring = load(&store, &hsm).unwrap();
        let binding = Binding {
            token: &[1; 16],
            scope: "m:1",
            customer: "c",
        };
        let (v1, sealed) = keyring.seal(b"secret", &binding).unwrap();
        rotate(&store, &hsm, &keyring).unwrap();
        let fingerprint = hsm.rotate_fingerprint_key().unwrap();
        // Before: the old KEK, DEK and fingerprint key all stay.
        assert_eq!(hsm.kek_versions().unwrap(), [KeyVersion(1), KeyVersion(2)]);
        assert_eq!(stored_deks(&store).unwrap().len(), 2);
        let retired = retire(&store, &hsm, &keyring, fingerprint).unwrap();
        assert_eq!(
            retired,
            Retired {
                deks: vec![1],
                keks: vec![KeyVersion(1)],
                fingerprint_keys: vec![KeyVersion(1)],
            }
        );
        assert_eq!(hsm.kek_versions().unwrap(), [KeyVersion(2)]);
        assert_eq!(hsm.fingerprint_versions().unwrap(), [KeyVersion(2)]);
        assert_eq!(
            stored_deks(&store)
                .unwrap()
                .into_iter()
                .map(|(v, _)| v)
                .collect::<Vec<_>>(),
            [2]
        );
        assert!(
            keyring.open(v1, &sealed, &binding).is_err(),
            "the retired DEK is gone"
        );
        // A restart loads only the current DEK; nothing more to retire.
        assert_eq!(load(&store, &hsm).unwrap().current_version(), Some(2));
        assert_eq!(
            retire(&store, &hsm, &keyring, fingerprint).unwrap(),
            Retired::default()
        );
    }
}
