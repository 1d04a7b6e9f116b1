//! The vault's key hierarchy in the HSM: find, create and use keys by label and version.
//!
//! Owns the attribute templates (so every KEK is generated sensitive and non-extractable) and the
//! DEK wrap/unwrap round trips. Must never read the value of a token key, and never return a DEK
//! except in a zeroizing [`Dek`].

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::pool::SessionPool;
use crate::{HsmError, context, count_call};

const KEK_PREFIX: &str = "vault-kek-v";
const FINGERPRINT_LABEL: &str = "vault-fingerprint-v1";

/// Where the HSM is and how to log in. Built from config and environment, never from source.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    pub token_label: String,
    pub user_pin: Pin,
    /// Most sessions kept open for concurrent callers.
    pub sessions: usize,
}

/// A PIN or other secret; wiped on drop, never printed.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    pub fn new(secret: String) -> Pin {
        Pin(Zeroizing::new(secret))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// A key generation. KEK version N wraps DEK version N; records say which DEK sealed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(pub u32);

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A data-encryption key in clear, only ever in process memory, wiped on drop.
#[derive(Clone)]
pub struct Dek(Zeroizing<[u8; 32]>);

impl Dek {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A DEK from fixed bytes, for unit tests of code that uses DEKs without an HSM.
    #[doc(hidden)]
    pub fn for_tests(bytes: [u8; 32]) -> Dek {
        Dek(Zeroizing::new(bytes))
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(***)")
    }
}

/// A DEK as stored: encrypted under the KEK of `kek`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDek {
    pub kek: KeyVersion,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Kek,
    Fingerprint,
}

/// What `vault keys` shows about one key: names and attributes, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub label: String,
    pub kind: KeyKind,
    pub version: KeyVersion,
    pub sensitive: bool,
    pub extractable: bool,
    pub token: bool,
}

/// A logged-in handle on the vault's token. Cheap to clone; safe to share between threads.
#[derive(Debug, Clone)]
pub struct Hsm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SessionPool,
    /// Object handles stay valid for the life of the login, so each key is looked up once.
    handles: Mutex<HashMap<String, ObjectHandle>>,
    /// A session that is never lent out or closed: it owns the in-memory copy of the
    /// fingerprint key, which lives as long as the session that made it.
    anchor: Mutex<Session>,
    /// In-memory (`CKA_TOKEN` false, still sensitive and non-extractable) copy of the fingerprint
    /// key: SoftHSM re-checks a token object's file on every use, a session object it does not,
    /// which makes the per-tokenize HMAC an order of magnitude cheaper.
    fingerprint_copy: std::sync::OnceLock<ObjectHandle>,
}

