//! The vault's key hierarchy in the HSM: find, create and use keys by label and version.
//!
//! Owns the attribute templates (every key is generated with each usage and protection set
//! explicitly: a KEK only wraps and unwraps, a fingerprint key only signs, neither can be read,
//! changed or copied), the DEK wrap/unwrap round trips, and the retirement of old key versions.
//! Must never read the value of a token key, never return a DEK except in a zeroizing [`Dek`], and
//! never log a key's value or a PIN.

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

/// Where the HSM is and how to log in. Built from config and environment, never from source.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token holding the vault's keys, found among the module's slots.
    pub token_label: String,
    /// The user PIN to log in with; never logged, never in an error.
    pub user_pin: Pin,
    /// Most sessions kept open for concurrent callers.
    pub sessions: usize,
}

/// A PIN or other secret; wiped on drop, never printed.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Takes ownership of `secret`, so the only copy is the one wiped on drop.
    pub fn new(secret: String) -> Pin {
        Pin(Zeroizing::new(secret))
    }
    /// The secret, for the PKCS#11 login only; never log or format it.
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
    /// The key's bytes, for sealing and opening records in memory; never log, store or copy them.
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
    /// The version of the KEK it is wrapped under, so it can be unwrapped after later rotations.
    pub kek: KeyVersion,
    /// The DEK encrypted with `CKM_AES_KEY_WRAP`; useless without that KEK in the HSM.
    pub bytes: Vec<u8>,
}

/// The kinds of key the vault keeps on the token, each labelled `<prefix><version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `vault-kek-v{N}`: AES-256, wraps and unwraps DEKs.
    Kek,
    /// `vault-fingerprint-v{N}`: generic secret, HMAC-SHA-256 of a PAN. Version 1 carries the
    /// label the key had before it was versioned, so existing tokens keep working.
    Fingerprint,
    /// `vault-audit-v{N}`: generic secret, HMAC-SHA-256 of an audit checkpoint (sequence and
    /// head hash), so that whoever can write the database cannot forge the log's seal.
    Audit,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Kek => "vault-kek-v",
            KeyKind::Fingerprint => "vault-fingerprint-v",
            KeyKind::Audit => "vault-audit-v",
        }
    }

    fn label(self, version: KeyVersion) -> String {
        format!("{}{}", self.prefix(), version.0)
    }

    /// How long a key of this kind may be used before it is rotated (this crate's documented
    /// default, README.md "Key inventory"): a KEK one year, a fingerprint or audit key two
    /// years. A DEK has the cryptoperiod of the KEK it is wrapped under.
    pub fn cryptoperiod(self) -> time::Duration {
        match self {
            KeyKind::Kek => time::Duration::days(365),
            KeyKind::Fingerprint | KeyKind::Audit => time::Duration::days(730),
        }
    }

    fn parse(label: &str) -> Option<(KeyKind, KeyVersion)> {
        [KeyKind::Kek, KeyKind::Fingerprint, KeyKind::Audit]
            .into_iter()
            .find_map(|kind| {
                let v = label.strip_prefix(kind.prefix())?.parse().ok()?;
                Some((kind, KeyVersion(v)))
            })
    }

    /// How a key of this kind is generated. Every usage is stated, not left to the module's
    /// defaults (SoftHSM's allow everything): a KEK that could sign or encrypt would be an oracle
    /// under the key that protects every DEK, and a fingerprint key that could encrypt or unwrap
    /// could be turned to another job. Not modifiable, so no usage can be switched on later; not
    /// copyable, so no copy with other usages (or on no token at all) can be made; destroyable,
    /// so a retired version can be removed.
    fn template(self, label: String) -> (Mechanism<'static>, Vec<Attribute>) {
        let (mechanism, key_type, wraps, signs) = match self {
            KeyKind::Kek => (Mechanism::AesKeyGen, KeyType::AES, true, false),
            KeyKind::Fingerprint | KeyKind::Audit => (
                Mechanism::GenericSecretKeyGen,
                KeyType::GENERIC_SECRET,
                false,
                true,
            ),
        };
        let template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Destroyable(true),
            Attribute::Wrap(wraps),
            Attribute::Unwrap(wraps),
            Attribute::Sign(signs),
            // Fingerprints are compared as stored values; nothing ever calls C_Verify.
            Attribute::Verify(false),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            // When the key's cryptoperiod started, for `keys()` to report its age. In CKA_ID
            // rather than CKA_START_DATE: SoftHSM2 2.6.1 accepts a start date at generation but
            // then fails every C_GetAttributeValue on that key with CKR_GENERAL_ERROR (tested).
            Attribute::Id(created_id(today())),
            Attribute::Label(label.into_bytes()),
        ];
        (mechanism, template)
    }
}

/// One thing a key may be used for (a PKCS#11 `CKA_ENCRYPT` … `CKA_DERIVE` flag that is true).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `CKA_ENCRYPT`.
    Encrypt,
    /// `CKA_DECRYPT`.
    Decrypt,
    /// `CKA_SIGN`: HMAC, the only usage of a fingerprint or audit key.
    Sign,
    /// `CKA_VERIFY`.
    Verify,
    /// `CKA_WRAP`: a KEK wrapping a DEK.
    Wrap,
    /// `CKA_UNWRAP`: a KEK unwrapping a DEK.
    Unwrap,
    /// `CKA_DERIVE`.
    Derive,
}

/// What `vault keys` shows about one key: names and attributes, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's `CKA_LABEL`, e.g. `vault-kek-v2`.
    pub label: String,
    /// Which of the vault's keys it is, read from the label.
    pub kind: KeyKind,
    /// Its version, read from the label.
    pub version: KeyVersion,
    /// `CKA_SENSITIVE`: true means the module never reveals the value.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: false means it cannot even be wrapped out.
    pub extractable: bool,
    /// `CKA_TOKEN`: true for a key stored on the token rather than in a session.
    pub token: bool,
    /// Whether attributes may still be changed (`CKA_MODIFIABLE`); a key generated by this crate
    /// says false, one generated before its templates were explicit may say true.
    pub modifiable: bool,
    /// Whether `C_CopyObject` may copy the key (`CKA_COPYABLE`).
    pub copyable: bool,
    /// The usages the module allows, in the order of [`Usage`].
    pub usages: Vec<Usage>,
    /// The day the key was generated (kept in its `CKA_ID`); `None` for a key generated before
    /// this crate recorded it, whose age is unknown.
    pub created: Option<time::Date>,
}

impl KeyInfo {
    /// Whole days since the key was generated, on `today`.
    pub fn age(&self, today: time::Date) -> Option<time::Duration> {
        self.created.map(|c| today - c)
    }

    /// Whether the key is past its kind's cryptoperiod on `today`: `None` when its age is
    /// unknown (rotate it to start a dated one).
    pub fn past_cryptoperiod(&self, today: time::Date) -> Option<bool> {
        self.age(today).map(|age| age > self.kind.cryptoperiod())
    }
}

/// Today's date in UTC, the calendar cryptoperiods are counted in.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// What CKA_ID holds: `created=YYYY-MM-DD`, readable by an auditor with `pkcs11-tool`.
const CREATED: &str = "created=";