impl Hsm {
    /// Loads the module, finds the token by label and logs in as the user.
    pub fn open(config: &HsmConfig) -> Result<Hsm, HsmError> {
        let ctx = context::context(&config.module)?;
        let slot = ctx
            .get_slots_with_initialized_token()?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|t| t.label() == config.token_label)
            })
            .ok_or_else(|| HsmError::TokenMissing(config.token_label.clone()))?;
        let session = ctx.open_rw_session(slot)?;
        match session.login(
            UserType::User,
            Some(&AuthPin::new(config.user_pin.expose().into())),
        ) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        let anchor = Mutex::new(ctx.open_rw_session(slot)?);
        Ok(Hsm {
            inner: Arc::new(Inner {
                pool: SessionPool::new(ctx, slot, session, config.sessions),
                handles: Mutex::new(HashMap::new()),
                anchor,
                fingerprint_copy: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Versions of every KEK on the token, ascending.
    pub fn kek_versions(&self) -> Result<Vec<KeyVersion>, HsmError> {
        let mut v: Vec<KeyVersion> = self
            .keys()?
            .into_iter()
            .filter(|k| k.kind == KeyKind::Kek)
            .map(|k| k.version)
            .collect();
        v.sort();
        Ok(v)
    }

    /// Generates KEK `version` inside the HSM: AES-256, sensitive, never extractable, on the token.
    pub fn generate_kek(&self, version: KeyVersion) -> Result<(), HsmError> {
        let label = kek_label(version);
        let s = self.inner.pool.get()?;
        if find_one(&s, &label)?.is_some() {
            return Err(HsmError::KeyExists(label));
        }
        count_call();
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Label(label.into_bytes()),
            ],
        )?;
        Ok(())
    }

    /// Creates the fingerprint key unless it exists; returns whether it was created.
    pub fn ensure_fingerprint_key(&self) -> Result<bool, HsmError> {
        let s = self.inner.pool.get()?;
        if find_one(&s, FINGERPRINT_LABEL)?.is_some() {
            return Ok(false);
        }
        count_call();
        s.generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Label(FINGERPRINT_LABEL.as_bytes().to_vec()),
            ],
        )?;
        Ok(true)
    }

    /// A fresh DEK, generated in the HSM, returned both wrapped under KEK `kek` (to store) and in
    /// clear (to use).
    pub fn new_dek(&self, kek: KeyVersion) -> Result<(WrappedDek, Dek), HsmError> {
        let kek_handle = self.handle(&kek_label(kek))?;
        let s = self.inner.pool.get()?;
        count_call();
        let dek = s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )?;
        let out = wrap_and_read(&s, kek_handle, dek)
            .map(|(bytes, clear)| (WrappedDek { kek, bytes }, clear));
        let _ = s.destroy_object(dek);
        out
    }

    /// The DEK in clear, from its wrapped form.
    pub fn unwrap_dek(&self, wrapped: &WrappedDek) -> Result<Dek, HsmError> {
        let kek_handle = self.handle(&kek_label(wrapped.kek))?;
        let s = self.inner.pool.get()?;
        let dek = unwrap_session_key(&s, kek_handle, &wrapped.bytes)?;
        let out = read_value(&s, dek);
        let _ = s.destroy_object(dek);
        out
    }

    /// The same DEK wrapped under KEK `to`, without its value leaving the HSM.
    pub fn rewrap_dek(&self, wrapped: &WrappedDek, to: KeyVersion) -> Result<WrappedDek, HsmError> {
        let from_handle = self.handle(&kek_label(wrapped.kek))?;
        let to_handle = self.handle(&kek_label(to))?;
        let s = self.inner.pool.get()?;
        let dek = unwrap_session_key(&s, from_handle, &wrapped.bytes)?;
        count_call();
        let out = s
            .wrap_key(&Mechanism::AesKeyWrap, to_handle, dek)
            .map_err(HsmError::from);
        let _ = s.destroy_object(dek);
        Ok(WrappedDek {
            kek: to,
            bytes: out?,
        })
    }

    /// HMAC-SHA-256 of `data` under the fingerprint key: finds the same card again without an
    /// unkeyed hash that a dictionary of card numbers could reverse.
    pub fn fingerprint(&self, data: &[u8]) -> Result<[u8; 32], HsmError> {
        let key = self.fingerprint_key()?;
        let s = self.inner.pool.get()?;
        count_call();
        let mac = s.sign(&Mechanism::Sha256Hmac, key, data)?;
        mac.try_into()
            .map_err(|_| HsmError::Pkcs11("HMAC-SHA-256 returned a wrong length".into()))
    }

    /// Every vault key on the token, with its attributes (never its value).
    pub fn keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        let s = self.inner.pool.get()?;
        let objects = s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(true),
        ])?;
        let mut out = Vec::new();
        for o in objects {
            let attrs = s.get_attributes(
                o,
                &[
                    AttributeType::Label,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Token,
                ],
            )?;
            let (mut label, mut sensitive, mut extractable, mut token) =
                (String::new(), false, true, false);
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Sensitive(b) => sensitive = b,
                    Attribute::Extractable(b) => extractable = b,
                    Attribute::Token(b) => token = b,
                    _ => {}
                }
            }
            let parsed = if label == FINGERPRINT_LABEL {
                Some((KeyKind::Fingerprint, KeyVersion(1)))
            } else {
                label
                    .strip_prefix(KEK_PREFIX)
                    .and_then(|v| v.parse().ok())
                    .map(|v| (KeyKind::Kek, KeyVersion(v)))
            };
            if let Some((kind, version)) = parsed {
                out.push(KeyInfo {
                    label,
                    kind,
                    version,
                    sensitive,
                    extractable,
                    token,
                });
            }
        }
        out.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(out)
    }

    fn fingerprint_key(&self) -> Result<ObjectHandle, HsmError> {
        if let Some(h) = self.inner.fingerprint_copy.get() {
            return Ok(*h);
        }
        let token_key = self.handle(FINGERPRINT_LABEL)?;
        let anchor = self
            .inner
            .anchor
            .lock()
            .map_err(|_| HsmError::Pkcs11("anchor session poisoned".into()))?;
        if let Some(h) = self.inner.fingerprint_copy.get() {
            return Ok(*h);
        }
        count_call();
        let copy = anchor.copy_object(token_key, &[Attribute::Token(false)])?;
        Ok(*self.inner.fingerprint_copy.get_or_init(|| copy))
    }

    fn handle(&self, label: &str) -> Result<ObjectHandle, HsmError> {
        if let Some(h) = self
            .inner
            .handles
            .lock()
            .ok()
            .and_then(|m| m.get(label).copied())
        {
            return Ok(h);
        }
        let s = self.inner.pool.get()?;
        let h = find_one(&s, label)?.ok_or_else(|| HsmError::KeyMissing(label.to_string()))?;
        if let Ok(mut m) = self.inner.handles.lock() {
            m.insert(label.to_string(), h);
        }
        Ok(h)
    }

    /// Tries to wrap KEK `version` out of the HSM under another key; it must fail. Exists so the
    /// non-extractable promise can be checked against the real module.
    #[doc(hidden)]
    pub fn try_export_kek(&self, version: KeyVersion) -> Result<Vec<u8>, HsmError> {
        let kek = self.handle(&kek_label(version))?;
        let s = self.inner.pool.get()?;
        let wrapper = s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Wrap(true),
            ],
        )?;
        let out = s.wrap_key(&Mechanism::AesKeyWrap, wrapper, kek);
        let _ = s.destroy_object(wrapper);
        if let Ok(bytes) = out {
            return Ok(bytes);
        }
        // Reading the value directly must fail too.
        match s
            .get_attributes(kek, &[AttributeType::Value])?
            .into_iter()
            .next()
        {
            Some(Attribute::Value(v)) => Ok(v),
            _ => Err(HsmError::KeyUnextractable),
        }
    }
}