fn created_id(d: time::Date) -> Vec<u8> {
    format!(
        "{CREATED}{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    )
    .into_bytes()
}

fn parse_created(id: &[u8]) -> Option<time::Date> {
    let text = std::str::from_utf8(id).ok()?.strip_prefix(CREATED)?;
    let mut parts = text.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
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
    /// The newest fingerprint key version, which [`Hsm::fingerprint`] signs with: looked up once,
    /// then kept up to date by this handle's rotations and destructions, so that a tokenize costs
    /// one HSM call and no object search.
    fingerprint_current: Mutex<Option<KeyVersion>>,
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
            Err(e) => {
                let e = HsmError::from(e);
                tracing::warn!(token = %config.token_label, error = %e, "HSM login failed");
                return Err(e);
            }
        }
        Ok(Hsm {
            inner: Arc::new(Inner {
                pool: SessionPool::new(ctx, slot, session, config.sessions),
                handles: Mutex::new(HashMap::new()),
                fingerprint_current: Mutex::new(None),
            }),
        })
    }

    /// Versions of every KEK on the token, ascending.
    pub fn kek_versions(&self) -> Result<Vec<KeyVersion>, HsmError> {
        self.versions(KeyKind::Kek)
    }

    /// Versions of every fingerprint key on the token, ascending.
    pub fn fingerprint_versions(&self) -> Result<Vec<KeyVersion>, HsmError> {
        self.versions(KeyKind::Fingerprint)
    }

    /// Generates KEK `version` inside the HSM: AES-256, on the token, sensitive, never
    /// extractable, wrap and unwrap only, not modifiable, not copyable.
    pub fn generate_kek(&self, version: KeyVersion) -> Result<(), HsmError> {
        self.generate(KeyKind::Kek, version)
    }

    /// Creates fingerprint key version 1 unless some version exists; returns whether it was
    /// created. (A token whose v1 was retired after a rotation does not get a new v1.)
    pub fn ensure_fingerprint_key(&self) -> Result<bool, HsmError> {
        if !self.fingerprint_versions()?.is_empty() {
            return Ok(false);
        }
        self.generate(KeyKind::Fingerprint, KeyVersion(1))?;
        Ok(true)
    }

    /// Generates the next fingerprint key version (the newest plus one, or 1) and makes it the
    /// one [`Hsm::fingerprint`] signs with; returns it. The older versions stay usable through
    /// [`Hsm::fingerprint_with`] until the caller has re-fingerprinted its records and destroys
    /// them with [`Hsm::destroy_retired_fingerprint_key`].
    pub fn rotate_fingerprint_key(&self) -> Result<KeyVersion, HsmError> {
        let from = self.fingerprint_versions()?.last().copied();
        let next = KeyVersion(from.map_or(1, |v| v.0 + 1));
        self.generate(KeyKind::Fingerprint, next)?;
        if let Ok(mut current) = self.inner.fingerprint_current.lock() {
            *current = Some(next);
        }
        tracing::info!(version = %next, "rotated the fingerprint key");
        Ok(next)
    }

    /// Destroys KEK `retired` once nothing is wrapped under it any more (every DEK re-wrapped and
    /// every record re-sealed under `current`). Refuses a version that is not older than
    /// `current`, and refuses when KEK `current` is not on the token, so the last usable KEK can
    /// never be destroyed this way.
    pub fn destroy_retired_kek(
        &self,
        retired: KeyVersion,
        current: KeyVersion,
    ) -> Result<(), HsmError> {
        self.destroy_retired(KeyKind::Kek, retired, current)
    }

    /// Destroys fingerprint key `retired` once every stored fingerprint has been recomputed under
    /// `current`; refuses as [`Hsm::destroy_retired_kek`] does.
    pub fn destroy_retired_fingerprint_key(
        &self,
        retired: KeyVersion,
        current: KeyVersion,
    ) -> Result<(), HsmError> {
        self.destroy_retired(KeyKind::Fingerprint, retired, current)
    }

    /// Creates the audit checkpoint key `vault-audit-v1` unless it exists; returns whether it was
    /// created. Sign only, sensitive, never extractable, like the fingerprint key.
    pub fn ensure_audit_key(&self) -> Result<bool, HsmError> {
        if self.versions(KeyKind::Audit)?.contains(&AUDIT_KEY) {
            return Ok(false);
        }
        self.generate(KeyKind::Audit, AUDIT_KEY)?;
        Ok(true)
    }

    /// HMAC-SHA-256 of `data` under the audit checkpoint key: one HSM call. Verifying a MAC is
    /// computing it again and comparing (the key may sign, nothing else).
    pub fn audit_mac(&self, data: &[u8]) -> Result<[u8; 32], HsmError> {
        let key = self.handle(&KeyKind::Audit.label(AUDIT_KEY))?;
        let s = self.inner.pool.get()?;
        count_call();
        let mac = s.sign(&Mechanism::Sha256Hmac, key, data)?;
        mac.try_into()
            .map_err(|_| HsmError::Pkcs11("HMAC-SHA-256 returned a wrong length".into()))
    }

    /// A fresh DEK, generated in the HSM, returned both wrapped under KEK `kek` (to store) and in
    /// clear (to use).
    pub fn new_dek(&self, kek: KeyVersion) -> Result<(WrappedDek, Dek), HsmError> {
        let kek_handle = self.handle(&kek_label(kek))?;
        let s = self.inner.pool.get()?;
        count_call();
        let mut template = dek_template();
        template.push(Attribute::ValueLen(32.into()));
        let dek = s.generate_key(&Mechanism::AesKeyGen, &template)?;
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

    /// HMAC-SHA-256 of `data` under the newest fingerprint key: finds the same card again without
    /// an unkeyed hash that a dictionary of card numbers could reverse. One HSM call; during a
    /// rotation, callers that must match fingerprints made under an older version use
    /// [`Hsm::fingerprint_with`].
    pub fn fingerprint(&self, data: &[u8]) -> Result<[u8; 32], HsmError> {
        self.fingerprint_with(self.current_fingerprint_version()?, data)
    }

    /// HMAC-SHA-256 of `data` under fingerprint key `version`. Signs with the token key itself
    /// (it is not copyable, so there is no in-memory copy to sign with): SoftHSM re-checks a token
    /// object's file on each use, which costs a tokenize some microseconds and a detokenize
    /// nothing, since only tokenize fingerprints.
    pub fn fingerprint_with(&self, version: KeyVersion, data: &[u8]) -> Result<[u8; 32], HsmError> {
        let key = self.handle(&KeyKind::Fingerprint.label(version))?;
        let s = self.inner.pool.get()?;
        count_call();
        let mac = s.sign(&Mechanism::Sha256Hmac, key, data)?;
        mac.try_into()
            .map_err(|_| HsmError::Pkcs11("HMAC-SHA-256 returned a wrong length".into()))
    }

    /// Every vault key on the token, with its version and attributes (never its value).
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
                    AttributeType::Modifiable,
                    AttributeType::Copyable,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Sign,
                    AttributeType::Verify,
                    AttributeType::Wrap,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    AttributeType::Id,
                ],
            )?;
            let mut label = String::new();
            // What a key says about itself when the module leaves an attribute out: the
            // permissive reading, so a missing attribute is never shown as a protection.
            let (mut sensitive, mut extractable, mut token) = (false, true, false);
            let (mut modifiable, mut copyable) = (true, true);
            let mut usages = Vec::new();
            let mut created = None;
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Sensitive(b) => sensitive = b,
                    Attribute::Extractable(b) => extractable = b,
                    Attribute::Token(b) => token = b,
                    Attribute::Modifiable(b) => modifiable = b,
                    Attribute::Copyable(b) => copyable = b,
                    Attribute::Encrypt(true) => usages.push(Usage::Encrypt),
                    Attribute::Decrypt(true) => usages.push(Usage::Decrypt),
                    Attribute::Sign(true) => usages.push(Usage::Sign),
                    Attribute::Verify(true) => usages.push(Usage::Verify),
                    Attribute::Wrap(true) => usages.push(Usage::Wrap),
                    Attribute::Unwrap(true) => usages.push(Usage::Unwrap),
                    Attribute::Derive(true) => usages.push(Usage::Derive),
                    Attribute::Id(id) => created = parse_created(&id),
                    _ => {}
                }
            }
            if let Some((kind, version)) = KeyKind::parse(&label) {
                out.push(KeyInfo {
                    label,
                    kind,
                    version,
                    sensitive,
                    extractable,
                    token,
                    modifiable,
                    copyable,
                    usages,
                    created,
                });
            }
        }
        out.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(out)
    }

    fn versions(&self, kind: KeyKind) -> Result<Vec<KeyVersion>, HsmError> {
        let mut v: Vec<KeyVersion> = self
            .keys()?
            .into_iter()
            .filter(|k| k.kind == kind)
            .map(|k| k.version)
            .collect();
        v.sort();
        Ok(v)
    }

    fn generate(&self, kind: KeyKind, version: KeyVersion) -> Result<(), HsmError> {
        let label = kind.label(version);
        let s = self.inner.pool.get()?;
        if find_one(&s, &label)?.is_some() {
            return Err(HsmError::KeyExists(label));
        }
        let (mechanism, template) = kind.template(label.clone());
        count_call();
        s.generate_key(&mechanism, &template)?;
        tracing::info!(key = %label, "generated HSM key");
        Ok(())
    }

    fn destroy_retired(
        &self,
        kind: KeyKind,
        retired: KeyVersion,
        current: KeyVersion,
    ) -> Result<(), HsmError> {
        let label = kind.label(retired);
        if retired >= current {
            tracing::warn!(key = %label, %current, "refused to destroy a key that is not retired");
            return Err(HsmError::KeyNotRetired { label, current });
        }
        // Never destroy a version while the one that replaces it is not on the token.
        self.handle(&kind.label(current))?;
        let key = self.handle(&label)?;
        let s = self.inner.pool.get()?;
        s.destroy_object(key)?;
        if let Ok(mut handles) = self.inner.handles.lock() {
            handles.remove(&label);
        }
        if kind == KeyKind::Fingerprint
            && let Ok(mut current) = self.inner.fingerprint_current.lock()
        {
            // Looked up again on the next fingerprint rather than reasoned about here.
            *current = None;
        }
        tracing::info!(key = %label, "destroyed retired HSM key");
        Ok(())
    }

    fn current_fingerprint_version(&self) -> Result<KeyVersion, HsmError> {
        if let Some(v) = self.inner.fingerprint_current.lock().ok().and_then(|c| *c) {
            return Ok(v);
        }
        let newest = self
            .fingerprint_versions()?
            .last()
            .copied()
            .ok_or_else(|| HsmError::KeyMissing(KeyKind::Fingerprint.label(KeyVersion(1))))?;
        if let Ok(mut current) = self.inner.fingerprint_current.lock() {
            *current = Some(newest);
        }
        Ok(newest)
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

    /// Runs `attack` on a logged-in session of this token with the key labelled `label`: what an
    /// insider holding the user PIN could do with any PKCS#11 tool, so that tests can show the
    /// real module refuses it.
    #[doc(hidden)]
    pub fn with_key<T>(
        &self,
        label: &str,
        attack: impl FnOnce(&Session, ObjectHandle) -> T,
    ) -> Result<T, HsmError> {
        let key = self.handle(label)?;
        let s = self.inner.pool.get()?;
        Ok(attack(&s, key))
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

/// The one version of the audit checkpoint key: checkpoints name no version, so a rotation of this
/// key would be a new label and a new line format.
const AUDIT_KEY: KeyVersion = KeyVersion(1);

fn kek_label(version: KeyVersion) -> String {
    KeyKind::Kek.label(version)
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
    Ok(s.unwrap_key(&Mechanism::AesKeyWrap, kek, wrapped, &dek_template())?)
}

/// What a DEK is while it is inside the HSM, for the moment it takes to wrap it or read it: a
/// session object (never stored on the token), readable (`CKA_SENSITIVE` false: the vault seals
/// and opens records in process memory, so it needs the value, which it keeps only in a zeroizing
/// [`Dek`]) and extractable (so it can be re-wrapped under a new KEK), but usable for nothing
/// inside the HSM, and destroyed right after.
fn dek_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]
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