fn kek_label(version: KeyVersion) -> String {
    format!("{KEK_PREFIX}{}", version.0)
}

fn find_one(s: &Session, label: &str) -> Result<Option<ObjectHandle>, HsmError> {
    Ok(s.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?
    .into_iter()
    .next())
}

fn unwrap_session_key(
    s: &Session,
    kek: ObjectHandle,
    wrapped: &[u8],
) -> Result<ObjectHandle, HsmError> {
    count_call();
    Ok(s.unwrap_key(
        &Mechanism::AesKeyWrap,
        kek,
        wrapped,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )?)
}

fn wrap_and_read(
    s: &Session,
    kek: ObjectHandle,
    dek: ObjectHandle,
) -> Result<(Vec<u8>, Dek), HsmError> {
    count_call();
    let bytes = s.wrap_key(&Mechanism::AesKeyWrap, kek, dek)?;
    Ok((bytes, read_value(s, dek)?))
}

fn read_value(s: &Session, key: ObjectHandle) -> Result<Dek, HsmError> {
    let attrs = s.get_attributes(key, &[AttributeType::Value])?;
    let Some(Attribute::Value(v)) = attrs.into_iter().next() else {
        return Err(HsmError::Pkcs11("DEK value unavailable".into()));
    };
    let v = Zeroizing::new(v);
    let mut out = Zeroizing::new([0u8; 32]);
    if v.len() != 32 {
        return Err(HsmError::BadWrappedKey);
    }
    out.copy_from_slice(&v);
    Ok(Dek(out))
}
